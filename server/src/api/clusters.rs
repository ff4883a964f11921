//! The RayClusters: the list and one cluster, the push stream open list pages follow, and a
//! cluster's page below its summary (pods, conditions, events, Ray's nodes and jobs).
//!
//! The push stream starts with a snapshot, then sends every change as it happens. A follower
//! that falls more than [`crate::sources::clusters::FEED_CAPACITY`] changes behind gets a fresh
//! snapshot instead of the changes it missed, so a slow browser never makes the server buffer
//! without bound.

use std::convert::Infallible;

use app::api::push;
use axum::extract::State;
use axum::response::sse::Event;
use axum::response::Response;
use axum::{Extension, Json};
use futures::stream::{self, Stream, StreamExt};
use platform::overview::ClusterOverview;
use platform::ClusterSummary;
use serde::Serialize;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::ClusterPath;
use crate::overview::Overviews;
use crate::push::{self as sse, json_event};
use crate::security::access::MayReadCluster;
use crate::security::{Access, Ask, User};
use crate::sources::{ClusterChange, Clusters};
use crate::unix_now;

/// The clusters the requester may see.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterItems {
    /// Sorted by namespace and name.
    pub items: Vec<ClusterSummary>,
}

/// `GET /api/v1/clusters`: every RayCluster the requester may see (they may list RayClusters in
/// its namespace), sorted by namespace and name.
#[utoipa::path(get, path = "/clusters", tag = "clusters",
    responses((status = 200, description = "The clusters the requester may see", body = ClusterItems)))]
pub async fn list(
    State(clusters): State<Clusters>,
    State(access): State<Access>,
    Extension(user): Extension<User>,
) -> Json<ClusterItems> {
    let mut items = clusters.list();
    access.grants(&user, items.iter().map(|c| c.namespace.clone())).await.apply(&mut items);
    Json(ClusterItems { items })
}

/// `GET /api/v1/clusters/{namespace}/{name}`: one RayCluster, or 404.
#[utoipa::path(get, path = "/clusters/{namespace}/{name}", tag = "clusters",
    params(super::doc::ClusterParams),
    responses(
        (status = 200, description = "The cluster", body = ClusterSummary),
        super::doc::ReadErrors))]
pub async fn get(
    _: MayReadCluster,
    State(clusters): State<Clusters>,
    path: ClusterPath,
) -> ApiResult<Json<ClusterSummary>> {
    clusters
        .get(&path.namespace, &path.name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("RayCluster {} not found", path.id())))
}

/// `GET /api/v1/clusters/{namespace}/{name}/overview`: pods, conditions, events, Ray's nodes and
/// jobs. 404 when raydar does not know the cluster.
#[utoipa::path(get, path = "/clusters/{namespace}/{name}/overview", tag = "clusters",
    params(super::doc::ClusterParams),
    responses(
        (status = 200, description = "What the cluster's page shows below its summary", body = ClusterOverview),
        super::doc::ReadErrors))]
pub async fn overview(
    _: MayReadCluster,
    State(overviews): State<Overviews>,
    path: ClusterPath,
) -> ApiResult<Json<ClusterOverview>> {
    overviews
        .overview(&path.namespace, &path.name)
        .await
        .map(Json)
        .ok_or_else(|| ApiError::no_cluster(&path.namespace, &path.name))
}

/// `GET /api/v1/clusters/events`: the clusters the requester may see, then their changes, as
/// server-sent events. (A cross-origin request never gets here: [`crate::security::csrf`].)
#[utoipa::path(get, path = "/clusters/events", tag = "clusters",
    responses((status = 200, description = "Server-sent events: `snapshot` (the list), then \
        `upsert` (a cluster) and `delete` (its namespace and name) as they happen; \
        `reconnect` when raydar shuts down", content_type = "text/event-stream", body = crate::push::ServerSentEvent)))]
