//! Why a cluster is not Ready yet, and how long each part of starting it took: the stages a
//! cluster goes through (created → pods scheduled → containers running → Ray head answering →
//! workers joined → Ready), each with when it began and ended, and, for the stage it is in, the
//! reason in words when something holds it: the scheduler's own message, an image that does not
//! pull, a container crash-looping (with its last lines), the operator refusing (a quota), Ray's
//! head not answering. Pure: the server gathers the facts from its watches, the page and the CLI
//! show the answer.
//!
//! # Layout
//!
//! - this module: [`waiting`], a cluster's stages from its facts.
//! - [`objects`]: those facts read from Pods and RayClusters (feature `kube`).
//! - [`fleet`]: the fleet's waiting clusters grouped by reason; time to Ready per template.

use serde::{Deserialize, Serialize};

use crate::status::format_age;

/// How long a head whose container runs may take to answer before it counts as not answering:
/// Ray's head starts in 10 to 30 s on a healthy node.
pub const HEAD_PATIENCE_S: i64 = 60;

/// What the stages need of one Ray pod.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodProgress {
    pub name: String,
    /// The head (else a worker).
    pub head: bool,
    /// Unix seconds.
    pub created: i64,
    /// When the scheduler bound it (`PodScheduled=True`).
    pub scheduled_at: Option<i64>,
    /// The scheduler's message while it cannot place it (`PodScheduled=False`, `Unschedulable`).
    pub unschedulable: Option<String>,
    /// Since when all its containers run (the latest `startedAt`), when they all do.
    pub running_at: Option<i64>,
    /// A container held in a waiting state that needs someone (an image that does not pull, a
    /// crash loop, a bad config).
    pub trouble: Option<Trouble>,
    /// When it became Ready (`Ready=True`): for Ray's pods, Ray answers its probe.
    pub ready_at: Option<i64>,
}

/// A container that will not run by itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Trouble {
    pub container: String,
    /// Kubernetes' reason: `ImagePullBackOff`, `ErrImagePull`, `CrashLoopBackOff`,
    /// `CreateContainerConfigError`, ...
    pub reason: String,
    /// Kubernetes' message, when it gave one.
    pub message: String,
    pub restarts: u32,
    /// Of a crash-looping container: its previous run's last lines, when they were read.
    pub last_lines: String,
}

/// What KubeRay said against the cluster: a Warning Event on it (`FailedToCreateWorkerPod`: a
/// quota, a webhook, a bad spec).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub message: String,
    /// Unix seconds, last seen.
    pub at: i64,
}

/// What the stages need of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterProgress {
    /// Unix seconds.
    pub created: i64,
    /// Worker pods wanted (replicas times hosts).
    pub workers_desired: u64,
    /// Since when KubeRay has said the head is ready (`HeadPodReady=True`), Unix seconds.
    pub head_ready_since: Option<i64>,
    /// Asked to keep no pods: it is not starting, so it waits for nothing.
    pub suspended: bool,
    /// Warning Events on the RayCluster, newest last.
    pub refusals: Vec<Refusal>,
    /// raydar's own last read of Ray's dashboard failed, and why.
    pub head_unanswered: Option<String>,
}

/// One stage of starting a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    /// `created`, `scheduled`, `running`, `head`, `workers` or `ready`.
    pub name: String,
    /// As pages say it: "Pods scheduled".
    pub label: String,
    /// `done`, `now` (the cluster is in it) or `later`.
    pub state: String,
    /// Unix seconds: when the stage before it ended (not set for `later`).
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// How long it took, or has taken until `now`, in seconds.
    pub took_s: Option<i64>,
    /// Of the stage it is in: how far along, in words ("2 of 4 pods").
    pub progress: String,
}

/// Why the stage it is in does not end by itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Reason {
    /// `unschedulable`, `quota`, `operator`, `image-pull`, `crash-loop`, `container`,
    /// `head-not-answering`.
    pub kind: String,
    /// In words, with Kubernetes' or Ray's own message.
    pub message: String,
    /// The pods it holds.
    pub pods: Vec<String>,
    /// A crash-looping container's last lines.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_lines: String,
}

