//! GPU metrics: dcgm-exporter scraped on a clock into a bounded history, each GPU attributed to
//! the RayCluster whose pod holds it; Ray's own `ray_node_*` metrics read when a page asks; and
//! what pages and the API make of them: a cluster's GPUs and charts, the fleet's idle clusters.
//!
//! Where the numbers come from:
//! - dcgm-exporter pods, found by a watch on `--dcgm-selector` in `--dcgm-namespace` (NVIDIA's GPU
//!   Operator runs them as `app=nvidia-dcgm-exporter` in `gpu-operator`), scraped every
//!   `--gpu-interval` through the apiserver's pod proxy or straight at the pod IP
//!   (`--dcgm-reach`). Exporters are scraped a few at a time, each within a timeout, so one that
//!   hangs costs only its own GPUs' sample.
//! - Or, with `--prometheus`, a Prometheus server that scrapes those exporters: asked for the
//!   same fields every `--gpu-interval`, and at start for the last [`Retention::fine`] window,
//!   so a restarted raydar draws its charts and flags idle clusters from the first page on.
//!   `--dcgm-namespace` still names the exporters' namespace: series labelled with a pod there
//!   are of GPUs no pod holds ([`prometheus`]).
//! - Which cluster holds a GPU: the pod labels dcgm-exporter writes in Kubernetes mode, looked up
//!   in the Ray pod watch the cluster pages already keep ([`crate::overview`]).
//! - Ray's metrics port (KubeRay's head service port `metrics`, 8080), read through the same
//!   route as the dashboard and cached briefly, so open pages cost one read per cluster.
//!
//! # Layout
//! - [`GpuMetrics`]: the exporter watch and the scrape loop, or the Prometheus queries, and the
//!   [`History`] they fill.
//! - [`GpuMetrics::cluster`], [`GpuMetrics::chart`], [`GpuMetrics::fleet`]: the history read for
//!   a cluster's page, its charts and the fleet page.
//! - [`cluster_gpus`], [`cluster_chart`], [`fleet`]: the API routes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Store};
use kube::{Api, Client};
use platform::gpu::history::{History, Holder, Retention, Series};
use platform::gpu::{parse_dcgm, prometheus, ray::parse_ray, ClusterKey, GpuId, GpuReading};
use platform::utilization::{Chart, ClusterGpus, Fleet, FleetCluster, GpuNow, RayUsage, Window};
use platform::ClusterSummary;
use serde::Deserialize;
use serde_json::json;

use crate::auth::User;
use crate::charts::{self, ChartData, Line, Theme};
use crate::clusters::unix_now;
use crate::config::{ExporterReach, GpuSettings};
use crate::overview::{Cache, Overviews};
use crate::ray::Reach;
use crate::watch::{reflect_pods, WatchHealth, Watched};
use crate::web::AppState;

/// Exporters scraped at once.
const SCRAPES_AT_ONCE: usize = 8;
/// Largest scrape taken from one exporter: a node's worth of GPUs is tens of KB.
const MAX_SCRAPE_BYTES: usize = 8 << 20;
/// Every call for Ray's metrics ends within this.
const RAY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a read of Ray's metrics stays fresh.
const RAY_FRESH_FOR: Duration = Duration::from_secs(5);
/// Scrapes a GPU may miss and still count as held (an exporter restarting, one timeout).
const MISSED_SCRAPES: u32 = 3;
/// Largest answer taken from Prometheus: a slice of history for 1,000 GPUs is about 11 MB.
const MAX_PROMETHEUS_BYTES: usize = 64 << 20;
/// History is asked of Prometheus this much at a time, so no one answer grows with the window.
const HISTORY_SLICE_S: u32 = 15 * 60;
/// Every history query ends within this.
const HISTORY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the history waits at start for the Ray pod watch, which attributes GPUs to clusters.
const PODS_SYNC_WAIT: Duration = Duration::from_secs(30);

const EXPORTERS: Watched = Watched { kind: "dcgm-exporter Pod", resource: "pods", install: "" };

/// GPU metrics: cheap to clone.
#[derive(Clone)]
pub struct GpuMetrics {
    inner: Arc<Inner>,
}

struct Inner {
    settings: GpuSettings,
    kube: Client,
    http: reqwest::Client,
    exporters: Store<Pod>,
    exporter_health: WatchHealth,
    history: RwLock<History>,
    /// Exporters the last scrape could not read, in words.
    errors: Mutex<Vec<String>>,
    ray_reach: Reach,
    ray: Cache<Result<RayUsage, String>>,
}

