//! The RayClusters: the list and one cluster, the push stream open list pages follow, and a
//! cluster's page below its summary (pods, conditions, events, Ray's nodes and jobs).
//!
//! The push stream starts with a snapshot, then sends every change as it happens. A follower
//! that falls more than [`crate::sources::clusters::FEED_CAPACITY`] changes behind gets a fresh
//! snapshot instead of the changes it missed, so a slow browser never makes the server buffer
//! without bound.

use std::collections::BTreeMap;
use std::convert::Infallible;

use app::api::push;
use axum::extract::State;
use axum::response::sse::Event;
use axum::response::Response;
use axum::{Extension, Json};
use futures::stream::{self, Stream, StreamExt};
use platform::overview::ClusterOverview;
use platform::status::PhaseName;
use platform::{ClusterSummary, Stale};
use serde::{Deserialize, Serialize};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_util::sync::CancellationToken;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ClusterPath, Query};
use crate::overview::Overviews;
use crate::push::{self as sse, json_event};
use crate::security::access::MayReadCluster;
use crate::security::{Access, Ask, User};
use crate::sources::clusters::{Filter, Order};
use crate::sources::{ClusterChange, Clusters};
use crate::unix_now;

/// A page of the clusters the requester may see.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterItems {
    /// In the order asked for (by namespace and name unless `sort` says otherwise).
    pub items: Vec<ClusterSummary>,
    /// The `cursor` of the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Clusters that match the filters, over all pages.
    pub total: usize,
    /// Clusters that match in each phase, the `phase` filter aside.
    pub phases: BTreeMap<String, usize>,
    /// Set while the Kubernetes API does not answer: the page is what it last said, not empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<Stale>,
}

/// Filters (each one given must match), order and paging of `GET /api/v1/clusters`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only clusters in this namespace.
    namespace: Option<String>,
    /// Only clusters of this team (their `raydar.dev/team` label).
    team: Option<String>,
    /// Only clusters of this person (their `raydar.dev/owner` label).
    owner: Option<String>,
    /// Only clusters launched from this template (their `raydar.dev/template` label).
    template: Option<String>,
    /// Only clusters in this phase.
    #[param(inline)]
    phase: Option<PhaseName>,
    /// Only clusters whose namespace, name, team, owner or template contains this text, in any
    /// case.
    q: Option<String>,
    /// `name` (by namespace, then name: the default), `newest` (newest first) or `gpus` (most
    /// GPUs first).
    #[param(inline)]
    sort: Option<Sort>,
    /// Most clusters on a page (default 500).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Where to go on: the `next` of the page before, with the same filters and sort.
    #[param(pattern = r"^-?[0-9]{1,20}:[^:]*:[^:]*$")]
    cursor: Option<String>,
}

/// The order of a list.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Sort {
    Name,
    Newest,
    Gpus,
}

/// Clusters on a page when `limit` is not given, and at most.
const PAGE: (u32, u32) = (500, 1000);

impl ListQuery {
    /// The filter, order and page size asked for, or 400 naming the parameter that is wrong.
    fn parse(self) -> ApiResult<(Filter, Order, usize, Option<String>)> {
        let phase = self.phase.map(PhaseName::label);
        let order = match self.sort {
            None | Some(Sort::Name) => Order::Name,
            Some(Sort::Newest) => Order::Newest,
            Some(Sort::Gpus) => Order::Gpus,
        };
        let limit = self.limit.unwrap_or(PAGE.0);
        if !(1..=PAGE.1).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit {limit} is not from 1 to {}",
                PAGE.1
            )));
        }
        let filter = Filter {
            namespace: self.namespace,
            team: self.team,
            owner: self.owner,
            template: self.template,
            phase,
            text: self.q.map(|q| q.to_lowercase()).filter(|q| !q.is_empty()),
        };
        Ok((filter, order, limit as usize, self.cursor))
    }
}

/// `GET /api/v1/clusters`: the RayClusters the requester may see (they may list RayClusters in
/// its namespace), filtered, sorted and a page at a time.
#[utoipa::path(get, path = "/clusters", tag = "clusters", params(ListQuery),
    responses(
        (status = 200, description = "A page of the clusters the requester may see", body = ClusterItems),
        (status = 400, description = "A filter, sort, limit or cursor that is not allowed", body = ApiError)))]
pub async fn list(
    State(clusters): State<Clusters>,
    State(access): State<Access>,
    Extension(user): Extension<User>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<ClusterItems>> {
    let (filter, order, limit, cursor) = query.parse()?;
    let grants = access.grants(&user, clusters.namespaces()).await;
    let page = clusters
        .page(&filter, order, limit, cursor.as_deref(), &grants.read)
        .map_err(ApiError::bad_request)?;
    let mut items = page.items;
    for row in &mut items {
        row.may_delete = grants.delete.contains(&row.namespace);
    }
    let stale = clusters.stale();
    Ok(Json(ClusterItems { items, next: page.next, total: page.total, phases: page.phases, stale }))
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
        `upsert` (a cluster) and `delete` (its namespace and name) as they happen; a `snapshot` \
        again when the Kubernetes API stops answering (with `staleSince` and `staleReason`) and \
        when it answers again (without); \
        `reconnect` when raydar shuts down", content_type = "text/event-stream", body = crate::push::ServerSentEvent),
        super::doc::StreamErrors))]
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
                    // A snapshot says the list is stale, and a later one that it is live again.
                    Ok(ClusterChange::Resync | ClusterChange::Unanswered(_))
                    | Err(BroadcastStreamRecvError::Lagged(_)) => {
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
        super::doc::StreamErrors))]
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
