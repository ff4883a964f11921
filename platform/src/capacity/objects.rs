//! The verdict's inputs read from Kubernetes objects: a [`Node`] from a Node, what a bound pod
//! requests from a Pod, a [`Quota`] from a ResourceQuota. The server keeps these as its watches
//! see the objects; the CLI reads them once.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{
    Container, Node as KubeNode, Pod, ResourceQuota, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KubeQuantity;

use super::shape::{container_resources, pod_resources};
use super::{Node, Quota, Resources, Taint};

/// The pods that use a node's room: bound to one, and not ended (a field selector for lists and
/// watches of pods; what does not match is not counted).
pub const PODS_ON_NODES: &str = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed";

/// What the verdict needs of `node`; what it requests stays empty (see [`add_load`]).
pub fn node(node: &KubeNode) -> Node {
    let spec = node.spec.as_ref();
    let taints = spec
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .map(|t| Taint {
            key: t.key.clone(),
            value: t.value.clone().unwrap_or_default(),
            effect: t.effect.clone(),
        })
        .collect();
    let allocatable = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
    Node {
        name: node.metadata.name.clone().unwrap_or_default(),
        labels: node.metadata.labels.clone().unwrap_or_default(),
        taints,
        unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
        allocatable: amounts(allocatable),
        requested: Resources::new(),
    }
}

/// The node `pod` is bound to and what it requests there, while it holds room: `None` for a pod
/// not yet scheduled or ended.
pub fn pod_load(pod: &Pod) -> Option<(String, Resources)> {
    let spec = pod.spec.as_ref()?;
    let node = spec.node_name.clone().filter(|n| !n.is_empty())?;
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return None;
    }
    let each = |containers: &[Container]| -> Vec<(Resources, Resources)> {
        containers.iter().map(|c| requirements(c.resources.as_ref())).collect()
    };
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let (requests, _) = pod_resources(each(&spec.containers), each(init));
    Some((node, requests))
}

/// What the verdict needs of `quota`; `None` for a scoped quota (it counts only the pods its
/// scopes select, which the verdict does not judge).
pub fn quota(quota: &ResourceQuota) -> Option<Quota> {
    let spec = quota.spec.as_ref();
    if spec.is_some_and(|s| {
        s.scopes.as_ref().is_some_and(|s| !s.is_empty()) || s.scope_selector.is_some()
    }) {
        return None;
    }
    Some(Quota {
        name: quota.metadata.name.clone().unwrap_or_default(),
        hard: amounts(spec.and_then(|s| s.hard.as_ref())),
        used: amounts(quota.status.as_ref().and_then(|s| s.used.as_ref())),
    })
}

/// Adds what pods request to the nodes they are bound to; a node not among `nodes` is skipped.
pub fn add_load<'a>(nodes: &mut [Node], loads: impl IntoIterator<Item = (&'a str, &'a Resources)>) {
    let index: HashMap<String, usize> =
        nodes.iter().enumerate().map(|(i, n)| (n.name.clone(), i)).collect();
    for (node, requests) in loads {
        let Some(&i) = index.get(node) else { continue };
        let requested = &mut nodes[i].requested;
        for (name, n) in requests {
            *requested.entry(name.clone()).or_default() += n;
        }
    }
}

fn requirements(resources: Option<&ResourceRequirements>) -> (Resources, Resources) {
    let text = |field: Option<&BTreeMap<String, KubeQuantity>>| -> Vec<(String, String)> {
        field.into_iter().flatten().map(|(name, q)| (name.clone(), q.0.clone())).collect()
    };
    container_resources(
        text(resources.and_then(|r| r.requests.as_ref())),
        text(resources.and_then(|r| r.limits.as_ref())),
    )
}

/// Quantities by name in nano-units; what does not parse counts as none.
fn amounts(quantities: Option<&BTreeMap<String, KubeQuantity>>) -> Resources {
    quantities
        .into_iter()
        .flatten()
        .filter_map(|(name, q)| {
            Some((name.clone(), crate::template::Quantity::parse(&q.0).ok()?.nanos()))
        })
        .collect()
}