impl GpuMetrics {
    /// Starts the exporter watch and the scrape loop on the current tokio runtime; pods are
    /// attributed to clusters through `overviews`' Ray pod watch. `apiserver` names the cluster
    /// in error messages.
    pub fn start(
        kube: Client,
        settings: GpuSettings,
        ray_reach: Reach,
        overviews: Overviews,
        apiserver: String,
    ) -> Self {
        let (store, writer) = reflector::store::<Pod>();
        let timeout = Duration::from_secs(u64::from(settings.interval_s).clamp(1, 10));
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let history = History::new(Retention::default(), settings.idle_below);
        let inner = Arc::new(Inner {
            settings,
            kube,
            http,
            exporters: store,
            exporter_health: WatchHealth::default(),
            history: RwLock::new(history),
            errors: Mutex::default(),
            ray_reach,
            ray: Cache::new(RAY_FRESH_FOR),
        });
        if let Some(base) = inner.settings.prometheus.clone() {
            tokio::spawn(ask_prometheus(inner.clone(), base, overviews));
            return GpuMetrics { inner };
        }
        let shared = inner.clone();
        tokio::spawn(async move {
            let settings = &shared.settings;
            let api = Api::namespaced(shared.kube.clone(), &settings.namespace);
            reflect_pods(
                api,
                &settings.selector,
                writer,
                &shared.exporter_health,
                EXPORTERS,
                &apiserver,
            )
            .await;
        });
        let shared = inner.clone();
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_secs(u64::from(shared.settings.interval_s)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let exporters: Vec<Exporter> =
                    shared.exporters.state().iter().filter_map(|pod| Exporter::of(pod)).collect();
                let texts = scrape_all(&shared, exporters).await;
                let pod_clusters = overviews.pod_clusters();
                // Tens of milliseconds of parsing for a large fleet: off the async workers.
                let (inner, t) = (shared.clone(), unix_now() as u32);
                let _ =
                    tokio::task::spawn_blocking(move || record(&inner, t, texts, &pod_clusters))
                        .await;
            }
        });
        GpuMetrics { inner }
    }

    /// A cluster's GPUs now, for its page; `requested` is what its spec asks for.
    pub fn cluster(&self, namespace: &str, name: &str, requested: u32) -> ClusterGpus {
        let settings = &self.inner.settings;
        let now = unix_now();
        let history = self.inner.history.read().unwrap_or_else(|e| e.into_inner());
        let held = history.held_by(&key(namespace, name), self.seen_since(&history));
        let gpus: Vec<GpuNow> = held.iter().map(|s| gpu_now(s)).collect();
        ClusterGpus {
            now,
            scraped_at: history.last_scrape().map(i64::from),
            interval_s: settings.interval_s,
            requested,
            avg_util: average(gpus.iter().filter_map(|g| g.util)),
            idle: History::idle(&held, now as u32, settings.idle_after_s),
            idle_below: settings.idle_below,
            idle_after_s: u64::from(settings.idle_after_s),
            gpus,
            ray: None,
            ray_error: None,
            errors: self.errors(),
        }
    }

    /// What one of a cluster's charts shows over `window`.
    pub fn chart(&self, namespace: &str, name: &str, chart: Chart, window: Window) -> ChartData {
        let now = unix_now();
        let from = (now as u32).saturating_sub(window.seconds());
        let history = self.inner.history.read().unwrap_or_else(|e| e.into_inner());
        let held = history.held_by(&key(namespace, name), self.seen_since(&history));
        let nodes: BTreeSet<&str> = held.iter().map(|s| s.gpu.host.as_str()).collect();
        let value = |s: &platform::gpu::history::Sample| -> f32 {
            match chart {
                Chart::Utilization => s.util,
                Chart::Memory => s.mem_used_mib / 1024.0,
                Chart::Power => s.power_w,
            }
        };
        let gpus: Vec<Line> = held
            .iter()
            .map(|series| Line {
                label: gpu_now(series).label(nodes.len() > 1),
                points: series
                    .since(from)
                    .filter(|s| !value(s).is_nan())
                    .map(|s| (f64::from(s.t) - now as f64, f64::from(value(s))))
                    .collect(),
            })
            .collect();
        let average = (chart == Chart::Utilization && !gpus.is_empty()).then(|| {
            let mut at: BTreeMap<i64, (f64, u32)> = BTreeMap::new();
            for (x, y) in gpus.iter().flat_map(|l| l.points.iter()) {
                let slot = at.entry(*x as i64).or_default();
                slot.0 += y;
                slot.1 += 1;
            }
            Line {
                label: "average".into(),
                points: at
                    .into_iter()
                    .map(|(x, (sum, n))| (x as f64, sum / f64::from(n)))
                    .collect(),
            }
        });
        let highest = gpus.iter().flat_map(|l| l.points.iter().map(|p| p.1)).fold(0.0, f64::max);
        let y_max = match chart {
            Chart::Utilization => 100.0,
            Chart::Memory => {
                let total =
                    held.iter().filter_map(|s| s.last.mem_total_mib()).fold(0.0, f64::max) / 1024.0;
                total.max(highest).max(1.0).ceil()
            }
            // Rounded up to the next 50 W above the highest draw, at least 100 W.
            Chart::Power => ((highest * 1.1 / 50.0).ceil() * 50.0).max(100.0),
        };
        ChartData { chart, window, gpus, average, y_max }
    }

    /// The fleet page for `clusters` (with their team and owner): the requested, held, busy and
    /// idle GPUs of each that asks for or holds any; GPUs in all, free and held by other pods.
    pub fn fleet(&self, clusters: Vec<(ClusterSummary, String, String)>) -> Fleet {
        let settings = &self.inner.settings;
        let now = unix_now();
        let history = self.inner.history.read().unwrap_or_else(|e| e.into_inner());
        let seen = self.seen_since(&history);
        let current: Vec<&Series> = history.all().filter(|s| s.last_t >= seen).collect();
        let count = |holder: &Holder| current.iter().filter(|s| &s.holder == holder).count() as u32;
        let rows = clusters
            .into_iter()
            .filter_map(|(summary, team, owner)| {
                let held = history.held_by(&key(&summary.namespace, &summary.name), seen);
                // A cluster that neither asks for nor holds a GPU is not part of the GPU fleet.
                if held.is_empty() && summary.gpus_desired == 0 {
                    return None;
                }
                let utils: Vec<f64> = held.iter().filter_map(|s| s.last.util).collect();
                Some(FleetCluster {
                    held: held.len() as u32,
                    busy: utils.iter().filter(|u| **u >= settings.idle_below).count() as u32,
                    avg_util: average(utils.iter().copied()),
                    idle: History::idle(&held, now as u32, settings.idle_after_s),
                    requested: summary.gpus_desired,
                    namespace: summary.namespace,
                    name: summary.name,
                    team,
                    owner,
                })
            })
            .collect();
        Fleet {
            now,
            scraped_at: history.last_scrape().map(i64::from),
            idle_below: settings.idle_below,
            idle_after_s: u64::from(settings.idle_after_s),
            total: current.len() as u32,
            free: count(&Holder::Free),
            other: count(&Holder::Other),
            clusters: rows,
            teams: Vec::new(),
            errors: self.errors(),
        }
        .group()
    }

    /// What Ray's metrics port says of a cluster, read at most every few seconds however many
    /// pages ask.
    pub async fn ray_usage(&self, namespace: &str, name: &str) -> Result<RayUsage, String> {
        let (inner, ns, cluster) = (self.inner.clone(), namespace.to_owned(), name.to_owned());
        let read = async move { read_ray(&inner, &ns, &cluster).await };
        self.inner
            .ray
            .get(&format!("{namespace}/{name}"), read, |_, new| new)
            .await
            .unwrap_or_else(|| Err("Ray's metrics have not been read yet".into()))
    }

    fn errors(&self) -> Vec<String> {
        let mut errors = self.inner.errors.lock().unwrap_or_else(|e| e.into_inner()).clone();
        errors.extend(self.inner.exporter_health.last_error());
        errors
    }

    /// GPUs last reported at or after this still count as present.
    fn seen_since(&self, history: &History) -> u32 {
        let last = history.last_scrape().unwrap_or(0);
        last.saturating_sub(MISSED_SCRAPES * self.inner.settings.interval_s)
    }
}

