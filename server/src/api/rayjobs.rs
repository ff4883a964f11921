//! KubeRay RayJobs: the list (`GET /api/v1/rayjobs`), one (`GET /api/v1/rayjobs/{ns}/{name}`),
//! and a job submitted to a running cluster (`POST /api/v1/clusters/{ns}/{name}/jobs`).
//!
//! Submitting makes a RayJob as the requester (impersonated, so RBAC on `rayjobs` decides) that
//! names the cluster in `spec.clusterSelector` with `submissionMode: HTTPMode`: the KubeRay
//! operator posts the job to the cluster's dashboard, and raydar itself still sends nothing but
//! GETs to any Ray dashboard. raydar picks the Ray submission id (`spec.jobId`), so the answer
//! already says where the job's log is followed.

use std::collections::BTreeMap;
use std::time::Duration;

use app::api::push;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use kube::api::{Api, DynamicObject, PostParams};

use platform::rayjob::{
    ephemeral, name_problem, on_cluster, random_suffix, submission_names, JobRequest, RayJobList,
    RayJobSummary, MAX_ENTRYPOINT,
};
use platform::template::{FieldError, LaunchRequest, PipelineRun, Timestamp, FIELD_MANAGER};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio_stream::wrappers::WatchStream;
use tokio_util::sync::CancellationToken;
use utoipa::{IntoParams, ToSchema};

use super::actions::{Actions, LaunchPreview};
use super::clusters::{ContextQuery, ALL_CONTEXTS};
use crate::contexts::Fleet;
use crate::error::{ApiError, ApiResult};
use crate::extract::{body, check_cluster, ClusterPath, Path, Query};
use crate::push::{changes_only, json_event};
use crate::security::access::may_not_read;
use crate::security::{Access, Action, Ask, User};
use crate::sources::rayjobs::{self, RayJobs};
use crate::sources::Clusters;
use crate::unix_now;

/// Query of `GET /api/v1/rayjobs`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RayJobQuery {
    /// Only this namespace's RayJobs.
    #[param(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length = 63)]
    namespace: Option<String>,
}

/// `GET /api/v1/rayjobs[?namespace=][&context=]`: the RayJobs the requester may list, newest
/// first: of one Kubernetes cluster, or of every one (`context=*`), each row naming its own.
#[utoipa::path(get, path = "/rayjobs", tag = "rayjobs", params(RayJobQuery, ContextQuery),
    responses(
        (status = 200, description = "The RayJobs the requester may list, newest first", body = RayJobList),
        (status = 400, description = "The namespace cannot be one", body = ApiError),
        (status = 404, description = "No Kubernetes cluster is called `context` here", body = ApiError)))]
pub async fn list(
    State(jobs): State<RayJobs>,
    State(access): State<Access>,
    State(clusters): State<Clusters>,
    State(fleet): State<Fleet>,
    Extension(user): Extension<User>,
    Query(query): Query<RayJobQuery>,
    Query(of): Query<ContextQuery>,
) -> ApiResult<Json<RayJobList>> {
    if let Some(namespace) = &query.namespace {
        check_cluster(namespace, "x")?;
    }
    let reading = Reading::new(jobs, access, &clusters, fleet, &of);
    Ok(Json(reading.visible(&user, query.namespace.as_deref()).await))
}

/// `GET /api/v1/rayjobs/events[?namespace=][&context=]`: the RayJobs the requester may list (of
/// one Kubernetes cluster, or every one), then again whenever one of them changed (a burst of
/// changes is one event), as server-sent events.
#[utoipa::path(get, path = "/rayjobs/events", tag = "rayjobs", params(RayJobQuery, ContextQuery),
    responses(
        (status = 200, description = "Server-sent events: `rayjobs` (the list) first and \
            whenever it changed; `reconnect` when raydar shuts down",
            content_type = "text/event-stream", body = crate::push::ServerSentEvent),
        (status = 400, description = "The namespace cannot be one", body = ApiError),
        (status = 404, description = "No Kubernetes cluster is called `context` here", body = ApiError),
        super::doc::StreamErrors))]
