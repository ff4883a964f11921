//! A cluster's page below its summary ([`ClusterOverview`]): its pods, conditions, recent events,
//! and Ray's nodes and jobs.
//!
//! Each part comes from where it is cheapest to keep current:
//! - pods from a watch of every Ray pod (label `ray.io/is-ray-node=yes`), like the RayCluster
//!   watch: answering costs no call;
//! - conditions from the RayCluster watch;
//! - events and Ray's view are read when a page asks and kept a moment ([`FRESH_FOR`]), so any
//!   number of open pages cost one apiserver list and one pair of dashboard reads per cluster
//!   every couple of seconds.
//!
//! A read never makes a page wait on it: a page gets what is cached and the read runs in the
//! background (only the very first read of a cluster is waited for, briefly). So a dashboard that
//! hangs for its whole timeout delays nobody; its page shows the last answer and the error.
//!
//! # Layout
//! - [`Overviews`]: the pod watch and the two caches; [`Overviews::overview`] assembles a page.
//! - [`Cache`]: a small keyed cache refreshed in the background, bounded in entries.
//! - `parse_*`: Ray's JSON (dashboard 2.60) into [`RayNode`]s and [`RayJob`]s.
//! - [`read_overview`]: `GET /api/v1/clusters/{namespace}/{name}/overview`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::ListParams;
use kube::runtime::reflector::{self, Store};
use kube::{Api, Client};
use platform::overview::{ClusterOverview, EventRow, PodRow, RayJob, RayNode, RayView};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::clusters::{unix_now, Clusters};
use crate::ray::{Dashboards, Read};
use crate::watch::{reflect_pods, WatchHealth, Watched};
use crate::web::AppState;

/// How long a read of events or of Ray stays fresh: pages poll about this often.
pub const FRESH_FOR: Duration = Duration::from_secs(2);
/// How long the first request for a cluster waits for its first read before answering without.
const FIRST_WAIT: Duration = Duration::from_millis(1500);
/// Every call to the apiserver for events ends within this.
const EVENTS_TIMEOUT: Duration = Duration::from_secs(5);
/// Clusters remembered by each cache; entries nobody asked for in a minute go first.
const MAX_ENTRIES: usize = 2048;
/// Events shown per cluster, newest first.
const MAX_EVENTS: usize = 50;
/// Pod events read per namespace to find the cluster's among them.
const POD_EVENTS_READ: u32 = 500;

const PODS: Watched = Watched { kind: "Pod", resource: "pods", install: "" };

/// The pod watch and the caches behind cluster pages: cheap to clone.
#[derive(Clone)]
pub struct Overviews {
    inner: Arc<Inner>,
}

struct Inner {
    pods: Store<Pod>,
    pod_health: WatchHealth,
    kube: Client,
    dashboards: Dashboards,
    events: Cache<Result<Vec<EventRow>, String>>,
    ray: Cache<RayView>,
}

impl Overviews {
    /// Starts the watch of Ray pods on the current tokio runtime (it runs as long as the
    /// runtime); `apiserver` names the cluster in error messages.
    pub fn start(kube: Client, dashboards: Dashboards, apiserver: String) -> Self {
        let (store, writer) = reflector::store();
        let inner = Arc::new(Inner {
            pods: store,
            pod_health: WatchHealth::default(),
            kube: kube.clone(),
            dashboards,
            events: Cache::new(FRESH_FOR),
            ray: Cache::new(FRESH_FOR),
        });
        let shared = inner.clone();
        tokio::spawn(async move {
            let health = &shared.pod_health;
            reflect_pods(
                Api::all(kube),
                "ray.io/is-ray-node=yes",
                writer,
                health,
                PODS,
                &apiserver,
            )
            .await;
        });
        Overviews { inner }
    }

    /// The pods of RayCluster `namespace/name`: head first, then workers by group and name.
    pub fn pods(&self, namespace: &str, name: &str) -> Vec<PodRow> {
        let mut rows: Vec<PodRow> = self
            .inner
            .pods
            .state()
            .iter()
            .filter(|pod| {
                pod.metadata.namespace.as_deref() == Some(namespace)
                    && label(pod, "ray.io/cluster") == Some(name)
            })
            .map(|pod| pod_row(pod))
            .collect();
        rows.sort_by(|a, b| {
            (a.role != "head", &a.group, &a.name).cmp(&(b.role != "head", &b.group, &b.name))
        });
        rows
    }

