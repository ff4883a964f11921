//! The JSON API under `/api/v1`, health, readiness and metrics.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use crate::auth::User;
use crate::web::AppState;

/// `GET /api/v1/clusters`: every RayCluster the requester may see (they may list RayClusters in
/// its namespace), sorted by namespace and name.
pub async fn list_clusters(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
) -> Response {
    let mut items = state.clusters.list();
    state.access.grants(&user, items.iter().map(|c| c.namespace.clone())).await.apply(&mut items);
    Json(json!({ "items": items })).into_response()
}

/// `GET /api/v1/session`: who raydar takes the requester to be, and the CSRF token their writes
/// carry (for scripts; pages have it in a meta tag).
pub async fn session(State(state): State<AppState>, Extension(user): Extension<User>) -> Response {
    Json(json!({
        "user": user.name,
        "email": user.email,
        "groups": user.groups,
        "team": user.team(),
        "csrfToken": state.csrf.token(&user),
    }))
    .into_response()
}

/// `GET /api/v1/clusters/{namespace}/{name}`: one RayCluster, or 404.
pub async fn get_cluster(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    match state.clusters.get(&namespace, &name) {
        Some(row) => Json(row).into_response(),
        None => not_found(&format!("RayCluster {namespace}/{name} not found")),
    }
}

/// `GET /api/v1/templates`: every RayClusterTemplate with its description, parameter schemas and
/// policy, sorted by name; 503 with the reason while the template watch has not listed them.
pub async fn list_templates(State(state): State<AppState>) -> Response {
    if let Err(why) = state.templates.ready(std::time::Duration::from_secs(10)).await {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": why }))).into_response();
    }
    Json(json!({ "items": state.templates.forms() })).into_response()
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: ready once the RayCluster watch has listed every cluster; until then 503 with
/// the reason, such as an unreachable apiserver or a missing CRD.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.clusters.health().synced() {
        return "ready\n".into_response();
    }
    let why = state
        .clusters
        .health()
        .last_error()
        .unwrap_or_else(|| "RayCluster watch has not synced yet".into());
    (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")).into_response()
}

/// `GET /metrics`: raydar's own metrics in the Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let c = &state.clusters;
    let logs = state.logs.metrics();
    let body = format!(
        "# HELP raydar_rayclusters RayClusters in the watch's store.\n\
         # TYPE raydar_rayclusters gauge\nraydar_rayclusters {}\n\
         # HELP raydar_raycluster_watch_synced 1 once the RayCluster watch has listed everything.\n\
         # TYPE raydar_raycluster_watch_synced gauge\nraydar_raycluster_watch_synced {}\n\
         # HELP raydar_raycluster_watch_errors_total Errors of the RayCluster watch (it retries).\n\
         # TYPE raydar_raycluster_watch_errors_total counter\nraydar_raycluster_watch_errors_total {}\n\
         # HELP raydar_push_followers Open pages following the cluster push stream.\n\
         # TYPE raydar_push_followers gauge\nraydar_push_followers {}\n\
         # HELP raydar_template_watch_errors_total Errors of the RayClusterTemplate watch (it retries).\n\
         # TYPE raydar_template_watch_errors_total counter\nraydar_template_watch_errors_total {}\n\
         # HELP raydar_log_streams Logs followed live, each one upstream stream shared by its viewers.\n\
         # TYPE raydar_log_streams gauge\nraydar_log_streams {}\n\
         # HELP raydar_log_viewers Open event streams following a log.\n\
         # TYPE raydar_log_viewers gauge\nraydar_log_viewers {}\n\
         # HELP raydar_log_streams_refused_total New logs refused because --log-streams were followed.\n\
         # TYPE raydar_log_streams_refused_total counter\nraydar_log_streams_refused_total {}\n\
         # HELP raydar_log_lines_skipped_total Log lines viewers never got: they fell behind the lines kept.\n\
         # TYPE raydar_log_lines_skipped_total counter\nraydar_log_lines_skipped_total {}\n\
         # HELP raydar_log_upstream_errors_total Failures of log upstreams (each retried).\n\
         # TYPE raydar_log_upstream_errors_total counter\nraydar_log_upstream_errors_total {}\n",
        c.len(),
        u8::from(c.health().synced()),
        c.health().error_count(),
        c.followers(),
        state.templates.health().error_count(),
        logs.streams,
        logs.viewers,
        logs.refused,
        logs.skipped,
        logs.upstream_errors,
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// A JSON 404 in the API's error shape.
pub fn not_found(message: &str) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": message }))).into_response()
}

/// `GET /api/v1/openapi.json`: the API's OpenAPI document (kept beside this file; a test checks
/// that every operation in it is served).
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// The OpenAPI document of every route.
pub const OPENAPI: &str = include_str!("openapi.json");
