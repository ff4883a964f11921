//! The RayClusters: the list and one cluster, the push stream open list pages follow, and a
//! cluster's page below its summary (pods, conditions, events, Ray's nodes and jobs).
//!
//! The push stream starts with a snapshot, then sends every change as it happens. A follower
//! that falls more than [`crate::sources::clusters::FEED_CAPACITY`] changes behind gets a fresh
//! snapshot instead of the changes it missed, so a slow browser never makes the server buffer
//! without bound.

use std::collections::BTreeMap;

use app::api::{push, ListCounts, PHASES};
use axum::extract::State;
use axum::response::Response;
use axum::{Extension, Json};
use futures::StreamExt;
use platform::overview::ClusterOverview;
use platform::status::PhaseName;
use platform::waiting::Waiting;
use platform::{ClusterSummary, Stale};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use utoipa::{IntoParams, ToSchema};

use super::contexts::ContextState;
use crate::contexts::Fleet;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClusterPath, Query};
use crate::list::{Filter, Order, View};
use crate::overview::Overviews;
use crate::push::{self as sse, json_event};
use crate::security::access::MayReadCluster;
use crate::security::{Access, Ask, User};
use crate::sources::Clusters;
use crate::unix_now;

/// A page of the clusters the requester may see.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterItems {
    /// In the order asked for (by namespace and name unless `sort` says otherwise; of several
    /// Kubernetes clusters, by their name last).
    pub items: Vec<ClusterSummary>,
    /// The `cursor` of the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Clusters that match the filters, over all pages.
    pub total: usize,
    /// Clusters that match in each phase (those with any), the `phase` filter aside.
    pub phases: BTreeMap<String, u64>,
    /// The GPUs the matching clusters request (a suspended cluster requests none).
    pub gpus: u64,
    /// Set while the Kubernetes API does not answer: the page is what it last said, not empty.
    /// (Of several Kubernetes clusters, each one's is in `contexts`.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<Stale>,
    /// Of a list of several Kubernetes clusters (`context=*`): each one, and whether it answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contexts: Option<Vec<ContextState>>,
}

impl ClusterItems {
    /// A page of `items` with its `counts`, as the API answers it.
    pub fn of(items: Vec<ClusterSummary>, counts: ListCounts, stale: Option<Stale>) -> Self {
        let phases = PHASES
            .iter()
            .zip(counts.phases)
            .filter(|(_, n)| *n > 0)
            .map(|(phase, n)| ((*phase).to_owned(), n))
            .collect();
        ClusterItems {
            items,
            next: counts.next,
            total: counts.total as usize,
            phases,
            gpus: counts.gpus,
            stale,
            contexts: None,
        }
    }
}

/// Filters (each one given must match), order and paging of `GET /api/v1/clusters` and of its
/// push stream.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only clusters in this namespace.
    namespace: Option<String>,
    /// Only the cluster of this name (one per namespace).
    name: Option<String>,
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
    /// Most clusters on a page (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Where to go on: the `next` of the page before, with the same filters and sort.
    #[param(pattern = r"^-?[0-9]{1,20}:[^:]*:[^:]*(:[^:]*)?$")]
    cursor: Option<String>,
}

/// Which Kubernetes cluster `GET /api/v1/clusters` and its push stream list.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContextQuery {
    /// The Kubernetes cluster to list (a name `GET /api/v1/contexts` lists; default the home
    /// one), or `*` for every one, each row naming its own.
    #[param(pattern = r"^(\*|[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$")]
    pub context: Option<String>,
}

/// What `context` takes for every Kubernetes cluster at once.
pub use app::api::ALL_CONTEXTS;

/// The order of a list.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Sort {
    Name,
    Newest,
    Gpus,
}

/// Clusters on a page when `limit` is not given (a screenful or two), and at most.
const PAGE: (u32, u32) = (100, 1000);

impl ListQuery {
    /// The query in `uri`, or 400 naming the parameter that is wrong.
    pub fn of(uri: &axum::http::Uri) -> ApiResult<ListQuery> {
        axum::extract::Query::try_from_uri(uri)
            .map(|q| q.0)
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }

    /// The parameters given, as a URL has them, in a fixed order, a `key\tvalue` line each
    /// ([`app::api::ClusterList::view`]): what a page makes its links from. Tabs and line breaks
    /// in a value are spaces.
    pub fn pairs(&self) -> String {
        let sort = self.sort.filter(|s| *s != Sort::Name).map(|s| match s {
            Sort::Name => "name",
            Sort::Newest => "newest",
            Sort::Gpus => "gpus",
        });
        [
            ("namespace", self.namespace.clone()),
            ("name", self.name.clone()),
            ("team", self.team.clone()),
            ("owner", self.owner.clone()),
            ("template", self.template.clone()),
            ("phase", self.phase.map(|p| p.label().to_owned())),
            ("q", self.q.clone()),
            ("sort", sort.map(str::to_owned)),
            ("limit", self.limit.map(|l| l.to_string())),
            ("cursor", self.cursor.clone()),
        ]
        .into_iter()
        .filter_map(|(k, v)| {
            let v = v.filter(|v| !v.is_empty())?.replace(['\t', '\n', '\r'], " ");
            Some(format!("{k}\t{v}\n"))
        })
        .collect()
    }

