//! Launch and day-2 actions: `POST /api/v1/clusters` renders a template with the platform's
//! engine, has Kubernetes dry-run it, then applies it server-side (field manager `raydar`);
//! `DELETE /api/v1/clusters/{ns}/{name}` deletes a cluster; `PATCH` of the same path suspends,
//! resumes or scales a worker group within its bounds. Kubernetes refusals reach the caller with
//! their status and message.
//!
//! Every request to Kubernetes here is made as the signed-in user (impersonation): raydar's own
//! identity cannot change a RayCluster, so what a user may do is exactly what RBAC lets them do.
//! Actions are rate-limited per user and recorded ([`crate::security::audit`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::Client;
use platform::capacity::Capacity;
use platform::history::Outcome;
use platform::kuberay::RayCluster;
use platform::lifecycle::{extended, Lifetime};
use platform::template::{render, FieldError, LaunchRequest, PipelineRun, Timestamp};
use platform::template::{ANNOTATION_EXPIRES_AT, ANNOTATION_PROTECT, LABEL_TEMPLATE};
use platform::ClusterSummary;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::Instrument;
use utoipa::{IntoParams, ToSchema};

pub use platform::template::FIELD_MANAGER;

use crate::error::{ApiError, ApiResult};
use crate::extract::{body, ClusterPath, Query};
use crate::history::{Record, Sink};
use crate::security::{Access, Action, ActionLimit, Audit, User};
use crate::sources::{Clusters, NodeCapacity, Templates};
use crate::unix_now;

/// Longest a single Kubernetes call of an action may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What actions use: cheap to clone.
#[derive(Clone)]
pub struct Actions {
    /// The templates launches render from.
    pub templates: Templates,
    /// The watched clusters: the uid an audit Event is about.
    pub clusters: Clusters,
    /// Clients that act as the requester.
    pub access: Access,
    /// Actions per user per minute.
    pub limit: ActionLimit,
    /// Who did what.
    pub audit: Audit,
    /// History: who tore a cluster down.
    pub history: Sink,
    /// What a launch preview judges capacity against.
    pub capacity: NodeCapacity,
}