/// A cluster's start, stage by stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Waiting {
    pub stages: Vec<Stage>,
    /// The stage it is in; `None` once Ready with every worker joined.
    pub current: Option<String>,
    /// Why that stage is held, when something holds it.
    pub reason: Option<Reason>,
    /// Seconds from creation to Ready, once it got there.
    pub time_to_ready_s: Option<i64>,
}

const STAGES: [(&str, &str); 6] = [
    ("created", "Created"),
    ("scheduled", "Pods scheduled"),
    ("running", "Containers running"),
    ("head", "Ray head answering"),
    ("workers", "Workers joined"),
    ("ready", "Ready"),
];

/// The stages of `cluster`, started with `pods`, at `now`; `None` for a suspended cluster (it
/// is not starting).
pub fn waiting(cluster: &ClusterProgress, pods: &[PodProgress], now: i64) -> Option<Waiting> {
    if cluster.suspended {
        return None;
    }
    let wanted = 1 + cluster.workers_desired as usize;
    let head = pods.iter().find(|p| p.head);
    let workers: Vec<&PodProgress> = pods.iter().filter(|p| !p.head).collect();
    // When every wanted pod has reached a point: the last of them to get there.
    let all = |at: fn(&PodProgress) -> Option<i64>| -> Option<i64> {
        let times: Vec<i64> = pods.iter().filter_map(at).collect();
        (pods.len() >= wanted && times.len() == pods.len()).then(|| times.into_iter().max())?
    };
    let ready_since = cluster.head_ready_since;
    let workers_joined = match cluster.workers_desired {
        0 => head.and_then(|h| h.ready_at),
        n => {
            let ready: Vec<i64> = workers.iter().filter_map(|w| w.ready_at).collect();
            (ready.len() as u64 >= n).then(|| ready.into_iter().max()).flatten()
        }
    };
    let ends = [
        Some(cluster.created),
        all(|p| p.scheduled_at),
        all(|p| p.running_at),
        head.and_then(|h| h.ready_at),
        workers_joined,
        ready_since.zip(workers_joined).map(|(a, b)| a.max(b)),
    ];
    let count = |n: usize, of: usize, what: &str| match of {
        1 => format!("{n} of 1 {}", what.trim_end_matches('s')),
        _ => format!("{n} of {of} {what}"),
    };
    let progress = [
        String::new(),
        count(pods.iter().filter(|p| p.scheduled_at.is_some()).count(), wanted, "pods"),
        count(pods.iter().filter(|p| p.running_at.is_some()).count(), wanted, "pods"),
        String::new(),
        count(workers.iter().filter(|p| p.ready_at.is_some()).count(), wanted - 1, "workers"),
        String::new(),
    ];

    let mut stages = Vec::new();
    let mut started = cluster.created;
    let mut current = None;
    for (i, (name, label)) in STAGES.iter().enumerate() {
        // A stage ends no earlier than the one before it (pods are made again, clocks differ).
        let ended = match current {
            None => ends[i].map(|e| e.max(started)),
            Some(_) => None,
        };
        let (state, began, took) = match (ended, current) {
            (Some(end), _) => ("done", Some(started), Some(end - started)),
            (None, None) => {
                current = Some(i);
                ("now", Some(started), Some((now - started).max(0)))
            }
            (None, Some(_)) => ("later", None, None),
        };
        stages.push(Stage {
            name: (*name).to_owned(),
            label: (*label).to_owned(),
            state: state.to_owned(),
            started_at: began,
            ended_at: ended,
            took_s: took,
            progress: if state == "now" { progress[i].clone() } else { String::new() },
        });
        if let Some(end) = ended {
            started = end;
        }
    }
    let reason = current.and_then(|i| held(STAGES[i].0, cluster, pods, head, started, now));
    let time_to_ready_s = match current {
        None => stages.last().and_then(|s| s.ended_at).map(|end| end - cluster.created),
        Some(_) => None,
    };
    Some(Waiting {
        stages,
        current: current.map(|i| STAGES[i].0.to_owned()),
        reason,
        time_to_ready_s,
    })
}