fn key(namespace: &str, name: &str) -> ClusterKey {
    (namespace.to_owned(), name.to_owned())
}

fn average(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

/// A series' GPU as the page lists it.
fn gpu_now(series: &Series) -> GpuNow {
    let last = &series.last;
    GpuNow {
        node: series.gpu.host.clone(),
        index: series.gpu.index,
        mig: series.gpu.mig.as_ref().map(|(profile, id)| format!("{profile}/{id}")),
        model: series.model.clone(),
        pod: series.pod.as_ref().map(|p| p.pod.clone()).unwrap_or_default(),
        util: last.util,
        mem_used_mib: last.mem_used_mib,
        mem_total_mib: last.mem_total_mib(),
        power_w: last.power_w,
        temp_c: last.temp_c,
        below_since: series.below_since.map(i64::from),
    }
}

/// One dcgm-exporter pod that can be scraped.
struct Exporter {
    pod: String,
    node: String,
    ip: String,
}

impl Exporter {
    fn of(pod: &Pod) -> Option<Exporter> {
        let status = pod.status.as_ref()?;
        if pod.metadata.deletion_timestamp.is_some() || status.phase.as_deref() != Some("Running") {
            return None;
        }
        Some(Exporter {
            pod: pod.metadata.name.clone()?,
            node: pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default(),
            ip: status.pod_ip.clone()?,
        })
    }

    fn name(&self) -> String {
        if self.node.is_empty() {
            self.pod.clone()
        } else {
            format!("{} on {}", self.pod, self.node)
        }
    }
}

/// Scrapes every exporter, a few at a time: each one's text or why there is none.
async fn scrape_all(
    inner: &Inner,
    exporters: Vec<Exporter>,
) -> Vec<(String, Result<String, String>)> {
    futures::stream::iter(exporters)
        .map(|exporter| async move {
            let text = scrape(inner, &exporter).await;
            (exporter.name(), text)
        })
        .buffer_unordered(SCRAPES_AT_ONCE)
        .collect()
        .await
}

async fn scrape(inner: &Inner, exporter: &Exporter) -> Result<String, String> {
    let settings = &inner.settings;
    let timeout = Duration::from_secs(u64::from(settings.interval_s).clamp(1, 10));
    let call = async {
        match settings.reach {
            ExporterReach::ApiserverProxy => {
                let uri = format!(
                    "/api/v1/namespaces/{}/pods/{}:{}/proxy/metrics",
                    settings.namespace, exporter.pod, settings.port
                );
                let request =
                    axum::http::Request::get(uri).body(Vec::new()).map_err(|e| e.to_string())?;
                inner.kube.request_text(request).await.map_err(|e| e.to_string())
            }
            ExporterReach::PodIp => {
                let ip = exporter
                    .ip
                    .parse::<std::net::IpAddr>()
                    .map_err(|_| format!("{:?} is not an IP address", exporter.ip))?;
                let url =
                    format!("http://{}/metrics", std::net::SocketAddr::new(ip, settings.port));
                let response =
                    inner.http.get(url).send().await.map_err(|e| e.without_url().to_string())?;
                if !response.status().is_success() {
                    return Err(format!("HTTP {}", response.status()));
                }
                read_capped(response, MAX_SCRAPE_BYTES).await
            }
        }
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(answer) => answer,
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
    }
}

/// A response's body as text, refused past `max` bytes rather than held.
async fn read_capped(mut response: reqwest::Response, max: usize) -> Result<String, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.without_url().to_string())? {
        if body.len() + chunk.len() > max {
            return Err(format!("answered more than {} MiB", max >> 20));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| "answered with text that is not UTF-8".to_owned())
}