    /// The page of RayCluster `namespace/name`, or `None` when raydar does not know it.
    pub async fn overview(
        &self,
        clusters: &Clusters,
        namespace: &str,
        name: &str,
    ) -> Option<ClusterOverview> {
        let (uid, conditions) = clusters.conditions(namespace, name)?;
        let pods = self.pods(namespace, name);
        let key = format!("{namespace}/{name}");
        let pod_names: Vec<String> = pods.iter().map(|p| p.name.clone()).collect();
        let (kube, ns) = (self.inner.kube.clone(), namespace.to_owned());
        let events = self.inner.events.get(
            &key,
            async move { read_events(kube, &ns, &uid, &pod_names).await },
            |_, new| new,
        );
        let (dashboards, ns, cluster) =
            (self.inner.dashboards.clone(), namespace.to_owned(), name.to_owned());
        let ray = self.inner.ray.get(
            &key,
            async move { read_ray(&dashboards, &ns, &cluster).await },
            merge_ray,
        );
        let (events, ray) = futures::join!(events, ray);
        let events = match events {
            Some(Ok(events)) => events,
            // Events are an aid: when they cannot be read the page still shows the rest.
            Some(Err(why)) => {
                tracing::debug!("events of {key}: {why}");
                Vec::new()
            }
            None => Vec::new(),
        };
        Some(ClusterOverview {
            pods,
            conditions,
            events,
            ray: ray.unwrap_or_default(),
            now: unix_now(),
        })
    }

    /// Which RayCluster each Ray pod belongs to: `(namespace, pod)` to the cluster's name (KubeRay's
    /// `ray.io/cluster` label).
    pub fn pod_clusters(&self) -> HashMap<(String, String), String> {
        self.inner
            .pods
            .state()
            .iter()
            .filter_map(|pod| {
                let cluster = label(pod, "ray.io/cluster")?;
                Some((
                    (pod.metadata.namespace.clone()?, pod.metadata.name.clone()?),
                    cluster.to_owned(),
                ))
            })
            .collect()
    }

    /// Whether the pod watch has listed everything once.
    pub fn pods_synced(&self) -> bool {
        self.inner.pod_health.synced()
    }
}

/// `GET /api/v1/clusters/{namespace}/{name}/overview`: pods, conditions, events, Ray's nodes and
/// jobs. 404 when raydar does not know the cluster.
pub async fn read_overview(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    match state.overviews.overview(&state.clusters, &namespace, &name).await {
        Some(overview) => Json(overview).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no RayCluster {namespace}/{name}") })),
        )
            .into_response(),
    }
}

fn label<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

fn pod_row(pod: &Pod) -> PodRow {
    let meta = &pod.metadata;
    let status = pod.status.as_ref();
    let phase = if meta.deletion_timestamp.is_some() {
        "Terminating".to_owned()
    } else {
        status.and_then(|s| s.phase.clone()).unwrap_or_else(|| "Pending".into())
    };
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let restarts = status
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| cs.iter().map(|c| c.restart_count.max(0) as u32).sum());
    PodRow {
        name: meta.name.clone().unwrap_or_default(),
        role: label(pod, "ray.io/node-type").unwrap_or("worker").to_owned(),
        group: label(pod, "ray.io/group").unwrap_or_default().to_owned(),
        phase,
        ready,
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        ip: status.and_then(|s| s.pod_ip.clone()),
        restarts,
        created: meta.creation_timestamp.as_ref().map_or(0, |t| t.0.as_second()),
        containers: pod
            .spec
            .as_ref()
            .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default(),
    }
}

