//! GPU routes: a cluster's GPUs now and its charts, and the fleet.

use std::collections::BTreeSet;
use std::time::Duration;

use app::api::push;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use platform::utilization::{Chart, ClusterGpus, Fleet, FleetContext, Window};
use serde::Deserialize;
use tokio_stream::wrappers::{BroadcastStream, WatchStream};
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;

use crate::contexts;
use crate::error::{ApiError, ApiResult};
use crate::extract::{check_cluster, Path, Query};
use crate::gpus::charts::{self, Theme};
use crate::gpus::GpuMetrics;
use crate::lifecycle::IdlePlan;
use crate::push::{changes_only, json_event};
use crate::ray::RayMetrics;
use crate::security::access::MayReadCluster;
use crate::security::{Access, User};
use crate::sources::Clusters;
use crate::supervisor::SourceStatus;

/// What the GPU routes use: cheap to clone.
#[derive(Clone)]
pub struct Gpus {
    /// The GPU history.
    pub metrics: GpuMetrics,
    /// Ray's own metrics of a head.
    pub ray: RayMetrics,
    /// The watched clusters.
    pub clusters: Clusters,
    /// How the sources are: GPU pages say when theirs is down.
    pub sources: SourceStatus,
    /// The clusters idle by their template's policy.
    pub idle: IdlePlan,
}

/// The sources GPU pages show the data of: the GPU readings (one of the two) and the Ray pods
/// they are attributed through.
const GPU_SOURCES: [&str; 3] = ["exporters", "prometheus", "pods"];

impl Gpus {
    /// What the GPU pages say is wrong besides the last round's errors: their sources that are
    /// down (the numbers shown are then the last ones read).
    fn sources_down(&self) -> Vec<String> {
        self.sources.down_of(|name| GPU_SOURCES.contains(&name))
    }
}

/// `GET /api/v1/clusters/{namespace}/{name}/gpus`: the cluster's GPUs now and what Ray says.
#[utoipa::path(get, path = "/clusters/{namespace}/{name}/gpus", tag = "gpus",
    params(super::doc::ClusterParams),
    responses(
        (status = 200, description = "The cluster's GPUs now, and Ray's own view", body = ClusterGpus),
        super::doc::ReadErrors))]
pub async fn cluster(
    _: MayReadCluster,
    State(gpus): State<Gpus>,
    path: crate::extract::ClusterPath,
) -> ApiResult<Json<ClusterGpus>> {
    Ok(Json(panel(&gpus, &path.namespace, &path.name).await?))
}

/// A cluster's GPU panel: its GPUs now, and Ray's metrics (or why there are none).
pub async fn panel(gpus: &Gpus, namespace: &str, name: &str) -> ApiResult<ClusterGpus> {
    let summary =
        gpus.clusters.get(namespace, name).ok_or_else(|| ApiError::no_cluster(namespace, name))?;
    let mut panel = gpus.metrics.cluster(namespace, name, summary.gpus_desired);
    panel.errors.extend(gpus.sources_down());
    panel.reclaim = gpus.idle.of(namespace, name, panel.now);
    match gpus.ray.usage(namespace, name).await {
        Ok(usage) => panel.ray = Some(usage),
        Err(why) => panel.ray_error = Some(why),
    }
    Ok(panel)
}

/// The chart's query: `?window=15m|1h|6h&theme=light|dark`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChartQuery {
    /// How far back: `15m` (the default), `1h` or `6h`.
    #[param(pattern = "^(15m|1h|6h)$")]
    window: Option<String>,
    /// `light` (the default) or `dark`.
    #[param(pattern = "^(light|dark)$")]
    theme: Option<String>,
}