#[allow(clippy::too_many_arguments)] // an axum handler: one extractor per thing it reads
pub async fn events(
    State(jobs): State<RayJobs>,
    State(access): State<Access>,
    State(clusters): State<Clusters>,
    State(fleet): State<Fleet>,
    State(shutdown): State<CancellationToken>,
    Extension(user): Extension<User>,
    Query(query): Query<RayJobQuery>,
    Query(of): Query<ContextQuery>,
) -> ApiResult<Response> {
    if let Some(namespace) = &query.namespace {
        check_cluster(namespace, "x")?;
    }
    let reading = Reading::new(jobs, access, &clusters, fleet, &of);
    // Watch channels: a burst of changes while one list is made is one more list, never a queue.
    let lists = reading.changes().then(move |()| {
        let (reading, user, only) = (reading.clone(), user.clone(), query.namespace.clone());
        async move {
            tokio::time::sleep(SETTLE).await;
            Some(reading.visible(&user, only.as_deref()).await)
        }
    });
    let events = changes_only(lists, |l| l.items.clone())
        .filter_map(|list| std::future::ready(list.map(|l| json_event(push::RAYJOBS, &l))));
    Ok(crate::push::stream(events, &shutdown))
}

/// How long a change waits for the rest of its burst before the list is sent again.
const SETTLE: Duration = Duration::from_millis(250);

/// Where a RayJob list is read from.
#[derive(Clone)]
enum Reading {
    /// One Kubernetes cluster's RayJobs, rows naming `context` (empty when raydar serves one).
    One { jobs: RayJobs, access: Access, context: String },
    /// Every Kubernetes cluster's, each by its own RBAC.
    Every(Fleet),
}

impl Reading {
    /// What `of` asks for, of the plane whose RayJobs, access and clusters these are.
    fn new(
        jobs: RayJobs,
        access: Access,
        clusters: &Clusters,
        fleet: Fleet,
        of: &ContextQuery,
    ) -> Self {
        match of.context.as_deref() {
            Some(ALL_CONTEXTS) => Reading::Every(fleet),
            _ => Reading::One { jobs, access, context: clusters.context().to_owned() },
        }
    }

    /// The RayJobs `user` may list, in namespace `only` if given, newest first.
    async fn visible(&self, user: &User, only: Option<&str>) -> RayJobList {
        let items = match self {
            Reading::One { jobs, access, context } => {
                visible(jobs, access, user, only, context).await
            }
            Reading::Every(fleet) => {
                let named = fleet.planes().len() > 1;
                // Each asked at once: the slowest to answer who may see what sets the time.
                let each = fleet.planes().iter().map(|p| {
                    let context = if named { p.name.as_str() } else { "" };
                    let access = p.access_now();
                    async move { visible(&p.rayjobs, &access, user, only, context).await }
                });
                let mut items: Vec<RayJobSummary> =
                    futures::future::join_all(each).await.into_iter().flatten().collect();
                items.sort_by(|a, b| {
                    (b.created, &a.context, &a.namespace, &a.name).cmp(&(
                        a.created,
                        &b.context,
                        &b.namespace,
                        &b.name,
                    ))
                });
                items
            }
        };
        RayJobList { items, now: unix_now() }
    }

    /// A tick whenever RayJobs read here may have changed (the current state first).
    fn changes(&self) -> futures::stream::BoxStream<'static, ()> {
        let of = |jobs: &RayJobs| WatchStream::new(jobs.changes()).map(|_| ()).boxed();
        match self {
            Reading::One { jobs, .. } => of(jobs),
            Reading::Every(fleet) => {
                futures::stream::select_all(fleet.planes().iter().map(|p| of(&p.rayjobs))).boxed()
            }
        }
    }
}

/// The RayJobs of one Kubernetes cluster (`jobs`, rows naming `context`) `user` may list there
/// (`access`), in namespace `only` if given, newest first.
async fn visible(
    jobs: &RayJobs,
    access: &Access,
    user: &User,
    only: Option<&str>,
    context: &str,
) -> Vec<RayJobSummary> {
    let namespaces = jobs.namespaces().into_iter().filter(|ns| only.is_none_or(|only| only == ns));
    let readable = access.listable(user, namespaces, Ask::rayjobs).await;
    let mut items = jobs.list(|ns| readable.contains(ns));
    for item in &mut items {
        item.context = context.to_owned();
    }
    items
}

/// `GET /api/v1/rayjobs/{namespace}/{name}`: one RayJob.
#[utoipa::path(get, path = "/rayjobs/{namespace}/{name}", tag = "rayjobs",
    params(RayJobParams),
    responses(
        (status = 200, description = "The RayJob", body = RayJobSummary),
        super::doc::ReadErrors))]
