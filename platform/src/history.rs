//! What raydar remembers of clusters after they are gone, as its history API answers: a row of
//! the history list ([`PastCluster`]), how it ended ([`Outcome`]), and one cluster's record
//! ([`ClusterRecord`]: its phases, events and the manifest it was launched with).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::overview::EventRow;
use crate::Stale;

/// How a cluster ended, or that it has not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It still exists.
    Live,
    /// Someone tore it down through raydar.
    TornDown,
    /// It was deleted while KubeRay reported it failed.
    Failed,
    /// Its lifetime (`raydar.dev/expires-at`) ran out and raydar deleted it.
    Expired,
    /// raydar reclaimed it: idle GPUs, or a pipeline that stopped renewing its lease.
    Reclaimed,
    /// The RayJob it was made for finished, and KubeRay deleted it.
    Finished,
    /// Deleted outside raydar (kubectl, a controller), or while raydar was not watching.
    Deleted,
}

impl Outcome {
    /// Every outcome, in the order filters offer them.
    pub const ALL: [Outcome; 7] = [
        Outcome::Live,
        Outcome::TornDown,
        Outcome::Failed,
        Outcome::Expired,
        Outcome::Reclaimed,
        Outcome::Finished,
        Outcome::Deleted,
    ];

    /// Its name in the API and the database: `live`, `torn-down`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Live => "live",
            Outcome::TornDown => "torn-down",
            Outcome::Failed => "failed",
            Outcome::Expired => "expired",
            Outcome::Reclaimed => "reclaimed",
            Outcome::Finished => "finished",
            Outcome::Deleted => "deleted",
        }
    }

    /// The outcome named `name`, as [`Outcome::as_str`] writes it.
    pub fn parse(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

/// One cluster, past or present, as the history list shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PastCluster {
    /// Kubernetes UID: the cluster's identity in history (names are reused).
    pub uid: String,
    /// Kubernetes namespace.
    pub namespace: String,
    /// RayCluster name.
    pub name: String,
    /// The `raydar.dev/team` label; empty when absent.
    pub team: String,
    /// Who launched it (`raydar.dev/owner`); empty when raydar did not.
    pub owner: String,
    /// The template it came from; empty when none.
    pub template: String,
    /// The pipeline and its run that launched it; empty when a person did.
    pub pipeline: String,
    /// See `pipeline`.
    pub run: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// When raydar first saw it Ready, Unix milliseconds.
    pub ready_at: Option<i64>,
    /// When it was deleted, Unix milliseconds; `None` while it lives.
    pub deleted_at: Option<i64>,
    /// The phase last seen: Provisioning, Ready, Suspending, Suspended or Failed.
    pub phase: String,
    /// KubeRay's reason, for a Failed phase.
    pub phase_reason: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Who or what deleted it, when raydar knows: a user, `raydar (expiry)`, ...
    pub ended_by: String,
    /// Why, in words.
    pub ended_why: String,
    /// Most GPUs it held or asked for at once.
    pub gpus: u64,
    /// The RayJob it was made for; empty when it was launched on its own.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rayjob: String,
    /// The Kubernetes cluster it was on, when raydar serves several (a name of
    /// `GET /api/v1/contexts`); empty when it serves one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context: String,
}

impl PastCluster {
    /// Seconds from creation until it was first Ready, when it was.
    pub fn time_to_ready(&self) -> Option<f64> {
        self.ready_at.map(|ready| (ready - self.created_at * 1000).max(0) as f64 / 1000.0)
    }
}

/// A phase a cluster entered, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PhaseChange {
    /// When raydar saw the change, Unix milliseconds.
    pub at: i64,
    /// Provisioning, Ready, Suspending, Suspended, Failed, or Deleted at the end.
    pub phase: String,
    /// KubeRay's reason, for Failed; who and why, for Deleted.
    pub reason: String,
}

/// Everything kept of one cluster: its post-mortem.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClusterRecord {
    /// The row of the history list.
    pub cluster: PastCluster,
    /// The template's parameters as launched, when it came from one.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub parameters: Value,
    /// The RayCluster as first seen: metadata (labels, annotations) and spec.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub manifest: Value,
    /// Its phases, oldest first.
    pub phases: Vec<PhaseChange>,
    /// Kubernetes Events of the cluster and its pods, newest first.
    pub events: Vec<EventRow>,
    /// Its Ray jobs, newest first, each with its archived driver log.
    #[serde(default)]
    pub jobs: Vec<PastJob>,
    /// Every time a container of its pods ended, newest first.
    #[serde(default)]
    pub terminations: Vec<Termination>,
    /// What its GPUs did, step by step (5 minutes by default), oldest first.
    #[serde(default)]
    pub gpu_use: Vec<GpuSample>,
}

