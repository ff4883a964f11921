//! KubeRay RayJobs: the list (`GET /api/v1/rayjobs`), one (`GET /api/v1/rayjobs/{ns}/{name}`),
//! and a job submitted to a running cluster (`POST /api/v1/clusters/{ns}/{name}/jobs`).
//!
//! Submitting makes a RayJob as the requester (impersonated, so RBAC on `rayjobs` decides) that
//! names the cluster in `spec.clusterSelector` with `submissionMode: HTTPMode`: the KubeRay
//! operator posts the job to the cluster's dashboard, and raydar itself still sends nothing but
//! GETs to any Ray dashboard. raydar picks the Ray submission id (`spec.jobId`), so the answer
//! already says where the job's log is followed.

use std::time::Duration;

use app::api::push;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use kube::api::{Api, DynamicObject, PostParams};
use platform::rayjob::{RayJobList, RayJobSummary};
use platform::template::{label_value, FieldError, FIELD_MANAGER, LABEL_OWNER, LABEL_TEAM};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio_stream::wrappers::WatchStream;
use tokio_util::sync::CancellationToken;
use utoipa::{IntoParams, ToSchema};

use super::actions::Actions;
use crate::error::{ApiError, ApiResult};
use crate::extract::{body, check_cluster, ClusterPath, Path, Query};
use crate::push::{changes_only, json_event};
use crate::security::access::may_not_read;
use crate::security::{Access, Action, Ask, User};
use crate::sources::rayjobs::{self, RayJobs};
use crate::unix_now;

/// Longest entrypoint taken: a command line, not a script (a script goes in the runtime env's
/// working dir).
const MAX_ENTRYPOINT: usize = 10 * 1024;

/// Query of `GET /api/v1/rayjobs`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RayJobQuery {
    /// Only this namespace's RayJobs.
    #[param(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length = 63)]
    namespace: Option<String>,
}

/// `GET /api/v1/rayjobs[?namespace=]`: the RayJobs the requester may list, newest first.
#[utoipa::path(get, path = "/rayjobs", tag = "rayjobs", params(RayJobQuery),
    responses(
        (status = 200, description = "The RayJobs the requester may list, newest first", body = RayJobList),
        (status = 400, description = "The namespace cannot be one", body = ApiError)))]
pub async fn list(
    State(jobs): State<RayJobs>,
    State(access): State<Access>,
    Extension(user): Extension<User>,
    Query(query): Query<RayJobQuery>,
) -> ApiResult<Json<RayJobList>> {
    if let Some(namespace) = &query.namespace {
        check_cluster(namespace, "x")?;
    }
    Ok(Json(visible(&jobs, &access, &user, query.namespace.as_deref()).await))
}

/// `GET /api/v1/rayjobs/events[?namespace=]`: the RayJobs the requester may list, then again
/// whenever one of them changed (a burst of changes is one event), as server-sent events.
#[utoipa::path(get, path = "/rayjobs/events", tag = "rayjobs", params(RayJobQuery),
    responses(
        (status = 200, description = "Server-sent events: `rayjobs` (the list) first and \
            whenever it changed; `reconnect` when raydar shuts down",
            content_type = "text/event-stream", body = crate::push::ServerSentEvent),
        (status = 400, description = "The namespace cannot be one", body = ApiError),
        super::doc::StreamErrors))]
pub async fn events(
    State(jobs): State<RayJobs>,
    State(access): State<Access>,
    State(shutdown): State<CancellationToken>,
    Extension(user): Extension<User>,
    Query(query): Query<RayJobQuery>,
) -> ApiResult<Response> {
    if let Some(namespace) = &query.namespace {
        check_cluster(namespace, "x")?;
    }
    // A watch channel: a burst of changes while one list is made is one more list, never a queue.
    let lists = WatchStream::new(jobs.changes()).then(move |_| {
        let (jobs, access, user, only) =
            (jobs.clone(), access.clone(), user.clone(), query.namespace.clone());
        async move {
            tokio::time::sleep(SETTLE).await;
            Some(visible(&jobs, &access, &user, only.as_deref()).await)
        }
    });
    let events = changes_only(lists, |l| l.items.clone())
        .filter_map(|list| std::future::ready(list.map(|l| json_event(push::RAYJOBS, &l))));
    Ok(crate::push::stream(events, &shutdown))
}

/// How long a change waits for the rest of its burst before the list is sent again.
const SETTLE: Duration = Duration::from_millis(250);

/// The RayJobs `user` may list, in namespace `only` if given.
async fn visible(jobs: &RayJobs, access: &Access, user: &User, only: Option<&str>) -> RayJobList {
    let namespaces = jobs.namespaces().into_iter().filter(|ns| only.is_none_or(|only| only == ns));
    let readable = access.listable(user, namespaces, Ask::rayjobs).await;
    RayJobList { items: jobs.list(|ns| readable.contains(ns)), now: unix_now() }
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
    job_name_problem(name).map_or(Ok(()), |problem| Err(ApiError::bad_request(problem)))
}

