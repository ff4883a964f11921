//! Launch and teardown through the API: `POST /api/v1/clusters` renders a template with the
//! platform's engine, has Kubernetes dry-run it, then applies it server-side (field manager
//! `raydar`); `DELETE /api/v1/clusters/{ns}/{name}` deletes a cluster; `PATCH` of the same path
//! suspends, resumes or scales a worker group within its bounds. Kubernetes refusals reach the
//! caller with their status and message.
//!
//! Every request to Kubernetes here is made as the signed-in user (impersonation): raydar's own
//! identity cannot change a RayCluster, so what a user may do is exactly what RBAC lets them do.
//! Actions are rate-limited per user and recorded ([`crate::audit`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::Client;
use platform::kuberay::RayCluster;
use platform::template::{render, FieldError, LaunchRequest, Timestamp};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::audit::Action;
use crate::auth::User;
use crate::guard;
use crate::web::AppState;

pub use platform::template::FIELD_MANAGER;

/// How raydar reaches Kubernetes: cheap to clone.
#[derive(Clone)]
pub struct Launcher {
    /// raydar's own client: reads, and the base of each user's impersonating client.
    pub client: Client,
    /// Longest a single Kubernetes call may take.
    pub timeout: Duration,
}

impl Launcher {
    /// A launcher over `client`, each Kubernetes call ending within 30 s.
    pub fn new(client: Client) -> Self {
        Launcher { client, timeout: Duration::from_secs(30) }
    }

    fn api(client: &Client, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(client.clone(), namespace, &ApiResource::erase::<RayCluster>(&()))
    }

    /// Runs one Kubernetes call within the timeout; failures become the API's answer.
    async fn call<T>(
        &self,
        action: &str,
        request: impl Future<Output = kube::Result<T>>,
    ) -> Result<T, Response> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(refusal(action, error)),
            Err(_) => Err(error_response(
                StatusCode::GATEWAY_TIMEOUT,
                &format!("{action}: Kubernetes did not answer within {} s", self.timeout.as_secs()),
                "Timeout",
            )),
        }
    }
}

/// The body of `POST /api/v1/clusters`. The owner is never part of it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LaunchBody {
    template: Option<String>,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    parameters: BTreeMap<String, Value>,
}

/// Query of `POST /api/v1/clusters`.
#[derive(Debug, Default, Deserialize)]
pub struct LaunchQuery {
    /// Render and dry-run only: answer with the manifest, create nothing.
    #[serde(rename = "dryRun", default)]
    dry_run: bool,
}

