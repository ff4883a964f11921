//! What operators and scripts ask of raydar itself: health, readiness, its own metrics, who it
//! takes the requester to be, and the API's description.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use platform::status::format_age;
use serde::Serialize;
use utoipa::ToSchema;

use crate::contexts::{Fleet, FleetPlane};
use crate::lifecycle::IdlePlan;
use crate::logs::LogStreams;
use crate::metrics::{label, Counters, Histograms, RequestTimes};
use crate::security::{CsrfKey, StreamLimit, User};
use crate::sources::{Clusters, RayJobs, RayPods, Templates, WatchHealth};
use crate::supervisor::SourceStatus;
use crate::unix_now;

/// Who raydar takes the requester to be.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The user name Kubernetes knows them by.
    pub user: String,
    /// Their email, when the authenticating proxy sends one.
    pub email: Option<String>,
    /// Their groups.
    pub groups: Vec<String>,
    /// Their team: the first group that is not one of Kubernetes' own.
    pub team: String,
    /// What their writes carry in `X-CSRF-Token`.
    pub csrf_token: String,
}

/// `GET /api/v1/session`: who raydar takes the requester to be, and the CSRF token their writes
/// carry (for scripts; pages have it in a meta tag).
#[utoipa::path(get, path = "/session", tag = "session",
    responses((status = 200, description = "The requester", body = Session)))]
pub async fn session(
    State(csrf): State<CsrfKey>,
    Extension(user): Extension<User>,
) -> Json<Session> {
    Json(Session {
        csrf_token: csrf.token(&user),
        team: user.team(),
        user: user.name,
        email: user.email,
        groups: user.groups,
    })
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// What `/readyz` reads: the watches and every supervised source.
#[derive(Clone)]
pub struct Readiness {
    /// The RayCluster watch, which every page needs.
    pub clusters: Clusters,
    /// The template watch, which the launch form needs.
    pub templates: Templates,
    /// The Ray pod watch, which cluster pages and GPU attribution need.
    pub pods: RayPods,
    /// The RayJob watch.
    pub rayjobs: RayJobs,
    /// The supervised sources.
    pub sources: SourceStatus,
}

/// `GET /readyz`: ready once the RayCluster watch has listed every cluster, while the watches
/// are answered and no source is down; otherwise 503 naming each thing that is wrong: an
/// unreachable apiserver (and for how long), a missing CRD, a source that failed and is waiting
/// to start again. Pages keep serving what was last seen meanwhile, marked stale; a replica
/// that cannot see the apiserver is not ready for traffic another replica can serve better.
pub async fn readyz(State(ready): State<Readiness>) -> Response {
    let mut problems = Vec::new();
    let clusters = ready.clusters.health();
    if !clusters.synced() {
        let why = clusters.last_error();
        problems.push(why.unwrap_or_else(|| "RayCluster watch has not synced yet".into()));
    }
    let watches = [
        ("RayCluster", clusters),
        ("RayClusterTemplate", ready.templates.health()),
        ("Ray pod", ready.pods.health()),
        ("RayJob", ready.rayjobs.health()),
    ];
    for (watch, health) in watches {
        if let Some(stale) = health.stale().filter(|_| health.synced()) {
            let age = format_age(unix_now() - stale.since);
            problems.push(format!("{watch} watch not answered for {age}: {}", stale.reason));
        }
    }
    problems.extend(ready.sources.down());
    if problems.is_empty() {
        return "ready\n".into_response();
    }
    (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", problems.join("; ")))
        .into_response()
}

/// What `/metrics` reads.
#[derive(Clone)]
pub struct Metered {
    /// The RayCluster watch and its followers.
    pub clusters: Clusters,
    /// The template watch.
    pub templates: Templates,
    /// The Ray pod watch.
    pub pods: RayPods,
    /// Followed logs.
    pub logs: LogStreams,
    /// The supervised sources.
    pub sources: SourceStatus,
    /// Open event streams.
    pub streams: StreamLimit,
    /// The clusters idle by their template's policy.
    pub idle: IdlePlan,
    /// The RayJob watch.
    pub rayjobs: RayJobs,
    /// How long answers took, by route.
    pub requests: RequestTimes,
    /// How long the history database's statements took.
    pub database: Histograms,
    /// Every Kubernetes cluster served: how each one's cluster watch is.
    pub fleet: Fleet,
    /// What raydar did or warned of on its own, by reason.
    pub lifecycle: Counters,
}

/// Prometheus text: one metric with its help and type lines.
struct Exposition(String);

impl Exposition {
    fn metric(&mut self, name: &str, kind: &str, help: &str, samples: &[(&str, f64)]) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(self.0, "{name}{labels} {value}");
        }
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: impl Into<f64>) {
        self.metric(name, kind, help, &[("", value.into())]);
    }
}