pub async fn events(
    State(clusters): State<Clusters>,
    State(access): State<Access>,
    State(shutdown): State<CancellationToken>,
    Extension(user): Extension<User>,
) -> Response {
    sse::stream(changes(clusters, access, user), &shutdown)
}

/// The events for one follower: snapshot first, then changes, each kept to what `user` may see
/// (asked of Kubernetes as they come, answers cached briefly).
pub fn changes(
    clusters: Clusters,
    access: Access,
    user: User,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let changes = BroadcastStream::new(clusters.subscribe());
    let (c, a, u) = (clusters.clone(), access.clone(), user.clone());
    let first = async move { Some(snapshot(&c, &a, &u).await) };
    stream::once(first)
        .chain(changes.then(move |change| {
            let (clusters, access, user) = (clusters.clone(), access.clone(), user.clone());
            async move {
                let may = |verb: &'static str, namespace: &str| {
                    let (access, user, ask) =
                        (access.clone(), user.clone(), Ask::rayclusters(verb, namespace));
                    async move { access.may(&user, &ask).await }
                };
                match change {
                    Ok(ClusterChange::Upsert(mut row)) => {
                        if !may("list", &row.namespace).await {
                            return None;
                        }
                        row.may_delete = may("delete", &row.namespace).await;
                        Some(json_event(push::UPSERT, &row))
                    }
                    Ok(ClusterChange::Delete(gone)) => {
                        may("list", &gone.namespace).await.then(|| json_event(push::DELETE, &gone))
                    }
                    Ok(ClusterChange::Resync) | Err(BroadcastStreamRecvError::Lagged(_)) => {
                        Some(snapshot(&clusters, &access, &user).await)
                    }
                }
            }
        }))
        .filter_map(|event| async move { event })
}

async fn snapshot(clusters: &Clusters, access: &Access, user: &User) -> Result<Event, Infallible> {
    let mut list = clusters.snapshot();
    access
        .grants(user, list.clusters.iter().map(|c| c.namespace.clone()))
        .await
        .apply(&mut list.clusters);
    json_event(push::SNAPSHOT, &list)
}

/// `GET /api/v1/clusters/{namespace}/{name}/overview/events`: the cluster's overview now, then
/// whenever it changes (its pods or conditions as the watches see them, Ray's view and events as
/// they are read), as server-sent events; `gone` when the cluster is.
#[utoipa::path(get, path = "/clusters/{namespace}/{name}/overview/events", tag = "clusters",
    params(super::doc::ClusterParams),
    responses(
        (status = 200, description = "Server-sent events: `overview` (what the page shows below \
            the summary) first and at every change, `gone` when the cluster is deleted; \
            `reconnect` when raydar shuts down",
            content_type = "text/event-stream", body = crate::push::ServerSentEvent),
        super::doc::ReadErrors,
        (status = 503, description = "Too many clusters' pages are followed", body = ApiError)))]
pub async fn overview_events(
    _: MayReadCluster,
    State(overviews): State<Overviews>,
    State(access): State<Access>,
    State(shutdown): State<CancellationToken>,
    Extension(user): Extension<User>,
    path: ClusterPath,
) -> ApiResult<Response> {
    let followed = overviews.follow(&path.namespace, &path.name).await?;
    let ask = Ask::rayclusters("list", &path.namespace);
    let events = tokio_stream::wrappers::WatchStream::new(followed)
        // A permission taken away ends the stream at the next change (answers are cached 10 s).
        .take_while(move |_| {
            let (access, user, ask) = (access.clone(), user.clone(), ask.clone());
            async move { access.may(&user, &ask).await }
        })
        // `gone` is the last event.
        .scan(false, |ended, overview| {
            let next = (!*ended).then(|| {
                *ended = overview.is_none();
                match overview {
                    Some(o) => json_event(push::OVERVIEW, &ClusterOverview { now: unix_now(), ..o }),
                    None => json_event(push::GONE, &serde_json::json!({})),
                }
            });
            std::future::ready(next)
        });
    Ok(sse::stream(events, &shutdown))
}
