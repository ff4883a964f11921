//! The log routes: a job's or a Ray pod's log live as server-sent events, or so far as a download.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::{Api, Client};
use platform::template::value::namespace_problem;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;

use crate::error::{ApiError, ApiResult};
use crate::extract::{check_cluster, check_pod, Path, Query};
use crate::logs::{events, job::follow_job, pod::follow_pod, LogStreams, CALL_TIMEOUT};
use crate::push;
use crate::ray::{DashboardError, Dashboards, Read};
use crate::security::access::{MayReadCluster, MayReadPodLogs};

/// A download of a pod log ends within this.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Most bytes of a pod log downloaded (the kubelet keeps 10 MiB per log file by default).
const DOWNLOAD_LIMIT: i64 = 64 << 20;

/// Logs being read for a download right now, at most so many: each is held whole in memory
/// until it is sent (a pod's up to 64 MiB), so a few people clicking Download must not add up
/// to gigabytes. Cheap to clone.
#[derive(Clone)]
pub struct Downloads {
    slots: Arc<Semaphore>,
    most: usize,
}

impl Downloads {
    /// At most `most` downloads read at once.
    pub fn new(most: usize) -> Self {
        Downloads { slots: Arc::new(Semaphore::new(most)), most }
    }

    /// A slot for one download, or 503 when all are taken.
    fn start(&self) -> ApiResult<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().map_err(|_| {
            ApiError::unavailable(format!(
                "raydar is reading {} logs for download already, the most it reads at once; \
                 try again in a moment",
                self.most
            ))
        })
    }
}

/// What the log routes use: cheap to clone.
#[derive(Clone)]
pub struct Logs {
    /// Followed logs, shared by their viewers.
    pub streams: LogStreams,
    /// Logs read for download.
    pub downloads: Downloads,
    /// Ray dashboards, for job logs.
    pub dashboards: Dashboards,
    /// raydar's own client, for pod logs (the route checked the requester may read them).
    pub kube: Client,
    /// Ends open streams when raydar shuts down.
    pub shutdown: CancellationToken,
}

/// `?container=` of a pod's log routes.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContainerQuery {
    /// The pod's container; default: its first.
    #[param(
        value_type = String,
        required = false,
        pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length = 63
    )]
    pub container: Option<String>,
}

/// `?after=` of a log stream.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResumeQuery {
    /// Resume after this line (as `Last-Event-ID` does).
    #[param(value_type = u64, required = false, minimum = 0)]
    pub after: Option<u64>,
}

/// `Last-Event-ID`: what an `EventSource` sends when it reconnects.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // read by the derive only
pub struct ResumeHeader {
    /// Resume after this line (wins over `?after=`).
    #[param(rename = "Last-Event-ID", value_type = u64, required = false, minimum = 0)]
    last_event_id: Option<u64>,
}

/// The line a viewer resumes after: `Last-Event-ID` (an `EventSource` reconnecting), else
/// `?after=`, else 0.
fn resume_after(headers: &HeaderMap, after: Option<u64>) -> ApiResult<u64> {
    match headers.get("last-event-id") {
        Some(id) => id
            .to_str()
            .ok()
            .and_then(|id| id.trim().parse().ok())
            .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be the number of a line")),
        None => Ok(after.unwrap_or(0)),
    }
}

/// Where a viewer of a log stream starts: after the line [`resume_after`] says.
pub struct Resume(pub u64);

impl<S: Send + Sync> FromRequestParts<S> for Resume {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        let Query(query) = Query::<ResumeQuery>::from_request_parts(parts, state).await?;
        resume_after(&parts.headers, query.after).map(Resume)
    }
}