/// `GET /metrics`: raydar's own metrics in the Prometheus text format.
pub async fn metrics(State(m): State<Metered>) -> Response {
    let mut out = Exposition(String::new());
    let (c, logs) = (&m.clusters, m.logs.metrics());
    out.one("raydar_rayclusters", "gauge", "RayClusters in the watch's store.", c.len() as f64);
    out.one("raydar_ray_pods", "gauge", "Ray pods in the watch's store.", m.pods.len() as f64);
    out.one(
        "raydar_raycluster_watch_synced",
        "gauge",
        "1 once the RayCluster watch has listed everything.",
        u8::from(c.health().synced()),
    );
    out.one(
        "raydar_raycluster_watch_errors_total",
        "counter",
        "Errors of the RayCluster watch (it retries).",
        c.health().error_count() as f64,
    );
    out.one(
        "raydar_push_followers",
        "gauge",
        "Open pages following the cluster push stream.",
        c.followers() as f64,
    );
    out.one(
        "raydar_event_streams",
        "gauge",
        "Event streams open (every live page's), counted against --event-streams.",
        m.streams.count() as f64,
    );
    out.one(
        "raydar_template_watch_errors_total",
        "counter",
        "Errors of the RayClusterTemplate watch (it retries).",
        m.templates.health().error_count() as f64,
    );
    out.one(
        "raydar_log_streams",
        "gauge",
        "Logs followed live, each one upstream stream shared by its viewers.",
        logs.streams as f64,
    );
    out.one(
        "raydar_log_viewers",
        "gauge",
        "Open event streams following a log.",
        logs.viewers as f64,
    );
    out.one(
        "raydar_log_buffer_bytes",
        "gauge",
        "Bytes of log text kept for viewers, all followed logs together (--log-buffer-mib).",
        logs.buffered as f64,
    );
    out.one(
        "raydar_log_streams_refused_total",
        "counter",
        "New logs refused because --log-streams were followed.",
        logs.refused as f64,
    );
    out.one(
        "raydar_log_lines_skipped_total",
        "counter",
        "Log lines viewers never got: they fell behind the lines kept.",
        logs.skipped as f64,
    );
    out.one(
        "raydar_log_upstream_errors_total",
        "counter",
        "Failures of log upstreams (each retried).",
        logs.upstream_errors as f64,
    );
    let sources = m.sources.all();
    let labels: Vec<String> = sources.keys().map(|name| format!("{{source=\"{name}\"}}")).collect();
    let each = |value: &dyn Fn(&crate::supervisor::Health) -> f64| -> Vec<(&str, f64)> {
        labels.iter().zip(sources.values()).map(|(l, h)| (l.as_str(), value(h))).collect()
    };
    out.metric(
        "raydar_source_up",
        "gauge",
        "1 while a background source runs, 0 while it waits to start again after a failure.",
        &each(&|h| if h.down.is_some() { 0.0 } else { 1.0 }),
    );
    out.metric(
        "raydar_source_failures_total",
        "counter",
        "Times a background source failed or panicked (it is started again with backoff).",
        &each(&|h| h.failures as f64),
    );
    out.metric(
        "raydar_source_restarts_total",
        "counter",
        "Times a background source was started again.",
        &each(&|h| h.restarts as f64),
    );
    watch_metrics(&mut out, &m);
    context_metrics(&mut out, &m.fleet);
    idle_metrics(&mut out, &m.idle);
    m.lifecycle.write(
        &mut out.0,
        "raydar_lifecycle_actions_total",
        "What raydar did or warned of on its own, by reason: ExpiresSoon and IdleSoon (warnings), \
         Expired, IdleReclaimed, LeaseLapsed (acts).",
        "reason",
    );
    m.requests.0.write(
        &mut out.0,
        "raydar_http_request_duration_seconds",
        "How long raydar took to answer, until the answer's head (an event stream's opening), by \
         method, route template and status class.",
    );
    m.database.write(
        &mut out.0,
        "raydar_history_db_seconds",
        "How long the history database's statements took (a write is one batch's transaction), \
         by what they do.",
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out.0).into_response()
}