/// The RayCluster's events and its pods', newest first, at most [`MAX_EVENTS`]. The cluster's by
/// its uid: events outlive their object, and a cluster deleted and made again under the same
/// name must not show the old one's.
async fn read_events(
    kube: Client,
    namespace: &str,
    uid: &str,
    pods: &[String],
) -> Result<Vec<EventRow>, String> {
    let api: Api<Event> = Api::namespaced(kube, namespace);
    let own = ListParams::default().fields(&format!("involvedObject.uid={uid}"));
    let of_pods = ListParams::default().fields("involvedObject.kind=Pod").limit(POD_EVENTS_READ);
    let both = async { futures::try_join!(api.list(&own), api.list(&of_pods)) };
    let (own, of_pods) = tokio::time::timeout(EVENTS_TIMEOUT, both)
        .await
        .map_err(|_| {
            format!("the apiserver did not list events within {} s", EVENTS_TIMEOUT.as_secs())
        })?
        .map_err(|e| e.to_string())?;
    let mine = of_pods
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_ref().is_some_and(|n| pods.contains(n)));
    let mut rows: Vec<EventRow> = own.items.into_iter().chain(mine).map(event_row).collect();
    rows.sort_by(|a, b| b.last_seen.cmp(&a.last_seen));
    rows.truncate(MAX_EVENTS);
    Ok(rows)
}

fn event_row(event: Event) -> EventRow {
    let last_seen = event
        .last_timestamp
        .map(|t| t.0.as_second())
        .or(event.event_time.map(|t| t.0.as_second()))
        .or(event.metadata.creation_timestamp.map(|t| t.0.as_second()))
        .unwrap_or(0);
    let object = &event.involved_object;
    EventRow {
        kind: event.type_.unwrap_or_else(|| "Normal".into()),
        reason: event.reason.unwrap_or_default(),
        message: event.message.unwrap_or_default(),
        object: format!(
            "{}/{}",
            object.kind.as_deref().unwrap_or("?"),
            object.name.as_deref().unwrap_or("?")
        ),
        count: event.count.map_or(1, |c| c.max(1) as u32),
        last_seen,
    }
}

/// Ray's nodes and jobs, read together.
async fn read_ray(
    dashboards: &Dashboards,
    namespace: &str,
    name: &str,
) -> Result<(Vec<RayNode>, Vec<RayJob>), String> {
    let (nodes, jobs) = futures::join!(
        dashboards.read(namespace, name, &Read::Nodes),
        dashboards.read(namespace, name, &Read::Jobs)
    );
    let nodes = parse_nodes(&nodes.map_err(|e| e.to_string())?)?;
    let jobs = parse_jobs(&jobs.map_err(|e| e.to_string())?)?;
    Ok((nodes, jobs))
}

/// A failed read keeps the last nodes and jobs, marked with the error.
fn merge_ray(
    previous: Option<RayView>,
    read: Result<(Vec<RayNode>, Vec<RayJob>), String>,
) -> RayView {
    match read {
        Ok((nodes, jobs)) => RayView { checked: Some(unix_now()), error: None, nodes, jobs },
        Err(error) => RayView { error: Some(error), ..previous.unwrap_or_default() },
    }
}

/// `GET /nodes?view=summary`: `{"data": {"summary": [{ip, cpu, mem: [total, available, percent,
/// used], raylet: {isHeadNode, state, resourcesTotal: {CPU, GPU}}}]}}`.
pub fn parse_nodes(body: &str) -> Result<Vec<RayNode>, String> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| format!("Ray's node summary is not JSON: {e}"))?;
    let summary = value
        .pointer("/data/summary")
        .and_then(Value::as_array)
        .ok_or("Ray's node summary has no data.summary list")?;
    let mut nodes: Vec<RayNode> = summary
        .iter()
        .map(|node| {
            let raylet = &node["raylet"];
            let mem = |i: usize| node["mem"].get(i).and_then(Value::as_u64).unwrap_or(0);
            RayNode {
                ip: node["ip"].as_str().unwrap_or_default().to_owned(),
                head: raylet["isHeadNode"].as_bool().unwrap_or(false),
                state: raylet["state"].as_str().unwrap_or("UNKNOWN").to_owned(),
                cpu_percent: node["cpu"].as_f64().unwrap_or(0.0),
                cpus: raylet.pointer("/resourcesTotal/CPU").and_then(Value::as_f64).unwrap_or(0.0),
                gpus: raylet.pointer("/resourcesTotal/GPU").and_then(Value::as_f64).unwrap_or(0.0),
                memory_used: mem(3),
                memory_total: mem(0),
            }
        })
        .collect();
    nodes.sort_by(|a, b| (!a.head, &a.ip).cmp(&(!b.head, &b.ip)));
    Ok(nodes)
}

