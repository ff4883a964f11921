//! Capacity before launch: whether the pods a launch asks for fit the cluster's nodes, how many fit
//! now beside what already runs, and what they would use of the namespace's quota. It informs, it
//! does not block: Kubernetes stays the judge. Pure, so the launch preview can run it on every
//! keystroke and the tests can run it on fixtures.
//!
//! The rules are the scheduler's filters that decide most waits: a cordoned node, taints not
//! tolerated (`NoSchedule`, `NoExecute`), `nodeSelector`, required node affinity, and requests
//! against allocatable (extended resources such as `nvidia.com/gpu` and MIG profiles alike).
//! Pod affinity, topology spread and volumes are not judged: a verdict of "fits" is an upper
//! bound.
//!
//! # Layout
//!
//! - [`shape`]: the pods a rendered RayCluster spec asks for, per group ([`PodShape`]).
//! - [`matching`]: whether a pod may run on a node at all: taints, selectors, affinity.
//! - [`objects`]: the nodes, pods and quotas read from Kubernetes objects.
//! - [`report`]: a launch's [`Capacity`] as the preview, the API and the CLI tell it.
//! - this module: [`fit`], a verdict per group; [`quota_use`], what a launch uses of a quota.

pub mod matching;
pub mod objects;
pub mod report;
pub mod shape;

use std::collections::BTreeMap;

pub use matching::{Requirement, Taint, Toleration};
pub use report::{judge, Capacity, QuotaLimit, Verdict};
pub use shape::{shapes, PodShape};

/// Resources as the scheduler counts them: name to nano-units (a CPU is 10^9, a byte 10^9, a
/// GPU 10^9), so every quantity is exact.
pub type Resources = BTreeMap<String, i128>;

/// One unit, in nano-units.
const UNIT: i128 = 1_000_000_000;

/// A node as the verdict needs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// Cordoned (`spec.unschedulable`).
    pub unschedulable: bool,
    pub allocatable: Resources,
    /// What the pods bound to it request now, added up.
    pub requested: Resources,
}

/// How one group of a launch fits.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GroupFit {
    /// `head`, or the worker group's name.
    pub group: String,
    /// Pods it asks for.
    pub pods: u32,
    /// Nodes one of its pods could run on, were they empty.
    pub nodes: u32,
    /// Of its pods, how many fit now beside what runs (and the groups before it).
    pub fit_now: u32,
    /// In words: "no node has 16 nvidia.com/gpu; the largest has 8", "3 of 4 can start now; 1
    /// will wait for capacity".
    pub verdict: String,
}

impl GroupFit {
    /// Whether none of its pods can ever run as the nodes are.
    pub fn never(&self) -> bool {
        self.nodes == 0
    }
}

/// The verdict for each of `shapes` (in order: the head first) on `nodes`. Pods are placed in
/// turn on the first node with room, so later groups see what earlier ones took.
pub fn fit(shapes: &[PodShape], nodes: &[Node]) -> Vec<GroupFit> {
    let mut free: Vec<Resources> = nodes.iter().map(free_on).collect();
    shapes
        .iter()
        .map(|shape| {
            let eligible: Vec<usize> = (0..nodes.len())
                .filter(|&i| matching::admits(&nodes[i], shape).is_ok())
                .filter(|&i| fits(&nodes[i].allocatable, &shape.requests))
                .collect();
            if eligible.is_empty() {
                return GroupFit {
                    group: shape.group.clone(),
                    pods: shape.count,
                    nodes: 0,
                    fit_now: 0,
                    verdict: why_nowhere(shape, nodes),
                };
            }
            let mut placed = 0;
            'pods: for _ in 0..shape.count {
                for &i in &eligible {
                    if fits(&free[i], &shape.requests) {
                        take(&mut free[i], &shape.requests);
                        placed += 1;
                        continue 'pods;
                    }
                }
                break;
            }
            GroupFit {
                group: shape.group.clone(),
                pods: shape.count,
                nodes: eligible.len() as u32,
                fit_now: placed,
                verdict: now_verdict(shape, placed, eligible.len()),
            }
        })
        .collect()
}

fn free_on(node: &Node) -> Resources {
    node.allocatable
        .iter()
        .map(|(name, total)| {
            let used = node.requested.get(name).copied().unwrap_or(0);
            (name.clone(), (total - used).max(0))
        })
        .collect()
}

/// Whether `requests` fit within `room`: a resource the node does not list is one it has none of.
fn fits(room: &Resources, requests: &Resources) -> bool {
    requests.iter().all(|(name, want)| *want <= 0 || room.get(name).is_some_and(|has| has >= want))
}

fn take(room: &mut Resources, requests: &Resources) {
    for (name, want) in requests {
        if let Some(has) = room.get_mut(name) {
            *has -= want;
        }
    }
}

fn now_verdict(shape: &PodShape, placed: u32, nodes: usize) -> String {
    let on = format!("{nodes} node{} can hold one", if nodes == 1 { "" } else { "s" });
    match (placed, shape.count) {
        (_, 0) => "asks for no pods".into(),
        (p, n) if p == n && n == 1 => format!("can start now ({on})"),
        (p, n) if p == n => format!("all {n} can start now ({on})"),
        (0, n) => format!(
            "none of {n} can start now: the {on}, and {} full; they will wait for capacity",
            if nodes == 1 { "it is" } else { "they are" }
        ),
        (p, n) => format!("{p} of {n} can start now; {} will wait for capacity ({on})", n - p),
    }
}