/// Why stage `stage` (begun at `since`) is held, if it is.
fn held(
    stage: &str,
    cluster: &ClusterProgress,
    pods: &[PodProgress],
    head: Option<&PodProgress>,
    since: i64,
    now: i64,
) -> Option<Reason> {
    // The first of these that holds any pod: what keeps a pod off a node comes before what
    // keeps its containers from running.
    let unschedulable = || {
        let held: Vec<&PodProgress> = pods.iter().filter(|p| p.unschedulable.is_some()).collect();
        let first = held.first()?;
        Some(Reason {
            kind: "unschedulable".into(),
            message: format!(
                "{} cannot be placed on any node; the scheduler says: {}",
                pods_named(&held),
                first.unschedulable.clone().unwrap_or_default()
            ),
            pods: held.iter().map(|p| p.name.clone()).collect(),
            last_lines: String::new(),
        })
    };
    let refused = || {
        // A refusal from before the stage began is an old one, since put right.
        let refusal = cluster.refusals.iter().rev().find(|r| r.at >= since)?;
        let quota = refusal.message.contains("exceeded quota");
        Some(Reason {
            kind: if quota { "quota" } else { "operator" }.into(),
            message: format!(
                "KubeRay could not create a pod ({}): {}",
                refusal.reason, refusal.message
            ),
            pods: Vec::new(),
            last_lines: String::new(),
        })
    };
    let troubled = || {
        let held: Vec<&PodProgress> = pods.iter().filter(|p| p.trouble.is_some()).collect();
        let first = held.first()?;
        let trouble = first.trouble.clone().unwrap_or_default();
        let kind = match trouble.reason.as_str() {
            "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" | "ErrImageNeverPull" => {
                "image-pull"
            }
            "CrashLoopBackOff" => "crash-loop",
            _ => "container",
        };
        let detail = match trouble.message.as_str() {
            "" => String::new(),
            m => format!(": {m}"),
        };
        let message = match kind {
            "image-pull" => format!(
                "container {} of {} cannot pull its image ({}){detail}",
                trouble.container, first.name, trouble.reason
            ),
            "crash-loop" => format!(
                "container {} of {} keeps crashing: restarted {} times ({}){detail}",
                trouble.container, first.name, trouble.restarts, trouble.reason
            ),
            _ => format!(
                "container {} of {} cannot start ({}){detail}",
                trouble.container, first.name, trouble.reason
            ),
        };
        Some(Reason {
            kind: kind.into(),
            message,
            pods: held.iter().map(|p| p.name.clone()).collect(),
            last_lines: trouble.last_lines,
        })
    };
    let head_silent = || {
        let head = head?;
        let running = head.running_at?;
        let waited = now - running;
        // Any head refuses connections for its first seconds: only a wait past the patience
        // counts, whatever raydar's own read said meanwhile.
        if waited < HEAD_PATIENCE_S {
            return None;
        }
        let error = cluster.head_unanswered.as_ref();
        let why = error.map_or(String::new(), |e| format!(": {e}"));
        Some(Reason {
            kind: "head-not-answering".into(),
            message: format!(
                "Ray's head has run for {} without answering{why}",
                format_age(waited)
            ),
            pods: vec![head.name.clone()],
            last_lines: String::new(),
        })
    };
    match stage {
        "scheduled" => unschedulable().or_else(refused),
        "running" => troubled().or_else(unschedulable).or_else(refused),
        "head" => troubled().or_else(head_silent),
        "workers" | "ready" => unschedulable().or_else(refused).or_else(troubled),
        _ => None,
    }
}

/// "pod a", "2 pods (a, b)".
fn pods_named(pods: &[&PodProgress]) -> String {
    match pods {
        [one] => format!("pod {}", one.name),
        many => {
            let names: Vec<&str> = many.iter().take(3).map(|p| p.name.as_str()).collect();
            let more = if many.len() > 3 { ", …" } else { "" };
            format!("{} pods ({}{more})", many.len(), names.join(", "))
        }
    }
}

pub mod fleet;
#[cfg(feature = "kube")]
pub mod objects;
#[cfg(test)]
mod tests;
