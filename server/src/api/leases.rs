//! Pipeline leases: `POST /api/v1/clusters/{ns}/{name}/lease` renews the lease of a cluster
//! launched with one (`"lease": true`), `DELETE` gives it up (the cluster is kept: a pipeline
//! that keeps a failed run's cluster to look at). A cluster whose lease goes unrenewed for
//! `--lease-timeout` is reclaimed by raydar ([`crate::lifecycle`]): a pipeline that dies, even
//! by SIGKILL, leaves nothing behind.

use axum::extract::State;
use axum::{Extension, Json};
use kube::api::{Patch, PatchParams};
use platform::lifecycle::Lifetime;
use platform::template::ANNOTATION_LEASE;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::actions::{call, rayclusters};
use crate::error::{ApiError, ApiResult};
use crate::extract::ClusterPath;
use crate::lifecycle::LeaseTimeout;
use crate::security::{Access, User};

/// A lease renewed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaseRenewed {
    /// When, Unix seconds.
    pub renewed_at: i64,
    /// Seconds it holds without another renewal (`--lease-timeout`); renew well within it.
    pub timeout: u64,
}

/// `POST /api/v1/clusters/{namespace}/{name}/lease`: renews the cluster's lease, as the
/// requester (who must be allowed to patch it). Renewals are not counted as actions.
#[utoipa::path(post, path = "/clusters/{namespace}/{name}/lease", tag = "actions",
    params(super::doc::ClusterParams),
    responses(
        (status = 200, description = "Renewed", body = LeaseRenewed),
        (status = 404, description = "Kubernetes has no such RayCluster", body = ApiError),
        (status = 409, description = "The cluster was not launched with a lease", body = ApiError),
        super::doc::ActionErrors))]
pub async fn renew(
    State(access): State<Access>,
    State(LeaseTimeout(timeout)): State<LeaseTimeout>,
    Extension(user): Extension<User>,
    path: ClusterPath,
) -> ApiResult<Json<LeaseRenewed>> {
    let id = path.id();
    let client = access.client_for(&user).map_err(ApiError::bad_request)?;
    let api = rayclusters(&client, &path.namespace);
    let cluster = call(&format!("reading RayCluster {id}"), api.get(&path.name)).await?;
    if Lifetime::of(cluster.metadata.annotations.as_ref()).lease_renewed_at.is_none() {
        return Err(ApiError::conflict(format!(
            "RayCluster {id} was not launched with a lease (\"lease\": true): it has none to renew"
        )));
    }
    let now = jiff::Timestamp::now();
    let now = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
    let patch =
        Patch::Merge(json!({"metadata": {"annotations": {ANNOTATION_LEASE: now.to_string()}}}));
    call(
        &format!("renewing the lease of RayCluster {id}"),
        api.patch(&path.name, &PatchParams::default(), &patch),
    )
    .await?;
    tracing::debug!(cluster = %id, user = %user.name, "lease renewed");
    Ok(Json(LeaseRenewed { renewed_at: now.as_second(), timeout: timeout.as_secs() }))
}

/// A lease given up.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaseReleased {
    /// Whether the cluster had a lease (false: nothing to give up, which is no error).
    pub released: bool,
}

/// `DELETE /api/v1/clusters/{namespace}/{name}/lease`: gives the cluster's lease up, as the
/// requester: raydar no longer reclaims it for want of renewals (its expiry still holds).
#[utoipa::path(delete, path = "/clusters/{namespace}/{name}/lease", tag = "actions",
    params(super::doc::ClusterParams),
    responses(
        (status = 200, description = "Given up, or there was none", body = LeaseReleased),
        (status = 404, description = "Kubernetes has no such RayCluster", body = ApiError),
        super::doc::ActionErrors))]
pub async fn release(
    State(access): State<Access>,
    Extension(user): Extension<User>,
    path: ClusterPath,
) -> ApiResult<Json<LeaseReleased>> {
    let id = path.id();
    let client = access.client_for(&user).map_err(ApiError::bad_request)?;
    let api = rayclusters(&client, &path.namespace);
    let cluster = call(&format!("reading RayCluster {id}"), api.get(&path.name)).await?;
    if Lifetime::of(cluster.metadata.annotations.as_ref()).lease_renewed_at.is_none() {
        return Ok(Json(LeaseReleased { released: false }));
    }
    let patch = Patch::Merge(json!({"metadata": {"annotations": {ANNOTATION_LEASE: null}}}));
    call(
        &format!("giving up the lease of RayCluster {id}"),
        api.patch(&path.name, &PatchParams::default(), &patch),
    )
    .await?;
    tracing::info!(cluster = %id, user = %user.name, "lease given up: the cluster is kept");
    Ok(Json(LeaseReleased { released: true }))
}
