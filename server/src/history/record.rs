//! What is written to history: one [`Record`] per thing that happened, made from what the
//! sources saw, small enough to wait in the sink's buffer.

use kube::api::DynamicObject;
use platform::history::{GpuSample, LogArchive, Outcome, Termination};
use platform::overview::{EventRow, RayJob};
use platform::template::ANNOTATION_PARAMETERS;
use platform::{ClusterPhase, ClusterSummary};
use serde_json::{json, Value};

/// Longest manifest kept, bytes: a RayCluster is a few kilobytes; one far past this is cut to
/// its metadata rather than stored whole.
const MAX_MANIFEST: usize = 256 * 1024;

/// One thing that happened, as history writes it.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// A cluster seen for the first time by this raydar (created, or there when it started):
    /// who launched it, how, and the manifest.
    Launched(Box<Launched>),
    /// A cluster as it is now: its phase (a change adds to its timeline) and GPUs.
    Seen(Seen),
    /// raydar (for a person, or on its own) is about to delete a cluster, and why.
    Ending {
        /// The cluster's uid.
        uid: String,
        /// How it will end.
        outcome: Outcome,
        /// Who or what: a user, or raydar's own reason (`raydar (expiry)`).
        by: String,
        /// Why, in words.
        why: String,
    },
    /// A cluster was deleted, at `at` (Unix milliseconds).
    Deleted {
        /// The cluster's uid.
        uid: String,
        /// When the watch saw it go, or when raydar found it gone.
        at: i64,
        /// Whether KubeRay deleted it because its RayJob finished.
        by_rayjob: bool,
    },
    /// The watch listed every cluster again and these are the live ones (by uid): any other
    /// history holds as live was deleted while raydar was not watching; `at` (Unix
    /// milliseconds) is when that was found.
    Relisted {
        /// The Kubernetes cluster whose watch listed (its context; `""`: the home one): only its
        /// rows are ended.
        context: String,
        /// The uids of every cluster there is.
        live: Vec<String>,
        /// When.
        at: i64,
    },
    /// A Kubernetes Event of a cluster or one of its pods.
    Event {
        /// The cluster's uid.
        cluster: String,
        /// The Event's own uid (a repeated event is one Event, counted).
        uid: String,
        /// What it says.
        row: EventRow,
        /// When it first happened, Unix seconds.
        first_seen: i64,
    },
    /// A Ray job of a cluster, as its dashboard said when its status changed.
    Job {
        /// The cluster's uid.
        cluster: String,
        job: RayJob,
    },
    /// Lines of a job's driver log.
    JobLog(Box<JobLogChunk>),
    /// What a cluster's GPUs did over one step.
    GpuUse {
        /// The cluster's uid.
        cluster: String,
        sample: GpuSample,
    },
    /// A container of a cluster's pod ended.
    Terminated {
        /// The cluster's uid.
        cluster: String,
        termination: Termination,
    },
    /// How much of a job's driver log is archived.
    JobLogState {
        /// The cluster's uid.
        cluster: String,
        /// The job's id.
        job: String,
        log: LogArchive,
    },
}

/// Consecutive lines of a job's driver log, compressed.
#[derive(Clone, Debug, PartialEq)]
pub struct JobLogChunk {
    /// The cluster's uid.
    pub cluster: String,
    /// The job's id.
    pub job: String,
    /// The number of its first line (from 1), and how many.
    pub first_line: u64,
    pub lines: u64,
    /// The lines, each ending in a newline, gzip-compressed.
    pub data: Vec<u8>,
    /// Whether it starts the log again: what was archived of it before is replaced.
    pub replace: bool,
}

impl Record {
    /// Bytes it adds to the database, about: what retention by size counts.
    pub fn size(&self) -> usize {
        match self {
            Record::Launched(l) => 256 + l.manifest.len() + l.parameters.len(),
            Record::Seen(_) | Record::Ending { .. } | Record::Deleted { .. } => 64,
            Record::Relisted { live, .. } => 64 + 40 * live.len(),
            Record::Event { row, .. } => {
                96 + row.message.len() + row.reason.len() + row.object.len()
            }
            Record::Job { job, .. } => {
                128 + job.entrypoint.len() + job.message.as_ref().map_or(0, String::len)
            }
            Record::JobLog(chunk) => 64 + chunk.data.len(),
            Record::JobLogState { log, .. } => 64 + log.note.len(),
            Record::GpuUse { .. } => 64,
            Record::Terminated { termination: t, .. } => {
                96 + t.pod.len() + t.reason.len() + t.last_lines.len()
            }
        }
    }
}

