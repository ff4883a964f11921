//! The cluster status model: what the cluster list shows for each RayCluster.

use serde::{Deserialize, Serialize};

/// Condition types KubeRay sets on a RayCluster (ray-operator/apis/ray/v1/raycluster_types.go).
pub mod condition {
    /// Head and worker pods have all been created and were ready at least once.
    pub const PROVISIONED: &str = "RayClusterProvisioned";
    /// The head pod is running and ready.
    pub const HEAD_POD_READY: &str = "HeadPodReady";
    /// Creating or deleting a pod failed; the reason says which.
    pub const REPLICA_FAILURE: &str = "ReplicaFailure";
    /// `spec.suspend` was set and pods are being deleted.
    pub const SUSPENDING: &str = "RayClusterSuspending";
    /// `spec.suspend` was set and every pod is gone.
    pub const SUSPENDED: &str = "RayClusterSuspended";
}

/// One entry of a RayCluster's `status.conditions`, as much of it as the phase rule reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterCondition {
    /// Condition type, one of [`condition`].
    #[serde(rename = "type")]
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    /// Machine-readable reason for the last transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the status last changed (RFC 3339), for the cluster page.
    #[serde(default, rename = "lastTransitionTime", skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// The phase of a Ray cluster as users see it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "phase", content = "reason")]
pub enum ClusterPhase {
    /// Pods are being created or are not ready yet.
    Provisioning,
    /// The head pod is ready and provisioning did not fail.
    Ready,
    /// `spec.suspend` is set and pods are being removed.
    Suspending,
    /// `spec.suspend` is set and no pods remain.
    Suspended,
    /// KubeRay reports a failure; the reason is KubeRay's.
    Failed(String),
}

impl ClusterPhase {
    /// Applies KubeRay's dashboard rule to a RayCluster's status.
    ///
    /// Suspended and Suspending win; else `HeadPodReady=True` with `RayClusterProvisioned` not
    /// `False` is Ready; else a `ReplicaFailure=True` condition is Failed with its reason; else
    /// Provisioning. `legacy_state` is the deprecated `status.state`, read only when KubeRay wrote
    /// no conditions at all (operators older than v1.3, or the conditions feature gate off).
    pub fn from_status(conditions: &[ClusterCondition], legacy_state: Option<&str>) -> Self {
        let is = |type_: &str, status: &str| {
            conditions.iter().any(|c| c.type_ == type_ && c.status == status)
        };
        if is(condition::SUSPENDED, "True") {
            return Self::Suspended;
        }
        if is(condition::SUSPENDING, "True") {
            return Self::Suspending;
        }
        if is(condition::HEAD_POD_READY, "True") && !is(condition::PROVISIONED, "False") {
            return Self::Ready;
        }
        if let Some(failure) =
            conditions.iter().find(|c| c.type_ == condition::REPLICA_FAILURE && c.status == "True")
        {
            let reason = failure.reason.clone().filter(|r| !r.is_empty());
            return Self::Failed(reason.unwrap_or_else(|| "ReplicaFailure".into()));
        }
        if conditions.is_empty() {
            match legacy_state {
                Some("ready") => return Self::Ready,
                Some("suspended") => return Self::Suspended,
                Some("failed") => return Self::Failed("failed".into()),
                _ => {}
            }
        }
        Self::Provisioning
    }

    /// The word the cluster list shows.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Provisioning => "Provisioning",
            Self::Ready => "Ready",
            Self::Suspending => "Suspending",
            Self::Suspended => "Suspended",
            Self::Failed(_) => "Failed",
        }
    }
}

