//! What the stages need, read from Kubernetes objects: how far a Ray pod has got, and the
//! cluster as KubeRay describes it.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{ClusterProgress, PodProgress, Refusal, Trouble};
use crate::status::{condition, ClusterCondition};
use crate::ClusterSummary;

/// The cluster of `summary` as the stages read it: KubeRay's `conditions` (when the head became
/// ready; a `ReplicaFailure`, which outlives the events' hour, counts as a refusal with
/// `warnings`, the Warning Events on the RayCluster), whether it is asked to `suspend`, and
/// raydar's own last read of its dashboard, if that failed.
pub fn cluster_progress(
    summary: &ClusterSummary,
    suspend: bool,
    conditions: &[ClusterCondition],
    mut warnings: Vec<Refusal>,
    head_unanswered: Option<String>,
) -> ClusterProgress {
    let unix = |at: Option<&String>| {
        at.and_then(|t| serde_json::from_value::<Time>(t.clone().into()).ok())
            .map_or(summary.created_at, |t| t.0.as_second())
    };
    let head_ready_since = conditions
        .iter()
        .find(|c| c.type_ == condition::HEAD_POD_READY && c.status == "True")
        .map(|c| unix(c.last_transition_time.as_ref()));
    let failures = conditions
        .iter()
        .filter(|c| c.type_ == condition::REPLICA_FAILURE && c.status == "True")
        .map(|c| Refusal {
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
            at: unix(c.last_transition_time.as_ref()),
        });
    warnings.extend(failures);
    // Newest last, as the stages read them.
    warnings.sort_by_key(|r| r.at);
    ClusterProgress {
        created: summary.created_at,
        workers_desired: summary.workers_desired,
        head_ready_since,
        suspended: suspend,
        refusals: warnings,
        head_unanswered,
    }
}

/// How far `pod` has got in starting, from its conditions and container states.
pub fn pod_progress(pod: &Pod) -> Option<PodProgress> {
    let meta = &pod.metadata;
    if meta.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref();
    let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    let condition = |type_: &str| conditions.iter().find(|c| c.type_ == type_);
    let since = |type_: &str| {
        let c = condition(type_).filter(|c| c.status == "True")?;
        Some(c.last_transition_time.as_ref().map_or(0, |t| t.0.as_second()))
    };
    let unschedulable = condition("PodScheduled")
        .filter(|c| c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
        .map(|c| c.message.clone().unwrap_or_default());
    let statuses = status.and_then(|s| s.container_statuses.as_deref()).unwrap_or_default();
    let wanted = pod.spec.as_ref().map_or(0, |s| s.containers.len());
    let started: Vec<i64> = statuses
        .iter()
        .filter_map(|c| c.state.as_ref()?.running.as_ref())
        .map(|r| r.started_at.as_ref().map_or(0, |t| t.0.as_second()))
        .collect();
    let running_at =
        (wanted > 0 && started.len() == wanted).then(|| started.into_iter().max()).flatten();
    let init = status.and_then(|s| s.init_container_statuses.as_deref()).unwrap_or_default();
    // A container waiting for a reason other than being made: what holds it needs someone.
    let trouble = init.iter().chain(statuses).find_map(|c| {
        let waiting = c.state.as_ref()?.waiting.as_ref()?;
        let reason = waiting.reason.clone().unwrap_or_default();
        if matches!(reason.as_str(), "" | "ContainerCreating" | "PodInitializing") {
            return None;
        }
        Some(Trouble {
            container: c.name.clone(),
            reason,
            message: waiting.message.clone().unwrap_or_default(),
            restarts: c.restart_count.max(0) as u32,
            last_lines: String::new(),
        })
    });
    Some(PodProgress {
        name: meta.name.clone().unwrap_or_default(),
        head: meta
            .labels
            .as_ref()
            .and_then(|l| l.get("ray.io/node-type"))
            .is_some_and(|t| t == "head"),
        created: meta.creation_timestamp.as_ref().map_or(0, |t| t.0.as_second()),
        scheduled_at: since("PodScheduled"),
        unschedulable,
        running_at,
        trouble,
        ready_at: since("Ready"),
    })
}
