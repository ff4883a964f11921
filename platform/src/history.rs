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
