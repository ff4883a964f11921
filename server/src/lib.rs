//! raydar-server: watches KubeRay RayClusters and serves raydar's web UI, REST API and live
//! pushes from what it watched.
//!
//! Data flows one way: background sources (Kubernetes watches, GPU scrapes) fill in-memory
//! stores; pages and API handlers read the stores; changes reach browsers by server-sent events,
//! never by the browser polling. Actions go the other way, to Kubernetes as the requester.
//!
//! [`start`] builds every store and starts every source under a [`Supervisor`]; [`run`] serves
//! the routes until shutdown, then ends open streams and stops the sources.
//!
//! # Layout
//!
//! - [`config`]: flags and `RAYDAR_…` variables (clap).
//! - [`contexts`]: the Kubernetes clusters served (`--contexts`), each with every source of its
//!   own; requests pick one with `?context=`.
//! - [`state`]: [`AppState`], the handles handlers read, each taken on its own (`FromRef`).
//! - [`router`]: every route and layer; the OpenAPI description is collected as the API is routed.
//! - [`error`]: [`ApiError`], the one error answer of the API.
//! - [`supervisor`]: runs the sources, restarts a failed one with backoff, reports each.
//! - [`sources`]: the background sources, one module each: clusters, templates, Ray pods,
//!   dcgm-exporters, Prometheus; and the watch loop they share, which keeps a projection of each
//!   object rather than the object.
//! - [`api`]: the handlers, one file per resource: clusters, actions, templates, logs, gpus, ray,
//!   ops (health, readiness, metrics, session); the pages' context; the description.
//! - [`extract`]: extractors that answer with an [`ApiError`], and the check that keeps a path
//!   segment that cannot be a Kubernetes name from reaching Kubernetes (access reviews included).
//! - [`security`]: identity, access (impersonation, access reviews), CSRF, security headers,
//!   action limits, the audit trail.
//! - [`list`]: lists of clusters as people ask for them (filters, order, pages), and the push
//!   stream of one open list page.
//! - [`logs`]: live logs: one upstream per log shared by its viewers through a bounded ring;
//!   line splitting; the job and pod upstreams.
//! - [`ray`]: reading Ray dashboards: how they are reached, with limits; the read allowlist; the
//!   job log tail; Ray's own metrics.
//! - [`gpus`]: the GPU history and what pages make of it; its SVG charts.
//! - [`history`]: what raydar remembers of clusters after they are gone, in its own database
//!   (SQLite or PostgreSQL), written through a bounded buffer that never holds up a live page.
//! - [`lifecycle`]: raydar acting on clusters on its own (expiry), one replica at a time (a
//!   Lease), as a reclaimer identity of its own.
//! - [`overview`]: a cluster page's events and Ray view, read in the background and cached.
//! - [`telemetry`]: OpenTelemetry traces over OTLP, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set;
//!   a request's span is the child of its caller's `traceparent`.
//! - [`cache`]: the small keyed cache those reads share.
//! - [`memory`]: the process's heap kept near what it holds (glibc's arenas capped, what a
//!   relist freed handed back).
//! - [`metrics`]: what raydar measures of itself (request and database call durations, counts
//!   by label), bounded, for `/metrics`.
//! - [`push`]: server-sent event streams: keep-alive, JSON events, the goodbye on shutdown.

// The list page's typed view, rendered here, nests past the default of 128.
#![recursion_limit = "256"]

pub mod api;
pub mod cache;
pub mod config;
pub mod contexts;
pub mod error;
pub mod extract;
pub mod gpus;
pub mod history;
pub mod lifecycle;
pub mod list;
pub mod logs;
pub mod memory;
pub mod metrics;
pub mod overview;
pub mod push;
pub mod ray;
pub mod router;
pub mod security;
pub mod sources;
pub mod state;
pub mod supervisor;
pub mod telemetry;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kube::Client;
use leptos::config::LeptosOptions;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::ApiError;
pub use router::{ops_router, router, serve};
pub use state::AppState;
pub use supervisor::Supervisor;

