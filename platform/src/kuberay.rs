//! The KubeRay `RayCluster` custom resource (ray.io/v1), reduced to the fields raydar reads.
//!
//! Why not the full generated type: the server keeps every RayCluster of the Kubernetes cluster in
//! memory, and a RayCluster carries whole pod templates. Deserializing only what the cluster list
//! and its status need keeps 10,000 clusters within the memory budget; unknown fields are
//! dropped on read. raydar never writes this type back: launching renders templates as documents
//! (see the template engine), so nothing a user set is lost by the reduction.

use std::collections::BTreeMap;

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use crate::status::{
    ClusterCondition, ClusterDetail, ClusterPhase, ClusterSummary, WorkerGroupSummary,
};

/// The resource name a GPU is requested by.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// Desired state of a Ray cluster: a head group and any number of worker groups.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "ray.io",
    version = "v1",
    kind = "RayCluster",
    plural = "rayclusters",
    namespaced,
    status = "RayClusterStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct RayClusterSpec {
    /// When true, KubeRay deletes every pod but keeps the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// The head pod.
    #[serde(default)]
    pub head_group_spec: HeadGroupSpec,
    /// Groups of identical worker pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub worker_group_specs: Vec<WorkerGroupSpec>,
}

/// The head pod's template.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HeadGroupSpec {
    /// Pod template of the head.
    #[serde(default)]
    pub template: PodTemplate,
}

/// A group of identical worker pods, scaled between `minReplicas` and `maxReplicas`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerGroupSpec {
    /// Name of the group, unique in the cluster.
    #[serde(default)]
    pub group_name: String,
    /// Wanted replicas (KubeRay defaults a missing value to `minReplicas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Lower bound for scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    /// Upper bound for scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<i32>,
    /// Pods per replica (multi-host TPU slices); 1 for everything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_of_hosts: Option<i32>,
    /// Set by KubeRay while a group is suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Pod template of each worker.
    #[serde(default)]
    pub template: PodTemplate,
}

/// A pod template, reduced to container resources.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PodTemplate {
    /// The pod spec.
    #[serde(default)]
    pub spec: PodSpec,
}

/// A pod spec, reduced to its containers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PodSpec {
    /// Containers of the pod (init containers do not hold GPUs for the pod's lifetime).
    #[serde(default)]
    pub containers: Vec<Container>,
}

/// A container, reduced to its resources.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Container {
    /// Requests and limits.
    #[serde(default)]
    pub resources: Resources,
}

/// Resource requests and limits as Kubernetes quantities.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// Limits by resource name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "quantities")]
    pub limits: BTreeMap<String, String>,
    /// Requests by resource name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "quantities")]
    pub requests: BTreeMap<String, String>,
}

/// Reads a map of quantities written either way Kubernetes allows: KubeRay's CRD declares them
/// int-or-string, so `cpu: 2` comes back from the apiserver as the number 2, not "2". One cluster
/// that failed to read would fail the whole watch list, so this accepts both.
fn quantities<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrString {
        Int(i64),
        Float(f64),
        String(String),
    }
    let map = Option::<BTreeMap<String, IntOrString>>::deserialize(d)?.unwrap_or_default();
    Ok(map
        .into_iter()
        .map(|(name, q)| {
            let q = match q {
                IntOrString::Int(i) => i.to_string(),
                IntOrString::Float(f) => f.to_string(),
                IntOrString::String(s) => s,
            };
            (name, q)
        })
        .collect())
}

/// Observed state of a Ray cluster, as KubeRay writes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RayClusterStatus {
    /// Deprecated summary state (`ready`, `suspended`, `failed`); conditions supersede it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Detail for the deprecated state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Conditions, see [`crate::status::condition`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ClusterCondition>,
    /// Worker pods that are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_worker_replicas: Option<i32>,
    /// Worker pods KubeRay wants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_worker_replicas: Option<i32>,
}

impl WorkerGroupSpec {
    /// Worker pods this group wants: replicas (clamped to min/max, as KubeRay does) times hosts.
    /// Both are 32-bit, so their product always fits.
    pub fn desired_pods(&self) -> u64 {
        if self.suspend == Some(true) {
            return 0;
        }
        let min = self.min_replicas.unwrap_or(0).max(0);
        let max = self.max_replicas.unwrap_or(i32::MAX).max(min);
        let replicas = self.replicas.unwrap_or(min).clamp(min, max);
        let hosts = self.num_of_hosts.unwrap_or(1).max(1);
        // Both are non-negative here.
        replicas.unsigned_abs() as u64 * hosts.unsigned_abs() as u64
    }
}

