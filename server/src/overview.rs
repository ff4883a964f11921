//! A cluster's page below its summary ([`ClusterOverview`]): its pods, conditions, recent events,
//! and Ray's nodes and jobs.
//!
//! Each part comes from where it is cheapest to keep current:
//! - pods from a watch of every Ray pod (label `ray.io/is-ray-node=yes`), like the RayCluster
//!   watch: answering costs no call;
//! - conditions from the RayCluster watch;
//! - events and Ray's view are read while a page follows the cluster and kept a moment
//!   ([`FRESH_FOR`]), so any number of open pages cost one apiserver list and one pair of
//!   dashboard reads per cluster every couple of seconds.
//!
//! Pages follow a cluster ([`Overviews::follow`]): one feed per cluster, however many pages,
//! assembles the overview again when one of its pods or the RayCluster changes (pushed at once)
//! and every second for what changes inside Ray and in events (read in the background), and
//! publishes it only when it differs. A read never makes a page wait on it: the feed uses what is
//! cached and the read runs in the background, so a dashboard that hangs for its whole timeout
//! delays nobody; its page shows the last answer and the error.
//!
//! # Layout
//! - [`Overviews`]: the two caches and the feeds; [`Overviews::overview`] assembles a page.
//! - `feed`: one cluster's feed, for as long as a page follows it.
//! - `read_events`, `read_ray`: the two reads, each within a timeout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kube::api::ListParams;
use kube::{Api, Client};
use platform::overview::{ClusterOverview, EventRow, RayJob, RayNode, RayView};
use platform::waiting::objects::cluster_progress;
use platform::waiting::{waiting, Refusal, Waiting};
use platform::ClusterCondition;

use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::error::ApiError;
use crate::ray::{Dashboards, Read};
use crate::sources::pods::{last_lines, ClusterKey};
use crate::sources::{ClusterChange, Clusters, RayPods};
use crate::unix_now;

/// How long a read of events or of Ray stays fresh: pages poll about this often.
pub const FRESH_FOR: Duration = Duration::from_secs(2);
/// Every call to the apiserver for events ends within this.
const EVENTS_TIMEOUT: Duration = Duration::from_secs(5);
/// Events shown per cluster, newest first.
const MAX_EVENTS: usize = 50;
/// Pod events read per namespace to find the cluster's among them.
const POD_EVENTS_READ: u32 = 500;
/// How often a feed looks again at what it reads in the background (Ray, events).
const FEED_TICK: Duration = Duration::from_secs(1);
/// Lines shown of a crash-looping container's previous run, and at most so many bytes.
const LAST_LINES: i64 = 20;
const LAST_LINES_BYTES: i64 = 8 * 1024;
/// How long a crashed run's last lines are kept: keyed by restart, they do not change.
const LAST_LINES_FRESH: Duration = Duration::from_secs(300);
/// Clusters followed at once; a page for one more is refused until another closes.
pub const MAX_FOLLOWED: usize = 512;

/// One cluster's overview as its feed last published it; `None` once the cluster is gone.
pub type Followed = watch::Receiver<Option<ClusterOverview>>;

/// The caches behind cluster pages: cheap to clone.
#[derive(Clone)]
pub struct Overviews {
    inner: Arc<Inner>,
}

struct Inner {
    clusters: Clusters,
    pods: RayPods,
    kube: Client,
    dashboards: Dashboards,
    events: Cache<Result<Vec<EventRow>, String>>,
    ray: Cache<RayView>,
    /// Crash-looping containers' last lines, by pod, container and restart.
    last_lines: Cache<String>,
    /// The feed of every followed cluster. A std mutex: never held across an await.
    feeds: Mutex<HashMap<ClusterKey, watch::Sender<Option<ClusterOverview>>>>,
    /// Ends every feed when raydar shuts down.
    shutdown: CancellationToken,
}

impl Overviews {
    /// The Ray pod watch the pages are assembled from.
    pub fn pods(&self) -> &RayPods {
        &self.inner.pods
    }