/// The Prometheus source: the last fine window of history first, then the same fields every
/// interval, each answer recorded as if raydar had scraped the exporters then.
async fn ask_prometheus(inner: Arc<Inner>, base: String, overviews: Overviews) {
    // GPUs are attributed through the Ray pod watch: history read before it has listed would
    // count every cluster's GPUs as another workload's.
    let waited = tokio::time::Instant::now();
    while !overviews.pods_synced() && waited.elapsed() < PODS_SYNC_WAIT {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let interval = inner.settings.interval_s;
    let now = unix_now() as u32;
    let mut from = now.saturating_sub(Retention::default().fine);
    while from < now {
        let to = (from + HISTORY_SLICE_S).min(now);
        let query = [
            ("query", prometheus::SELECTOR.to_owned()),
            ("start", from.to_string()),
            ("end", to.to_string()),
            ("step", format!("{interval}s")),
        ];
        let answer = ask(&inner, &base, "query_range", &query, HISTORY_TIMEOUT).await;
        let pod_clusters = overviews.pod_clusters();
        let shared = inner.clone();
        let recorded = tokio::task::spawn_blocking(move || {
            let steps = prometheus::read_range(&answer?, &shared.settings.namespace)
                .map_err(|e| e.to_string())?;
            let mut history = shared.history.write().unwrap_or_else(|e| e.into_inner());
            for (t, readings) in &steps {
                history.record(*t, readings, |pod| cluster_of(&pod_clusters, pod));
            }
            Ok::<_, String>(())
        })
        .await;
        if let Ok(Err(why)) = recorded {
            // Without history the charts start at the first query below, which still runs.
            tracing::warn!("Prometheus {base}: no history from {from} to {to}: {why}");
            break;
        }
        from = to + 1;
    }
    let timeout = Duration::from_secs(u64::from(interval).clamp(1, 10));
    let mut tick = tokio::time::interval(Duration::from_secs(u64::from(interval)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let t = unix_now() as u32;
        let answer =
            ask(&inner, &base, "query", &[("query", prometheus::SELECTOR.to_owned())], timeout)
                .await;
        let pod_clusters = overviews.pod_clusters();
        let (shared, base) = (inner.clone(), base.clone());
        let _ = tokio::task::spawn_blocking(move || {
            let mut errors = Vec::new();
            match answer.and_then(|json| {
                prometheus::read_now(&json, &shared.settings.namespace).map_err(|e| e.to_string())
            }) {
                Ok(readings) => shared.history.write().unwrap_or_else(|e| e.into_inner()).record(
                    t,
                    &readings,
                    |pod| cluster_of(&pod_clusters, pod),
                ),
                Err(why) => {
                    tracing::warn!("Prometheus {base}: {why}");
                    errors.push(format!("Prometheus {base}: {why}"));
                }
            }
            *shared.errors.lock().unwrap_or_else(|e| e.into_inner()) = errors;
        })
        .await;
    }
}

/// One call of Prometheus' HTTP API (`/api/v1/{path}`), its answer's text within `timeout`.
/// Prometheus answers a refused query with a 4xx and a JSON body that says why, so the body of
/// an error is read too.
async fn ask(
    inner: &Inner,
    base: &str,
    path: &str,
    query: &[(&str, String)],
    timeout: Duration,
) -> Result<String, String> {
    let call = async {
        let request = inner
            .http
            .get(format!("{base}/api/v1/{path}"))
            .query(query)
            .query(&[("timeout", format!("{}s", timeout.as_secs()))])
            .timeout(timeout);
        let response = request.send().await.map_err(|e| e.without_url().to_string())?;
        let status = response.status();
        let body = read_capped(response, MAX_PROMETHEUS_BYTES).await?;
        if !status.is_success() && !body.trim_start().starts_with('{') {
            return Err(format!("HTTP {status}"));
        }
        Ok(body)
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(answer) => answer,
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
    }
}

/// The RayCluster a pod belongs to, from the Ray pod watch's `(namespace, pod) -> cluster`.
fn cluster_of(
    pod_clusters: &HashMap<(String, String), String>,
    pod: &platform::gpu::PodRef,
) -> Option<ClusterKey> {
    pod_clusters
        .get(&(pod.namespace.clone(), pod.pod.clone()))
        .map(|cluster| (pod.namespace.clone(), cluster.clone()))
}

/// Parses the scrapes and adds them to the history as taken at `t`.
fn record(
    inner: &Inner,
    t: u32,
    texts: Vec<(String, Result<String, String>)>,
    pod_clusters: &HashMap<(String, String), String>,
) {
    let mut readings: BTreeMap<GpuId, GpuReading> = BTreeMap::new();
    let mut errors = Vec::new();
    for (exporter, text) in texts {
        match text.and_then(|text| parse_dcgm(&text).map_err(|e| e.to_string())) {
            Ok(gpus) => readings.extend(gpus),
            Err(why) => errors.push(format!("dcgm-exporter {exporter}: {why}")),
        }
    }
    errors.sort();
    for error in &errors {
        tracing::warn!("{error}");
    }
    inner
        .history
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .record(t, &readings, |pod| cluster_of(pod_clusters, pod));
    *inner.errors.lock().unwrap_or_else(|e| e.into_inner()) = errors;
}

/// Reads Ray's metrics port of a cluster's head, the way its dashboard is reached.
async fn read_ray(inner: &Inner, namespace: &str, name: &str) -> Result<RayUsage, String> {
    let call = async {
        let text = match &inner.ray_reach {
            Reach::ApiserverProxy => {
                let uri = format!(
                    "/api/v1/namespaces/{namespace}/services/{name}-head-svc:metrics/proxy/metrics"
                );
                let request =
                    axum::http::Request::get(uri).body(Vec::new()).map_err(|e| e.to_string())?;
                inner.kube.request_text(request).await.map_err(|e| e.to_string())?
            }
            Reach::Direct(template) => {
                // Only the head service form says where the metrics port is.
                let Some(base) = template.strip_suffix(":8265") else {
                    return Err(
                        "Ray's metrics are read with --ray-dashboard proxy or service only".into(),
                    );
                };
                let url = format!(
                    "{}:8080/metrics",
                    base.replace("{namespace}", namespace).replace("{name}", name)
                );
                let response =
                    inner.http.get(url).send().await.map_err(|e| e.without_url().to_string())?;
                response.text().await.map_err(|e| e.without_url().to_string())?
            }
        };
        parse_ray(&text).map_err(|e| e.to_string())
    };
    match tokio::time::timeout(RAY_TIMEOUT, call).await {
        Ok(usage) => usage.map_err(|e| format!("Ray's metrics of {namespace}/{name}: {e}")),
        Err(_) => Err(format!(
            "Ray's metrics of {namespace}/{name}: no answer within {} s",
            RAY_TIMEOUT.as_secs()
        )),
    }
}

/// `GET /api/v1/clusters/{namespace}/{name}/gpus`: the cluster's GPUs now and what Ray says.
pub async fn cluster_gpus(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let Some(summary) = state.clusters.get(&namespace, &name) else {
        return not_found(&namespace, &name);
    };
    let mut panel = state.gpus.cluster(&namespace, &name, summary.gpus_desired);
    match state.gpus.ray_usage(&namespace, &name).await {
        Ok(usage) => panel.ray = Some(usage),
        Err(why) => panel.ray_error = Some(why),
    }
    Json(panel).into_response()
}

/// The chart's query: `?window=15m|1h|6h&theme=light|dark`.
#[derive(Debug, Deserialize)]
pub struct ChartQuery {
    window: Option<String>,
    theme: Option<String>,
}

/// `GET /api/v1/clusters/{namespace}/{name}/gpus/{chart}.svg`: one chart (`util`, `memory`,
/// `power`) as SVG.
pub async fn cluster_chart(
    State(state): State<AppState>,
    Path((namespace, name, file)): Path<(String, String, String)>,
    Query(query): Query<ChartQuery>,
) -> Response {
    let parsed = (|| {
        let chart = Chart::parse(file.strip_suffix(".svg").unwrap_or(&file))?;
        let window = query.window.as_deref().map(Window::parse).transpose()?.unwrap_or_default();
        let theme = query.theme.as_deref().map(Theme::parse).transpose()?.unwrap_or(Theme::Light);
        Ok::<_, String>((chart, window, theme))
    })();
    let (chart, window, theme) = match parsed {
        Ok(parsed) => parsed,
        Err(why) => {
            return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "error": why })))
                .into_response()
        }
    };
    if state.clusters.get(&namespace, &name).is_none() {
        return not_found(&namespace, &name);
    }
    let data = state.gpus.chart(&namespace, &name, chart, window);
    match charts::render(&data, theme) {
        Ok(svg) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "no-store"),
                // An image never runs script; this says so to anyone who opens it on its own.
                (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'"),
            ],
            svg,
        )
            .into_response(),
        Err(why) => {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": why }))).into_response()
        }
    }
}

/// `GET /api/v1/gpus`: the fleet, over the clusters the requester may see.
pub async fn fleet(State(state): State<AppState>, Extension(user): Extension<User>) -> Response {
    let grants = state.access.grants(&user, state.clusters.namespaces()).await;
    Json(fleet_for(&state, &grants.read)).into_response()
}

/// The fleet over the clusters in namespaces `readable`.
pub fn fleet_for(state: &AppState, readable: &BTreeSet<String>) -> Fleet {
    let clusters = state
        .clusters
        .with_owners()
        .into_iter()
        .filter(|(c, _, _)| readable.contains(&c.namespace))
        .collect();
    state.gpus.fleet(clusters)
}

fn not_found(namespace: &str, name: &str) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": format!("no RayCluster {namespace}/{name}") })))
        .into_response()
}
