//! Capacity before launch for `raydar up` and `raydar render`: the nodes, what the pods bound to
//! them request and the namespace's quotas, read once and judged by `platform::capacity`, as the
//! launch form's preview judges them. It informs, never stops a launch: what cannot be read
//! (RBAC, a slow apiserver) is said, and the launch goes on.

use k8s_openapi::api::core::v1::{Node as KubeNode, Pod, ResourceQuota};
use kube::api::{Api, ListParams};
use platform::capacity::{self, objects, Capacity, Node, Quota, Verdict};
use serde_json::Value;

use crate::kubernetes::Kubernetes;

/// Pods read a page at a time: a fleet's tens of thousands are added to their nodes as they
/// come, never held.
const PAGE: u32 = 500;

/// The capacity of a launch of RayCluster `manifest` into `namespace`.
pub async fn judge(kubernetes: &Kubernetes, namespace: &str, manifest: &Value) -> Capacity {
    let nodes = nodes(kubernetes).await;
    let quotas = quotas(kubernetes, namespace).await;
    capacity::judge(
        &manifest["spec"],
        nodes.as_deref().map_err(Clone::clone),
        quotas.as_deref().map_err(Clone::clone),
    )
}

/// The verdict for people: a line, then a line for each group or quota limit that does not
/// simply fit, each beginning `prefix`.
pub fn lines(capacity: &Capacity, prefix: &str) -> String {
    let mut text = format!("{prefix}capacity: {}\n", capacity.summary);
    if capacity.verdict == Verdict::Now {
        return text;
    }
    for group in capacity.groups.iter().filter(|g| g.fit_now < g.pods) {
        text.push_str(&format!("{prefix}  {} ({}): {}\n", group.group, group.pods, group.verdict));
    }
    for quota in &capacity.quotas {
        text.push_str(&format!("{prefix}  {}\n", quota.verdict));
    }
    for why in capacity.unknown.iter().skip(usize::from(capacity.verdict == Verdict::Unknown)) {
        text.push_str(&format!("{prefix}  not judged: {why}\n"));
    }
    text
}

/// Every node, with what the pods bound to it request added up.
async fn nodes(kubernetes: &Kubernetes) -> Result<Vec<Node>, String> {
    let api: Api<KubeNode> = Api::all(kubernetes.client.clone());
    let listed = kubernetes
        .call("listing nodes", api.list(&ListParams::default()))
        .await
        .map_err(|e| e.to_string())?;
    let mut nodes: Vec<Node> = listed.items.iter().map(objects::node).collect();
    let pods: Api<Pod> = Api::all(kubernetes.client.clone());
    let mut params = ListParams::default().fields(objects::PODS_ON_NODES).limit(PAGE);
    loop {
        let page = kubernetes
            .call("listing the pods on nodes", pods.list(&params))
            .await
            .map_err(|e| e.to_string())?;
        let loads: Vec<_> = page.items.iter().filter_map(objects::pod_load).collect();
        objects::add_load(
            &mut nodes,
            loads.iter().map(|(node, requests)| (node.as_str(), requests)),
        );
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    Ok(nodes)
}

/// The namespace's quotas the verdict judges (scoped ones are left out).
async fn quotas(kubernetes: &Kubernetes, namespace: &str) -> Result<Vec<Quota>, String> {
    let api: Api<ResourceQuota> = Api::namespaced(kubernetes.client.clone(), namespace);
    let listed = kubernetes
        .call(&format!("listing ResourceQuotas in {namespace}"), api.list(&ListParams::default()))
        .await
        .map_err(|e| e.to_string())?;
    Ok(listed.items.iter().filter_map(objects::quota).collect())
}