pub async fn get(
    State(jobs): State<RayJobs>,
    State(access): State<Access>,
    Extension(user): Extension<User>,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<RayJobSummary>> {
    check_job(&namespace, &name)?;
    if !access.may(&user, &Ask::rayjobs("get", &namespace)).await {
        return Err(may_not_read(&user, "RayJobs", &namespace));
    }
    jobs.get(&namespace, &name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("RayJob {namespace}/{name} not found")))
}

/// A RayJob's namespace and name.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the derive only
pub struct RayJobParams {
    /// The RayJob's namespace (a DNS-1123 label).
    #[param(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length = 63)]
    namespace: String,
    /// The RayJob's name.
    #[param(pattern = "^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length = 47)]
    name: String,
}

/// 400 unless `namespace` and `name` can be a RayJob's.
fn check_job(namespace: &str, name: &str) -> ApiResult<()> {
    check_cluster(namespace, "x")?;
    name_problem(name).map_or(Ok(()), |problem| Err(ApiError::bad_request(problem)))
}

/// The body of `POST /api/v1/clusters/{namespace}/{name}/jobs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubmitBody {
    /// The command the Ray job runs on the cluster, e.g. `python train.py --epochs 3`.
    #[serde(default)]
    #[schema(required = true, min_length = 1, max_length = 10240, pattern = "\\S")]
    entrypoint: String,
    /// Ray's runtime environment for it (`working_dir`, `pip`, `env_vars`, …), as Ray takes it.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    runtime_env: Option<Value>,
    /// The RayJob's name; by default the cluster's name and a random suffix.
    #[serde(default)]
    #[schema(pattern = "^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length = 47)]
    name: Option<String>,
}

/// `POST /api/v1/clusters/{namespace}/{name}/jobs`: submits a Ray job to the running cluster as
/// a KubeRay RayJob made as the requester.
#[utoipa::path(post, path = "/clusters/{namespace}/{name}/jobs", tag = "rayjobs",
    params(super::doc::ClusterParams),
    request_body(content = SubmitBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The RayJob made; KubeRay submits it", body = RayJobSummary,
            headers(("Location" = String, description = "The RayJob's API path"))),
        (status = 404, description = "raydar knows no such RayCluster", body = ApiError),
        (status = 409, description = "A RayJob of that name exists", body = ApiError),
        (status = 422, description = "A field is invalid: one message per field", body = ApiError),
        super::doc::ActionErrors))]
pub async fn submit(
    State(actions): State<Actions>,
    Extension(user): Extension<User>,
    path: ClusterPath,
    bytes: Bytes,
) -> ApiResult<Response> {
    let request: SubmitBody = body(&bytes, "a job submission")?;
    let mut errors = Vec::new();
    let (entrypoint, runtime_env) =
        job_fields(&request.entrypoint, request.runtime_env, &mut errors);
    let (name, job_id) = submission_names(request.name.as_deref(), &path.name);
    if let Some(problem) = name_problem(&name) {
        errors.push(FieldError { field: "name".into(), message: problem });
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let Some(uid) = actions.clusters.uid(&path.namespace, &path.name) else {
        return Err(ApiError::no_cluster(&path.namespace, &path.name));
    };
    actions.limit.allow(&user)?;
    let namespace = path.namespace.clone();
    let job = JobRequest { entrypoint: entrypoint.clone(), runtime_env, job_id: job_id.clone() };
    let manifest = on_cluster(&namespace, &name, &path.name, &job, &user.identity());
    let action = Action {
        reason: "JobSubmitted",
        what: format!("submitted Ray job {job_id} (RayJob {name}): {}", shorten(&entrypoint)),
        namespace: namespace.clone(),
        name: path.name.clone(),
    };
    let created = create(&actions, &user, manifest, false)
        .await
        .map_err(|error| actions.refused(&user, &action, error))?;
    actions.audit.done(&user, &action, Some(uid));
    Ok(made(created))
}

/// Creates the RayJob `manifest` as `user` (only checks it, with `dry_run`); what Kubernetes
/// stored.
async fn create(
    actions: &Actions,
    user: &User,
    manifest: Value,
    dry_run: bool,
) -> ApiResult<DynamicObject> {
    let client = actions.access.client_for(user).map_err(ApiError::bad_request)?;
    let object: DynamicObject = serde_json::from_value(manifest)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let namespace = object.metadata.namespace.clone().unwrap_or_default();
    let name = object.metadata.name.clone().unwrap_or_default();
    let api = Api::<DynamicObject>::namespaced_with(client, &namespace, &rayjobs::resource());
    let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), dry_run };
    let creating = format!("creating RayJob {namespace}/{name}");
    super::actions::call(&creating, api.create(&params, &object)).await
}