/// `GET /api/jobs/`: a plain list (no envelope) of Ray's job details.
pub fn parse_jobs(body: &str) -> Result<Vec<RayJob>, String> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| format!("Ray's job list is not JSON: {e}"))?;
    let list = value.as_array().ok_or("Ray's job list is not a list")?;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let mut jobs: Vec<RayJob> = list
        .iter()
        .filter_map(|job| {
            // Submitted jobs are read by submission id; a driver started by hand has only a job id.
            let id = text(&job["submission_id"]).or_else(|| text(&job["job_id"]))?;
            Some(RayJob {
                id,
                status: text(&job["status"]).unwrap_or_else(|| "PENDING".into()),
                entrypoint: text(&job["entrypoint"]).unwrap_or_default(),
                message: text(&job["message"]).filter(|m| !m.is_empty()),
                start_time: job["start_time"].as_i64().filter(|t| *t > 0),
                end_time: job["end_time"].as_i64().filter(|t| *t > 0),
            })
        })
        .collect();
    jobs.sort_by(|a, b| b.start_time.cmp(&a.start_time).then_with(|| a.id.cmp(&b.id)));
    Ok(jobs)
}

/// A keyed cache whose values are refreshed in the background once older than its freshness,
/// at most one refresh per key at a time. Bounded: at [`MAX_ENTRIES`], entries nobody asked for
/// in a minute are dropped, then the least recently asked.
pub struct Cache<V> {
    fresh_for: Duration,
    entries: Arc<Mutex<HashMap<String, Entry<V>>>>,
}

struct Entry<V> {
    value: Option<V>,
    fetched: Option<Instant>,
    asked: Instant,
    refreshing: bool,
    /// Bumped after every refresh, for the first request to wait on.
    done: watch::Sender<u64>,
}

impl<V: Clone + Send + 'static> Cache<V> {
    /// A cache whose values stay fresh for `fresh_for`.
    pub fn new(fresh_for: Duration) -> Self {
        Cache { fresh_for, entries: Arc::default() }
    }

    /// The value for `key`. When it is missing or stale, `read` runs in the background and
    /// `apply(previous, result)` becomes the new value; only a key never read yet waits for it,
    /// up to [`FIRST_WAIT`]. `None` when there is no value yet.
    pub async fn get<R, F>(&self, key: &str, read: F, apply: fn(Option<V>, R) -> V) -> Option<V>
    where
        F: Future<Output = R> + Send + 'static,
        R: Send + 'static,
    {
        let (value, mut done) = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if entries.len() >= MAX_ENTRIES && !entries.contains_key(key) {
                evict(&mut entries);
            }
            let entry = entries.entry(key.to_owned()).or_insert_with(|| Entry {
                value: None,
                fetched: None,
                asked: Instant::now(),
                refreshing: false,
                done: watch::channel(0).0,
            });
            entry.asked = Instant::now();
            let stale = entry.fetched.is_none_or(|t| t.elapsed() >= self.fresh_for);
            if stale && !entry.refreshing {
                entry.refreshing = true;
                let (entries, key) = (self.entries.clone(), key.to_owned());
                tokio::spawn(async move {
                    let result = read.await;
                    let mut entries = entries.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(entry) = entries.get_mut(&key) {
                        entry.value = Some(apply(entry.value.take(), result));
                        entry.fetched = Some(Instant::now());
                        entry.refreshing = false;
                        entry.done.send_modify(|n| *n += 1);
                    }
                });
            }
            (entry.value.clone(), entry.done.subscribe())
        };
        if value.is_some() {
            return value;
        }
        let _ = tokio::time::timeout(FIRST_WAIT, done.changed()).await;
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).and_then(|e| e.value.clone())
    }
}