/// What is wrong with `name` as a RayJob's name (KubeRay names the submitter Job and the
/// cluster of an ephemeral RayJob after it, so it is kept short), if anything.
fn job_name_problem(name: &str) -> Option<String> {
    let ok = (1..=47).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    (!ok).then(|| {
        format!(
            "name {name:?} is not a RayJob name: 1 to 47 lowercase letters, digits and '-', \
             starting with a letter and not ending with '-'"
        )
    })
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
    let entrypoint = request.entrypoint.trim().to_owned();
    if entrypoint.is_empty() || entrypoint.len() > MAX_ENTRYPOINT {
        errors.push(FieldError {
            field: "entrypoint".into(),
            message: format!("required: the command to run, at most {MAX_ENTRYPOINT} bytes"),
        });
    }
    let runtime_env = match request.runtime_env {
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
    let suffix = random_suffix();
    let name = request.name.unwrap_or_else(|| {
        let stem: String = path.name.chars().take(41).collect();
        format!("{}-{suffix}", stem.trim_end_matches('-'))
    });
    if let Some(problem) = job_name_problem(&name) {
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
    // The Ray submission id: unique on the cluster, also for a RayJob of the same name made again.
    let job_id = format!("{name}-{suffix}");
    let manifest = rayjob(&user, &namespace, &name, &path.name, &entrypoint, runtime_env, &job_id);
    let action = Action {
        reason: "JobSubmitted",
        what: format!("submitted Ray job {job_id} (RayJob {name}): {}", shorten(&entrypoint)),
        namespace: namespace.clone(),
        name: path.name.clone(),
    };
    let client = actions.access.client_for(&user).map_err(ApiError::bad_request)?;
    let api = Api::<DynamicObject>::namespaced_with(client, &namespace, &rayjobs::resource());
    let object: DynamicObject = serde_json::from_value(manifest)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    let creating = format!("creating RayJob {namespace}/{name}");
    let created = super::actions::call(&creating, api.create(&params, &object))
        .await
        .map_err(|error| actions.refused(&user, &action, error))?;
    actions.audit.done(&user, &action, Some(uid));
    let summary = RayJobSummary::of(&serde_json::to_value(&created).unwrap_or_default());
    let location = format!("/api/v1/rayjobs/{namespace}/{name}");
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(summary)).into_response())
}

/// The RayJob that runs `entrypoint` on RayCluster `cluster`, submitted over HTTP by KubeRay,
/// labelled with its owner and team as launches are.
fn rayjob(
    user: &User,
    namespace: &str,
    name: &str,
    cluster: &str,
    entrypoint: &str,
    runtime_env: Option<Map<String, Value>>,
    job_id: &str,
) -> Value {
    let mut labels = Map::new();
    labels.insert(LABEL_OWNER.into(), label_value(&user.name).into());
    if !user.team().is_empty() {
        labels.insert(LABEL_TEAM.into(), label_value(&user.team()).into());
    }
    let mut spec = json!({
        "entrypoint": entrypoint,
        "submissionMode": "HTTPMode",
        "clusterSelector": {"ray.io/cluster": cluster},
        "jobId": job_id,
    });
    if let Some(env) = runtime_env {
        // JSON is YAML: Ray reads it as the runtime env it is.
        spec["runtimeEnvYAML"] = Value::String(Value::Object(env).to_string());
    }
    let mut annotations = Map::new();
    annotations.insert(platform::template::ANNOTATION_OWNER.into(), user.name.clone().into());
    json!({
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    })
}

/// Five random lowercase letters and digits, from the OS's generator.
fn random_suffix() -> String {
    let mut bytes = [0u8; 5];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .unwrap_or_default();
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect()
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
    fn a_submitted_job_is_a_rayjob_on_the_cluster_over_http() {
        let user = User::new("alice".into(), None, vec!["vision".into()], "");
        let env = json!({"env_vars": {"EPOCHS": "3"}}).as_object().cloned();
        let job = rayjob(&user, "ml", "train-x1", "gpu-a", "python t.py", env, "train-x1-q2");
        assert_eq!(job["spec"]["clusterSelector"]["ray.io/cluster"], "gpu-a");
        assert_eq!(job["spec"]["submissionMode"], "HTTPMode");
        assert_eq!(job["spec"]["jobId"], "train-x1-q2");
        let env: Value = serde_json::from_str(job["spec"]["runtimeEnvYAML"].as_str().unwrap())
            .expect("JSON, which YAML reads too");
        assert_eq!(env["env_vars"]["EPOCHS"], "3");
        assert_eq!(job["metadata"]["labels"]["raydar.dev/owner"], "alice");
        assert_eq!(job["metadata"]["labels"]["raydar.dev/team"], "vision");
        assert!(job["spec"].get("rayClusterSpec").is_none(), "runs on the cluster named");
    }

    #[test]
    fn rayjob_names_are_short_dns_labels() {
        assert_eq!(job_name_problem("nightly-2"), None);
        for bad in ["", "Nightly", "9lives", "ends-", &"x".repeat(48), "a_b"] {
            assert!(job_name_problem(bad).unwrap().contains("1 to 47"), "{bad:?}");
        }
        let suffix = random_suffix();
        assert_eq!(suffix.len(), 5);
        assert!(suffix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_eq!(shorten(&"é".repeat(100)).chars().count(), 81);
    }
}