/// `GET /api/v1/clusters/{namespace}/{name}/gpus/{chart}`: one chart (`util.svg`, `memory.svg`,
/// `power.svg`) as SVG.
#[utoipa::path(get, path = "/clusters/{namespace}/{name}/gpus/{chart}", tag = "gpus",
    params(super::doc::ClusterParams,
        ("chart" = String, Path, pattern = "^(util|memory|power)(\\.svg)?$",
            description = "`util.svg`, `memory.svg` or `power.svg`"),
        ChartQuery),
    responses(
        (status = 200, description = "The chart", content_type = "image/svg+xml", body = String),
        (status = 422, description = "No such chart, window or theme", body = ApiError),
        super::doc::ReadErrors))]
pub async fn chart(
    _: MayReadCluster,
    State(gpus): State<Gpus>,
    Path((namespace, name, file)): Path<(String, String, String)>,
    Query(query): Query<ChartQuery>,
) -> ApiResult<Response> {
    check_cluster(&namespace, &name)?;
    let parsed = (|| {
        let chart = Chart::parse(file.strip_suffix(".svg").unwrap_or(&file))?;
        let window = query.window.as_deref().map(Window::parse).transpose()?.unwrap_or_default();
        let theme = query.theme.as_deref().map(Theme::parse).transpose()?.unwrap_or(Theme::Light);
        Ok::<_, String>((chart, window, theme))
    })();
    let (chart, window, theme) =
        parsed.map_err(|why| ApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, why))?;
    if gpus.clusters.get(&namespace, &name).is_none() {
        return Err(ApiError::no_cluster(&namespace, &name));
    }
    let data = gpus.metrics.chart(&namespace, &name, chart, window);
    let svg = charts::render(&data, theme)
        .map_err(|why| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, why))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
            // An image never runs script; this says so to anyone who opens it on its own.
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'"),
        ],
        svg,
    )
        .into_response())
}

/// `GET /api/v1/gpus`: the fleet of a Kubernetes cluster (`?context=`), over the clusters the
/// requester may see; with several served, each one's totals too.
#[utoipa::path(get, path = "/gpus", tag = "gpus",
    responses((status = 200, description = "GPUs requested, held, busy and idle by cluster and \
        team; with several Kubernetes clusters served, each one's totals (`contexts`)", body = Fleet)))]
pub async fn fleet(
    State(gpus): State<Gpus>,
    State(access): State<Access>,
    State(every): State<contexts::Fleet>,
    Extension(user): Extension<User>,
) -> Json<Fleet> {
    let grants = access.grants(&user, gpus.clusters.namespaces()).await;
    Json(with_totals(fleet_for(&gpus, &grants.read), &every, &user).await)
}

/// The fleet over the clusters in namespaces `readable`.
pub fn fleet_for(gpus: &Gpus, readable: &BTreeSet<String>) -> Fleet {
    let clusters =
        gpus.clusters.list().into_iter().filter(|c| readable.contains(&c.namespace)).collect();
    let mut fleet = gpus.metrics.fleet(clusters);
    fleet.errors.extend(gpus.sources_down());
    fleet.reclaims = gpus.idle.show(fleet.now, |namespace| readable.contains(namespace));
    fleet.context = gpus.clusters.context().to_owned();
    fleet
}

/// `fleet` (this Kubernetes cluster's) with each cluster's GPUs added up, over the Ray clusters
/// `user` may see on it (its own RBAC), when raydar serves several; as it is when it serves one.
/// This cluster's line is `fleet`'s own, not worked out again.
pub async fn with_totals(mut fleet: Fleet, every: &contexts::Fleet, user: &User) -> Fleet {
    let planes = every.planes();
    if planes.len() < 2 {
        return fleet;
    }
    // Each asked at once: the slowest to answer who may see what sets the time, not their sum.
    let totals = planes.iter().map(|plane| {
        let fleet = &fleet;
        async move {
            if plane.name == fleet.context {
                return FleetContext::of(&plane.name, fleet);
            }
            let grants = plane.access_now().grants(user, plane.clusters.namespaces()).await;
            FleetContext::of(&plane.name, &fleet_for(&plane.gpus, &grants.read))
        }
    });
    let totals = futures::future::join_all(totals).await;
    fleet.contexts = totals;
    fleet
}