/// Each watch: whether it has listed everything, how old what it keeps may be (since when it
/// has not been answered; 0 while it is), how many objects it keeps, its errors.
fn watch_metrics(out: &mut Exposition, m: &Metered) {
    let watches = [
        ("RayCluster", m.clusters.health(), m.clusters.len()),
        ("RayClusterTemplate", m.templates.health(), m.templates.count()),
        ("Ray pod", m.pods.health(), m.pods.len()),
        ("RayJob", m.rayjobs.health(), m.rayjobs.count()),
    ];
    let now = unix_now();
    let labels: Vec<String> =
        watches.iter().map(|(w, ..)| format!("{{{}}}", label("watch", w))).collect();
    let each = |value: &dyn Fn(&WatchHealth, usize) -> f64| -> Vec<(&str, f64)> {
        labels.iter().zip(&watches).map(|(l, (_, h, n))| (l.as_str(), value(h, *n))).collect()
    };
    out.metric(
        "raydar_watch_synced",
        "gauge",
        "1 once the watch has listed everything.",
        &each(&|h, _| f64::from(u8::from(h.synced()))),
    );
    out.metric(
        "raydar_watch_stale_seconds",
        "gauge",
        "How old what the watch keeps may be: seconds since the apiserver stopped answering it, \
         0 while it answers.",
        &each(&|h, _| h.stale().map_or(0.0, |s| (now - s.since).max(0) as f64)),
    );
    out.metric(
        "raydar_watch_objects",
        "gauge",
        "Objects the watch keeps (projections, not the objects).",
        &each(&|_, n| n as f64),
    );
    out.metric(
        "raydar_watch_errors_total",
        "counter",
        "Errors of the watch (it retries).",
        &each(&|h, _| h.error_count() as f64),
    );
}

/// Each Kubernetes cluster served (`--contexts`): whether its RayClusters are listed, how old
/// what raydar keeps of them may be, how many there are. (The `watch` metrics above are the home
/// cluster's.)
fn context_metrics(out: &mut Exposition, fleet: &Fleet) {
    let now = unix_now();
    let planes = fleet.planes();
    let labels: Vec<String> =
        planes.iter().map(|p| format!("{{{}}}", label("context", &p.name))).collect();
    let each = |value: &dyn Fn(&FleetPlane) -> f64| -> Vec<(&str, f64)> {
        labels.iter().zip(planes).map(|(l, p)| (l.as_str(), value(p))).collect()
    };
    out.metric(
        "raydar_context_synced",
        "gauge",
        "1 once the Kubernetes cluster's RayClusters have been listed.",
        &each(&|p| f64::from(u8::from(p.clusters.health().synced()))),
    );
    out.metric(
        "raydar_context_stale_seconds",
        "gauge",
        "Seconds since the Kubernetes cluster's apiserver stopped answering, 0 while it answers.",
        &each(&|p| p.clusters.stale().map_or(0.0, |s| (now - s.since).max(0) as f64)),
    );
    out.metric(
        "raydar_context_rayclusters",
        "gauge",
        "RayClusters raydar keeps of the Kubernetes cluster.",
        &each(&|p| p.clusters.len() as f64),
    );
    out.metric(
        "raydar_context_ray_pods",
        "gauge",
        "Ray pods raydar keeps of the Kubernetes cluster.",
        &each(&|p| p.pods.len() as f64),
    );
}

/// Idle reclaim: what is due, what it holds, what reclaiming saves (or, dry-run, would).
fn idle_metrics(out: &mut Exposition, idle: &IdlePlan) {
    let now = unix_now();
    let plan = idle.show(now, |_| true);
    let mode = format!("{{mode=\"{}\"}}", plan.mode);
    out.metric(
        "raydar_idle_reclaim_mode",
        "gauge",
        "1, labelled with --idle-reclaim: on (idle clusters are reclaimed), dry-run (only shown) or off.",
        &[(mode.as_str(), 1.0)],
    );
    let due: Vec<_> = plan.clusters.iter().filter(|c| c.due_at <= now).collect();
    out.one(
        "raydar_idle_clusters_due",
        "gauge",
        "Clusters idle past their template's idle window: reclaimed within seconds when on; what \
         would be reclaimed in dry-run.",
        due.len() as f64,
    );
    out.one(
        "raydar_idle_gpus_due",
        "gauge",
        "GPUs those clusters hold.",
        due.iter().map(|c| f64::from(c.gpus)).sum::<f64>(),
    );
    out.one(
        "raydar_idle_gpu_hours_saved",
        "gauge",
        "GPU-hours those clusters have held past their idle window: what reclaiming saves (in \
         dry-run, would have saved by now).",
        plan.clusters.iter().map(|c| c.gpu_hours_saved).sum::<f64>(),
    );
    out.one(
        "raydar_idle_reclaims_total",
        "counter",
        "Clusters this raydar suspended or tore down for sitting idle.",
        plan.reclaimed as f64,
    );
}