/// Runs one Kubernetes call within [`CALL_TIMEOUT`]; failures become the API's answer.
pub(crate) async fn call<T>(
    action: &str,
    request: impl Future<Output = kube::Result<T>>,
) -> ApiResult<T> {
    match tokio::time::timeout(CALL_TIMEOUT, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(ApiError::kube(action, error)),
        Err(_) => Err(ApiError::timeout(format!(
            "{action}: Kubernetes did not answer within {} s",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}

/// RayClusters of `namespace`, as `client` (the requester) reaches them.
pub(crate) fn rayclusters(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &ApiResource::erase::<RayCluster>(&()))
}

impl Actions {
    /// A client that acts as `user`.
    fn client_for(&self, user: &User) -> ApiResult<Client> {
        self.access.client_for(user).map_err(ApiError::bad_request)
    }

    /// Logs a refused action and hands back Kubernetes' answer, whose message the user sees.
    pub(crate) fn refused(&self, user: &User, action: &Action, error: ApiError) -> ApiError {
        self.audit.refused(user, action, &error.error);
        error
    }
}

/// The body of `POST /api/v1/clusters`. The owner is never part of it: raydar takes it from the
/// requester's identity.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchBody {
    /// The RayClusterTemplate to launch from (`GET /api/v1/templates`).
    #[schema(value_type = String, required = true, min_length = 1)]
    template: Option<String>,
    /// Where the cluster goes.
    #[serde(default)]
    #[schema(required = true, pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length = 63)]
    namespace: String,
    /// The cluster's name.
    #[serde(default)]
    #[schema(required = true, pattern = "^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length = 53)]
    name: String,
    /// Values by parameter name, as strings or integers (the template's parameters say which);
    /// left-out parameters take their defaults.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, platform::template::Scalar>)]
    parameters: BTreeMap<String, Value>,
    /// The pipeline run launching it, if one is: the `raydar.dev/pipeline` and `raydar.dev/run`
    /// labels the list shows (informational; the owner is still the requester).
    #[serde(default)]
    pipeline: Option<PipelineRun>,
    /// Launch it with a lease: unless renewed (`POST /api/v1/clusters/{ns}/{name}/lease`) at
    /// least every `--lease-timeout` (5 minutes by default), raydar reclaims it. For pipelines,
    /// so a run that dies (even by SIGKILL) leaves nothing behind.
    #[serde(default)]
    lease: bool,
}

/// Query of `POST /api/v1/clusters`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LaunchQuery {
    /// Render and dry-run only: answer with the manifest, create nothing.
    #[serde(rename = "dryRun", default)]
    #[param(rename = "dryRun")]
    pub(crate) dry_run: bool,
}

/// A launch previewed (`?dryRun=true`): the exact manifest, nothing created.
#[derive(Debug, Serialize, ToSchema)]
pub struct LaunchPreview {
    /// Where it would go.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The RayCluster manifest, as JSON.
    #[schema(value_type = Object)]
    pub manifest: Value,
    /// The same manifest as YAML, as kubectl users read it.
    pub yaml: String,
    /// Whether its pods fit the nodes (how many now) and the namespace's quota: it informs, it
    /// does not refuse (Kubernetes stays the judge).
    pub capacity: Capacity,
}

/// A launched cluster.
#[derive(Debug, Serialize, ToSchema)]
pub struct Launched {
    /// Where it went.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its row of the cluster list, as Kubernetes took it.
    pub cluster: Option<ClusterSummary>,
    /// The manifest applied.
    #[schema(value_type = Object)]
    pub manifest: Value,
}

/// Refuses a launch into a namespace raydar does not watch (`--namespaces`): its cluster would
/// never show.
pub(crate) fn watched(clusters: &Clusters, namespace: &str) -> ApiResult<()> {
    match clusters.scope().namespaces() {
        Some(watched) if !clusters.scope().covers(namespace) => Err(ApiError::invalid_field(
            "namespace",
            format!(
                "raydar watches only the namespaces {}: choose one of them",
                watched.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

/// The RayCluster manifest template `template` renders for `launch` as `user` at `now`, or the
/// API's answer: the template missing or unknown, a field invalid (one message each), the
/// template itself broken.
pub(crate) async fn rendered(
    templates: &Templates,
    template: Option<String>,
    launch: &LaunchRequest,
    user: &User,
    now: Timestamp,
) -> ApiResult<Value> {
    let Some(template_name) = template.filter(|t| !t.is_empty()) else {
        return Err(ApiError::invalid_field(
            "template",
            "required: the name of a RayClusterTemplate",
        ));
    };
    templates.ready(Duration::from_secs(10)).await.map_err(ApiError::unavailable)?;
    let Some(template) = templates.get(&template_name) else {
        return Err(ApiError::invalid_field(
            "template",
            format!(
                "no RayClusterTemplate named {template_name:?}; GET /api/v1/templates lists them"
            ),
        ));
    };
    match render(&template, launch, &user.identity(), now) {
        Ok(manifest) => Ok(manifest),
        Err(platform::template::Error::InvalidRequest(errors)) => Err(ApiError::invalid(errors)),
        Err(e) => Err(ApiError::invalid_field(
            "template",
            format!("{e}; it cannot be launched until a platform admin fixes it"),
        )),
    }
}

/// `POST /api/v1/clusters[?dryRun=true]`: launch a RayCluster from a template.
#[utoipa::path(post, path = "/clusters", tag = "actions",
    params(LaunchQuery),
    request_body(content = LaunchBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The manifest a launch would apply (dryRun)", body = LaunchPreview),
        (status = 201, description = "Launched", body = Launched,
            headers(("Location" = String, description = "The cluster's API path"))),
        (status = 409, description = "A RayCluster of that name exists", body = ApiError),
        (status = 422, description = "A field is invalid: one message per field", body = ApiError),
        (status = 503, description = "The template watch has not listed the templates yet", body = ApiError),
        super::doc::ActionErrors))]
pub async fn launch(
    State(actions): State<Actions>,
    Extension(user): Extension<User>,
    Query(query): Query<LaunchQuery>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let dry_run = query.dry_run;
    let request: LaunchBody = body(&bytes, "a launch request")?;
    let template_name = request.template.clone().unwrap_or_default();
    let launch = LaunchRequest {
        name: request.name,
        namespace: request.namespace,
        parameters: request.parameters,
        pipeline: request.pipeline,
        lease: request.lease,
    };
    // A launch's trace: render, read what exists, the dry-run, the apply (telemetry.rs).
    let manifest = rendered(&actions.templates, request.template, &launch, &user, Timestamp::now())
        .instrument(tracing::info_span!("render", template = %template_name))
        .await?;
    let (namespace, name) = (launch.namespace, launch.name);
    watched(&actions.clusters, &namespace)?;
    let id = format!("{namespace}/{name}");
    // A preview asks Kubernetes too (a dry-run), but changes nothing: only launches count.
    if !dry_run {
        actions.limit.allow(&user)?;
    }
    let client = actions.client_for(&user)?;
    let api = rayclusters(&client, &namespace);
    let action = Action {
        reason: "Launched",
        what: format!("launched it from template {template_name}"),
        namespace: namespace.clone(),
        name: name.clone(),
    };
    let refused = |error| if dry_run { error } else { actions.refused(&user, &action, error) };

    // Without force, server-side apply would quietly update a cluster that already has this name;
    // a launch creates, so an existing one is a conflict. (Between this read and the apply another
    // launcher could create the name; the window is one round trip.)
    if call(&format!("reading RayCluster {id}"), api.get_opt(&name))
        .instrument(tracing::info_span!("read existing"))
        .await
        .map_err(refused)?
        .is_some()
    {
        return Err(ApiError::conflict(format!(
            "RayCluster {id} already exists; choose another name"
        ))
        .with_reason("AlreadyExists"));
    }
    let params = PatchParams::apply(FIELD_MANAGER);
    let patch = Patch::Apply(&manifest);
    let checking = format!("checking RayCluster {id} (server-side dry-run)");
    let dry = PatchParams { dry_run: true, ..params.clone() };
    let checked = call(&checking, api.patch(&name, &dry, &patch));
    checked.instrument(tracing::info_span!("dry-run")).await.map_err(refused)?;
    if dry_run {
        // The YAML is what the launch form previews: the exact manifest, as kubectl users read it.
        let yaml = platform::template::manifest_yaml(&manifest);
        let capacity = actions.capacity.judge(&namespace, &manifest["spec"]);
        return Ok(
            Json(LaunchPreview { namespace, name, manifest, yaml, capacity }).into_response()
        );
    }
    let applying = format!("applying RayCluster {id}");
    let applied = call(&applying, api.patch(&name, &params, &patch));
    let applied = applied.instrument(tracing::info_span!("apply")).await.map_err(refused)?;
    actions.audit.done(&user, &action, applied.metadata.uid.clone());
    let cluster = serde_json::to_value(&applied)
        .ok()
        .and_then(|v| serde_json::from_value::<RayCluster>(v).ok())
        .map(|c| c.summary());
    let location = format!("/api/v1/clusters/{namespace}/{name}");
    let launched = Launched { namespace, name, cluster, manifest };
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(launched)).into_response())
}

/// A cluster torn down, or already gone.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TornDown {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `deleting` while its pods go, `deleted`, or `already-gone`.
    pub result: String,
    /// Whether this request deleted it.
    pub deleted: bool,
    /// Whether it was gone before.
    pub already_gone: bool,
}

/// `DELETE /api/v1/clusters/{namespace}/{name}`: deletes a RayCluster and, first, its pods
/// (foreground propagation). One that is already gone is a success.
#[utoipa::path(delete, path = "/clusters/{namespace}/{name}", tag = "actions",
    params(super::doc::ClusterParams),
    responses(
        (status = 200, description = "Torn down, or already gone", body = TornDown),
        super::doc::ActionErrors))]
