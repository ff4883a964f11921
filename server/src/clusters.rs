//! The RayCluster watch: a kube-rs reflector over every namespace, the store it fills, and the
//! feed of changes that open pages follow.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use app::api::{ClusterList, ClusterRef};
use futures::{Future, StreamExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use platform::kuberay::RayCluster;
use platform::{ClusterCondition, ClusterDetail, ClusterSummary};
use tokio::sync::broadcast;

use crate::watch::{explain, WatchHealth, Watched};

const WATCHED: Watched = Watched {
    kind: "RayCluster",
    resource: "rayclusters.ray.io",
    install: "install the KubeRay operator or its CRDs",
};

/// How many changes the feed holds for a slow follower before it must take a fresh snapshot.
pub const FEED_CAPACITY: usize = 1024;

/// A change to the cluster list, as published to followers.
#[derive(Clone, Debug)]
pub enum ClusterChange {
    /// A cluster was created or changed.
    Upsert(ClusterSummary),
    /// A cluster was deleted.
    Delete(ClusterRef),
    /// The watch relisted: changes may have been folded together, take a snapshot.
    Resync,
}

/// The web side's handle on the watched RayClusters: cheap to clone.
#[derive(Clone)]
pub struct Clusters {
    inner: Arc<Shared>,
}

struct Shared {
    /// Every RayCluster, as the reflector last saw it.
    store: Store<RayCluster>,
    /// Changes, in the order the watch saw them.
    feed: broadcast::Sender<ClusterChange>,
    /// Synced, errors.
    health: WatchHealth,
}

/// What the background watch task needs: the reflector's writer and the shared state.
pub struct ClusterWatch {
    api: Api<RayCluster>,
    writer: reflector::store::Writer<RayCluster>,
    shared: Arc<Shared>,
    apiserver: String,
}

/// Creates the store (for the web side) and the watch (to run in the background). `apiserver`
/// names the cluster in error messages.
pub fn watch(client: Client, apiserver: String) -> (Clusters, ClusterWatch) {
    let (store, writer) = reflector::store();
    let (feed, _) = broadcast::channel(FEED_CAPACITY);
    let shared = Arc::new(Shared { store, feed, health: WatchHealth::default() });
    let watch = ClusterWatch { api: Api::all(client), writer, shared: shared.clone(), apiserver };
    (Clusters { inner: shared }, watch)
}

impl Clusters {
    /// Every cluster, sorted by namespace and name.
    pub fn list(&self) -> Vec<ClusterSummary> {
        let mut rows: Vec<ClusterSummary> =
            self.inner.store.state().iter().map(|c| c.summary()).collect();
        rows.sort_unstable_by(|a, b| a.key().cmp(&b.key()));
        rows
    }

    /// One cluster by namespace and name.
    pub fn get(&self, namespace: &str, name: &str) -> Option<ClusterSummary> {
        let key = reflector::ObjectRef::new(name).within(namespace);
        self.inner.store.get(&key).map(|c| c.summary())
    }

    /// One cluster as its page shows it.
    pub fn detail(&self, namespace: &str, name: &str) -> Option<ClusterDetail> {
        let key = reflector::ObjectRef::new(name).within(namespace);
        self.inner.store.get(&key).map(|c| c.detail())
    }

    /// The uid and `status.conditions` of one cluster, or `None` when it is not stored.
    pub fn conditions(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<(String, Vec<ClusterCondition>)> {
        let key = reflector::ObjectRef::new(name).within(namespace);
        self.inner.store.get(&key).map(|c| {
            let conditions = c.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
            (c.metadata.uid.clone().unwrap_or_default(), conditions)
        })
    }

    /// The uid of one cluster, when it is stored.
    pub fn uid(&self, namespace: &str, name: &str) -> Option<String> {
        let key = reflector::ObjectRef::new(name).within(namespace);
        self.inner.store.get(&key).and_then(|c| c.metadata.uid.clone())
    }

    /// Every cluster with its team and owner (the `raydar.dev/team` and `raydar.dev/owner`
    /// labels raydar's launches set; empty when absent).
    pub fn with_owners(&self) -> Vec<(ClusterSummary, String, String)> {
        self.inner
            .store
            .state()
            .iter()
            .map(|c| {
                let label = |key: &str| {
                    c.metadata.labels.as_ref().and_then(|l| l.get(key)).cloned().unwrap_or_default()
                };
                (
                    c.summary(),
                    label(platform::template::LABEL_TEAM),
                    label(platform::template::LABEL_OWNER),
                )
            })
            .collect()
    }

    /// The namespaces that have clusters.
    pub fn namespaces(&self) -> std::collections::BTreeSet<String> {
        self.inner.store.state().iter().filter_map(|c| c.metadata.namespace.clone()).collect()
    }

    /// The list with the server's clock, as pages render it (every cluster: callers keep what
    /// the requester may see).
    pub fn snapshot(&self) -> ClusterList {
        ClusterList { clusters: self.list(), now: unix_now() }
    }

    /// Follows changes from now on. Subscribe before taking a snapshot so nothing falls between.
    pub fn subscribe(&self) -> broadcast::Receiver<ClusterChange> {
        self.inner.feed.subscribe()
    }

    /// Whether the watch has synced, and its errors.
    pub fn health(&self) -> &WatchHealth {
        &self.inner.health
    }

    /// Pages following the feed right now.
    pub fn followers(&self) -> usize {
        self.inner.feed.receiver_count()
    }

    /// Clusters in the store.
    pub fn len(&self) -> usize {
        self.inner.store.len()
    }

    /// True when no cluster is stored.
    pub fn is_empty(&self) -> bool {
        self.inner.store.is_empty()
    }
}

impl ClusterWatch {
    /// Watches RayClusters until `shutdown` completes. Errors are reported and retried with
    /// backoff (0.8 s growing to 30 s); they never end the watch.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let ClusterWatch { api, writer, shared, apiserver } = self;
        // Managed fields and the last-applied annotation are often larger than the rest of the
        // object together and raydar shows neither.
        let stream = watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            .modify(|c: &mut RayCluster| {
                c.meta_mut().managed_fields = None;
                if let Some(a) = c.meta_mut().annotations.as_mut() {
                    a.remove("kubectl.kubernetes.io/last-applied-configuration");
                }
            })
            .reflect(writer);
        tokio::pin!(stream);
        tokio::pin!(shutdown);
        loop {
            let event = tokio::select! {
                _ = &mut shutdown => break,
                event = stream.next() => event,
            };
            match event {
                None => break,
                Some(Ok(event)) => shared.apply(event),
                Some(Err(e)) => shared.report(&e, &apiserver),
            }
        }
    }
}

impl Shared {
    fn apply(&self, event: watcher::Event<RayCluster>) {
        let change = match event {
            watcher::Event::Apply(c) => ClusterChange::Upsert(c.summary()),
            watcher::Event::Delete(c) => ClusterChange::Delete(ClusterRef {
                namespace: c.metadata.namespace.clone().unwrap_or_default(),
                name: c.metadata.name.clone().unwrap_or_default(),
            }),
            watcher::Event::InitDone => {
                if self.health.mark_synced() {
                    tracing::info!(clusters = self.store.len(), "RayCluster watch synced");
                }
                ClusterChange::Resync
            }
            // The store swaps in the relisted objects at InitDone; nothing to publish before.
            watcher::Event::Init | watcher::Event::InitApply(_) => return,
        };
        self.health.recovered();
        // No receivers is fine: nobody has the page open.
        let _ = self.feed.send(change);
    }

    fn report(&self, error: &watcher::Error, apiserver: &str) {
        self.health.failed(explain(error, WATCHED, apiserver));
    }
}

/// Seconds since the Unix epoch by the server's clock.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs() as i64
}