use gpus::GpuMetrics;
use history::events::EventLog;
use history::gpus::GpuRecorder;
use history::jobs::JobArchiver;
use history::{History, Observer};
use lifecycle::{Elector, IdleInputs, IdlePlan, JobActivity, LeaseTimeout, Lifecycle};
use logs::LogStreams;
use overview::Overviews;
use ray::{Dashboards, RayMetrics};
use security::{Access, ActionLimit, Audit, CsrfKey, StreamLimit, TokenReviews};
use sources::{Clusters, Exporters, NodeCapacity, Prometheus, RayJobs, RayPods, Templates};

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable Kubernetes client configuration (kubeconfig or in-cluster).
    #[error(
        "cannot configure the Kubernetes client: {0} (set KUBECONFIG or run inside a cluster)"
    )]
    KubeConfig(#[source] kube::Error),
    /// The history database cannot be set up (its folder cannot be made).
    #[error("cannot keep history: {0}")]
    History(String),
    /// The reclaimer's identity cannot be taken.
    #[error("cannot act on clusters: {0}")]
    Lifecycle(String),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Seconds since the Unix epoch by the server's clock.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs() as i64
}

/// Milliseconds since the Unix epoch by the server's clock.
pub fn unix_now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as i64
}

/// What one raydar keeps once, however many Kubernetes clusters it serves: its history, the key
/// of its CSRF tokens, the limits that hold per person (actions, event streams, downloads) and
/// its request timings.
#[derive(Clone)]
pub struct Shared {
    history: History,
    csrf: CsrfKey,
    limit: ActionLimit,
    streams: StreamLimit,
    downloads: api::logs::Downloads,
    requests: metrics::RequestTimes,
    fleet: contexts::Fleet,
}

impl Shared {
    /// Opens history for `config`; fails only when its folder cannot be made (a database that
    /// does not answer is waited for in the background).
    pub fn new(config: &Config) -> Result<Shared> {
        let history = History::open(&config.history).map_err(Error::History)?;
        if history.shared() && config.session_secret.is_none() {
            tracing::warn!(
                "history is in PostgreSQL, which several replicas share, but --session-secret is unset: \
                 each replica signs CSRF tokens with its own key, so a page that moves to another \
                 replica is refused writes until it reloads; give every replica the same secret"
            );
        }
        Ok(Shared {
            history,
            csrf: match &config.session_secret {
                Some(secret) => CsrfKey::from_secret(secret),
                None => CsrfKey::generate(),
            },
            limit: ActionLimit::new(config.action_rate),
            streams: StreamLimit::new(config.event_streams, config.event_streams_per_person),
            downloads: api::logs::Downloads::new(config.log_downloads),
            requests: metrics::RequestTimes::default(),
            fleet: contexts::Fleet::default(),
        })
    }
}

/// One Kubernetes cluster to serve: the name requests pick it by, its namespaces, its client,
/// its apiserver's address (for messages) and where its GPU readings come from.
pub struct Plane {
    pub name: String,
    pub scope: config::Scope,
    pub kube: Client,
    pub apiserver: String,
    pub gpus: config::GpuSettings,
}

/// The one Kubernetes cluster `kube` talks to (`apiserver` names it in messages), as `config`
/// says to serve it: [`start_planes`] with that one plane, watching `config.scope`.
pub fn start(
    config: &Config,
    kube: Client,
    apiserver: &str,
    shutdown: CancellationToken,
) -> Result<(AppState, Supervisor)> {
    let plane = Plane {
        name: contexts::HOME.to_owned(),
        scope: config.scope.clone(),
        kube,
        apiserver: apiserver.to_owned(),
        gpus: config.gpus.clone(),
    };
    let (mut states, mut supervisors) = start_planes(config, vec![plane], shutdown)?;
    Ok((states.remove(0).1, supervisors.remove(0)))
}

/// Every store for each of `planes` (the home one first), read from its Kubernetes cluster, and
/// every source that fills them, started under a supervisor per plane that stops them once
/// `shutdown` is cancelled; history, CSRF key and per-person limits are shared ([`Shared`]).
/// Each state answers the requests for its plane. Fails only when history cannot be set up at
/// all, or a plane's reclaimer identity cannot be taken.
pub fn start_planes(
    config: &Config,
    planes: Vec<Plane>,
    shutdown: CancellationToken,
) -> Result<Started> {
    let shared = Shared::new(config)?;
    let several = planes.len() > 1;
    let mut states = Vec::with_capacity(planes.len());
    let mut supervisors = Vec::with_capacity(planes.len());
    for (i, plane) in planes.into_iter().enumerate() {
        let mut supervisor = Supervisor::new(shutdown.clone());
        // Written by every plane, run once: by the home plane's supervisor.
        if i == 0 {
            supervise(&mut supervisor, "history", &shared.history, History::run);
        }
        let name = plane.name.clone();
        // History names a cluster's Kubernetes cluster; the home one's rows say "" (as every
        // row did before there were several).
        let context = if i == 0 { "" } else { name.as_str() };
        // Rows name their Kubernetes cluster when there are several to tell apart.
        let shown = if several { name.clone() } else { String::new() };
        let names = Names { history: context, shown };
        let state = start_plane(config, &shared, plane, names, &mut supervisor, shutdown.clone())?;
        states.push((name, state));
        supervisors.push(supervisor);
    }
    shared.fleet.set(
        states
            .iter()
            .map(|(name, state)| contexts::FleetPlane {
                name: name.clone(),
                clusters: state.clusters.clone(),
                pods: state.overviews.pods().clone(),
                rayjobs: state.rayjobs.clone(),
                gpus: axum::extract::FromRef::from_ref(state),
                access: state.access.clone(),
            })
            .collect(),
    );
    Ok((states, supervisors))
}