pub async fn tear_down(
    State(actions): State<Actions>,
    Extension(user): Extension<User>,
    path: ClusterPath,
) -> ApiResult<Json<TornDown>> {
    actions.limit.allow(&user)?;
    let ClusterPath { namespace, name } = path;
    let client = actions.client_for(&user)?;
    let api = rayclusters(&client, &namespace);
    let action = Action {
        reason: "TornDown",
        what: "tore it down".into(),
        namespace: namespace.clone(),
        name: name.clone(),
    };
    // The uid the Event is about, before the cluster goes.
    let uid = actions.clusters.uid(&namespace, &name);
    let deleting = format!("deleting RayCluster {namespace}/{name}");
    let deleted = call(&deleting, api.delete(&name, &DeleteParams::foreground())).await;
    // The apiserver answers with the object while its pods go, or a Status once it is gone.
    let (result, deleted, already_gone) = match deleted {
        Ok(answer) if answer.is_left() => ("deleting", true, false),
        Ok(_) => ("deleted", true, false),
        Err(error) if error.status == StatusCode::NOT_FOUND => ("already-gone", false, true),
        Err(error) => return Err(actions.refused(&user, &action, error)),
    };
    if deleted {
        if let Some(uid) = &uid {
            actions.history.send(Record::Ending {
                uid: uid.clone(),
                outcome: Outcome::TornDown,
                by: user.name.clone(),
                why: format!("torn down by {} through raydar", user.name),
            });
        }
        actions.audit.done(&user, &action, uid);
    }
    Ok(Json(TornDown { namespace, name, result: result.into(), deleted, already_gone }))
}