fn evict<V>(entries: &mut HashMap<String, Entry<V>>) {
    entries.retain(|_, e| e.asked.elapsed() < Duration::from_secs(60));
    if entries.len() >= MAX_ENTRIES {
        if let Some(oldest) = entries.iter().min_by_key(|(_, e)| e.asked).map(|(k, _)| k.clone()) {
            entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const NODES: &str = include_str!("../tests/fixtures/ray-2.60/nodes-summary.json");
    const JOBS: &str = include_str!("../tests/fixtures/ray-2.60/jobs.json");

    #[test]
    fn ray_260_nodes_read_as_the_page_shows_them() {
        let nodes = parse_nodes(NODES).unwrap();
        assert_eq!(nodes.len(), 1);
        let head = &nodes[0];
        assert_eq!(
            (head.ip.as_str(), head.head, head.state.as_str()),
            ("10.245.0.3", true, "ALIVE")
        );
        assert_eq!((head.cpus, head.gpus), (1.0, 0.0));
        assert_eq!((head.memory_total, head.memory_used), (25_276_063_744, 2_599_096_320));
        assert!((head.cpu_percent - 99.8).abs() < 1e-9);
    }

    #[test]
    fn ray_260_jobs_read_newest_first_by_submission_id() {
        let jobs = parse_jobs(JOBS).unwrap();
        let seen: Vec<(&str, &str)> =
            jobs.iter().map(|j| (j.id.as_str(), j.status.as_str())).collect();
        assert_eq!(
            seen,
            [
                ("fixture-failed", "FAILED"),
                ("fixture-running", "RUNNING"),
                ("fixture-ok", "SUCCEEDED")
            ]
        );
        let running = &jobs[1];
        assert_eq!((running.start_time, running.end_time), (Some(1_795_697_696_343), None));
        assert!(jobs[0].message.as_deref().unwrap().contains("exit code 3"));
    }

    #[test]
    fn answers_that_are_not_rays_are_errors_not_panics() {
        assert!(parse_nodes("<html>").unwrap_err().contains("not JSON"));
        assert!(parse_nodes("{\"data\": {}}").unwrap_err().contains("data.summary"));
        assert!(parse_jobs("{\"jobs\": []}").unwrap_err().contains("not a list"));
        assert_eq!(
            parse_jobs("[{\"status\": \"RUNNING\"}]").unwrap(),
            Vec::new(),
            "a job without an id is skipped"
        );
    }

    #[test]
    fn a_failed_ray_read_keeps_the_last_answer_with_the_error() {
        let ok = merge_ray(
            None,
            Ok((vec![RayNode { ip: "10.0.0.1".into(), ..RayNode::default() }], vec![])),
        );
        assert!(ok.checked.is_some() && ok.error.is_none());
        let failed = merge_ray(Some(ok.clone()), Err("did not answer".into()));
        assert_eq!(
            (failed.nodes, failed.checked, failed.error.as_deref()),
            (ok.nodes, ok.checked, Some("did not answer"))
        );
    }

    #[tokio::test]
    async fn many_askers_share_one_read_and_a_slow_read_never_blocks_a_cached_answer() {
        let cache: Cache<u32> = Cache::new(Duration::from_millis(50));
        let reads = Arc::new(AtomicUsize::new(0));
        let read = |reads: Arc<AtomicUsize>, delay: u64| async move {
            reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(delay)).await;
            7
        };
        // Ten pages ask at once: one read, every page gets its answer.
        let asks = (0..10).map(|_| cache.get("a/b", read(reads.clone(), 10), |_, r| r));
        let answers = futures::future::join_all(asks).await;
        assert!(answers.iter().all(|a| *a == Some(7)));
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        // Stale now; the next read hangs far longer than any page would wait, yet the answer is
        // immediate: the cached value.
        tokio::time::sleep(Duration::from_millis(60)).await;
        let started = Instant::now();
        assert_eq!(cache.get("a/b", read(reads.clone(), 10_000), |_, r| r).await, Some(7));
        assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
        // A cluster never read waits at most FIRST_WAIT for a hanging read, then answers without.
        let started = Instant::now();
        assert_eq!(cache.get("c/d", read(reads.clone(), 10_000), |_, r| r).await, None);
        assert!(started.elapsed() < FIRST_WAIT + Duration::from_millis(500));
    }
}
