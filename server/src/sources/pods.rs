//! The Ray pod watch: every pod KubeRay made for a RayCluster (label `ray.io/is-ray-node=yes`),
//! kept as the row cluster pages list and the cluster it belongs to (GPU attribution): a few
//! hundred bytes a pod, where the Pod object is about 18 KB.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::{Api, Client};
use platform::overview::PodRow;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::watch::{Change, Projected, Watch, WatchHealth, Watched};

const WATCHED: Watched = Watched { kind: "Pod", resource: "pods", install: "" };

/// The label KubeRay puts on every pod of a RayCluster.
const RAY_PODS: &str = "ray.io/is-ray-node=yes";
/// Pod changes held for a slow follower; one that falls behind takes everything as changed.
const CHANGES_CAPACITY: usize = 1024;

/// A RayCluster, by namespace and name.
pub type ClusterKey = (String, String);

/// The watched Ray pods: cheap to clone. Handlers read it; [`RayPods::run`] (the source) fills it.
#[derive(Clone)]
pub struct RayPods {
    inner: Arc<Shared>,
}

struct Shared {
    client: Client,
    apiserver: String,
    /// What is kept of every Ray pod; synced, errors.
    kept: Projected<RayPod>,
    /// The cluster of every pod that changed, as the watch saw it; `None` after a relist.
    changes: broadcast::Sender<Option<ClusterKey>>,
}

impl RayPods {
    /// An empty store, filled once [`RayPods::run`] runs.
    pub fn new(client: Client, apiserver: String) -> Self {
        let (changes, _) = broadcast::channel(CHANGES_CAPACITY);
        let shared = Shared { client, apiserver, kept: Projected::default(), changes };
        RayPods { inner: Arc::new(shared) }
    }

    /// The source: watches Ray pods in every namespace until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), String> {
        let shared = &self.inner;
        let api = Api::<Pod>::all(shared.client.clone());
        let config = watcher::Config::default().labels(RAY_PODS).any_semantic();
        let watch = Watch { api, config, what: WATCHED };
        let publish = |change: Change<'_, RayPod>| {
            let change = match change {
                Change::Applied(pod) | Change::Deleted(pod) => {
                    Some((pod.namespace.clone(), pod.cluster.clone()))
                }
                Change::Relisted | Change::Unanswered(_) => None,
            };
            // Nobody following is fine.
            let _ = shared.changes.send(change);
        };
        shared
            .kept
            .watch(watch, &shared.apiserver, RayPod::of, publish, shutdown.cancelled())
            .await;
        Ok(())
    }

    /// Follows which clusters' pods change: `Some(cluster)` for each change, `None` when the
    /// watch relisted (anything may have changed).
    pub fn changes(&self) -> broadcast::Receiver<Option<ClusterKey>> {
        self.inner.changes.subscribe()
    }

    /// The pods of RayCluster `namespace/name`: head first, then workers by group and name.
    pub fn of_cluster(&self, namespace: &str, name: &str) -> Vec<PodRow> {
        // The namespace's pods only: they are kept in order of namespace and name.
        let from = (namespace.to_owned(), String::new());
        let mut rows: Vec<PodRow> = self
            .inner
            .kept
            .read()
            .range(from..)
            .take_while(|((ns, _), _)| ns == namespace)
            .filter(|(_, pod)| pod.cluster == name)
            .map(|(_, pod)| pod.row.clone())
            .collect();
        rows.sort_by(|a, b| {
            (a.role != "head", &a.group, &a.name).cmp(&(b.role != "head", &b.group, &b.name))
        });
        rows
    }

    /// Which RayCluster each Ray pod belongs to: `(namespace, pod)` to the cluster's name
    /// (KubeRay's `ray.io/cluster` label).
    pub fn clusters(&self) -> HashMap<(String, String), String> {
        self.inner.kept.read().iter().map(|(key, pod)| (key.clone(), pod.cluster.clone())).collect()
    }

    /// The cluster (`ray.io/cluster`) of the Ray pod `namespace/pod`, when it is one.
    pub fn cluster_of(&self, namespace: &str, pod: &str) -> Option<String> {
        let kept = self.inner.kept.read();
        kept.get(&(namespace.to_owned(), pod.to_owned())).map(|p| p.cluster.clone())
    }

    /// Whether the watch has synced, and its errors.
    pub fn health(&self) -> &WatchHealth {
        &self.inner.kept.health
    }

    /// Ray pods in the store.
    pub fn len(&self) -> usize {
        self.inner.kept.read().len()
    }

    /// True when no Ray pod is stored.
    pub fn is_empty(&self) -> bool {
        self.inner.kept.read().is_empty()
    }
}

/// What is kept of a Ray pod.
struct RayPod {
    namespace: String,
    /// Its RayCluster's name (KubeRay's `ray.io/cluster` label); empty when it has none.
    cluster: String,
    /// The row its cluster's page shows.
    row: PodRow,
}

impl RayPod {
    fn of(pod: &Pod) -> RayPod {
        RayPod {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            cluster: label(pod, "ray.io/cluster").unwrap_or_default().to_owned(),
            row: pod_row(pod),
        }
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