/// A day-2 change to a running cluster: `PATCH /api/v1/clusters/{ns}/{name}`. Say `suspend`,
/// `scale`, `extend`, `protect`, or several.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct ClusterChange {
    /// Suspend (`true`: KubeRay deletes the pods, keeping the cluster) or resume (`false`).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool, required = false)]
    pub suspend: Option<bool>,
    /// Scale one worker group within its `minReplicas`..`maxReplicas`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = ScaleChange, required = false)]
    pub scale: Option<ScaleChange>,
    /// Push its expiry (`raydar.dev/expires-at`) later by this much (`30m`, `2h`, `1d`): from
    /// its current end, or from now if that has passed, and at most its template's maximum
    /// lifetime from now.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, required = false, max_length = 32, example = "2h")]
    pub extend: Option<String>,
    /// Exempt it from every reclaim (expiry, idle GPUs, pipeline leases), or no longer.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool, required = false)]
    pub protect: Option<bool>,
}

/// A field that may be left out but, when given, is not null.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The wanted replicas of one worker group.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleChange {
    /// `groupName` of the worker group.
    pub group: String,
    /// Wanted replicas.
    #[serde(deserialize_with = "integer")]
    pub replicas: i64,
}

/// An integer, also when JSON writes it with a fraction of zero (`3.0`), as JSON Schema allows.
pub(crate) fn integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let number = serde_json::Number::deserialize(d)?;
    number
        .as_i64()
        .or_else(|| {
            number.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64)
        })
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not a whole number")))
}

/// [`integer`], when there is one.
pub(crate) fn maybe_integer<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Whole(#[serde(deserialize_with = "integer")] i64);
    Ok(Option::<Whole>::deserialize(d)?.map(|w| w.0))
}

/// A change made.
#[derive(Debug, Serialize, ToSchema)]
pub struct Changed {
    /// The cluster's namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Always true: a change not made is an error.
    pub changed: bool,
}