/// `GET /api/v1/clusters/{namespace}/{name}/jobs/{job_id}/logs/stream`: the job's log as
/// server-sent events (`lines`, `skipped`, `problem`, `end`), live until the job is done.
#[utoipa::path(
    get,
    path = "/clusters/{namespace}/{name}/jobs/{job_id}/logs/stream",
    tag = "logs",
    params(super::doc::JobParams, ResumeQuery, ResumeHeader),
    responses(
        super::doc::LogStream,
        super::doc::ReadErrors,
        super::doc::UpstreamErrors,
        super::doc::PersonStreams
    )
)]
pub async fn job_stream(
    _: MayReadCluster,
    State(logs): State<Logs>,
    Path((namespace, name, job)): Path<(String, String, String)>,
    Resume(after): Resume,
) -> ApiResult<Response> {
    check_cluster(&namespace, &name)?;
    let read = Read::parse(&format!("api/jobs/{job}"), None).map_err(ApiError::bad_request)?;
    let key = crate::logs::job::key(&namespace, &name, &job);
    // Only a log not followed yet is checked with Ray: viewers of a followed one cost no call.
    // A job Ray does not know is refused; an unreachable dashboard is not: the stream opens and
    // says so, and starts when the dashboard answers.
    if !logs.streams.is_followed(&key) {
        match logs.dashboards.read(&namespace, &name, &read).await {
            Ok(body) => {
                if let Some(kind) = platform::dashboard::unsubmitted_kind(&body) {
                    return Err(ApiError::not_found(format!(
                        "Ray keeps logs of submitted jobs only, and {job} is a {kind} job"
                    )));
                }
            }
            Err(e @ (DashboardError::NotFound(..) | DashboardError::NotACluster(_))) => {
                return Err(e.into())
            }
            Err(_) => {}
        }
    }
    let dashboards = logs.dashboards.clone();
    let viewer = logs
        .streams
        .follow(&key, after, move |feed| follow_job(feed, dashboards, namespace, name, job))?;
    Ok(push::stream(events(viewer), &logs.shutdown))
}

/// The pod `pod` of RayCluster `namespace/name` and the container asked for (default: the
/// first); 404 unless the pod exists there and carries `ray.io/cluster={name}`: raydar shows the
/// logs of Ray pods only.
async fn ray_pod(
    kube: &Client,
    (namespace, name, pod): (&str, &str, &str),
    container: Option<String>,
) -> ApiResult<(Api<Pod>, String)> {
    check_cluster(namespace, name)?;
    check_pod(pod)?;
    if let Some(problem) = container.as_deref().and_then(namespace_problem) {
        return Err(ApiError::bad_request(format!("container {problem}")));
    }
    let pods: Api<Pod> = Api::namespaced(kube.clone(), namespace);
    let found = match tokio::time::timeout(CALL_TIMEOUT, pods.get_opt(pod)).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            return Err(ApiError::bad_gateway(format!("cannot read pod {namespace}/{pod}: {e}")))
        }
        Err(_) => {
            return Err(ApiError::timeout(format!(
                "the apiserver did not answer for pod {namespace}/{pod} within {} s",
                CALL_TIMEOUT.as_secs()
            )))
        }
    };
    let ray_pod = found.filter(|p| {
        p.metadata.labels.as_ref().and_then(|l| l.get("ray.io/cluster")).is_some_and(|c| c == name)
    });
    let Some(found) = ray_pod else {
        return Err(ApiError::not_found(format!("RayCluster {namespace}/{name} has no pod {pod}")));
    };
    let names: Vec<&str> =
        found.spec.iter().flat_map(|s| s.containers.iter()).map(|c| c.name.as_str()).collect();
    let container = match container {
        Some(c) if names.contains(&c.as_str()) => c,
        Some(c) => {
            return Err(ApiError::not_found(format!(
                "pod {pod} has no container {c} (it has {})",
                names.join(", ")
            )))
        }
        None => match names.first() {
            Some(first) => (*first).to_owned(),
            None => return Err(ApiError::not_found(format!("pod {pod} has no containers"))),
        },
    };
    Ok((pods, container))
}

/// `GET /api/v1/clusters/{namespace}/{name}/pods/{pod}/logs/stream?container=`: a Ray pod's log
/// as server-sent events, live until the container stops.
#[utoipa::path(
    get,
    path = "/clusters/{namespace}/{name}/pods/{pod}/logs/stream",
    tag = "logs",
    params(super::doc::PodParams, ContainerQuery, ResumeQuery, ResumeHeader),
    responses(
        super::doc::LogStream,
        super::doc::ReadErrors,
        super::doc::UpstreamErrors,
        super::doc::PersonStreams
    )
)]
pub async fn pod_stream(
    _: MayReadPodLogs,
    State(logs): State<Logs>,
    Path((namespace, name, pod)): Path<(String, String, String)>,
    Query(query): Query<ContainerQuery>,
    Resume(after): Resume,
) -> ApiResult<Response> {
    // Checked for every viewer (one GET): the container may be left to default, and the label
    // check stays with each request.
    let (pods, container) = ray_pod(&logs.kube, (&namespace, &name, &pod), query.container).await?;
    let key = format!("pod/{namespace}/{name}/{pod}/{container}");
    let viewer =
        logs.streams.follow(&key, after, move |feed| follow_pod(feed, pods, pod, container))?;
    Ok(push::stream(events(viewer), &logs.shutdown))
}

