//! The API's OpenAPI description: its root (title, tags, the error schema) and the path
//! parameters its routes share. The operations come from the handlers' own `#[utoipa::path]`
//! attributes, collected by the router as it routes them, so a route cannot go undescribed.

use utoipa::{IntoParams, OpenApi};

use crate::error::ApiError;

/// The description's root; the router adds every operation it routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "raydar",
        description = "The console of a shared Ray-on-Kubernetes platform: RayClusters watched \
            live, launched from vetted templates, changed and torn down as the requester \
            (Kubernetes impersonation, so RBAC decides), their logs and GPU use.\n\n\
            Every request needs an identity: an authenticating proxy's headers, dev mode, or, \
            for pipelines, `Authorization: Bearer <token>` with a Kubernetes ServiceAccount's \
            token (or any the apiserver accepts: checked with a TokenReview; a token refused is \
            401). Writes of browsers (proxy or dev identity) need an `Origin` naming raydar and \
            the requester's CSRF token in `X-CSRF-Token` (`GET /api/v1/session`); a bearer \
            token needs neither. Every error is an `ApiError`.\n\n\
            raydar may serve several Kubernetes clusters (`GET /api/v1/contexts`): any request \
            names the one it is about with `?context=NAME` (default: the home one; a name none \
            has is 404), and the lists of clusters take `context=*` for every one at once.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    components(schemas(ApiError)),
    tags(
        (name = "clusters", description = "RayClusters: the list, one cluster, its page, live changes"),
        (name = "actions", description = "Launch, suspend, resume, scale, tear down: made as the requester"),
        (name = "templates", description = "The vetted RayClusterTemplates clusters are launched from"),
        (name = "jobs", description = "A cluster's Ray jobs, typed"),
        (name = "rayjobs", description = "KubeRay RayJobs: listed, and submitted to a running cluster as the requester"),
        (name = "logs", description = "Job and pod logs, live or as a download"),
        (name = "gpus", description = "GPU use by cluster and fleet"),
        (name = "history", description = "Clusters past and present: how they were launched, their phases and events, how they ended"),
        (name = "ray", description = "Read-only, allowlisted reads of a cluster's Ray dashboard"),
        (name = "session", description = "Who raydar takes the requester to be")
    )
)]
pub struct ApiDoc;

/// A RayCluster's namespace and name.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the derive only
pub struct ClusterParams {
    /// The cluster's namespace (a DNS-1123 label).
    #[param(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length = 63)]
    namespace: String,
    /// The cluster's name.
    #[param(pattern = "^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length = 53)]
    name: String,
}

/// A Ray job of a cluster.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the derive only
pub struct JobParams {
    /// The cluster's namespace (a DNS-1123 label).
    #[param(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length = 63)]
    namespace: String,
    /// The cluster's name.
    #[param(pattern = "^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length = 53)]
    name: String,
    /// The job's submission id (or job id).
    #[param(pattern = "^[A-Za-z0-9_-]+$", max_length = 128)]
    job_id: String,
}

/// A Ray pod of a cluster.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the derive only
pub struct PodParams {
    /// The cluster's namespace (a DNS-1123 label).
    #[param(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length = 63)]
    namespace: String,
    /// The cluster's name.
    #[param(pattern = "^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length = 53)]
    name: String,
    /// The pod's name (a DNS-1123 subdomain).
    #[param(
        pattern = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$",
        max_length = 253
    )]
    pod: String,
}

/// A followed log.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // read by the derive only
pub enum LogStream {
    /// Server-sent events: `lines` (`{first, lines}`: the numbered lines), `skipped` (lines
    /// this viewer fell behind on), `problem`, `end`; `reconnect` when raydar shuts down.
    #[response(status = 200, content_type = "text/event-stream")]
    Events(crate::push::ServerSentEvent),
}

/// What an event stream may answer besides its own.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // read by the derive only
pub enum StreamErrors {
    /// The requester has `--event-streams-per-person` event streams open already.
    #[response(status = 429)]
    TooMany(ApiError),
    /// raydar serves `--event-streams` event streams already, or follows as many clusters'
    /// pages as it may.
    #[response(status = 503)]
    Busy(ApiError),
}

/// An event stream refused because the requester has `--event-streams-per-person` open already.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // read by the derive only
pub enum PersonStreams {
    /// Too many of this requester's event streams are open.
    #[response(status = 429)]
    TooMany(ApiError),
}

/// A log so far, as a file.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // read by the derive only
pub enum LogDownload {
    /// The log so far (a pod's: at most 64 MiB), as an attachment.
    #[response(status = 200, content_type = "text/plain")]
    Text(String),
}

/// What any read of a cluster's routes may answer besides its own.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // read by the derive only
pub enum ReadErrors {
    /// A path segment or parameter is malformed (a namespace or name that cannot be a
    /// Kubernetes name, a resume point that is not a line number).
    #[response(status = 400)]
    Malformed(ApiError),
    /// The requester may not read this (Kubernetes RBAC), or the request is cross-origin.
    #[response(status = 403)]
    Forbidden(ApiError),
    /// raydar knows no such cluster, or it has no such pod, container or job.
    #[response(status = 404)]
    NotFound(ApiError),
}

/// What a read of one cluster's history (its record, a job's archived log) may answer besides
/// its own.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // read by the derive only
pub enum HistoryErrors {
    /// The uid or job id cannot be one.
    #[response(status = 400)]
    Malformed(ApiError),
    /// The requester may not read its namespace's clusters.
    #[response(status = 403)]
    Forbidden(ApiError),
    /// History has no such cluster, or no such job of it.
    #[response(status = 404)]
    NotFound(ApiError),
    /// The history database does not answer.
    #[response(status = 503)]
    Unavailable(ApiError),
}

/// What any action may answer besides its own.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // read by the derive only
pub enum ActionErrors {
    /// The body or path is malformed.
    #[response(status = 400)]
    Malformed(ApiError),
    /// Kubernetes RBAC refused (its own message), or the request lacks a same-origin `Origin`
    /// or the requester's CSRF token.
    #[response(status = 403)]
    Forbidden(ApiError),
    /// Too many actions of this requester; `Retry-After` says when to come back.
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds to wait")))]
    TooMany(ApiError),
    /// Kubernetes could not be reached.
    #[response(status = 502)]
    Unreachable(ApiError),
    /// Kubernetes did not answer in time.
    #[response(status = 504)]
    Timeout(ApiError),
}

/// What a read that goes to a Ray dashboard or Kubernetes may answer besides its own.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // read by the derive only
pub enum UpstreamErrors {
    /// The Ray dashboard or Kubernetes cannot be reached, or answered with something else.
    #[response(status = 502)]
    Unreachable(ApiError),
    /// The cluster's dashboard calls are all taken, `--log-streams` logs are followed already,
    /// `--log-downloads` logs are read for download already, or raydar serves
    /// `--event-streams` event streams already.
    #[response(status = 503)]
    Busy(ApiError),
    /// No answer in time.
    #[response(status = 504)]
    Timeout(ApiError),
}