/// The answer to a RayJob made: 201, its row, and where it is.
fn made(created: DynamicObject) -> Response {
    let summary = RayJobSummary::of(&serde_json::to_value(&created).unwrap_or_default());
    let location = format!("/api/v1/rayjobs/{}/{}", summary.namespace, summary.name);
    (StatusCode::CREATED, [(header::LOCATION, location)], Json(summary)).into_response()
}

/// How long an ephemeral RayJob's cluster is kept after its job ends, by default: long enough to
/// read the end of its log again, short enough that its resources are soon free.
const DEFAULT_TTL_AFTER_FINISHED: u32 = 60;
/// The longest an ephemeral RayJob's cluster may be kept after its job ends.
const MAX_TTL_AFTER_FINISHED: u32 = 24 * 3600;

/// The body of `POST /api/v1/rayjobs`: a job on a cluster of its own, from a template. The
/// owner is never part of it: raydar takes it from the requester's identity.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RunBody {
    /// The RayClusterTemplate the job's cluster is made from (`GET /api/v1/templates`).
    #[schema(value_type = String, required = true, min_length = 1)]
    template: Option<String>,
    /// Where the RayJob (and its cluster) goes.
    #[serde(default)]
    #[schema(required = true, pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length = 63)]
    namespace: String,
    /// The RayJob's name (its cluster's is made from it).
    #[serde(default)]
    #[schema(required = true, pattern = "^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length = 47)]
    name: String,
    /// The template's parameters, as for a launch.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, platform::template::Scalar>)]
    parameters: BTreeMap<String, Value>,
    /// The pipeline run asking, as for a launch: labels of the RayJob and its cluster.
    #[serde(default)]
    pipeline: Option<PipelineRun>,
    /// The command the Ray job runs.
    #[serde(default)]
    #[schema(required = true, min_length = 1, max_length = 10240, pattern = "\\S")]
    entrypoint: String,
    /// Ray's runtime environment for it.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    runtime_env: Option<Value>,
    /// Seconds the job's cluster is kept after the job ends (its log can still be read), then
    /// deleted; default 60. The RayJob itself stays, with the job's status.
    #[serde(default, deserialize_with = "super::actions::maybe_integer")]
    #[schema(minimum = 0, maximum = 86400)]
    ttl_seconds_after_finished: Option<i64>,
}

/// `POST /api/v1/rayjobs[?dryRun=true]`: runs a job on a cluster made for it from a template,
/// shut down when the job ends (an ephemeral RayJob), as the requester. Every policy of the
/// template holds for the cluster, and its lifetime is the job's deadline.
#[utoipa::path(post, path = "/rayjobs", tag = "rayjobs",
    params(super::actions::LaunchQuery),
    request_body(content = RunBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The RayJob a run would make (dryRun), checked by Kubernetes", body = LaunchPreview),
        (status = 201, description = "The RayJob made; KubeRay makes its cluster and submits it", body = RayJobSummary,
            headers(("Location" = String, description = "The RayJob's API path"))),
        (status = 409, description = "A RayJob of that name exists", body = ApiError),
        (status = 422, description = "A field is invalid: one message per field", body = ApiError),
        (status = 503, description = "The template watch has not listed the templates yet", body = ApiError),
        super::doc::ActionErrors))]