    /// Pages of the clusters in `clusters`, with pods from `pods`, events read with `kube` and
    /// Ray's view from `dashboards`.
    /// Feeds end when `shutdown` is cancelled.
    pub fn new(
        clusters: Clusters,
        pods: RayPods,
        kube: Client,
        dashboards: Dashboards,
        shutdown: CancellationToken,
    ) -> Self {
        let inner = Inner {
            clusters,
            pods,
            kube,
            dashboards,
            events: Cache::new(FRESH_FOR),
            ray: Cache::new(FRESH_FOR),
            last_lines: Cache::new(LAST_LINES_FRESH),
            feeds: Mutex::default(),
            shutdown,
        };
        Overviews { inner: Arc::new(inner) }
    }

    /// Follows RayCluster `namespace/name`: its overview now, then whenever it changes. 404
    /// when raydar does not know the cluster, 503 when [`MAX_FOLLOWED`] clusters are followed.
    pub async fn follow(&self, namespace: &str, name: &str) -> Result<Followed, ApiError> {
        let key = (namespace.to_owned(), name.to_owned());
        let joined = {
            let feeds = self.inner.feeds.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(feed) = feeds.get(&key) {
                Some(feed.subscribe())
            } else if feeds.len() >= MAX_FOLLOWED {
                return Err(ApiError::unavailable(format!(
                    "raydar follows at most {MAX_FOLLOWED} clusters' pages at once; this one can \
                     start when another page is closed"
                )));
            } else {
                None
            }
        };
        if let Some(followed) = joined {
            return Ok(followed);
        }
        // The first follower waits for the first overview (briefly, for the first reads).
        let first = self.overview(namespace, name).await;
        if first.is_none() {
            return Err(ApiError::no_cluster(namespace, name));
        }
        let mut feeds = self.inner.feeds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(feed) = feeds.get(&key) {
            return Ok(feed.subscribe());
        }
        let (feed, followed) = watch::channel(first);
        feeds.insert(key.clone(), feed.clone());
        tokio::spawn(self.clone().feed(key, feed));
        Ok(followed)
    }

    /// Keeps one cluster's feed current until nobody follows it, the cluster is gone or raydar
    /// shuts down.
    async fn feed(self, key: ClusterKey, feed: watch::Sender<Option<ClusterOverview>>) {
        let mut pods = self.inner.pods.changes();
        let mut clusters = self.inner.clusters.subscribe();
        let mut tick = tokio::time::interval(FEED_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = changed(&key, &mut pods, &mut clusters) => {}
                () = feed.closed() => {
                    // Gone for good only if nobody joined meanwhile (joining takes the lock).
                    let mut feeds = self.inner.feeds.lock().unwrap_or_else(|e| e.into_inner());
                    if feed.receiver_count() == 0 {
                        feeds.remove(&key);
                        return;
                    }
                    continue;
                }
                _ = self.inner.shutdown.cancelled() => break,
            }
            let next = self.overview(&key.0, &key.1).await;
            let gone = next.is_none();
            feed.send_if_modified(|last| {
                let differs = match (last.as_ref(), next.as_ref()) {
                    (Some(a), Some(b)) => {
                        ClusterOverview { now: 0, ..a.clone() }
                            != ClusterOverview { now: 0, ..b.clone() }
                    }
                    (a, b) => a.is_some() != b.is_some(),
                };
                if differs {
                    *last = next;
                }
                differs
            });
            if gone {
                break;
            }
        }
        self.inner.feeds.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
    }

    /// The page of RayCluster `namespace/name`, or `None` when raydar does not know it.
    pub async fn overview(&self, namespace: &str, name: &str) -> Option<ClusterOverview> {
        let (uid, conditions) = self.inner.clusters.conditions(namespace, name)?;
        let pods = self.inner.pods.of_cluster(namespace, name);
        let key = format!("{namespace}/{name}");
        let pod_names: Vec<String> = pods.iter().map(|p| p.name.clone()).collect();
        let (kube, ns) = (self.inner.kube.clone(), namespace.to_owned());
        let events = self.inner.events.get(
            &key,
            async move { read_events(kube, &ns, &uid, &pod_names).await },
            // A failed read keeps the events last read: the page is marked stale instead.
            |old, new| match (old, new) {
                (Some(Ok(events)), Err(_)) => Ok(events),
                (_, new) => new,
            },
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
        let ray = ray.unwrap_or_default();
        let waiting = self.waiting(namespace, name, &conditions, &events, &ray).await;
        Some(ClusterOverview {
            pods,
            conditions,
            events,
            ray,
            waiting,
            now: unix_now(),
            // The cluster's watch first: it is the one the summary above comes from.
            stale: self.inner.clusters.stale().or_else(|| self.inner.pods.health().stale()),
        })
    }
}

