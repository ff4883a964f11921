//! The RayCluster watch: a kube-rs reflector over every namespace, the store it fills, and the
//! feed of changes that open pages follow.

use std::sync::Arc;

use app::api::{ClusterList, ClusterRef};
use kube::runtime::reflector;
use kube::runtime::watcher;
use kube::{Api, Client};
use platform::kuberay::RayCluster;
use platform::{ClusterCondition, ClusterDetail, ClusterSummary};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::watch::{Reflected, WatchHealth, Watched};
use crate::unix_now;

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

/// The watched RayClusters and the feed of their changes: cheap to clone. Handlers read it;
/// [`Clusters::run`] (the source) fills it.
#[derive(Clone)]
pub struct Clusters {
    inner: Arc<Shared>,
}

struct Shared {
    /// raydar's own client: the watch lists with it.
    client: Client,
    /// Names the Kubernetes cluster in error messages.
    apiserver: String,
    /// Every RayCluster, as the reflector last saw it; synced, errors.
    reflected: Reflected<RayCluster>,
    /// Changes, in the order the watch saw them.
    feed: broadcast::Sender<ClusterChange>,
}

impl Clusters {
    /// An empty store, filled once [`Clusters::run`] runs; `apiserver` names the cluster in
    /// error messages.
    pub fn new(client: Client, apiserver: String) -> Self {
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        Clusters {
            inner: Arc::new(Shared { client, apiserver, reflected: Reflected::default(), feed }),
        }
    }

    /// The source: watches RayClusters in every namespace until `shutdown`. Errors are reported
    /// and retried with backoff; they never end the watch.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), String> {
        let shared = &self.inner;
        let api = Api::<RayCluster>::all(shared.client.clone());
        let config = watcher::Config::default().any_semantic();
        let publish = |event: &watcher::Event<RayCluster>| shared.publish(event);
        shared
            .reflected
            .run(api, config, WATCHED, &shared.apiserver, publish, shutdown.cancelled())
            .await;
        Ok(())
    }

    fn store(&self) -> reflector::Store<RayCluster> {
        self.inner.reflected.store()
    }

    /// Every cluster, sorted by namespace and name.
    pub fn list(&self) -> Vec<ClusterSummary> {
        let mut rows: Vec<ClusterSummary> =
            self.store().state().iter().map(|c| c.summary()).collect();
        rows.sort_unstable_by(|a, b| a.key().cmp(&b.key()));
        rows
    }

    /// One cluster by namespace and name.
    pub fn get(&self, namespace: &str, name: &str) -> Option<ClusterSummary> {
        let key = reflector::ObjectRef::new(name).within(namespace);
        self.store().get(&key).map(|c| c.summary())
    }

    /// One cluster as its page shows it.
    pub fn detail(&self, namespace: &str, name: &str) -> Option<ClusterDetail> {
        let key = reflector::ObjectRef::new(name).within(namespace);
        self.store().get(&key).map(|c| c.detail())
    }

    /// The uid and `status.conditions` of one cluster, or `None` when it is not stored.
    pub fn conditions(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<(String, Vec<ClusterCondition>)> {
        let key = reflector::ObjectRef::new(name).within(namespace);
        self.store().get(&key).map(|c| {
            let conditions = c.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
            (c.metadata.uid.clone().unwrap_or_default(), conditions)
        })
    }

    /// The uid of one cluster, when it is stored.
    pub fn uid(&self, namespace: &str, name: &str) -> Option<String> {
        let key = reflector::ObjectRef::new(name).within(namespace);
        self.store().get(&key).and_then(|c| c.metadata.uid.clone())
    }

    /// Every cluster with its team and owner (the `raydar.dev/team` and `raydar.dev/owner`
    /// labels raydar's launches set; empty when absent).
    pub fn with_owners(&self) -> Vec<(ClusterSummary, String, String)> {
        self.store()
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
        self.store().state().iter().filter_map(|c| c.metadata.namespace.clone()).collect()
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
        &self.inner.reflected.health
    }

    /// Pages following the feed right now.
    pub fn followers(&self) -> usize {
        self.inner.feed.receiver_count()
    }

    /// Clusters in the store.
    pub fn len(&self) -> usize {
        self.store().len()
    }

    /// True when no cluster is stored.
    pub fn is_empty(&self) -> bool {
        self.store().is_empty()
    }
}

impl Shared {
    fn publish(&self, event: &watcher::Event<RayCluster>) {
        let change = match event {
            watcher::Event::Apply(c) => ClusterChange::Upsert(c.summary()),
            watcher::Event::Delete(c) => ClusterChange::Delete(ClusterRef {
                namespace: c.metadata.namespace.clone().unwrap_or_default(),
                name: c.metadata.name.clone().unwrap_or_default(),
            }),
            watcher::Event::InitDone => ClusterChange::Resync,
            // The store swaps in the relisted objects at InitDone; nothing to publish before.
            watcher::Event::Init | watcher::Event::InitApply(_) => return,
        };
        // No receivers is fine: nobody has the page open.
        let _ = self.feed.send(change);
    }
}
