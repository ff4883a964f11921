//! The Kubernetes clusters this raydar serves (`--contexts`): which they are and how each
//! answers, and the cluster list over all of them (`GET /api/v1/clusters?context=*`).

use axum::extract::State;
use axum::Json;
use platform::Stale;
use serde::Serialize;
use utoipa::ToSchema;

use super::clusters::{ClusterItems, ListedCluster};
use crate::contexts::Fleet;
use crate::list::{merge, View};
use crate::security::User;

/// One Kubernetes cluster raydar serves, and how its watch is.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContextState {
    /// Its name: what `?context=` takes.
    pub name: String,
    /// Whether it is the one a request without `?context=` is answered for.
    pub home: bool,
    /// Whether its clusters have been listed at least once.
    pub synced: bool,
    /// Set while its Kubernetes API does not answer: its clusters are what it last said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<Stale>,
}

/// The Kubernetes clusters raydar serves.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContextList {
    /// Home first, then as `--contexts` lists them.
    pub items: Vec<ContextState>,
}

/// How each plane of `fleet` is.
pub fn states(fleet: &Fleet) -> Vec<ContextState> {
    fleet
        .planes()
        .iter()
        .enumerate()
        .map(|(i, plane)| ContextState {
            name: plane.name.clone(),
            home: i == 0,
            synced: plane.clusters.health().synced(),
            stale: plane.clusters.stale(),
        })
        .collect()
}

/// `GET /api/v1/contexts`: the Kubernetes clusters raydar serves, and whether each answers.
#[utoipa::path(get, path = "/contexts", tag = "clusters",
    responses((status = 200, description = "The Kubernetes clusters raydar serves", body = ContextList)))]
pub async fn list(State(fleet): State<Fleet>) -> Json<ContextList> {
    Json(ContextList { items: states(&fleet) })
}

/// The page `view` shows of the clusters `user` may see on every Kubernetes cluster: each
/// cluster's own page of it, merged in the view's order, each row naming its context, with how
/// each context answers. (`GET /api/v1/clusters?context=*`.)
pub async fn all_clusters(fleet: &Fleet, user: &User, view: &View) -> ClusterItems {
    let mut pages = Vec::with_capacity(fleet.planes().len());
    for plane in fleet.planes() {
        let grants = plane.access.grants(user, plane.clusters.namespaces()).await;
        pages.push((
            plane.name.clone(),
            plane.clusters.page(&view.for_context(&plane.name), &grants),
        ));
    }
    let merged = merge(view, pages);
    let items = merged
        .items
        .into_iter()
        .map(|(context, cluster)| ListedCluster { context: Some(context), cluster })
        .collect();
    ClusterItems { contexts: Some(states(fleet)), ..ClusterItems::of(items, merged.counts, None) }
}
