//! A cluster's Ray jobs as a resource: the list and one job, typed, read from its dashboard
//! (Ray's own `GET /api/jobs/` answers, parsed by `platform::dashboard`). Pages get them pushed
//! with the cluster's overview; these are for scripts and pipelines.

use axum::extract::State;
use axum::Json;
use platform::overview::{RayJob, RayJobs};

use crate::error::{ApiError, ApiResult};
use crate::extract::{check_cluster, ClusterPath, Path};
use crate::ray::{DashboardError, Dashboards, Read};
use crate::security::access::MayReadCluster;

/// `GET /api/v1/clusters/{namespace}/{name}/jobs`: the cluster's Ray jobs, newest first.
#[utoipa::path(get, path = "/clusters/{namespace}/{name}/jobs", tag = "jobs",
    params(super::doc::ClusterParams),
    responses(
        (status = 200, description = "The cluster's Ray jobs, newest first", body = RayJobs),
        super::doc::ReadErrors,
        super::doc::UpstreamErrors))]
pub async fn list(
    _: MayReadCluster,
    State(dashboards): State<Dashboards>,
    path: ClusterPath,
) -> ApiResult<Json<RayJobs>> {
    let read = Read::parse("api/jobs/", None).map_err(ApiError::bad_request)?;
    let body = dashboards.read(&path.namespace, &path.name, &read).await?;
    let items = platform::dashboard::jobs(&body).map_err(ApiError::bad_gateway)?;
    Ok(Json(RayJobs { items }))
}

/// `GET /api/v1/clusters/{namespace}/{name}/jobs/{job_id}`: one Ray job, by submission id (or
/// job id). 404 when Ray does not know it.
#[utoipa::path(get, path = "/clusters/{namespace}/{name}/jobs/{job_id}", tag = "jobs",
    params(super::doc::JobParams),
    responses(
        (status = 200, description = "The job as Ray says now", body = RayJob),
        super::doc::ReadErrors,
        super::doc::UpstreamErrors))]
pub async fn get(
    _: MayReadCluster,
    State(dashboards): State<Dashboards>,
    Path((namespace, name, job)): Path<(String, String, String)>,
) -> ApiResult<Json<RayJob>> {
    check_cluster(&namespace, &name)?;
    let read = Read::parse(&format!("api/jobs/{job}"), None).map_err(ApiError::bad_request)?;
    let body = match dashboards.read(&namespace, &name, &read).await {
        Err(DashboardError::NotFound(..)) => {
            return Err(ApiError::not_found(format!(
                "the Ray dashboard of {namespace}/{name} knows no job {job:?}"
            )))
        }
        answer => answer?,
    };
    platform::dashboard::job(&body).map(Json).map_err(ApiError::bad_gateway)
}