impl PodTemplate {
    /// GPUs one pod of this template holds: limits win over requests, as the scheduler counts
    /// extended resources by limit when both are set.
    pub fn gpus(&self) -> u32 {
        self.spec
            .containers
            .iter()
            .map(|c| {
                let r = &c.resources;
                r.limits
                    .get(GPU_RESOURCE)
                    .or_else(|| r.requests.get(GPU_RESOURCE))
                    .map_or(0, |q| whole_quantity(q))
            })
            .fold(0u32, u32::saturating_add)
    }
}

/// Reads a count quantity such as a GPU number ("8"); anything else (fractions, garbage) is 0,
/// because extended resources like `nvidia.com/gpu` only come in whole units.
fn whole_quantity(q: &str) -> u32 {
    q.trim().parse().unwrap_or(0)
}

impl RayCluster {
    /// The cluster-list row for this RayCluster.
    pub fn summary(&self) -> ClusterSummary {
        let status = self.status.clone().unwrap_or_default();
        let spec = &self.spec;
        // Counted here rather than taken from KubeRay's status, whose 32-bit sum of groups can
        // wrap; saturating, as a u64 of pods cannot be reached by any real spec.
        let workers_desired = spec
            .worker_group_specs
            .iter()
            .map(WorkerGroupSpec::desired_pods)
            .fold(0, u64::saturating_add);
        // A suspended cluster has no pods, so holds no GPU, whatever its groups would ask.
        let gpus_desired = if spec.suspend == Some(true) {
            0
        } else {
            spec.worker_group_specs
                .iter()
                .map(|g| g.desired_pods().saturating_mul(u64::from(g.template.gpus())))
                .fold(u64::from(spec.head_group_spec.template.gpus()), u64::saturating_add)
        };
        let meta = &self.metadata;
        let label = |key: &str| meta.labels.as_ref().and_then(|l| l.get(key)).cloned();
        ClusterSummary {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            resource_version: meta.resource_version.clone().unwrap_or_default(),
            phase: ClusterPhase::from_status(&status.conditions, status.state.as_deref()),
            workers_ready: status
                .ready_worker_replicas
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            workers_desired,
            gpus_desired,
            created_at: meta.creation_timestamp.as_ref().map_or(0, |t| t.0.as_second()),
            team: label(crate::template::LABEL_TEAM).unwrap_or_default(),
            owner: label(crate::template::LABEL_OWNER).unwrap_or_default(),
            template: label(crate::template::LABEL_TEMPLATE).unwrap_or_default(),
            pipeline: label(crate::template::LABEL_PIPELINE).unwrap_or_default(),
            run: label(crate::template::LABEL_RUN).unwrap_or_default(),
            may_delete: false,
            context: String::new(),
        }
    }

    /// The cluster's page: the row plus suspend state and worker groups.
    pub fn detail(&self) -> ClusterDetail {
        let lifetime = crate::lifecycle::Lifetime::of(self.metadata.annotations.as_ref());
        let count = |n: Option<i32>| n.and_then(|n| u32::try_from(n).ok());
        ClusterDetail {
            summary: self.summary(),
            suspend: self.spec.suspend == Some(true),
            groups: self
                .spec
                .worker_group_specs
                .iter()
                .map(|g| {
                    let min = count(g.min_replicas).unwrap_or(0);
                    WorkerGroupSummary {
                        name: g.group_name.clone(),
                        replicas: count(g.replicas).unwrap_or(min),
                        min_replicas: min,
                        max_replicas: count(g.max_replicas).unwrap_or(i32::MAX as u32),
                        gpus_per_worker: g.template.gpus(),
                    }
                })
                .collect(),
            may_change: false,
            expires_at: lifetime.expires_at,
            protected: lifetime.protected,
            suspend_at_expiry: lifetime.at_expiry == crate::lifecycle::AtExpiry::Suspend,
            // KubeRay's types here leave out its transition times; the watch fills this in.
            ready_in_ms: None,
        }
    }
}