/// `PATCH /api/v1/clusters/{ns}/{name}`: suspend, resume, scale, extend or protect. Reads the
/// cluster, changes it and replaces it with the resourceVersion it read, so a concurrent change is
/// never lost: on a conflict the change is applied again to the cluster as it is then (bounds
/// checked anew), and after a few conflicts in a row the answer is 409.
#[utoipa::path(patch, path = "/clusters/{namespace}/{name}", tag = "actions",
    params(super::doc::ClusterParams),
    request_body(content = ClusterChange, content_type = "application/json"),
    responses(
        (status = 200, description = "Changed", body = Changed),
        (status = 404, description = "Kubernetes has no such RayCluster", body = ApiError),
        (status = 409, description = "The cluster changed meanwhile; read it and try again", body = ApiError),
        (status = 422, description = "Neither suspend nor scale, or a group or replicas out of bounds", body = ApiError),
        super::doc::ActionErrors))]
pub async fn change(
    State(actions): State<Actions>,
    Extension(user): Extension<User>,
    path: ClusterPath,
    bytes: Bytes,
) -> ApiResult<Json<Changed>> {
    let what = r#"a cluster change ({"suspend": bool}, {"scale": {"group", "replicas"}}, {"extend": "2h"} or {"protect": bool})"#;
    let change: ClusterChange = body(&bytes, what)?;
    if change.suspend.is_none()
        && change.scale.is_none()
        && change.extend.is_none()
        && change.protect.is_none()
    {
        return Err(ApiError::invalid_field(
            "body",
            "say `suspend`, `scale`, `extend` or `protect`",
        ));
    }
    let extend_by = match change.extend.as_deref().map(str::trim) {
        None => None,
        Some(text) => match platform::template::parse_duration(text) {
            Ok(by) if !by.is_zero() && text.len() <= 32 => Some(by),
            _ => {
                return Err(ApiError::invalid_field(
                    "extend",
                    format!("{text:?} is not a duration above 0 such as 30m, 2h or 1d"),
                ))
            }
        },
    };
    actions.limit.allow(&user)?;
    let ClusterPath { namespace, name } = path;
    let id = format!("{namespace}/{name}");
    let client = actions.client_for(&user)?;
    let api = rayclusters(&client, &namespace);
    let action = Action {
        reason: change.reason(),
        what: change.describe(),
        namespace: namespace.clone(),
        name: name.clone(),
    };
    let refused = |error| actions.refused(&user, &action, error);
    // The operator writes the cluster's status (a new resourceVersion) every few seconds while it
    // starts, so a conflict is most often not another person's change: read again and apply the
    // change to the cluster as it is then, its bounds checked anew, a few times before giving up.
    let mut attempts = 0;
    let cluster = loop {
        attempts += 1;
        let mut cluster =
            call(&format!("reading RayCluster {id}"), api.get(&name)).await.map_err(refused)?;
        let spec = &mut cluster.data["spec"];
        if let Some(suspend) = change.suspend {
            spec["suspend"] = json!(suspend);
        }
        if let Some(scale) = &change.scale {
            scale_group(spec, scale).map_err(|error| ApiError::invalid(vec![error]))?;
        }
        lifetime_change(&actions.templates, &mut cluster, &change, extend_by, unix_now())
            .map_err(|error| ApiError::invalid(vec![error]))?;
        let changing = format!("changing RayCluster {id}");
        match call(&changing, api.replace(&name, &PostParams::default(), &cluster)).await {
            Ok(_) => break cluster,
            Err(error) if error.status == StatusCode::CONFLICT && attempts < CHANGE_ATTEMPTS => {
                tracing::debug!(cluster = %id, attempts, "changed meanwhile; reading it again");
            }
            Err(error) => return Err(refused(error)),
        }
    };
    actions.audit.done(&user, &action, cluster.metadata.uid.clone());
    Ok(Json(Changed { namespace, name, changed: true }))
}

/// How many times a change is applied to a freshly read cluster before a conflict is answered.
const CHANGE_ATTEMPTS: u32 = 4;