/// `POST /api/v1/clusters[?dryRun=true]`: launch a RayCluster from a template.
pub async fn create_cluster(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Query(query): Query<LaunchQuery>,
    body: Bytes,
) -> Response {
    let body: LaunchBody = match parse_body(&body, "a launch request") {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Some(template_name) = body.template.filter(|t| !t.is_empty()) else {
        return invalid(vec![FieldError::new(
            "template",
            "required: the name of a RayClusterTemplate",
        )]);
    };
    if let Err(why) = state.templates.ready(Duration::from_secs(10)).await {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, &why, "ServiceUnavailable");
    }
    let Some(template) = state.templates.get(&template_name) else {
        return invalid(vec![FieldError::new(
            "template",
            format!(
                "no RayClusterTemplate named {template_name:?}; GET /api/v1/templates lists them"
            ),
        )]);
    };
    let launcher = &state.launcher;
    let request =
        LaunchRequest { name: body.name, namespace: body.namespace, parameters: body.parameters };
    let manifest = match render(&template, &request, &user.identity(), Timestamp::now()) {
        Ok(manifest) => manifest,
        Err(platform::template::Error::InvalidRequest(errors)) => return invalid(errors),
        Err(e) => {
            return invalid(vec![FieldError::new(
                "template",
                format!("{e}; it cannot be launched until a platform admin fixes it"),
            )])
        }
    };
    let (namespace, name) = (request.namespace, request.name);
    let id = format!("{namespace}/{name}");
    // A preview asks Kubernetes too (a dry-run), but changes nothing: only launches count.
    if !query.dry_run {
        if let Err(wait) = state.actions.take(&user) {
            return guard::too_many(wait);
        }
    }
    let client = match state.access.client_for(&user) {
        Ok(client) => client,
        Err(why) => return error_response(StatusCode::BAD_REQUEST, &why, "BadRequest"),
    };
    let api = Launcher::api(&client, &namespace);
    let action = Action {
        reason: "Launched",
        what: format!("launched it from template {template_name}"),
        namespace: namespace.clone(),
        name: name.clone(),
    };

    // Without force, server-side apply would quietly update a cluster that already has this name;
    // a launch creates, so an existing one is a conflict. (Between this read and the apply another
    // launcher could create the name; the window is one round trip.)
    match launcher.call(&format!("reading RayCluster {id}"), api.get_opt(&name)).await {
        Ok(None) => {}
        Ok(Some(_)) => {
            return error_response(
                StatusCode::CONFLICT,
                &format!("RayCluster {id} already exists; choose another name"),
                "AlreadyExists",
            )
        }
        Err(response) if query.dry_run => return response,
        Err(response) => return refused(&state, &user, &action, response).await,
    }
    let params = PatchParams::apply(FIELD_MANAGER);
    let patch = Patch::Apply(&manifest);
    let checking = format!("checking RayCluster {id} (server-side dry-run)");
    if let Err(response) = launcher
        .call(&checking, api.patch(&name, &PatchParams { dry_run: true, ..params.clone() }, &patch))
        .await
    {
        return if query.dry_run {
            response
        } else {
            refused(&state, &user, &action, response).await
        };
    }
    if query.dry_run {
        // The YAML is what the launch form previews: the exact manifest, as kubectl users read it.
        let yaml = platform::template::manifest_yaml(&manifest);
        return Json(
            json!({ "namespace": namespace, "name": name, "manifest": manifest, "yaml": yaml }),
        )
        .into_response();
    }
    let applied = match launcher
        .call(&format!("applying RayCluster {id}"), api.patch(&name, &params, &patch))
        .await
    {
        Ok(applied) => applied,
        Err(response) => return refused(&state, &user, &action, response).await,
    };
    state.audit.done(&user, &action, applied.metadata.uid.clone());
    let cluster = serde_json::to_value(&applied)
        .ok()
        .and_then(|v| serde_json::from_value::<RayCluster>(v).ok())
        .map(|c| c.summary());
    let location = format!("/api/v1/clusters/{namespace}/{name}");
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(json!({ "namespace": namespace, "name": name, "cluster": cluster, "manifest": manifest })),
    )
        .into_response()
}

/// `DELETE /api/v1/clusters/{namespace}/{name}`: deletes a RayCluster and, first, its pods
/// (foreground propagation). One that is already gone is a success.
pub async fn delete_cluster(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    if let Err(wait) = state.actions.take(&user) {
        return guard::too_many(wait);
    }
    let launcher = &state.launcher;
    let id = format!("{namespace}/{name}");
    let client = match state.access.client_for(&user) {
        Ok(client) => client,
        Err(why) => return error_response(StatusCode::BAD_REQUEST, &why, "BadRequest"),
    };
    let api = Launcher::api(&client, &namespace);
    let action = Action {
        reason: "TornDown",
        what: "tore it down".into(),
        namespace: namespace.clone(),
        name: name.clone(),
    };
    // The uid the Event is about, before the cluster goes.
    let uid = state.clusters.uid(&namespace, &name);
    let deleting = format!("deleting RayCluster {id}");
    let deleted = launcher.call(&deleting, api.delete(&name, &DeleteParams::foreground())).await;
    // The apiserver answers with the object while its pods go, or a Status once it is gone.
    let (result, deleted, already_gone) = match deleted {
        Ok(answer) if answer.is_left() => ("deleting", true, false),
        Ok(_) => ("deleted", true, false),
        Err(response) if response.status() == StatusCode::NOT_FOUND => {
            ("already-gone", false, true)
        }
        Err(response) => return refused(&state, &user, &action, response).await,
    };
    if deleted {
        state.audit.done(&user, &action, uid);
    }
    Json(json!({
        "namespace": namespace, "name": name, "result": result, "deleted": deleted, "alreadyGone": already_gone,
    }))
    .into_response()
}

/// A day-2 change to a running cluster: `PATCH /api/v1/clusters/{ns}/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterChange {
    /// Suspend (`true`: KubeRay deletes the pods, keeping the cluster) or resume (`false`).
    #[serde(default)]
    pub suspend: Option<bool>,
    /// Scale one worker group within its `minReplicas`..`maxReplicas`.
    #[serde(default)]
    pub scale: Option<ScaleChange>,
}

