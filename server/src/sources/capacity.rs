//! What a launch preview judges capacity against: every Node as the verdict needs it, what the
//! pods bound to each request, and every ResourceQuota: three watches of projections (a pod is
//! its node's name and a few numbers, not its 18 KB object). The per-node sums are made once
//! per change of the pods, not once per preview: a preview runs on every pause in typing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Node as KubeNode, Pod, ResourceQuota};
use kube::runtime::watcher;
use kube::{Api, Client};
use platform::capacity::{self, objects, Capacity, Node, Quota, Resources};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::watch::{Projected, Watch, WatchHealth, Watched};
use crate::config::Scope;

const NODES: Watched = Watched { kind: "Node", resource: "nodes", install: "" };
const PODS: Watched = Watched { kind: "Pod", resource: "pods", install: "" };
const QUOTAS: Watched = Watched { kind: "ResourceQuota", resource: "resourcequotas", install: "" };

/// What a pod uses of its node's room: the node, its requests; `None` for a pod that holds none
/// (the watch's field selector leaves out most of those).
type Load = Option<(String, Resources)>;

/// The watched nodes, pods' requests and quotas: cheap to clone. The launch API reads it;
/// [`NodeCapacity::run`] (the source) fills it.
#[derive(Clone)]
pub struct NodeCapacity {
    inner: Arc<Shared>,
}

struct Shared {
    client: Client,
    apiserver: String,
    /// The namespaces watched: with only some, raydar reads no Node nor other teams' pods.
    scope: Scope,
    nodes: Projected<Node>,
    pods: Projected<Load>,
    quotas: Projected<Option<Quota>>,
    /// Changes seen of nodes and of pods: the nodes with their sums below are of these.
    changes: AtomicU64,
    /// The nodes with what their pods request, as of `changes`.
    summed: Mutex<(u64, Arc<Vec<Node>>)>,
}

impl NodeCapacity {
    /// Empty stores, filled once [`NodeCapacity::run`] runs; `apiserver` names the cluster in
    /// error messages.
    pub fn new(client: Client, apiserver: String, scope: Scope) -> Self {
        let shared = Shared {
            client,
            apiserver,
            scope,
            nodes: Projected::default(),
            pods: Projected::default(),
            quotas: Projected::default(),
            // Not 0: the first judgement sums.
            changes: AtomicU64::new(1),
            summed: Mutex::new((0, Arc::default())),
        };
        NodeCapacity { inner: Arc::new(shared) }
    }

