//! What a cluster's page shows below its summary: the pods KubeRay made, the RayCluster's
//! conditions and recent events, and Ray's own view (its nodes and jobs, from the dashboard).
//!
//! The server assembles a [`ClusterOverview`] from its pod watch, the apiserver's events and a
//! cached read of the Ray dashboard, and pushes it to the page. Ray's part can be missing or stale on its
//! own ([`RayView::error`]): a dashboard that does not answer never hides the Kubernetes part.

use serde::{Deserialize, Serialize};

use crate::{ClusterCondition, Stale};

/// Everything below the summary on a cluster's page.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClusterOverview {
    /// Head first, then workers by group and name.
    pub pods: Vec<PodRow>,
    /// `status.conditions` of the RayCluster.
    pub conditions: Vec<ClusterCondition>,
    /// Newest first: the RayCluster's events and its pods'.
    pub events: Vec<EventRow>,
    /// Ray's nodes and jobs, as the dashboard last told them.
    pub ray: RayView,
    /// The stages of its start, how long each took, and what holds it; `None` while suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<crate::waiting::Waiting>,
    /// The server's clock (Unix seconds), so ages are computed against it, not the browser's.
    pub now: i64,
    /// Set while the Kubernetes API does not answer: the pods, conditions and events are what
    /// it last said. (Ray's part has its own, [`RayView::error`].)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<Stale>,
}

/// A pod of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PodRow {
    /// Pod name.
    pub name: String,
    /// `head` or `worker` (the `ray.io/node-type` label).
    pub role: String,
    /// Worker group (`ray.io/group`; `headgroup` for the head).
    pub group: String,
    /// `status.phase`, or `Terminating` while it is being deleted.
    pub phase: String,
    /// The Ready condition is True.
    pub ready: bool,
    /// Node it was scheduled to.
    pub node: Option<String>,
    /// Pod IP.
    pub ip: Option<String>,
    /// Container restarts, summed over containers.
    pub restarts: u32,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Container names, for choosing whose log to read.
    pub containers: Vec<String>,
}

/// One Kubernetes event about the cluster or one of its pods.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EventRow {
    /// `Normal` or `Warning`.
    pub kind: String,
    /// Machine-readable reason, e.g. `CreatedWorkerPod`.
    pub reason: String,
    /// What happened, in the reporter's words.
    pub message: String,
    /// What it is about, e.g. `RayCluster/demo` or `Pod/demo-head-x7k2p`.
    pub object: String,
    /// How many times it happened.
    pub count: u32,
    /// When it last happened, Unix seconds.
    pub last_seen: i64,
}

/// Ray's view of the cluster, read from its dashboard.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RayView {
    /// When the dashboard last answered, Unix seconds; `None` before it ever did.
    pub checked: Option<i64>,
    /// Why the last read failed, while it keeps failing (the nodes and jobs are then those of
    /// `checked`).
    pub error: Option<String>,
    /// Ray's nodes.
    pub nodes: Vec<RayNode>,
    /// Ray's jobs, newest first.
    pub jobs: Vec<RayJob>,
}

/// One Ray node (a head or worker process, not a Kubernetes node).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RayNode {
    /// The node's IP (its pod's).
    pub ip: String,
    /// Whether it is the head.
    pub head: bool,
    /// `ALIVE` or `DEAD`.
    pub state: String,
    /// CPU use of the machine it runs on, percent.
    pub cpu_percent: f64,
    /// CPUs Ray may schedule on it (its `CPU` resource).
    pub cpus: f64,
    /// GPUs Ray may schedule on it.
    pub gpus: f64,
    /// Memory used, bytes.
    pub memory_used: u64,
    /// Memory in total, bytes.
    pub memory_total: u64,
}

/// A cluster's Ray jobs (`GET /api/v1/clusters/{namespace}/{name}/jobs`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RayJobs {
    /// Newest first.
    pub items: Vec<RayJob>,
}

/// One Ray job.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RayJob {
    /// The submission id (or, for a driver started by hand, the job id): what its log is read by.
    pub id: String,
    /// Ray's job id (`02000000`), once a driver runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The id it was submitted under (`raysubmit_…`, or the one the submitter chose); `None` for
    /// a driver started by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_id: Option<String>,
    /// `PENDING`, `RUNNING`, `STOPPED`, `SUCCEEDED` or `FAILED`.
    pub status: String,
    /// The command it runs.
    pub entrypoint: String,
    /// Ray's words on its status.
    pub message: Option<String>,
    /// Start, Unix milliseconds.
    pub start_time: Option<i64>,
    /// End, Unix milliseconds; `None` while it runs.
    pub end_time: Option<i64>,
}

impl RayJob {
    /// Whether the job can change no more.
    pub fn finished(&self) -> bool {
        matches!(self.status.as_str(), "STOPPED" | "SUCCEEDED" | "FAILED")
    }

    /// How long it ran, or has run by `now_ms`, in milliseconds.
    pub fn duration_ms(&self, now_ms: i64) -> Option<i64> {
        let start = self.start_time.filter(|s| *s > 0)?;
        Some((self.end_time.unwrap_or(now_ms) - start).max(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_job_has_run_until_now() {
        let job = RayJob { status: "RUNNING".into(), start_time: Some(1_000), ..RayJob::default() };
        assert_eq!((job.finished(), job.duration_ms(61_000)), (false, Some(60_000)));
        let done = RayJob {
            status: "SUCCEEDED".into(),
            start_time: Some(1_000),
            end_time: Some(3_500),
            ..job
        };
        assert_eq!((done.finished(), done.duration_ms(61_000)), (true, Some(2_500)));
        assert_eq!(RayJob::default().duration_ms(5), None, "a pending job has not started");
    }
}