/// What [`start_planes`] starts: each plane's state by name, home first, and the supervisor of
/// each one's sources.
pub type Started = (Vec<(String, AppState)>, Vec<Supervisor>);

/// What a plane's clusters are called by: in history (`""` the home one) and in rows.
struct Names<'a> {
    history: &'a str,
    shown: String,
}

/// One plane's stores and sources, under `supervisor`; its clusters' history rows and list rows
/// name it as `names` says.
fn start_plane(
    config: &Config,
    shared: &Shared,
    plane: Plane,
    names: Names<'_>,
    supervisor: &mut Supervisor,
    shutdown: CancellationToken,
) -> Result<AppState> {
    let Plane { scope, kube, apiserver, gpus: settings, .. } = plane;
    let (scope, apiserver) = (&scope, apiserver.as_str());
    let history = shared.history.clone();
    let observer = Observer::new(history.sink.clone(), names.history);
    let clusters = Clusters::new(
        kube.clone(),
        apiserver.to_owned(),
        names.shown,
        scope.clone(),
        Some(observer),
    );
    let templates = Templates::new(kube.clone(), apiserver.to_owned());
    let sink = Some(history.sink.clone());
    let pods = RayPods::new(kube.clone(), apiserver.to_owned(), scope.clone(), sink);
    let rayjobs = RayJobs::new(kube.clone(), apiserver.to_owned(), scope.clone());
    let gpus = GpuMetrics::new(&settings);
    supervise(supervisor, "clusters", &clusters, Clusters::run);
    supervise(supervisor, "templates", &templates, Templates::run);
    supervise(supervisor, "pods", &pods, RayPods::run);
    supervise(supervisor, "rayjobs", &rayjobs, RayJobs::run);
    let capacity = NodeCapacity::new(kube.clone(), apiserver.to_owned(), scope.clone());
    supervise(supervisor, "capacity", &capacity, NodeCapacity::run);
    let events = EventLog::new(
        kube.clone(),
        scope.clone(),
        history.sink.clone(),
        clusters.clone(),
        pods.clone(),
    );
    supervise(supervisor, "events", &events, EventLog::run);
    let (elector, leadership) =
        Elector::new(kube.clone(), &config.lease_namespace, &config.lease_name, replica_identity());
    supervise(supervisor, "election", &elector, Elector::run);
    let reclaimer =
        Access::new(kube.clone()).client_for(&lifecycle::reclaimer()).map_err(Error::Lifecycle)?;
    let audit = Audit::new(kube.clone());
    let activity = JobActivity::default();
    let idle = IdlePlan::new(config.idle_reclaim);
    let lifecycle = Lifecycle::new(
        clusters.clone(),
        leadership.clone(),
        reclaimer,
        audit.clone(),
        history.sink.clone(),
        config.lease_timeout,
        IdleInputs { gpus: gpus.clone(), jobs: activity.clone(), plan: idle.clone() },
    );
    supervise(supervisor, "lifecycle", &lifecycle, Lifecycle::run);
    match settings.prometheus.clone() {
        Some(base) => {
            let source = Prometheus::new(
                base,
                settings.namespace,
                settings.interval_s,
                pods.clone(),
                gpus.clone(),
            );
            supervise(supervisor, "prometheus", &source, Prometheus::run);
        }
        None => {
            let source = Exporters::new(
                settings,
                kube.clone(),
                apiserver.to_owned(),
                pods.clone(),
                gpus.clone(),
            );
            supervise(supervisor, "exporters", &source, Exporters::run);
        }
    }
    // Ray dashboards are read through raydar's own client when by the apiserver's proxy, each
    // call within 10 s, 4 at once per cluster.
    let dashboards =
        Dashboards::new(config.ray_dashboard.clone(), kube.clone(), Duration::from_secs(10), 4);
    let logs = LogStreams::new(
        config.log_streams,
        config.log_buffer_lines,
        config.log_buffer_bytes,
        logs::LINGER,
    );
    let jobs = JobArchiver::new(
        clusters.clone(),
        dashboards.clone(),
        activity,
        logs.clone(),
        history.sink.clone(),
        history.store.clone(),
        history.job_log_bytes,
    );
    supervise(supervisor, "jobs", &jobs, JobArchiver::run);
    let gpu_use =
        GpuRecorder::new(gpus.clone(), clusters.clone(), history.sink.clone(), history.gpu_step);
    supervise(supervisor, "gpu-use", &gpu_use, GpuRecorder::run);
    let state = AppState {
        leptos: leptos_options(config),
        overviews: Overviews::new(
            clusters.clone(),
            pods,
            kube.clone(),
            dashboards.clone(),
            shutdown.clone(),
        ),
        ray_metrics: RayMetrics::new(dashboards.clone()),
        dashboards,
        logs,
        gpus,
        idle,
        authn: Arc::new(config.authn.clone()),
        tokens: TokenReviews::new(kube.clone(), config.token_audience.clone()),
        served_as: Arc::new(config.served_as.clone()),
        access: Access::new(kube.clone()),
        csrf: shared.csrf.clone(),
        limit: shared.limit.clone(),
        audit,
        leadership,
        lease_timeout: LeaseTimeout(config.lease_timeout),
        sources: supervisor.status(),
        shutdown,
        requests: shared.requests.clone(),
        header_timeout: config.header_timeout,
        streams: shared.streams.clone(),
        downloads: shared.downloads.clone(),
        fleet: shared.fleet.clone(),
        clusters,
        templates,
        rayjobs,
        capacity,
        history,
        kube,
    };
    Ok(state)
}