/// A log to download.
fn attachment(file: &str, text: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}.log\"")),
        ],
        text,
    )
        .into_response()
}

/// `GET /api/v1/clusters/{namespace}/{name}/jobs/{job_id}/logs`: the job's log so far, as a
/// download.
#[utoipa::path(
    get,
    path = "/clusters/{namespace}/{name}/jobs/{job_id}/logs",
    tag = "logs",
    params(super::doc::JobParams),
    responses(super::doc::LogDownload, super::doc::ReadErrors, super::doc::UpstreamErrors)
)]
pub async fn job_log(
    _: MayReadCluster,
    State(logs): State<Logs>,
    Path((namespace, name, job)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    check_cluster(&namespace, &name)?;
    let read = Read::parse(&format!("api/jobs/{job}/logs"), None).map_err(ApiError::bad_request)?;
    let _reading = logs.downloads.start()?;
    let body = logs.dashboards.read(&namespace, &name, &read).await?;
    #[derive(Deserialize)]
    struct JobLogs {
        logs: String,
    }
    let answer = serde_json::from_str::<JobLogs>(&body)
        .map_err(|e| ApiError::bad_gateway(format!("Ray's answer is not a job log: {e}")))?;
    // Names and ids were checked: they cannot break out of the quoted file name.
    Ok(attachment(&format!("{name}-{job}"), answer.logs))
}

/// `GET /api/v1/clusters/{namespace}/{name}/pods/{pod}/logs?container=`: a Ray pod's log so far
/// (at most 64 MiB), as a download.
#[utoipa::path(
    get,
    path = "/clusters/{namespace}/{name}/pods/{pod}/logs",
    tag = "logs",
    params(super::doc::PodParams, ContainerQuery),
    responses(super::doc::LogDownload, super::doc::ReadErrors, super::doc::UpstreamErrors)
)]
pub async fn pod_log(
    _: MayReadPodLogs,
    State(logs): State<Logs>,
    Path((namespace, name, pod)): Path<(String, String, String)>,
    Query(query): Query<ContainerQuery>,
) -> ApiResult<Response> {
    let (pods, container) = ray_pod(&logs.kube, (&namespace, &name, &pod), query.container).await?;
    let _reading = logs.downloads.start()?;
    let params = LogParams {
        container: Some(container.clone()),
        limit_bytes: Some(DOWNLOAD_LIMIT),
        ..LogParams::default()
    };
    let read = async {
        let mut reader = Box::pin(pods.log_stream(&pod, &params).await?);
        let mut bytes = Vec::new();
        futures::AsyncReadExt::read_to_end(&mut reader, &mut bytes)
            .await
            .map_err(kube::Error::ReadEvents)?;
        Ok::<_, kube::Error>(bytes)
    };
    match tokio::time::timeout(DOWNLOAD_TIMEOUT, read).await {
        Ok(Ok(bytes)) => {
            // The bytes become the text without a copy unless they are not UTF-8.
            let text = String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            Ok(attachment(&format!("{pod}-{container}"), text))
        }
        Ok(Err(kube::Error::Api(status))) if status.code == 404 => {
            Err(ApiError::not_found(status.message))
        }
        Ok(Err(e)) => Err(ApiError::bad_gateway(format!("cannot read the log of pod {pod}: {e}"))),
        Err(_) => Err(ApiError::timeout(format!(
            "the log of pod {pod} did not arrive within {} s",
            DOWNLOAD_TIMEOUT.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    #[test]
    fn last_event_id_wins_over_after() {
        let mut headers = HeaderMap::new();
        assert_eq!(resume_after(&headers, Some(3)).unwrap(), 3);
        assert_eq!(resume_after(&headers, None).unwrap(), 0);
        headers.insert("last-event-id", "7".parse().unwrap());
        assert_eq!(resume_after(&headers, Some(3)).unwrap(), 7);
        headers.insert("last-event-id", "x".parse().unwrap());
        assert_eq!(resume_after(&headers, Some(3)).unwrap_err().status, StatusCode::BAD_REQUEST);
    }
}