pub async fn run(
    State(actions): State<Actions>,
    Extension(user): Extension<User>,
    Query(query): Query<super::actions::LaunchQuery>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let request: RunBody = body(&bytes, "a job run")?;
    let mut errors = Vec::new();
    let (entrypoint, runtime_env) =
        job_fields(&request.entrypoint, request.runtime_env, &mut errors);
    if let Some(problem) = name_problem(&request.name) {
        errors.push(FieldError { field: "name".into(), message: problem });
    }
    let ttl = match request.ttl_seconds_after_finished {
        None => DEFAULT_TTL_AFTER_FINISHED,
        Some(ttl) => {
            u32::try_from(ttl).ok().filter(|t| *t <= MAX_TTL_AFTER_FINISHED).unwrap_or_else(|| {
                errors.push(FieldError {
                    field: "ttlSecondsAfterFinished".into(),
                    message: format!(
                        "must be from 0 to {MAX_TTL_AFTER_FINISHED} seconds, got {ttl}"
                    ),
                });
                0
            })
        }
    };
    let template_name = request.template.clone().unwrap_or_default();
    let launch = LaunchRequest {
        name: request.name,
        namespace: request.namespace,
        parameters: request.parameters,
        pipeline: request.pipeline,
        // KubeRay ends the cluster with its job.
        lease: false,
    };
    let now = Timestamp::now();
    let cluster =
        match super::actions::rendered(&actions.templates, request.template, &launch, &user, now)
            .await
        {
            Ok(cluster) if errors.is_empty() => cluster,
            Ok(_) => return Err(ApiError::invalid(errors)),
            // Every field at once: the template's and the job's.
            Err(refusal) if refusal.status == StatusCode::UNPROCESSABLE_ENTITY => {
                return Err(ApiError::invalid(refusal.errors.into_iter().chain(errors).collect()))
            }
            Err(refusal) => return Err(refusal),
        };
    super::actions::watched(&actions.clusters, &launch.namespace)?;
    let job_id = format!("{}-{}", launch.name, random_suffix());
    let job = JobRequest { entrypoint: entrypoint.clone(), runtime_env, job_id: job_id.clone() };
    let manifest = ephemeral(&cluster, &job, ttl, now);
    if query.dry_run {
        create(&actions, &user, manifest.clone(), true).await?;
        // What the launch form previews, as for a cluster: the manifest, and as YAML.
        let yaml = platform::template::manifest_yaml(&manifest);
        let (namespace, name) = (launch.namespace, launch.name);
        let capacity = actions.capacity.judge(&namespace, &manifest["spec"]["rayClusterSpec"]);
        return Ok(
            Json(LaunchPreview { namespace, name, manifest, yaml, capacity }).into_response()
        );
    }
    actions.limit.allow(&user)?;
    let action = Action {
        reason: "JobRun",
        what: format!(
            "ran Ray job {job_id} on a cluster of its own from template {template_name}: {}",
            shorten(&entrypoint)
        ),
        namespace: launch.namespace.clone(),
        name: launch.name.clone(),
    };
    let created = create(&actions, &user, manifest, false)
        .await
        .map_err(|error| actions.refused(&user, &action, error))?;
    // The Event is recorded on the RayJob: its cluster does not exist yet.
    actions.audit.done(&user, &action, None);
    Ok(made(created))
}

/// The entrypoint and runtime env of a request, checked: problems go to `errors` by field.
fn job_fields(
    entrypoint: &str,
    runtime_env: Option<Value>,
    errors: &mut Vec<FieldError>,
) -> (String, Option<Map<String, Value>>) {
    let entrypoint = entrypoint.trim().to_owned();
    if entrypoint.is_empty() || entrypoint.len() > MAX_ENTRYPOINT {
        errors.push(FieldError {
            field: "entrypoint".into(),
            message: format!("required: the command to run, at most {MAX_ENTRYPOINT} bytes"),
        });
    }
    let runtime_env = match runtime_env {
        None | Some(Value::Null) => None,
        Some(Value::Object(env)) => Some(env),
        Some(_) => {
            errors.push(FieldError {
                field: "runtimeEnv".into(),
                message: "must be an object, as Ray's runtime_env (working_dir, pip, env_vars…)"
                    .into(),
            });
            None
        }
    };
    (entrypoint, runtime_env)
}

/// An entrypoint as an audit line shows it: its first 80 characters.
fn shorten(entrypoint: &str) -> String {
    match entrypoint.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &entrypoint[..at]),
        None => entrypoint.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_number_written_with_a_fraction_is_a_ttl() {
        let body = |ttl: &str| {
            let text = format!(
                r#"{{"template": "t", "namespace": "n", "name": "x", "entrypoint": "e", "ttlSecondsAfterFinished": {ttl}}}"#
            );
            serde_json::from_str::<RunBody>(&text).map(|b| b.ttl_seconds_after_finished)
        };
        assert_eq!(body("4305.0").unwrap(), Some(4305));
        assert_eq!(body("null").unwrap(), None);
        assert!(body("1.5").unwrap_err().to_string().contains("not a whole number"));
    }

    #[test]
    fn an_audit_line_shows_an_entrypoint_shortened() {
        assert_eq!(shorten(&"é".repeat(100)).chars().count(), 81);
    }
}