    /// The source: watches nodes, the pods bound to them and quotas, until `shutdown`; only
    /// the quotas of its namespaces when it watches only some.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), String> {
        let shared = &self.inner;
        let (client, apiserver) = (&shared.client, shared.apiserver.as_str());
        let changed = || {
            shared.changes.fetch_add(1, Ordering::Relaxed);
        };
        let any = || watcher::Config::default().any_semantic();
        let quota_api = |ns: Option<&str>| super::typed_api::<ResourceQuota>(client, ns);
        let quotas = Watch::scoped(&shared.scope, quota_api, any(), QUOTAS);
        if shared.scope.namespaces().is_some() {
            shared
                .quotas
                .watch(quotas, apiserver, objects::quota, |_| {}, shutdown.cancelled())
                .await;
            return Ok(());
        }
        let nodes = Watch::all(Api::<KubeNode>::all(client.clone()), any(), NODES);
        let on_nodes = any().fields(objects::PODS_ON_NODES);
        let pods = Watch::all(Api::<Pod>::all(client.clone()), on_nodes, PODS);
        tokio::join!(
            shared.nodes.watch(
                nodes,
                apiserver,
                objects::node,
                |_| changed(),
                shutdown.cancelled()
            ),
            shared.pods.watch(
                pods,
                apiserver,
                objects::pod_load,
                |_| changed(),
                shutdown.cancelled()
            ),
            shared.quotas.watch(quotas, apiserver, objects::quota, |_| {}, shutdown.cancelled()),
        );
        Ok(())
    }

    /// The capacity of a launch of RayCluster `spec` into `namespace`, as the nodes and quotas
    /// are now.
    pub fn judge(&self, namespace: &str, spec: &Value) -> Capacity {
        let nodes = self.summed();
        let quotas: Result<Vec<Quota>, String> =
            readable(&self.inner.quotas.health, "ResourceQuotas").map(|()| {
                let from = (namespace.to_owned(), String::new());
                let kept = self.inner.quotas.read();
                kept.range(from..)
                    .take_while(|((ns, _), _)| ns == namespace)
                    .filter_map(|(_, q)| q.clone())
                    .collect()
            });
        capacity::judge(
            spec,
            nodes.as_deref().map(Vec::as_slice).map_err(Clone::clone),
            quotas.as_deref().map_err(Clone::clone),
        )
    }

    /// The nodes with what their pods request added up, made anew only when a node or pod
    /// changed since they were last made.
    fn summed(&self) -> Result<Arc<Vec<Node>>, String> {
        let shared = &self.inner;
        if let Some(namespaces) = shared.scope.namespaces() {
            return Err(format!(
                "raydar reads no Nodes: it watches only the namespaces {} (--namespaces)",
                namespaces.join(", ")
            ));
        }
        readable(&shared.nodes.health, "Nodes")?;
        readable(&shared.pods.health, "Pods")?;
        let changes = shared.changes.load(Ordering::Relaxed);
        let mut summed = shared.summed.lock().unwrap_or_else(|e| e.into_inner());
        if summed.0 != changes {
            let mut nodes: Vec<Node> = shared.nodes.read().values().cloned().collect();
            let pods = shared.pods.read();
            let loads = pods.values().flatten().map(|(node, requests)| (node.as_str(), requests));
            objects::add_load(&mut nodes, loads);
            *summed = (changes, Arc::new(nodes));
        }
        Ok(summed.1.clone())
    }
}

/// Whether a watch has listed its objects: if not, why not in words.
fn readable(health: &WatchHealth, what: &str) -> Result<(), String> {
    if health.synced() {
        return Ok(());
    }
    Err(match health.last_error() {
        Some(why) => format!("raydar could not read the {what}: {why}"),
        None => format!("raydar has not read the {what} yet"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu_node(name: &str) -> Node {
        Node {
            name: name.into(),
            allocatable: [("nvidia.com/gpu".into(), 8_000_000_000)].into(),
            ..Node::default()
        }
    }

    #[tokio::test]
    async fn sums_are_made_again_only_after_a_change() {
        let client =
            Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
        let capacity = NodeCapacity::new(client, "test".into(), Scope::All);
        let shared = &capacity.inner;
        let key = |name: &str| (String::new(), name.to_owned());
        shared.nodes.write_for_tests().insert(key("gpu-1"), gpu_node("gpu-1"));
        let gpus = |n: i128| Resources::from([("nvidia.com/gpu".into(), n * 1_000_000_000)]);
        shared.pods.write_for_tests().insert(key("p"), Some(("gpu-1".into(), gpus(3))));
        for health in [&shared.nodes.health, &shared.pods.health, &shared.quotas.health] {
            health.mark_synced();
        }
        let first = capacity.summed().unwrap();
        assert_eq!(first[0].requested, gpus(3));
        // Nothing changed: the same sums, not made again.
        assert!(Arc::ptr_eq(&first, &capacity.summed().unwrap()));
        shared.pods.write_for_tests().insert(key("q"), Some(("gpu-1".into(), gpus(2))));
        shared.changes.fetch_add(1, Ordering::Relaxed);
        assert_eq!(capacity.summed().unwrap()[0].requested, gpus(5));
    }

    #[tokio::test]
    async fn a_watch_that_has_not_listed_says_so() {
        let client =
            Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
        let capacity = NodeCapacity::new(client, "test".into(), Scope::All);
        let spec = serde_json::json!({"headGroupSpec": {"template": {"spec": {"containers": []}}}});
        let judged = capacity.judge("ml", &spec);
        assert_eq!(judged.verdict, capacity::Verdict::Unknown);
        assert_eq!(
            judged.unknown,
            ["raydar has not read the Nodes yet", "raydar has not read the ResourceQuotas yet"]
        );
    }
}
