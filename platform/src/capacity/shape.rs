//! The pods a rendered RayCluster spec asks for: for the head and each worker group, how many, what
//! each requests (as the scheduler counts it), and where it may run.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Requirement, Resources, Toleration};
use crate::template::Quantity;

/// The pods of one group of a launch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodShape {
    /// `head`, or the worker group's name.
    pub group: String,
    /// How many: 1 for the head; a worker group's replicas times its hosts.
    pub count: u32,
    /// What one pod requests, as the scheduler counts it: its containers added up, or its
    /// largest init container where that is more; a limit stands for a missing request.
    pub requests: Resources,
    /// Its limits, added up the same way (for `limits.*` quotas).
    pub limits: Resources,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    /// Required node affinity: one of these terms must be met, each wholly.
    pub affinity: Vec<Vec<Requirement>>,
}

/// The head's and each worker group's pods, in that order, of RayCluster `spec`. What is not
/// there counts as nothing: a malformed spec is the apiserver's to refuse.
pub fn shapes(spec: &Value) -> Vec<PodShape> {
    let mut out = vec![shape("head", 1, &spec["headGroupSpec"]["template"]["spec"])];
    for group in spec["workerGroupSpecs"].as_array().into_iter().flatten() {
        let count = |field: &str| group[field].as_u64().map(|n| n.min(u64::from(u32::MAX)) as u32);
        let replicas = count("replicas").or_else(|| count("minReplicas")).unwrap_or(0);
        let hosts = count("numOfHosts").unwrap_or(1).max(1);
        let name = group["groupName"].as_str().unwrap_or("workers");
        out.push(shape(name, replicas.saturating_mul(hosts), &group["template"]["spec"]));
    }
    out
}

fn shape(group: &str, count: u32, pod: &Value) -> PodShape {
    let (requests, limits) = resources(pod);
    let node_selector = pod["nodeSelector"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect();
    let text = |v: &Value, field: &str| v[field].as_str().unwrap_or_default().to_owned();
    let tolerations = pod["tolerations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| Toleration {
            key: text(t, "key"),
            operator: t["operator"].as_str().unwrap_or("Equal").to_owned(),
            value: text(t, "value"),
            effect: text(t, "effect"),
        })
        .collect();
    let terms = &pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"];
    let affinity = terms
        .as_array()
        .into_iter()
        .flatten()
        .map(|term| {
            term["matchExpressions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| Requirement {
                    key: text(r, "key"),
                    operator: text(r, "operator"),
                    values: r["values"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                })
                .collect()
        })
        .collect();
    PodShape { group: group.into(), count, requests, limits, node_selector, tolerations, affinity }
}

/// A pod's requests and limits, from its spec as JSON.
fn resources(pod: &Value) -> (Resources, Resources) {
    let containers = |field: &str| {
        let each = pod[field].as_array().into_iter().flatten();
        each.map(|c| {
            container_resources(
                quantities(&c["resources"]["requests"]),
                quantities(&c["resources"]["limits"]),
            )
        })
        .collect::<Vec<_>>()
    };
    pod_resources(containers("containers"), containers("initContainers"))
}

/// The quantities of a `requests` or `limits` object, as text.
fn quantities(field: &Value) -> Vec<(String, String)> {
    let each = field.as_object().into_iter().flatten();
    each.filter_map(|(name, v)| {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        Some((name.clone(), text))
    })
    .collect()
}

/// A pod's requests and limits, from its containers' and init containers' (each as
/// [`container_resources`] reads it): containers added up; where an init container (they run
/// one at a time, before the rest) asks for more of a resource, that.
pub(super) fn pod_resources(
    containers: Vec<(Resources, Resources)>,
    init_containers: Vec<(Resources, Resources)>,
) -> (Resources, Resources) {
    let (mut requests, mut limits) = (Resources::new(), Resources::new());
    for (r, l) in &containers {
        add(&mut requests, r);
        add(&mut limits, l);
    }
    for (r, l) in &init_containers {
        at_least(&mut requests, r);
        at_least(&mut limits, l);
    }
    (requests, limits)
}

/// A container's requests and limits from their quantities as text; what does not parse counts
/// as nothing (the apiserver refuses it anyway).
pub(super) fn container_resources(
    requests: Vec<(String, String)>,
    limits: Vec<(String, String)>,
) -> (Resources, Resources) {
    let read = |quantities: Vec<(String, String)>| -> Resources {
        quantities
            .into_iter()
            .filter_map(|(name, text)| {
                let nanos = Quantity::parse(&text).ok()?.nanos();
                (nanos > 0).then_some((name, nanos))
            })
            .collect()
    };
    let limits = read(limits);
    let mut requests = read(requests);
    // Kubernetes defaults a missing request to the limit.
    for (name, limit) in &limits {
        requests.entry(name.clone()).or_insert(*limit);
    }
    (requests, limits)
}

fn add(total: &mut Resources, more: &Resources) {
    for (name, n) in more {
        *total.entry(name.clone()).or_default() += n;
    }
}

fn at_least(total: &mut Resources, other: &Resources) {
    for (name, n) in other {
        let slot = total.entry(name.clone()).or_default();
        *slot = (*slot).max(*n);
    }
}