/// Why no node can ever hold a pod of `shape`: the filter that leaves none, or the resource no
/// node it may run on has enough of (and which nodes with room keep it off, and why).
fn why_nowhere(shape: &PodShape, nodes: &[Node]) -> String {
    if nodes.is_empty() {
        return "there are no nodes".into();
    }
    let (admitted, refused): (Vec<&Node>, Vec<&Node>) =
        nodes.iter().partition(|n| matching::admits(n, shape).is_ok());
    if admitted.is_empty() {
        return format!("no node may run it: {}", refusals(shape, &refused));
    }
    let with_room: Vec<&Node> =
        refused.into_iter().filter(|n| fits(&n.allocatable, &shape.requests)).collect();
    let (subject, hint) = if with_room.is_empty() {
        ("no node", String::new())
    } else {
        ("no node it may run on", format!("; of those with room, {}", refusals(shape, &with_room)))
    };
    // The first resource even the largest node it may run on has too little of.
    for (name, want) in &shape.requests {
        let largest = admitted
            .iter()
            .map(|n| n.allocatable.get(name).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        if largest < *want {
            return format!(
                "{subject} has {} {name}; the largest has {}{hint}",
                amount(name, *want),
                amount(name, largest)
            );
        }
    }
    // Each resource fits some node, but no node fits them all.
    let wanted: Vec<String> = shape
        .requests
        .iter()
        .map(|(name, want)| format!("{} {name}", amount(name, *want)))
        .collect();
    format!("{subject} has {} at once{hint}", wanted.join(", "))
}

/// Why `nodes` may not run a pod of `shape`, by reason, most common first: "2 are cordoned, 1 do
/// not match its nodeSelector a=b" (as the scheduler sums up its filters).
fn refusals(shape: &PodShape, nodes: &[&Node]) -> String {
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for node in nodes {
        if let Err(why) = matching::admits(node, shape) {
            *reasons.entry(why).or_default() += 1;
        }
    }
    let mut reasons: Vec<(String, usize)> = reasons.into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    reasons.iter().map(|(why, n)| format!("{n} {why}")).collect::<Vec<_>>().join(", ")
}

/// `nanos` of resource `name` as people write it: `8`, `1.5` CPUs, `480Gi`.
pub fn amount(name: &str, nanos: i128) -> String {
    let units = nanos as f64 / UNIT as f64;
    let is_bytes = name == "memory" || name.ends_with("storage") || name.starts_with("hugepages-");
    if is_bytes {
        const GI: f64 = (1u64 << 30) as f64;
        const MI: f64 = (1u64 << 20) as f64;
        if units >= GI {
            return trim(format!("{:.1}", units / GI)) + "Gi";
        }
        return trim(format!("{:.1}", units / MI)) + "Mi";
    }
    trim(format!("{units:.3}"))
}

/// `8.000` as `8`, `1.500` as `1.5`.
fn trim(text: String) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// A namespace's ResourceQuota as the verdict needs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Quota {
    pub name: String,
    /// `spec.hard`, by the quota's own names (`requests.nvidia.com/gpu`, `limits.cpu`, `cpu`,
    /// `pods`), nano-units.
    pub hard: Resources,
    /// `status.used`, the same way.
    pub used: Resources,
}

/// What a launch would use of one limit of a quota.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaUse {
    /// The quota's name.
    pub quota: String,
    /// The limit's name (`requests.nvidia.com/gpu`).
    pub resource: String,
    /// The launch's pods, added up, nano-units.
    pub launch: i128,
    /// Used already, and the limit.
    pub used: i128,
    pub hard: i128,
}

impl QuotaUse {
    /// Whether the launch would pass the limit (Kubernetes would refuse the pods past it).
    pub fn exceeds(&self) -> bool {
        self.used + self.launch > self.hard
    }

    /// In words: "requests.nvidia.com/gpu: this launch 16, used 4 of 16: 4 over".
    pub fn verdict(&self) -> String {
        let resource = self.resource.as_str();
        let name = resource
            .strip_prefix("requests.")
            .or_else(|| resource.strip_prefix("limits."))
            .unwrap_or(resource);
        let said = |n| amount(name, n);
        let over = self.used + self.launch - self.hard;
        let tail = if over > 0 {
            format!(": {} over, pods past it will be refused", said(over))
        } else {
            format!(": {} left after it", said(-over))
        };
        format!(
            "{} (quota {}): this launch {}, used {} of {}{tail}",
            self.resource,
            self.quota,
            said(self.launch),
            said(self.used),
            said(self.hard)
        )
    }
}

/// What the pods of `shapes` would use of each limit of `quotas` they touch.
pub fn quota_use(shapes: &[PodShape], quotas: &[Quota]) -> Vec<QuotaUse> {
    let mut out = Vec::new();
    for quota in quotas {
        for (resource, hard) in &quota.hard {
            let launch: i128 =
                shapes.iter().map(|s| i128::from(s.count) * per_pod(s, resource)).sum();
            if launch == 0 {
                continue;
            }
            out.push(QuotaUse {
                quota: quota.name.clone(),
                resource: resource.clone(),
                launch,
                used: quota.used.get(resource).copied().unwrap_or(0),
                hard: *hard,
            });
        }
    }
    out
}

/// What one pod of `shape` counts against quota limit `resource`.
fn per_pod(shape: &PodShape, resource: &str) -> i128 {
    if resource == "pods" {
        return UNIT;
    }
    if let Some(name) = resource.strip_prefix("limits.") {
        return shape.limits.get(name).copied().unwrap_or(0);
    }
    let name = resource.strip_prefix("requests.").unwrap_or(resource);
    // Quota names a bare resource only for cpu, memory, storage and ephemeral-storage; an
    // extended resource only as `requests.<name>`.
    if resource == name && name.contains('/') {
        return 0;
    }
    shape.requests.get(name).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests;