/// Applies `change`'s `extend` (by `extend_by`) and `protect` to `cluster`'s annotations at
/// `now`, and refuses a resume of an expired cluster that is not also extended (raydar would
/// suspend it again at once).
fn lifetime_change(
    templates: &Templates,
    cluster: &mut DynamicObject,
    change: &ClusterChange,
    extend_by: Option<std::time::Duration>,
    now: i64,
) -> Result<(), FieldError> {
    let lifetime = Lifetime::of(cluster.metadata.annotations.as_ref());
    let annotations = cluster.metadata.annotations.get_or_insert_default();
    if let Some(by) = extend_by {
        let Some(expires_at) = lifetime.expires_at else {
            return Err(FieldError::new(
                "extend",
                "the cluster has no expiry (raydar.dev/expires-at) to extend",
            ));
        };
        let label = cluster.metadata.labels.as_ref().and_then(|l| l.get(LABEL_TEMPLATE));
        let template = label.and_then(|name| templates.get(name)).ok_or_else(|| {
            FieldError::new(
                "extend",
                format!(
                    "its template {} is not installed, so its maximum lifetime is unknown",
                    label.map_or("(none)", String::as_str)
                ),
            )
        })?;
        let max =
            template.spec.policy.max_lifetime.as_deref().map(platform::template::parse_duration);
        let Some(Ok(max)) = max else {
            return Err(FieldError::new(
                "extend",
                format!("template {} sets no maximum lifetime", template.template_name()),
            ));
        };
        let until =
            extended(Some(expires_at), by, max, now).map_err(|e| FieldError::new("extend", e))?;
        let until = jiff::Timestamp::from_second(until)
            .map_err(|e| FieldError::new("extend", e.to_string()))?;
        annotations.insert(ANNOTATION_EXPIRES_AT.to_owned(), until.to_string());
    } else if change.suspend == Some(false)
        && lifetime.expires_at.is_some_and(|t| t <= now)
        && !lifetime.protected
    {
        return Err(FieldError::new(
            "suspend",
            "its lifetime has ended: resume it with an extension, like {\"suspend\": false, \"extend\": \"2h\"}",
        ));
    }
    match change.protect {
        Some(true) => {
            annotations.insert(ANNOTATION_PROTECT.to_owned(), "true".to_owned());
        }
        Some(false) => {
            annotations.remove(ANNOTATION_PROTECT);
        }
        None => {}
    }
    Ok(())
}

impl ClusterChange {
    /// The audit Event's reason.
    fn reason(&self) -> &'static str {
        match (self.suspend, &self.scale, &self.extend, self.protect) {
            (Some(true), ..) => "Suspended",
            (Some(false), ..) => "Resumed",
            (None, Some(_), ..) => "Scaled",
            (None, None, Some(_), _) => "Extended",
            (None, None, None, Some(true)) => "Protected",
            (None, None, None, _) => "Unprotected",
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
        if let Some(by) = &self.extend {
            parts.push(format!("extended its lifetime by {by}"));
        }
        match self.protect {
            Some(true) => parts.push("protected it from reclaims".to_owned()),
            Some(false) => parts.push("lifted its protection from reclaims".to_owned()),
            None => {}
        }
        parts.join(" and ")
    }
}

/// Sets one worker group's replicas, within the bounds the cluster declares.
fn scale_group(spec: &mut Value, scale: &ScaleChange) -> Result<(), FieldError> {
    let groups = spec["workerGroupSpecs"].as_array_mut().map(Vec::as_mut_slice).unwrap_or_default();
    let names: Vec<String> =
        groups.iter().filter_map(|g| g["groupName"].as_str().map(String::from)).collect();
    let Some(group) = groups.iter_mut().find(|g| g["groupName"] == scale.group.as_str()) else {
        let has = match names.is_empty() {
            true => "no worker groups".to_owned(),
            false => format!("the cluster has {}", names.join(", ")),
        };
        return Err(FieldError {
            field: "group".into(),
            message: format!("no worker group {:?}; {has}", scale.group),
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
