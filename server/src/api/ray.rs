//! `GET /api/v1/clusters/{namespace}/{name}/ray/{*path}`: allowlisted reads of a cluster's Ray
//! dashboard, for scripts and the browser.

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ApiResult};
use crate::extract::{check_cluster, Path};
use crate::ray::{Dashboards, Read};
use crate::security::access::MayReadCluster;

/// `GET /api/v1/clusters/{namespace}/{name}/ray/{*path}`: one allowlisted read of the cluster's
/// Ray dashboard, answered with the dashboard's JSON. Only this method is routed: POST, PUT,
/// DELETE and PATCH are 405 without reaching this handler.
#[utoipa::path(get, path = "/clusters/{namespace}/{name}/ray/{path}", tag = "ray",
    params(super::doc::ClusterParams,
        ("path" = String, Path,
            pattern = "^(api/version|api/jobs/|api/jobs/[A-Za-z0-9_-]{1,128}(/logs)?|nodes|api/cluster_status|api/gcs_healthz)$",
            description = "One of Ray's reads raydar allows: `api/version`, `api/jobs/`, \
                `api/jobs/{id}`, `api/jobs/{id}/logs`, `nodes` (with `view=summary`), \
                `api/cluster_status`, `api/gcs_healthz`"),
        ("view" = Option<String>, Query, pattern = "^summary$",
            description = "`summary`, with `nodes` only")),
    responses(
        (status = 200, description = "The dashboard's JSON answer", content_type = "application/json", body = serde_json::Value),
        super::doc::ReadErrors,
        super::doc::UpstreamErrors))]
pub async fn read(
    _: MayReadCluster,
    State(dashboards): State<Dashboards>,
    Path((namespace, name, path)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    check_cluster(&namespace, &name)?;
    let read = match Read::parse(&path, query.as_deref()) {
        Ok(Read::JobLogTail(id)) => {
            return Err(ApiError::forbidden(format!(
                "/{path} is Ray's WebSocket log tail, not a JSON read: follow it at \
                 /api/v1/clusters/{namespace}/{name}/jobs/{id}/logs/stream"
            )))
        }
        Ok(read) => read,
        Err(why) => return Err(ApiError::forbidden(why)),
    };
    let body = dashboards.read(&namespace, &name, &read).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