/// The wanted replicas of one worker group.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleChange {
    /// `groupName` of the worker group.
    pub group: String,
    /// Wanted replicas.
    pub replicas: i64,
}

/// `PATCH /api/v1/clusters/{ns}/{name}`: suspend, resume or scale. Reads the cluster, changes
/// the spec and replaces it with the resourceVersion it read, so a concurrent change is a 409
/// rather than lost; bounds are checked against the cluster as it is now.
pub async fn change_cluster(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path((namespace, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let what = r#"a cluster change ({"suspend": bool} or {"scale": {"group", "replicas"}})"#;
    let change: ClusterChange = match parse_body(&body, what) {
        Ok(change) => change,
        Err(response) => return response,
    };
    if change.suspend.is_none() && change.scale.is_none() {
        return invalid(vec![FieldError {
            field: "body".into(),
            message: "say `suspend` or `scale`".into(),
        }]);
    }
    if let Err(wait) = state.actions.take(&user) {
        return guard::too_many(wait);
    }
    let launcher = &state.launcher;
    let id = format!("{namespace}/{name}");
    let client = match state.access.client_for(&user) {
        Ok(client) => client,
        Err(why) => return error_response(StatusCode::BAD_REQUEST, &why, "BadRequest"),
    };
    let api = Launcher::api(&client, &namespace);
    let action = Action {
        reason: change.reason(),
        what: change.describe(),
        namespace: namespace.clone(),
        name: name.clone(),
    };
    let mut cluster = match launcher.call(&format!("reading RayCluster {id}"), api.get(&name)).await
    {
        Ok(cluster) => cluster,
        Err(response) => return refused(&state, &user, &action, response).await,
    };
    let spec = &mut cluster.data["spec"];
    if let Some(suspend) = change.suspend {
        spec["suspend"] = json!(suspend);
    }
    if let Some(scale) = &change.scale {
        if let Err(error) = scale_group(spec, scale) {
            return invalid(vec![error]);
        }
    }
    let changing = format!("changing RayCluster {id}");
    if let Err(response) =
        launcher.call(&changing, api.replace(&name, &PostParams::default(), &cluster)).await
    {
        return refused(&state, &user, &action, response).await;
    }
    state.audit.done(&user, &action, cluster.metadata.uid.clone());
    Json(json!({ "namespace": namespace, "name": name, "changed": true })).into_response()
}

impl ClusterChange {
    /// The audit Event's reason.
    fn reason(&self) -> &'static str {
        match (self.suspend, &self.scale) {
            (Some(true), _) => "Suspended",
            (Some(false), _) => "Resumed",
            (None, _) => "Scaled",
        }
    }

    /// What the change does, after the person's name.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        match self.suspend {
            Some(true) => parts.push("suspended it".to_owned()),
            Some(false) => parts.push("resumed it".to_owned()),
            None => {}
        }
        if let Some(scale) = &self.scale {
            parts.push(format!("scaled worker group {} to {}", scale.group, scale.replicas));
        }
        parts.join(" and ")
    }
}

/// Logs a refused action and hands back Kubernetes' answer, whose message the user sees.
async fn refused(state: &AppState, user: &User, action: &Action, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let why = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| parts.status.to_string());
    state.audit.refused(user, action, &why);
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Sets one worker group's replicas, within the bounds the cluster declares.
fn scale_group(spec: &mut Value, scale: &ScaleChange) -> Result<(), FieldError> {
    let groups = spec["workerGroupSpecs"].as_array_mut().map(Vec::as_mut_slice).unwrap_or_default();
    let names: Vec<String> =
        groups.iter().filter_map(|g| g["groupName"].as_str().map(String::from)).collect();
    let Some(group) = groups.iter_mut().find(|g| g["groupName"] == scale.group.as_str()) else {
        return Err(FieldError {
            field: "group".into(),
            message: format!(
                "no worker group {:?}; the cluster has {}",
                scale.group,
                names.join(", ")
            ),
        });
    };
    let min = group["minReplicas"].as_i64().unwrap_or(0);
    let max = group["maxReplicas"].as_i64().unwrap_or(i64::from(i32::MAX));
    if !(min..=max).contains(&scale.replicas) {
        return Err(FieldError {
            field: "replicas".into(),
            message: format!(
                "must be from {min} to {max} for group {:?}, got {}",
                scale.group, scale.replicas
            ),
        });
    }
    group["replicas"] = json!(scale.replicas);
    Ok(())
}