/// `GET /api/v1/clusters/{namespace}/{name}/gpus/events`: the cluster's GPUs now, then after
/// every scrape (or Prometheus query) that changed them, as server-sent events.
#[utoipa::path(get, path = "/clusters/{namespace}/{name}/gpus/events", tag = "gpus",
    params(super::doc::ClusterParams),
    responses(
        (status = 200, description = "Server-sent events: `gpus` (the cluster's GPUs now, and \
            Ray's own view) first and after every scrape that changed them, `gone` when the \
            cluster is deleted; `reconnect` when raydar shuts down",
            content_type = "text/event-stream", body = crate::push::ServerSentEvent),
        super::doc::ReadErrors,
        super::doc::StreamErrors))]
pub async fn cluster_events(
    _: MayReadCluster,
    State(gpus): State<Gpus>,
    State(shutdown): State<CancellationToken>,
    path: crate::extract::ClusterPath,
) -> ApiResult<Response> {
    let first = panel(&gpus, &path.namespace, &path.name).await?;
    let rounds = WatchStream::from_changes(gpus.metrics.rounds());
    let later = rounds.then(move |_| {
        let (gpus, ns, name) = (gpus.clone(), path.namespace.clone(), path.name.clone());
        async move { panel(&gpus, &ns, &name).await.ok() }
    });
    let panels = futures::stream::once(async { Some(first) }).chain(later);
    let events =
        changes_only(panels, |p| ClusterGpus { now: 0, ..p.clone() }).map(|panel| match panel {
            Some(panel) => json_event(push::GPUS, &panel),
            None => json_event(push::GONE, &serde_json::json!({})),
        });
    Ok(crate::push::stream(events, &shutdown))
}

/// `GET /api/v1/gpus/events`: the fleet over the clusters the requester may see, then whenever a
/// scrape or a cluster changed it, as server-sent events.
#[utoipa::path(get, path = "/gpus/events", tag = "gpus",
    responses((status = 200, description = "Server-sent events: `fleet` first and whenever a \
        scrape or a cluster changed it; `reconnect` when raydar shuts down",
        content_type = "text/event-stream", body = crate::push::ServerSentEvent),
        super::doc::StreamErrors))]
pub async fn fleet_events(
    State(gpus): State<Gpus>,
    State(access): State<Access>,
    State(every): State<contexts::Fleet>,
    State(shutdown): State<CancellationToken>,
    Extension(user): Extension<User>,
) -> Response {
    // This Kubernetes cluster's scrapes and clusters; with several, the others' too (their totals).
    let others = every.planes().iter().filter(|p| p.name != gpus.clusters.context());
    let sources: Vec<&Gpus> = std::iter::once(&gpus).chain(others.map(|p| &p.gpus)).collect();
    let changes = futures::stream::select_all(sources.into_iter().flat_map(|gpus| {
        let rounds = WatchStream::from_changes(gpus.metrics.rounds()).map(|_| ()).boxed();
        let clusters = BroadcastStream::new(gpus.clusters.subscribe()).map(|_| ()).boxed();
        [rounds, clusters]
    }));
    // A burst of changes (a relist, a launch's pods) is one new fleet, at most one a second.
    let triggers = changes
        .ready_chunks(1024)
        .then(|_| async { tokio::time::sleep(Duration::from_millis(FLEET_SETTLE_MS)).await });
    let fleets = futures::stream::once(async {}).chain(triggers).then(move |()| {
        let (gpus, access, every, user) =
            (gpus.clone(), access.clone(), every.clone(), user.clone());
        async move {
            let grants = access.grants(&user, gpus.clusters.namespaces()).await;
            Some(with_totals(fleet_for(&gpus, &grants.read), &every, &user).await)
        }
    });
    let events = changes_only(fleets, |f| Fleet { now: 0, ..f.clone() })
        .filter_map(|fleet| std::future::ready(fleet.map(|f| json_event(push::FLEET, &f))));
    crate::push::stream(events, &shutdown)
}

/// How long the fleet's stream waits after a change for the rest of its burst.
const FLEET_SETTLE_MS: u64 = 250;