impl Overviews {
    /// The stages of the cluster's start (`None` while it is suspended), from what the watches
    /// keep and the events and Ray's view just read; a crash-looping container's last lines are
    /// read once per restart.
    async fn waiting(
        &self,
        namespace: &str,
        name: &str,
        conditions: &[ClusterCondition],
        events: &[EventRow],
        ray: &RayView,
    ) -> Option<Waiting> {
        let detail = self.inner.clusters.detail(namespace, name)?;
        // What KubeRay said against it: its Warning events.
        let warnings = events
            .iter()
            .filter(|e| e.kind == "Warning" && e.object.starts_with("RayCluster/"))
            .map(|e| Refusal {
                reason: e.reason.clone(),
                message: e.message.clone(),
                at: e.last_seen,
            })
            .collect();
        let cluster = cluster_progress(
            &detail.summary,
            detail.suspend,
            conditions,
            warnings,
            ray.error.clone(),
        );
        let mut pods = self.inner.pods.progress_of(namespace, name);
        for pod in &mut pods {
            let Some(trouble) = pod.trouble.as_mut().filter(|t| t.reason == "CrashLoopBackOff")
            else {
                continue;
            };
            let key =
                format!("{namespace}/{}/{}/{}", pod.name, trouble.container, trouble.restarts);
            let (kube, ns, pod_name, container) = (
                self.inner.kube.clone(),
                namespace.to_owned(),
                pod.name.clone(),
                trouble.container.clone(),
            );
            let read = async move {
                let read = last_lines(kube, &ns, &pod_name, &container, true);
                match read.lines(LAST_LINES, LAST_LINES_BYTES).await {
                    Ok(text) => text,
                    Err(why) => format!("(its log could not be read: {why})"),
                }
            };
            if let Some(lines) = self.inner.last_lines.get(&key, read, |_, new| new).await {
                trouble.last_lines = lines;
            }
        }
        waiting(&cluster, &pods, unix_now())
    }
}

/// Completes when `key`'s pods or RayCluster change, or when either watch may have missed a
/// change (it relisted, or this follower fell behind).
async fn changed(
    key: &ClusterKey,
    pods: &mut broadcast::Receiver<Option<ClusterKey>>,
    clusters: &mut broadcast::Receiver<ClusterChange>,
) {
    use broadcast::error::RecvError;
    let is_key =
        |namespace: &str, name: &str| (namespace, name) == (key.0.as_str(), key.1.as_str());
    loop {
        let relevant = tokio::select! {
            change = pods.recv() => match change {
                Ok(Some(cluster)) => &cluster == key,
                Ok(None) | Err(RecvError::Lagged(_)) => true,
                // The watch outlives every feed; were it gone, only the clock would be left.
                Err(RecvError::Closed) => std::future::pending().await,
            },
            change = clusters.recv() => match change {
                Ok(ClusterChange::Upsert(row)) => is_key(&row.namespace, &row.name),
                Ok(ClusterChange::Delete(gone)) => is_key(&gone.namespace, &gone.name),
                Ok(ClusterChange::Resync | ClusterChange::Unanswered(_))
                | Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => std::future::pending().await,
            },
        };
        if relevant {
            return;
        }
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
    rows.sort_by_key(|e| std::cmp::Reverse(e.last_seen));
    rows.truncate(MAX_EVENTS);
    Ok(rows)
}

pub(crate) fn event_row(event: Event) -> EventRow {
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
    let nodes = platform::dashboard::nodes(&nodes.map_err(|e| e.to_string())?)?;
    let jobs = platform::dashboard::jobs(&jobs.map_err(|e| e.to_string())?)?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