/// A cluster at first sight.
#[derive(Clone, Debug, PartialEq)]
pub struct Launched {
    /// Its row of the cluster list as it is now.
    pub summary: ClusterSummary,
    /// The template's parameters as launched (JSON object), or `{}`.
    pub parameters: String,
    /// metadata (labels, annotations) and spec, JSON.
    pub manifest: String,
    /// The RayJob it was made for (KubeRay deletes it when the job is done), `""` for none.
    pub rayjob: String,
    /// The Kubernetes cluster it is on (its context), `""` for the home one.
    pub context: String,
}

impl Launched {
    /// Whether a RayJob made it.
    pub fn by_rayjob(&self) -> bool {
        !self.rayjob.is_empty()
    }
}

/// A cluster's phase and size at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    /// The cluster's uid.
    pub uid: String,
    /// When, Unix milliseconds.
    pub at: i64,
    /// The phase's name.
    pub phase: String,
    /// Its reason (Failed).
    pub reason: String,
    /// GPUs it holds or asks for now.
    pub gpus: u64,
    /// When it became Ready, Unix milliseconds, as KubeRay recorded it
    /// (`status.stateTransitionTimes.ready`): known even when raydar was not watching then.
    pub ready_since: Option<i64>,
}

impl Seen {
    /// `summary` of `object` seen at `at`.
    pub fn of(object: &DynamicObject, summary: &ClusterSummary, at: i64) -> Seen {
        let (phase, reason) = phase_name(&summary.phase);
        let ready_since = ready_since(object).filter(|_| phase == "Ready");
        Seen {
            uid: summary.uid.clone(),
            at,
            phase: phase.into(),
            reason,
            gpus: summary.gpus_desired,
            ready_since,
        }
    }
}

/// When `object` (a RayCluster) last became Ready, Unix milliseconds, as KubeRay recorded it
/// (`status.stateTransitionTimes.ready`).
pub fn ready_since(object: &DynamicObject) -> Option<i64> {
    object.data["status"]["stateTransitionTimes"]["ready"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_millisecond())
}

/// A phase's name and reason, as history keeps them.
pub fn phase_name(phase: &ClusterPhase) -> (&'static str, String) {
    match phase {
        ClusterPhase::Provisioning => ("Provisioning", String::new()),
        ClusterPhase::Ready => ("Ready", String::new()),
        ClusterPhase::Suspending => ("Suspending", String::new()),
        ClusterPhase::Suspended => ("Suspended", String::new()),
        ClusterPhase::Failed(reason) => ("Failed", reason.clone()),
    }
}

impl Launched {
    /// What history keeps of `object` at first sight, `summary` being raydar's row of it.
    pub fn of(object: &DynamicObject, summary: ClusterSummary, context: &str) -> Launched {
        let meta = &object.metadata;
        let parameters = meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_PARAMETERS))
            .filter(|p| serde_json::from_str::<serde_json::Map<String, Value>>(p).is_ok())
            .cloned()
            .unwrap_or_else(|| "{}".into());
        let rayjob = meta
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.kind == "RayJob")
            .map(|o| o.name.clone())
            .unwrap_or_default();
        let metadata = json!({
            "namespace": meta.namespace,
            "name": meta.name,
            "uid": meta.uid,
            "creationTimestamp": meta.creation_timestamp,
            "labels": meta.labels,
            "annotations": meta.annotations.as_ref().map(|a| {
                // kubectl's copy of the last applied object doubles the manifest for nothing.
                a.iter()
                    .filter(|(k, _)| *k != "kubectl.kubernetes.io/last-applied-configuration")
                    .collect::<std::collections::BTreeMap<_, _>>()
            }),
            "ownerReferences": meta.owner_references,
        });
        let spec = object.data.get("spec").cloned().unwrap_or(Value::Null);
        let mut manifest =
            json!({"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": metadata, "spec": spec})
                .to_string();
        if manifest.len() > MAX_MANIFEST {
            manifest = json!({
                "apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": metadata,
                "spec": format!("(not kept: {} bytes, past the {MAX_MANIFEST} history keeps)", manifest.len()),
            })
            .to_string();
        }
        Launched { summary, parameters, manifest, rayjob, context: context.to_owned() }
    }
}
