//! KubeRay's `RayJob` (ray.io/v1) as raydar shows it: one row per RayJob ([`RayJobSummary`]),
//! read from the object's JSON (feature `kube`).
//!
//! A RayJob runs one Ray job: on an existing RayCluster (`spec.clusterSelector`), or on a cluster
//! made for it from `spec.rayClusterSpec` and torn down after (ephemeral). KubeRay submits the
//! entrypoint (here, with `submissionMode: HTTPMode`, by posting to the head's dashboard) and
//! writes two statuses: the Ray job's own (`jobStatus`, as Ray's job API says) and the RayJob's
//! progress (`jobDeploymentStatus`: Initializing, Running, Complete, Failed…). The Ray job's
//! submission id (`status.jobId`) is what its log is followed by.

use serde::{Deserialize, Serialize};

/// One RayJob, as the RayJob list and its API show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RayJobSummary {
    pub namespace: String,
    pub name: String,
    /// Its `raydar.dev/owner` label, or `""`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
    /// Its `raydar.dev/team` label, or `""`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub team: String,
    /// The command the Ray job runs.
    pub entrypoint: String,
    /// How KubeRay submits it: `HTTPMode`, `K8sJobMode`, `SidecarMode` or `InteractiveMode`.
    pub submission_mode: String,
    /// The RayCluster it runs on: the one its selector names, or the one made for it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Whether its cluster is made for it (`spec.rayClusterSpec`) rather than selected.
    pub ephemeral: bool,
    /// The Ray job's submission id, once KubeRay has one: its log is read by it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub job_id: String,
    /// The Ray job's status (`PENDING`, `RUNNING`, `SUCCEEDED`, `FAILED`, `STOPPED`), or `""`
    /// before it was submitted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub job_status: String,
    /// The RayJob's progress (`New`, `Initializing`, `Running`, `Complete`, `Failed`, …).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deployment_status: String,
    /// KubeRay's words on it (a failure's reason and message).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Created, started and ended, Unix seconds.
    pub created: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    /// The Kubernetes cluster it is on, when raydar serves several (else empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context: String,
}

impl RayJobSummary {
    /// Whether the RayJob can change no more.
    pub fn finished(&self) -> bool {
        matches!(self.deployment_status.as_str(), "Complete" | "Failed")
    }
}

/// The RayJobs the requester may see (`GET /api/v1/rayjobs`), newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RayJobList {
    pub items: Vec<RayJobSummary>,
    /// The server's clock, Unix seconds.
    pub now: i64,
}

#[cfg(feature = "kube")]
impl RayJobSummary {
    /// The row of a RayJob whose JSON is `object` (`metadata`, `spec`, `status`). Fields of the
    /// wrong type read as absent: a malformed RayJob is shown, not refused.
    pub fn of(object: &serde_json::Value) -> RayJobSummary {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        let time = |v: &serde_json::Value| {
            v.as_str()
                .and_then(|t| t.parse::<crate::template::Timestamp>().ok())
                .map(|t| t.as_second())
        };
        let (meta, spec, status) = (&object["metadata"], &object["spec"], &object["status"]);
        let label = |key: &str| text(&meta["labels"][key]);
        let ephemeral = spec["rayClusterSpec"].is_object();
        let cluster = match text(&status["rayClusterName"]) {
            named if !named.is_empty() => named,
            _ => text(&spec["clusterSelector"]["ray.io/cluster"]),
        };
        let reason = text(&status["reason"]);
        let message = match (reason.as_str(), text(&status["message"])) {
            ("", message) => message,
            (reason, message) if message.is_empty() => reason.to_owned(),
            (reason, message) => format!("{reason}: {message}"),
        };
        RayJobSummary {
            namespace: text(&meta["namespace"]),
            name: text(&meta["name"]),
            owner: label(crate::template::LABEL_OWNER),
            team: label(crate::template::LABEL_TEAM),
            entrypoint: text(&spec["entrypoint"]),
            submission_mode: match text(&spec["submissionMode"]) {
                mode if mode.is_empty() => "K8sJobMode".into(),
                mode => mode,
            },
            cluster,
            ephemeral,
            job_id: match text(&status["jobId"]) {
                id if id.is_empty() => text(&spec["jobId"]),
                id => id,
            },
            job_status: text(&status["jobStatus"]),
            deployment_status: text(&status["jobDeploymentStatus"]),
            message,
            created: time(&meta["creationTimestamp"]).unwrap_or_default(),
            start_time: time(&status["startTime"]),
            end_time: time(&status["endTime"]),
            context: String::new(),
        }
    }
}

