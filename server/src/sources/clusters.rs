//! The RayCluster watch over every namespace, what raydar keeps of each cluster, and the feed of
//! changes that open pages follow.
//!
//! The watch reads RayClusters as plain JSON and makes each into a [`RayCluster`] only to take
//! what raydar shows of it. One that does not fit KubeRay's types (a worker count past 32 bits,
//! a string where a number goes: the apiserver's schema does not catch every such case) is kept
//! as a failed row saying so, instead of breaking the watch for every other cluster.

use std::sync::Arc;

use app::api::{ClusterList, ClusterRef};
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::watcher;
use kube::{Api, Client};
use platform::kuberay::RayCluster;
use platform::{ClusterCondition, ClusterDetail, ClusterPhase, ClusterSummary};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::watch::{Change, Projected, WatchHealth, Watched};
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
    /// What is kept of every RayCluster; synced, errors.
    kept: Projected<Kept>,
    /// Changes, in the order the watch saw them.
    feed: broadcast::Sender<ClusterChange>,
}

impl Clusters {
    /// An empty store, filled once [`Clusters::run`] runs; `apiserver` names the cluster in
    /// error messages.
    pub fn new(client: Client, apiserver: String) -> Self {
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        Clusters { inner: Arc::new(Shared { client, apiserver, kept: Projected::default(), feed }) }
    }

    /// The source: watches RayClusters in every namespace until `shutdown`. Errors are reported
    /// and retried with backoff; they never end the watch.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), String> {
        let shared = &self.inner;
        let resource = ApiResource::erase::<RayCluster>(&());
        let api = Api::<DynamicObject>::all_with(shared.client.clone(), &resource);
        let config = watcher::Config::default().any_semantic();
        let publish = |change: Change<'_, Kept>| shared.publish(change);
        shared
            .kept
            .run(
                watcher(api, config),
                WATCHED,
                &shared.apiserver,
                Kept::of,
                publish,
                shutdown.cancelled(),
            )
            .await;
        Ok(())
    }

    /// What is kept of one cluster, through `f`.
    fn with<T>(&self, namespace: &str, name: &str, f: impl FnOnce(&Kept) -> T) -> Option<T> {
        self.inner.kept.read().get(&(namespace.to_owned(), name.to_owned())).map(f)
    }

    /// Every cluster, sorted by namespace and name.
    pub fn list(&self) -> Vec<ClusterSummary> {
        self.inner.kept.read().values().map(|c| c.detail.summary.clone()).collect()
    }

    /// One cluster by namespace and name.
    pub fn get(&self, namespace: &str, name: &str) -> Option<ClusterSummary> {
        self.with(namespace, name, |c| c.detail.summary.clone())
    }

    /// One cluster as its page shows it.
    pub fn detail(&self, namespace: &str, name: &str) -> Option<ClusterDetail> {
        self.with(namespace, name, |c| c.detail.clone())
    }

    /// The uid and `status.conditions` of one cluster, or `None` when it is not stored.
    pub fn conditions(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<(String, Vec<ClusterCondition>)> {
        self.with(namespace, name, |c| (c.detail.summary.uid.clone(), c.conditions.clone()))
    }

    /// The uid of one cluster, when it is stored.
    pub fn uid(&self, namespace: &str, name: &str) -> Option<String> {
        self.with(namespace, name, |c| c.detail.summary.uid.clone()).filter(|uid| !uid.is_empty())
    }

    /// Every cluster with its team and owner (the `raydar.dev/team` and `raydar.dev/owner`
    /// labels raydar's launches set; empty when absent).
    pub fn with_owners(&self) -> Vec<(ClusterSummary, String, String)> {
        self.inner
            .kept
            .read()
            .values()
            .map(|c| {
                let owner = c.detail.owner.clone().unwrap_or_default();
                (c.detail.summary.clone(), c.team.clone(), owner)
            })
            .collect()
    }

    /// The namespaces that have clusters.
    pub fn namespaces(&self) -> std::collections::BTreeSet<String> {
        self.inner.kept.read().keys().map(|(namespace, _)| namespace.clone()).collect()
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
        &self.inner.kept.health
    }

    /// Pages following the feed right now.
    pub fn followers(&self) -> usize {
        self.inner.feed.receiver_count()
    }

    /// Clusters in the store.
    pub fn len(&self) -> usize {
        self.inner.kept.read().len()
    }

    /// True when no cluster is stored.
    pub fn is_empty(&self) -> bool {
        self.inner.kept.read().is_empty()
    }
}

impl Shared {
    fn publish(&self, change: Change<'_, Kept>) {
        let change = match change {
            Change::Applied(c) => ClusterChange::Upsert(c.detail.summary.clone()),
            Change::Deleted(c) => ClusterChange::Delete(ClusterRef {
                namespace: c.detail.summary.namespace.clone(),
                name: c.detail.summary.name.clone(),
            }),
            Change::Relisted => ClusterChange::Resync,
        };
        // No receivers is fine: nobody has the page open.
        let _ = self.feed.send(change);
    }
}

/// What raydar keeps of a RayCluster: what its page shows (the list's row within), its team, and
/// its conditions (the page's events). A few hundred bytes, where the object is kilobytes.
struct Kept {
    detail: ClusterDetail,
    /// The `raydar.dev/team` label; empty when absent.
    team: String,
    conditions: Vec<ClusterCondition>,
}

impl Kept {
    fn of(object: &DynamicObject) -> Kept {
        let label = |key: &str| object.metadata.labels.as_ref()?.get(key).cloned();
        let team = label(platform::template::LABEL_TEAM).unwrap_or_default();
        let typed = serde_json::to_value(object).and_then(serde_json::from_value::<RayCluster>);
        match typed {
            Ok(cluster) => Kept {
                detail: cluster.detail(),
                team,
                conditions: cluster.status.map(|s| s.conditions).unwrap_or_default(),
            },
            Err(e) => {
                let meta = &object.metadata;
                tracing::warn!(
                    namespace = meta.namespace.as_deref().unwrap_or_default(),
                    name = meta.name.as_deref().unwrap_or_default(),
                    "a RayCluster does not fit KubeRay's types, shown as failed: {e}"
                );
                let summary = ClusterSummary {
                    namespace: meta.namespace.clone().unwrap_or_default(),
                    name: meta.name.clone().unwrap_or_default(),
                    uid: meta.uid.clone().unwrap_or_default(),
                    resource_version: meta.resource_version.clone().unwrap_or_default(),
                    phase: ClusterPhase::Failed(format!("malformed RayCluster: {e}")),
                    workers_ready: 0,
                    workers_desired: 0,
                    gpus_desired: 0,
                    created_at: meta.creation_timestamp.as_ref().map_or(0, |t| t.0.as_second()),
                    may_delete: false,
                };
                let detail = ClusterDetail {
                    summary,
                    suspend: false,
                    owner: label(platform::template::LABEL_OWNER),
                    template: label(platform::template::LABEL_TEMPLATE),
                    groups: Vec::new(),
                    may_change: false,
                };
                Kept { detail, team, conditions: Vec::new() }
            }
        }
    }
}