    /// The view asked for, or 400 naming the parameter that is wrong.
    pub fn view(self) -> ApiResult<View> {
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
            name: self.name,
            team: self.team,
            owner: self.owner,
            template: self.template,
            phase,
            text: self.q.map(|q| q.to_lowercase()).filter(|q| !q.is_empty()),
        };
        View::new(filter, order, limit as usize, self.cursor.as_deref())
            .map_err(ApiError::bad_request)
    }
}

/// `GET /api/v1/clusters`: the RayClusters the requester may see (they may list RayClusters in
/// its namespace), filtered, sorted and a page at a time.
#[utoipa::path(get, path = "/clusters", tag = "clusters", params(ListQuery, ContextQuery),
    responses(
        (status = 200, description = "A page of the clusters the requester may see", body = ClusterItems),
        (status = 400, description = "A filter, sort, limit or cursor that is not allowed", body = ApiError),
        (status = 404, description = "No Kubernetes cluster is called `context` here", body = ApiError)))]
pub async fn list(
    State(clusters): State<Clusters>,
    State(access): State<Access>,
    State(fleet): State<Fleet>,
    Extension(user): Extension<User>,
    Query(query): Query<ListQuery>,
    Query(of): Query<ContextQuery>,
) -> ApiResult<Json<ClusterItems>> {
    let every_context = of.context.as_deref() == Some(ALL_CONTEXTS);
    let view = query.view()?;
    if every_context {
        return Ok(Json(super::contexts::all_clusters(&fleet, &user, &view).await));
    }
    let grants = access.grants(&user, clusters.namespaces()).await;
    let page = clusters.page(&view, &grants);
    Ok(Json(ClusterItems::of(page.items, page.counts, clusters.stale())))
}

/// One cluster: its row of the list, and how its start is going.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterState {
    #[serde(flatten)]
    pub summary: ClusterSummary,
    /// The stages of its start (created → pods scheduled → containers running → Ray head
    /// answering → workers joined → Ready), how long each took or has taken, and, for the one it
    /// is in, what holds it, in words. Absent while it is suspended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
}

/// `GET /api/v1/clusters/{namespace}/{name}`: one RayCluster and how its start is going, or 404.
#[utoipa::path(get, path = "/clusters/{namespace}/{name}", tag = "clusters",
    params(super::doc::ClusterParams),
    responses(
        (status = 200, description = "The cluster", body = ClusterState),
        super::doc::ReadErrors))]
pub async fn get(
    _: MayReadCluster,
    State(clusters): State<Clusters>,
    State(overviews): State<Overviews>,
    path: ClusterPath,
) -> ApiResult<Json<ClusterState>> {
    let Some(summary) = clusters.get(&path.namespace, &path.name) else {
        return Err(ApiError::not_found(format!("RayCluster {} not found", path.id())));
    };
    // Read from the page's caches: events and Ray's view at most a couple of seconds old.
    let overview = overviews.overview(&path.namespace, &path.name).await;
    Ok(Json(ClusterState { summary, waiting: overview.and_then(|o| o.waiting) }))
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

/// `GET /api/v1/clusters/events`: a page of the clusters the requester may see (the same
/// filters, order and paging as the list), then its changes, as server-sent events. (A
/// cross-origin request never gets here: [`crate::security::csrf`].)
#[utoipa::path(get, path = "/clusters/events", tag = "clusters", params(ListQuery, ContextQuery),
    responses((status = 200, description = "Server-sent events: `snapshot` (the page: `clusters`, \
        `counts` and the server's clock `now`) first; then `upsert` (a cluster on the page that \
        changed in place), `counts` (only how many match changed: at most once a second) and \
        `snapshot` again whenever a cluster comes onto the page, leaves it or moves (at once, then \
        at most ten times a second); a `snapshot` also when the Kubernetes API stops answering (with \
        `staleSince` and `staleReason`) and when it answers again (without); `reconnect` when \
        raydar shuts down. Of every Kubernetes cluster (`context=*`), only `snapshot`s: the merged \
        page whenever it changed, at most ten times a second", content_type = "text/event-stream", body = crate::push::ServerSentEvent),
        (status = 400, description = "A filter, sort, limit or cursor that is not allowed", body = ApiError),
        (status = 404, description = "No Kubernetes cluster is called `context` here", body = ApiError),
        super::doc::StreamErrors))]
pub async fn events(
    State(clusters): State<Clusters>,
    State(access): State<Access>,
    State(fleet): State<Fleet>,
    State(shutdown): State<CancellationToken>,
    Extension(user): Extension<User>,
    Query(query): Query<ListQuery>,
    Query(of): Query<ContextQuery>,
) -> ApiResult<Response> {
    let view = query.view()?;
    if of.context.as_deref() == Some(ALL_CONTEXTS) {
        let events = crate::list::feed::follow_every(fleet, user, view);
        return Ok(sse::stream(events, &shutdown));
    }
    Ok(sse::stream(crate::list::feed::follow(clusters, access, fleet, user, view), &shutdown))
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