/// This replica's name in the Lease: its host, process and a random part (two processes of one
/// host, or a restarted one, are told apart).
fn replica_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "raydar".into());
    let mut random = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
    format!("{host}-{}-{:08x}", std::process::id(), u32::from_be_bytes(random))
}

/// Runs `source` (a handle whose `run` fills it) under `supervisor`, as `name`.
fn supervise<T, F, Fut>(supervisor: &mut Supervisor, name: &'static str, source: &T, run: F)
where
    T: Clone + Send + Sync + 'static,
    F: Fn(T, CancellationToken) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let source = source.clone();
    supervisor.spawn(name, move |shutdown| run(source.clone(), shutdown));
}

/// Leptos' settings for `config`.
fn leptos_options(config: &Config) -> LeptosOptions {
    LeptosOptions::builder()
        // tools/site.sh (and the Makefile) set the output name when building the server; tests
        // built by plain cargo serve pages without the browser bundle, under the same name.
        .output_name(option_env!("LEPTOS_OUTPUT_NAME").unwrap_or("raydar"))
        .site_root(config.site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(config.addr)
        .build()
}

/// Serves health, readiness and metrics alone ([`ops_router`]) on `listener` until `shutdown`.
pub async fn run_ops(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let header_timeout = state.header_timeout;
    serve(listener, ops_router(state), header_timeout, shutdown.cancelled_owned()).await
}

/// How long open requests may take to finish after shutdown begins; event streams end at once.
pub const GRACE: Duration = Duration::from_millis(4000);
/// How long the sources may take to stop after the last request.
const SOURCES_STOP: Duration = Duration::from_millis(500);

/// Serves `state`'s routes on `listener` until `shutdown` is cancelled: [`run_planes`] with one.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    supervisor: Supervisor,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    run_planes(listener, vec![(contexts::HOME.to_owned(), state)], vec![supervisor], shutdown).await
}

/// Serves the routes of `planes` (each request by the plane it names, [`router::planes_router`])
/// on `listener` until `shutdown` is cancelled: then no new connection is taken, every event
/// stream ends with a `reconnect` event, open requests are answered (for at most [`GRACE`]),
/// and the sources of every plane stop.
pub async fn run_planes(
    listener: tokio::net::TcpListener,
    planes: Vec<(String, AppState)>,
    supervisors: Vec<Supervisor>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let header_timeout = planes.first().map_or(Duration::from_secs(10), |(_, s)| s.header_timeout);
    let routes = router::planes_router(planes);
    let served = serve(listener, routes, header_timeout, shutdown.clone().cancelled_owned());
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(GRACE).await;
    };
    tokio::select! {
        served = served => served?,
        () = deadline => tracing::warn!("requests still open {GRACE:?} after shutdown began; leaving them"),
    }
    futures::future::join_all(supervisors.into_iter().map(|s| s.join(SOURCES_STOP))).await;
    Ok(())
}