/// Longest RayJob name: KubeRay names the submitter Job and an ephemeral job's cluster after it
/// with a suffix, and a RayCluster name has at most 53 characters.
pub const MAX_NAME: usize = 47;
/// Longest entrypoint: a command line, not a script (a script goes in the runtime env's
/// working dir).
pub const MAX_ENTRYPOINT: usize = 10 * 1024;

/// What is wrong with `name` as a RayJob's name, if anything.
pub fn name_problem(name: &str) -> Option<String> {
    let ok = (1..=MAX_NAME).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    (!ok).then(|| {
        format!(
            "{name:?} is not a RayJob name: 1 to {MAX_NAME} lowercase letters, digits and '-', \
             starting with a letter and not ending with '-' (KubeRay names the job's cluster \
             after it)"
        )
    })
}

/// `{stem}-{5 random characters}`: a RayJob name made from a cluster's or a template's name
/// (whose dots, allowed in any object name, a RayJob name may not hold).
pub fn default_name(stem: &str) -> String {
    let stem: String = stem
        .chars()
        .take(MAX_NAME - 6)
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let stem = stem.trim_matches('-');
    let stem = if stem.starts_with(|c: char| c.is_ascii_lowercase()) { stem } else { "job" };
    format!("{stem}-{}", random_suffix())
}

/// The RayJob name and Ray submission id of a job submitted to the existing RayCluster
/// `cluster`. The id must be unique on the cluster, also for a RayJob of a name given again
/// (after the first was deleted): a name given gets a suffix; a default one has it already and
/// is the id as it is.
pub fn submission_names(given: Option<&str>, cluster: &str) -> (String, String) {
    match given {
        Some(name) => (name.to_owned(), format!("{name}-{}", random_suffix())),
        None => {
            let name = default_name(cluster);
            (name.clone(), name)
        }
    }
}

/// Five random lowercase letters and digits.
pub fn random_suffix() -> String {
    use std::hash::BuildHasher;
    // RandomState is keyed from the OS's generator (and differs with each one made): enough for
    // a name that must not repeat another's, without a dependency for it.
    let mut bits =
        std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now());
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..5)
        .map(|_| {
            let c = ALPHABET[(bits % 36) as usize];
            bits /= 36;
            char::from(c)
        })
        .collect()
}

/// The Ray job a RayJob runs, as a submitter asks for it.
#[cfg(feature = "kube")]
#[derive(Clone, Debug, Default)]
pub struct JobRequest {
    /// The command it runs, e.g. `python train.py`.
    pub entrypoint: String,
    /// Ray's runtime environment for it (`working_dir`, `pip`, `env_vars`, …).
    pub runtime_env: Option<serde_json::Map<String, serde_json::Value>>,
    /// The Ray submission id: what its log is read by, unique on its cluster.
    pub job_id: String,
}

#[cfg(feature = "kube")]
impl JobRequest {
    /// The RayJob `spec` fields of the job itself, submitted over HTTP by KubeRay.
    fn spec(&self) -> serde_json::Value {
        let mut spec = serde_json::json!({
            "entrypoint": self.entrypoint,
            "submissionMode": "HTTPMode",
            "jobId": self.job_id,
        });
        if let Some(env) = &self.runtime_env {
            // JSON is YAML: Ray reads it as the runtime env it is.
            spec["runtimeEnvYAML"] = serde_json::Value::Object(env.clone()).to_string().into();
        }
        spec
    }
}

/// The RayJob `name` in `namespace` that runs `job` on the existing RayCluster `cluster`,
/// labelled with its owner and team as a launch is.
#[cfg(feature = "kube")]
pub fn on_cluster(
    namespace: &str,
    name: &str,
    cluster: &str,
    job: &JobRequest,
    identity: &crate::template::Identity,
) -> serde_json::Value {
    use crate::template::{label_value, ANNOTATION_OWNER, LABEL_OWNER, LABEL_TEAM};
    let mut labels = serde_json::Map::new();
    labels.insert(LABEL_OWNER.into(), label_value(&identity.user).into());
    if !identity.team.is_empty() {
        labels.insert(LABEL_TEAM.into(), label_value(&identity.team).into());
    }
    let mut spec = job.spec();
    spec["clusterSelector"] = serde_json::json!({"ray.io/cluster": cluster});
    serde_json::json!({
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {ANNOTATION_OWNER: identity.user},
        },
        "spec": spec,
    })
}