/// One row of the cluster list: what a user needs to see about a RayCluster at a glance.
///
/// On the wire the phase is two plain fields, `phase` and (when Failed) `reason`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "wire::Summary", into = "wire::Summary")]
pub struct ClusterSummary {
    /// Kubernetes namespace.
    pub namespace: String,
    /// RayCluster name.
    pub name: String,
    /// Kubernetes UID: tells a re-created cluster of the same name apart.
    pub uid: String,
    /// Changes whenever the object does; lets the page re-render only changed rows.
    pub resource_version: String,
    /// Phase by KubeRay's dashboard rule.
    pub phase: ClusterPhase,
    /// Worker pods that are ready.
    pub workers_ready: u32,
    /// Worker pods the cluster wants (replicas times hosts, over all worker groups). 64 bits:
    /// three groups of 2^31 - 1 replicas are a number, not an overflow.
    pub workers_desired: u64,
    /// GPUs the cluster holds or asks for now, head and workers together: none while suspended.
    pub gpus_desired: u64,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: i64,
    /// The team it belongs to (the `raydar.dev/team` label); empty when absent.
    pub team: String,
    /// Who launched it (the `raydar.dev/owner` label); empty when raydar did not.
    pub owner: String,
    /// The template it was launched from (the `raydar.dev/template` label); empty when none.
    pub template: String,
    /// The pipeline that launched it and its run (the `raydar.dev/pipeline` and `raydar.dev/run`
    /// labels); empty when a person did.
    pub pipeline: String,
    /// See `pipeline`.
    pub run: String,
    /// Whether the requester may tear it down (Kubernetes RBAC, asked by raydar for them);
    /// false where nobody asked.
    pub may_delete: bool,
    /// The Kubernetes cluster it is on, in a list of several (a name of `GET /api/v1/contexts`);
    /// empty in a list of one.
    pub context: String,
}

impl ClusterSummary {
    /// Sort key of the cluster list: namespace, then name.
    pub fn key(&self) -> (&str, &str) {
        (&self.namespace, &self.name)
    }
}

/// One cluster as its page shows it: the list row plus what the page's actions need.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClusterDetail {
    /// The row of the cluster list.
    pub summary: ClusterSummary,
    /// `spec.suspend`: whether the cluster is asked to keep no pods.
    pub suspend: bool,
    /// The worker groups, in the spec's order.
    pub groups: Vec<WorkerGroupSummary>,
    /// Whether the requester may suspend, resume or scale it (Kubernetes RBAC).
    #[serde(default)]
    pub may_change: bool,
    /// When its lifetime ends (`raydar.dev/expires-at`), Unix seconds; `None`: it does not.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// `raydar.dev/protect`: raydar never reclaims it.
    #[serde(default)]
    pub protected: bool,
    /// Whether raydar suspends it at expiry (`raydar.dev/at-expiry: suspend`) rather than
    /// tearing it down.
    #[serde(default)]
    pub suspend_at_expiry: bool,
    /// From its creation to Ready, milliseconds (KubeRay's `status.stateTransitionTimes.ready`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_in_ms: Option<i64>,
}

/// A worker group with the bounds it can be scaled within.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkerGroupSummary {
    /// `groupName`, unique within the cluster.
    pub name: String,
    /// Wanted replicas, as the spec says (KubeRay reads a missing value as `minReplicas`).
    pub replicas: u32,
    /// Lowest replicas the group may be scaled to.
    pub min_replicas: u32,
    /// Highest replicas the group may be scaled to.
    pub max_replicas: u32,
    /// GPUs each worker pod of the group holds.
    pub gpus_per_worker: u32,
}

/// A phase without its reason, as lists are filtered by it.
pub use wire::Phase as PhaseName;

/// The JSON shape of [`ClusterSummary`]. Written out rather than `#[serde(flatten)]` of the phase:
/// flattening makes serde buffer every field through its generic `Content` tree, code the
/// browser would download with every first load.
mod wire {
    use serde::{Deserialize, Serialize};

    use super::{ClusterPhase, ClusterSummary};

    /// The phase users see (the reason is beside it when Failed).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ClusterPhase))]
    pub enum Phase {
        Provisioning,
        Ready,
        Suspending,
        Suspended,
        Failed,
    }