/// What a cluster's GPUs did over one step of history's GPU record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GpuSample {
    /// Its start, Unix seconds, and its length.
    pub at: i64,
    pub seconds: u32,
    /// GPUs held at some time in it.
    pub gpus: u32,
    /// Their mean utilization, percent, when any was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub util: Option<f64>,
    /// GPU-seconds busy (at or above the idle threshold) and idle.
    pub busy_s: u64,
    pub idle_s: u64,
}

/// GPU-hours of `samples`: held, busy, idle.
pub fn gpu_hours(samples: &[GpuSample]) -> (f64, f64, f64) {
    let busy: u64 = samples.iter().map(|s| s.busy_s).sum();
    let idle: u64 = samples.iter().map(|s| s.idle_s).sum();
    let hours = |s: u64| s as f64 / 3600.0;
    (hours(busy + idle), hours(busy), hours(idle))
}

/// A container of a cluster's Ray pod that ended: why, its exit code, its last lines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Termination {
    pub pod: String,
    pub container: String,
    /// When it ended, Unix seconds.
    pub finished_at: i64,
    /// Kubernetes' reason: `OOMKilled`, `Error`, `Completed`, ...
    pub reason: String,
    pub exit_code: i32,
    /// The container's restart count when it ended.
    pub restarts: u32,
    /// The last lines it printed, when it failed and they could be read.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_lines: String,
}

impl Termination {
    /// Whether the kernel killed it for memory.
    pub fn oom_killed(&self) -> bool {
        self.reason == "OOMKilled"
    }

    /// Whether it failed (a non-zero exit), as against finishing.
    pub fn failed(&self) -> bool {
        self.exit_code != 0
    }
}

/// A Ray job as history keeps it: its last status, and its driver log's archive.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PastJob {
    /// Its submission id (or, for a driver started by hand, Ray's job id).
    pub id: String,
    /// `PENDING`, `RUNNING`, `STOPPED`, `SUCCEEDED` or `FAILED`, as last seen.
    pub status: String,
    /// The command it ran.
    pub entrypoint: String,
    /// Ray's words on its status.
    pub message: String,
    /// Start and end, Unix milliseconds.
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// Its driver log as archived.
    pub log: LogArchive,
}

/// How much of a job's driver log history holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveState {
    /// Nothing archived (yet).
    #[default]
    None,
    /// Being archived as the job runs.
    Archiving,
    /// Every line the job printed.
    Complete,
    /// Its first lines, up to the cap per job (`--history-job-log-mib`).
    Cut,
    /// What could be read: the log ended early (the head went away) or lines were missed.
    Partial,
}

/// A job's archived driver log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LogArchive {
    pub state: ArchiveState,
    /// Why it is cut or partial, in words.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// Lines and bytes of text kept.
    pub lines: u64,
    pub bytes: u64,
}

impl ArchiveState {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveState::None => "none",
            ArchiveState::Archiving => "archiving",
            ArchiveState::Complete => "complete",
            ArchiveState::Cut => "cut",
            ArchiveState::Partial => "partial",
        }
    }

    /// From [`ArchiveState::as_str`]'s name.
    pub fn parse(name: &str) -> ArchiveState {
        match name {
            "archiving" => ArchiveState::Archiving,
            "complete" => ArchiveState::Complete,
            "cut" => ArchiveState::Cut,
            "partial" => ArchiveState::Partial,
            _ => ArchiveState::None,
        }
    }
}

/// One page of the history list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    /// Clusters, newest first.
    pub items: Vec<PastCluster>,
    /// Pass as `after` for the next page; absent on the last.
    pub next: Option<String>,
    /// Set while history is not being written (its database does not answer): what is shown
    /// is what was written before.
    pub stale: Option<Stale>,
    /// Records lost since raydar started because the database was away longer than its buffer
    /// held.
    pub lost: u64,
}