/// The RayJob that runs `job` on a cluster of its own: `cluster`, a RayCluster manifest the
/// template engine rendered (so every policy of its template holds), becomes its
/// `rayClusterSpec`, shut down `ttl_after_finished` seconds after the job ends;
/// the cluster's labels and annotations are the RayJob's, and a cluster's lifetime (its
/// `raydar.dev/expires-at`, from `now`) is the job's deadline.
#[cfg(feature = "kube")]
pub fn ephemeral(
    cluster: &serde_json::Value,
    job: &JobRequest,
    ttl_after_finished: u32,
    now: crate::template::Timestamp,
) -> serde_json::Value {
    let meta = &cluster["metadata"];
    let mut spec = job.spec();
    spec["rayClusterSpec"] = cluster["spec"].clone();
    spec["shutdownAfterJobFinishes"] = true.into();
    spec["ttlSecondsAfterFinished"] = ttl_after_finished.into();
    let expires = meta["annotations"][crate::template::ANNOTATION_EXPIRES_AT]
        .as_str()
        .and_then(|t| t.parse::<crate::template::Timestamp>().ok());
    if let Some(expires) = expires {
        let deadline = (expires.as_second() - now.as_second()).clamp(1, i64::from(i32::MAX));
        spec["activeDeadlineSeconds"] = deadline.into();
    }
    serde_json::json!({
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": meta["labels"],
            "annotations": meta["annotations"],
        },
        "spec": spec,
    })
}