    impl Phase {
        /// As rows show it ([`ClusterPhase::label`]).
        pub fn label(self) -> &'static str {
            match self {
                Phase::Provisioning => "Provisioning",
                Phase::Ready => "Ready",
                Phase::Suspending => "Suspending",
                Phase::Suspended => "Suspended",
                Phase::Failed => "Failed",
            }
        }
    }

    /// One row of the cluster list.
    #[derive(Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ClusterSummary))]
    #[serde(rename_all = "camelCase")]
    pub struct Summary {
        namespace: String,
        name: String,
        uid: String,
        resource_version: String,
        phase: Phase,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        workers_ready: u32,
        workers_desired: u64,
        gpus_desired: u64,
        created_at: i64,
        /// Absent when empty, as are owner and template.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        team: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        owner: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        template: String,
        /// The pipeline and run that launched it; absent when a person did.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pipeline: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        run: String,
        #[serde(default)]
        may_delete: bool,
        /// Absent in a list of one Kubernetes cluster.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        context: String,
    }

    impl From<Summary> for ClusterSummary {
        fn from(w: Summary) -> Self {
            let phase = match w.phase {
                Phase::Provisioning => ClusterPhase::Provisioning,
                Phase::Ready => ClusterPhase::Ready,
                Phase::Suspending => ClusterPhase::Suspending,
                Phase::Suspended => ClusterPhase::Suspended,
                Phase::Failed => ClusterPhase::Failed(w.reason.unwrap_or_default()),
            };
            ClusterSummary {
                namespace: w.namespace,
                name: w.name,
                uid: w.uid,
                resource_version: w.resource_version,
                phase,
                workers_ready: w.workers_ready,
                workers_desired: w.workers_desired,
                gpus_desired: w.gpus_desired,
                created_at: w.created_at,
                team: w.team,
                owner: w.owner,
                template: w.template,
                pipeline: w.pipeline,
                run: w.run,
                may_delete: w.may_delete,
                context: w.context,
            }
        }
    }

    impl From<ClusterSummary> for Summary {
        fn from(c: ClusterSummary) -> Self {
            let (phase, reason) = match c.phase {
                ClusterPhase::Provisioning => (Phase::Provisioning, None),
                ClusterPhase::Ready => (Phase::Ready, None),
                ClusterPhase::Suspending => (Phase::Suspending, None),
                ClusterPhase::Suspended => (Phase::Suspended, None),
                ClusterPhase::Failed(reason) => (Phase::Failed, Some(reason)),
            };
            Summary {
                namespace: c.namespace,
                name: c.name,
                uid: c.uid,
                resource_version: c.resource_version,
                phase,
                reason,
                workers_ready: c.workers_ready,
                workers_desired: c.workers_desired,
                gpus_desired: c.gpus_desired,
                created_at: c.created_at,
                team: c.team,
                owner: c.owner,
                template: c.template,
                pipeline: c.pipeline,
                run: c.run,
                may_delete: c.may_delete,
                context: c.context,
            }
        }
    }
}

// The schema of what is on the wire.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ClusterSummary {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <wire::Summary as utoipa::PartialSchema>::schema()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ClusterSummary {
    fn name() -> std::borrow::Cow<'static, str> {
        <wire::Summary as utoipa::ToSchema>::name()
    }

    fn schemas(
        schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>,
    ) {
        <wire::Summary as utoipa::ToSchema>::schemas(schemas);
    }
}

/// What is shown is the last thing a source said, not what is true now: the source (the
/// Kubernetes API, for the cluster list) has not answered since `since`. Pages keep showing it,
/// marked, rather than showing nothing; it goes away the moment the source answers again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stale {
    /// When the source stopped answering, Unix seconds.
    pub since: i64,
    /// Why, in words: the source's last error.
    pub reason: String,
}

impl Stale {
    /// What a page says about it at `now` (Unix seconds), e.g. `Not updated for 45s: cannot
    /// reach the Kubernetes apiserver at https://…`
    pub fn describe(&self, now: i64) -> String {
        format!("Not updated for {}: {}", format_age(now - self.since), self.reason)
    }
}

/// Age as `kubectl get` prints it: the largest one or two units, e.g. `45s`, `3m12s`, `5h4m`, `12d`.
pub fn format_age(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m) = (s / 86_400, s / 3_600 % 24, s / 60 % 60);
    match () {
        _ if s < 120 => format!("{s}s"),
        _ if s < 600 => format!("{}m{}s", s / 60, s % 60),
        _ if s < 3 * 3_600 => format!("{}m", s / 60),
        _ if s < 8 * 3_600 => {
            if m == 0 {
                format!("{}h", s / 3_600)
            } else {
                format!("{}h{m}m", s / 3_600)
            }
        }
        _ if d < 2 => format!("{}h", s / 3_600),
        _ if d < 8 && h != 0 => format!("{d}d{h}h"),
        _ => format!("{d}d"),
    }
}