/// The body of a write, or 400 when it is not `what`. (Origin and CSRF token are checked before
/// any handler runs: [`crate::guard`].)
// The error is the finished HTTP answer, handed straight back by the handler: boxing it gains nothing.
#[allow(clippy::result_large_err)]
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        error_response(
            StatusCode::BAD_REQUEST,
            &format!("request body is not {what}: {e}"),
            "BadRequest",
        )
    })
}

/// A Kubernetes failure as the API's answer: refusals keep their status, message and reason.
fn refusal(action: &str, error: kube::Error) -> Response {
    match error {
        kube::Error::Api(status) => {
            let code = StatusCode::from_u16(status.code).unwrap_or(StatusCode::BAD_GATEWAY);
            let code = if code.is_client_error() || code.is_server_error() {
                code
            } else {
                StatusCode::BAD_GATEWAY
            };
            error_response(code, &status.message, &status.reason)
        }
        other => {
            tracing::warn!("{action}: {other}");
            error_response(
                StatusCode::BAD_GATEWAY,
                &format!("{action}: cannot reach the Kubernetes API: {other}"),
                "Unreachable",
            )
        }
    }
}

fn error_response(status: StatusCode, message: &str, reason: &str) -> Response {
    (status, Json(json!({ "error": message, "reason": reason }))).into_response()
}

/// 422 with one error per field.
fn invalid(errors: Vec<FieldError>) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "errors": one_per_field(errors) })))
        .into_response()
}

/// Messages about the same field joined into one, in the order the fields first appear.
fn one_per_field(errors: Vec<FieldError>) -> Vec<FieldError> {
    let mut merged: Vec<FieldError> = Vec::new();
    for error in errors {
        match merged.iter_mut().find(|e| e.field == error.field) {
            Some(same) => {
                same.message.push_str("; ");
                same.message.push_str(&error.message);
            }
            None => merged.push(error),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_about_one_field_become_one_message() {
        let merged = one_per_field(vec![
            FieldError::new("workers", "must be an integer"),
            FieldError::new("name", "too long"),
            FieldError::new("workers", "at most 4"),
        ]);
        assert_eq!(
            merged,
            vec![
                FieldError::new("workers", "must be an integer; at most 4"),
                FieldError::new("name", "too long")
            ]
        );
    }

    #[test]
    fn a_kubernetes_refusal_keeps_its_status_and_reason() {
        let status = kube::core::Status::failure("rayclusters.ray.io is forbidden", "Forbidden")
            .with_code(403);
        let response = refusal("applying", kube::Error::Api(status.boxed()));
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let status = kube::core::Status::failure("exceeded quota", "Forbidden").with_code(200);
        assert_eq!(
            refusal("applying", kube::Error::Api(status.boxed())).status(),
            StatusCode::BAD_GATEWAY
        );
    }
}

#[cfg(test)]
mod scale_tests {
    use super::*;

    fn spec() -> Value {
        json!({"workerGroupSpecs": [
            {"groupName": "cpu", "replicas": 1, "minReplicas": 0, "maxReplicas": 4},
            {"groupName": "gpu", "replicas": 2, "minReplicas": 2, "maxReplicas": 8}
        ]})
    }

    #[test]
    fn scaling_changes_only_the_named_group() {
        let mut s = spec();
        scale_group(&mut s, &ScaleChange { group: "gpu".into(), replicas: 5 }).unwrap();
        assert_eq!(
            (
                s["workerGroupSpecs"][0]["replicas"].clone(),
                s["workerGroupSpecs"][1]["replicas"].clone()
            ),
            (json!(1), json!(5))
        );
    }

    #[test]
    fn scaling_outside_the_bounds_names_them() {
        let e = scale_group(&mut spec(), &ScaleChange { group: "gpu".into(), replicas: 9 })
            .unwrap_err();
        assert_eq!(e.field, "replicas");
        assert!(e.message.contains("from 2 to 8"), "{}", e.message);
        let e = scale_group(&mut spec(), &ScaleChange { group: "gpu".into(), replicas: -1 })
            .unwrap_err();
        assert_eq!(e.field, "replicas");
    }

    #[test]
    fn an_unknown_group_lists_the_real_ones() {
        let e = scale_group(&mut spec(), &ScaleChange { group: "tpu".into(), replicas: 1 })
            .unwrap_err();
        assert_eq!(e.field, "group");
        assert!(e.message.contains("cpu, gpu"), "{}", e.message);
    }
}