#[cfg(all(test, feature = "kube"))]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rayjob_names_are_short_dns_labels() {
        assert_eq!(name_problem("nightly-2"), None);
        for bad in ["", "Nightly", "9lives", "ends-", &"x".repeat(48), "a_b"] {
            assert!(name_problem(bad).unwrap().contains("1 to 47"), "{bad:?}");
        }
        let suffix = random_suffix();
        assert_eq!(suffix.len(), 5);
        assert!(suffix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }

    #[test]
    fn default_names_are_rayjob_names_of_their_stem() {
        for stem in ["gpu-a", "cpu.small", &"long".repeat(20), "9lives", "---"] {
            let name = default_name(stem);
            assert_eq!(name_problem(&name), None, "{name}");
            assert_eq!(name.len(), name.rfind('-').unwrap() + 6, "{name}");
        }
        assert!(default_name("gpu-a").starts_with("gpu-a-"));
        assert!(default_name("cpu.small").starts_with("cpu-small-"));
        assert!(default_name("9lives").starts_with("job-"));
        assert_ne!(default_name("a"), default_name("a"));
    }

    #[test]
    fn a_job_id_is_unique_on_its_cluster_and_a_default_name_is_its_own_id() {
        let (name, id) = submission_names(None, "gpu-a");
        assert!(name.starts_with("gpu-a-") && id == name, "{name} {id}");
        let (name, id) = submission_names(Some("nightly"), "gpu-a");
        assert_eq!(name, "nightly");
        assert!(id.starts_with("nightly-") && id.len() == "nightly-".len() + 5, "{id}");
    }

    #[test]
    fn a_rayjob_on_a_selected_cluster_reads_as_kuberay_wrote_it() {
        let job = RayJobSummary::of(&json!({
            "metadata": {"namespace": "ml", "name": "nightly",
                "creationTimestamp": "2026-12-06T10:00:00Z",
                "labels": {"raydar.dev/owner": "alice", "raydar.dev/team": "vision"}},
            "spec": {"entrypoint": "python train.py", "submissionMode": "HTTPMode",
                "clusterSelector": {"ray.io/cluster": "gpu-a"}, "jobId": "nightly-1"},
            "status": {"jobId": "nightly-1", "jobStatus": "RUNNING",
                "jobDeploymentStatus": "Running", "startTime": "2026-12-06T10:00:05Z"}
        }));
        assert_eq!((job.cluster.as_str(), job.ephemeral), ("gpu-a", false));
        assert_eq!((job.owner.as_str(), job.team.as_str()), ("alice", "vision"));
        assert_eq!((job.job_id.as_str(), job.job_status.as_str()), ("nightly-1", "RUNNING"));
        assert_eq!(job.start_time, Some(job.created + 5));
        assert!(!job.finished());
    }

    #[test]
    fn an_ephemeral_failed_or_malformed_rayjob_still_reads() {
        let failed = RayJobSummary::of(&json!({
            "metadata": {"namespace": "ml", "name": "once"},
            "spec": {"entrypoint": "python x.py", "rayClusterSpec": {"headGroupSpec": {}}},
            "status": {"rayClusterName": "once-raycluster-x1", "jobDeploymentStatus": "Failed",
                "reason": "DeadlineExceeded", "message": "past activeDeadlineSeconds"}
        }));
        assert!(failed.ephemeral && failed.finished());
        assert_eq!(failed.cluster, "once-raycluster-x1");
        assert_eq!(failed.submission_mode, "K8sJobMode", "KubeRay's default");
        assert_eq!(failed.message, "DeadlineExceeded: past activeDeadlineSeconds");
        let odd = RayJobSummary::of(&json!({
            "metadata": {"namespace": "ml", "name": "odd", "labels": {"raydar.dev/owner": 7}},
            "spec": {"entrypoint": ["not", "text"], "clusterSelector": "x"},
            "status": {"startTime": 12}
        }));
        assert_eq!((odd.owner.as_str(), odd.entrypoint.as_str(), odd.start_time), ("", "", None));
    }

    fn job() -> JobRequest {
        JobRequest {
            entrypoint: "python t.py".into(),
            runtime_env: serde_json::json!({"env_vars": {"EPOCHS": "3"}}).as_object().cloned(),
            job_id: "train-x1-q2".into(),
        }
    }

    #[test]
    fn a_job_on_a_cluster_selects_it_and_is_submitted_over_http() {
        let who =
            crate::template::Identity { user: "alice@example.com".into(), team: "vision".into() };
        let rayjob = on_cluster("ml", "train-x1", "gpu-a", &job(), &who);
        assert_eq!(rayjob["spec"]["clusterSelector"]["ray.io/cluster"], "gpu-a");
        assert_eq!(rayjob["spec"]["submissionMode"], "HTTPMode");
        assert_eq!(rayjob["spec"]["jobId"], "train-x1-q2");
        let env: serde_json::Value =
            serde_json::from_str(rayjob["spec"]["runtimeEnvYAML"].as_str().unwrap()).unwrap();
        assert_eq!(env["env_vars"]["EPOCHS"], "3");
        assert_eq!(rayjob["metadata"]["labels"]["raydar.dev/team"], "vision");
        assert_eq!(rayjob["metadata"]["annotations"]["raydar.dev/owner"], "alice@example.com");
        assert!(rayjob["spec"].get("rayClusterSpec").is_none());
    }

    #[test]
    fn an_ephemeral_job_carries_its_rendered_cluster_and_its_lifetime_as_deadline() {
        let now: crate::template::Timestamp = "2026-12-06T10:00:00Z".parse().unwrap();
        let cluster = json!({
            "metadata": {"name": "once", "namespace": "ml",
                "labels": {"raydar.dev/owner": "alice", "raydar.dev/template": "cpu-small"},
                "annotations": {"raydar.dev/expires-at": "2026-12-06T22:00:00Z"}},
            "spec": {"headGroupSpec": {"rayStartParams": {}}}
        });
        let rayjob = ephemeral(&cluster, &job(), 60, now);
        assert_eq!(rayjob["spec"]["rayClusterSpec"], cluster["spec"]);
        assert_eq!(rayjob["spec"]["shutdownAfterJobFinishes"], true);
        assert_eq!(rayjob["spec"]["ttlSecondsAfterFinished"], 60);
        assert_eq!(rayjob["spec"]["activeDeadlineSeconds"], 12 * 3600);
        assert_eq!(rayjob["metadata"]["labels"]["raydar.dev/template"], "cpu-small");
        assert!(rayjob["spec"].get("clusterSelector").is_none());
        let summary = RayJobSummary::of(&rayjob);
        assert!(summary.ephemeral && summary.cluster.is_empty());
    }
}
