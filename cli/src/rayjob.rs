//! KubeRay RayJobs as `submit` and `run` make them: their entrypoints, creating one as
//! the kubeconfig's user, and waiting for its Ray job ([`run_to_end`]): until KubeRay submitted
//! it to its cluster, then following its log to the end.
//!
//! The CLI never submits a job to a Ray dashboard itself: KubeRay does (`submissionMode:
//! HTTPMode`), so RBAC on `rayjobs` decides who may run what, and the apiserver's audit log names
//! them.

use std::borrow::Cow;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use platform::overview::RayJob;
use platform::rayjob::{RayJobSummary, MAX_ENTRYPOINT};
use platform::template::FIELD_MANAGER;
use platform::FieldError;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::args::Output;
use crate::dashboard::Dashboard;
use crate::error::{gist, Error, Result};
use crate::kubernetes::Kubernetes;
use crate::output::{print_aside, print_json, print_text};
use crate::{logs, wait};

/// The RayJob API of `namespace`.
pub fn api(kubernetes: &Kubernetes, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("ray.io", "v1", "RayJob"));
    Api::namespaced_with(kubernetes.client.clone(), namespace, &resource)
}

/// The command line Ray runs, with a shell, for the words after `--`: one word is a command line
/// as written (`-- "python train.py --epochs 3"`); several are each quoted for the shell, so
/// what the user's shell passed is what the job's gets.
pub fn entrypoint(words: &[String]) -> Result<String> {
    let line = match words {
        [one] => one.trim().to_owned(),
        words => words.iter().map(|w| shell_word(w)).collect::<Vec<_>>().join(" "),
    };
    if line.is_empty() || line.len() > MAX_ENTRYPOINT {
        return Err(Error::InvalidRequest(vec![FieldError::new(
            "entrypoint",
            format!("required after `--`: the command to run, at most {MAX_ENTRYPOINT} bytes"),
        )]));
    }
    Ok(line)
}

/// `word` as one POSIX shell word: as is when nothing in it is special, else single-quoted.
fn shell_word(word: &str) -> Cow<'_, str> {
    let plain = !word.is_empty()
        && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
    }
}

/// Creates the RayJob `manifest` as the kubeconfig's user; what Kubernetes stored. A RayJob of
/// that name is never taken over: it is someone's earlier job.
pub async fn create(kubernetes: &Kubernetes, manifest: &Value) -> Result<RayJobSummary> {
    let summary = RayJobSummary::of(manifest);
    let id = format!("{}/{}", summary.namespace, summary.name);
    let object: DynamicObject = serde_json::from_value(manifest.clone()).map_err(|e| {
        Error::Unexpected { action: format!("making RayJob {id}"), message: e.to_string() }
    })?;
    let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), dry_run: false };
    let api = api(kubernetes, &summary.namespace);
    match kubernetes.call(&format!("creating RayJob {id}"), api.create(&params, &object)).await {
        Ok(created) => Ok(RayJobSummary::of(&serde_json::to_value(&created).unwrap_or_default())),
        Err(Error::Refused { code: 409, .. }) => {
            Err(Error::Precondition(format!("RayJob {id} already exists; choose another --name")))
        }
        Err(error) => Err(error),
    }
}

/// What `submit` and `run` made and, once waited for, how its job ended: `-o json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobReport {
    /// Namespace of the RayJob and its cluster.
    pub namespace: String,
    /// The RayJob's name.
    pub name: String,
    /// The RayCluster the job runs on; for `run`, the one KubeRay made (empty before).
    pub cluster: String,
    /// The Ray job's submission id: `raydar logs CLUSTER JOB` reads its log.
    pub job_id: String,
    /// Who made it: the user the apiserver named.
    pub owner: String,
    /// How the Ray job ended (`SUCCEEDED`, `FAILED`, `STOPPED`), when waited for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Ray's words on how it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl JobReport {
    /// The report of `rayjob`, made by `owner`, which ended as `job` says (if waited for).
    pub fn new(rayjob: &RayJobSummary, owner: &str, job: Option<&RayJob>) -> Self {
        JobReport {
            namespace: rayjob.namespace.clone(),
            name: rayjob.name.clone(),
            cluster: rayjob.cluster.clone(),
            job_id: rayjob.job_id.clone(),
            owner: owner.to_owned(),
            status: job.map(|j| j.status.clone()),
            message: job.and_then(|j| j.message.clone()),
        }
    }
}

/// Waits (at most `timeout`) until KubeRay submitted `rayjob`'s Ray job, follows its log to the
/// end (on stdout, or stderr with `-o json`, whose stdout is the report), and succeeds only if
/// the job did.
pub async fn run_to_end(
    kubernetes: &Kubernetes,
    rayjob: &RayJobSummary,
    owner: &str,
    timeout: Duration,
    output: Output,
) -> Result<()> {
    let print = match output {
        Output::Text => print_text,
        Output::Json => print_aside,
    };
    let (namespace, name) = (&rayjob.namespace, &rayjob.name);
    let (submitted, job) = until_ended(kubernetes, namespace, name, timeout, print).await?;
    if output == Output::Json {
        print_json(&JobReport::new(&submitted, owner, Some(&job)));
    }
    logs::succeeded(&job)
}

/// Waits until KubeRay submitted RayJob `namespace/name`'s Ray job, then follows its log with
/// `print` until it ends. Returns the RayJob as submitted and the job as it ended.
async fn until_ended(
    kubernetes: &Kubernetes,
    namespace: &str,
    name: &str,
    timeout: Duration,
    print: fn(&str),
) -> Result<(RayJobSummary, RayJob)> {
    let submitted = until_submitted(kubernetes, namespace, name, timeout).await?;
    let dashboard = Dashboard::new(kubernetes, namespace, &submitted.cluster)?;
    match logs::follow(&dashboard, &submitted.job_id, print).await {
        Ok(job) => Ok((submitted, job)),
        Err(error) => {
            // A job that ended before its log was read to the end may have lost its cluster
            // already (an ephemeral one goes `--ttl` seconds after): KubeRay's record says how
            // it ended then.
            let action = format!("reading RayJob {namespace}/{name}");
            let now = kubernetes.call(&action, api(kubernetes, namespace).get_opt(name)).await?;
            let now = now.map(|o| RayJobSummary::of(&serde_json::to_value(&o).unwrap_or_default()));
            match now {
                Some(now) if now.finished() && !now.job_status.is_empty() => {
                    eprintln!("warning: {}", error.lines().join("; "));
                    let message = Some(now.message.clone()).filter(|m| !m.is_empty());
                    let job = RayJob {
                        id: now.job_id.clone(),
                        status: now.job_status.clone(),
                        message,
                        ..RayJob::default()
                    };
                    Ok((submitted, job))
                }
                _ => Err(error),
            }
        }
    }
}

/// Where a RayJob is on its way to its Ray job running.
#[derive(Debug, PartialEq, Eq)]
enum Stage {
    /// Its cluster is being made or started, or KubeRay has yet to submit the job.
    Starting,
    /// Ray has the job (and its log) on the RayJob's cluster.
    Submitted,
    /// It ended without Ray running its job (validation, deadline, a failed cluster).
    Failed,
}

fn stage(job: &RayJobSummary) -> Stage {
    // KubeRay says Running once the cluster is ready, before it posted the job; the Ray job's
    // status is copied from Ray, so once there is one, Ray has the job.
    let known = !job.cluster.is_empty() && !job.job_id.is_empty();
    if known && !job.job_status.is_empty() {
        Stage::Submitted
    } else if matches!(job.deployment_status.as_str(), "Failed" | "ValidationFailed" | "Complete") {
        Stage::Failed
    } else {
        Stage::Starting
    }
}

/// The progress line of a RayJob, as the wait prints it.
fn progress(job: &RayJobSummary) -> String {
    let status = if job.deployment_status.is_empty() { "New" } else { &job.deployment_status };
    let mut line = format!("RayJob {}/{}: {status}", job.namespace, job.name);
    if !job.cluster.is_empty() {
        line.push_str(&format!(", cluster {}", job.cluster));
    }
    if !job.job_status.is_empty() {
        line.push_str(&format!(", Ray job {}", job.job_status));
    }
    let message = gist(&job.message);
    if !message.is_empty() {
        line.push_str(&format!(" ({message})"));
    }
    line
}

/// Watches RayJob `namespace/name` until KubeRay submitted its Ray job, printing its progress
/// on stderr; the RayJob then.
async fn until_submitted(
    kubernetes: &Kubernetes,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<RayJobSummary> {
    let id = format!("{namespace}/{name}");
    let mut states =
        wait::watch_one(api(kubernetes, namespace), name, kubernetes.request_timeout).boxed();
    let started = Instant::now();
    let deadline = started + timeout;
    let mut printed = String::new();
    loop {
        let job = match tokio::time::timeout_at(deadline, states.next()).await {
            Err(_) | Ok(None) => {
                let last = if printed.is_empty() { "not seen yet".to_owned() } else { printed };
                let object = format!("RayJob {id}");
                let goal = "to be submitted to its cluster";
                return Err(Error::WaitTimeout { object, goal, last, after: timeout });
            }
            Ok(Some(Err(error))) => {
                wait::check_watch_error(&format!("watching RayJob {id}"), error)?;
                continue;
            }
            Ok(Some(Ok(None))) => {
                return Err(Error::Precondition(format!(
                    "RayJob {id} was deleted before its job ran"
                )))
            }
            Ok(Some(Ok(Some(object)))) => {
                RayJobSummary::of(&serde_json::to_value(&object).unwrap_or_default())
            }
        };
        let line = progress(&job);
        if line != printed {
            eprintln!("[{:>5.1}s] {line}", started.elapsed().as_secs_f64());
            printed = line;
        }
        match stage(&job) {
            Stage::Starting => {}
            Stage::Submitted => return Ok(job),
            Stage::Failed => {
                return Err(Error::job_failed(&job.name, &job.deployment_status, &job.message));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn words(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn several_words_are_quoted_one_is_a_command_line() {
        assert_eq!(
            entrypoint(&words(&["python", "-c", "print('hello from raydar run'); print(6*7)"]))
                .unwrap(),
            r#"python -c 'print('\''hello from raydar run'\''); print(6*7)'"#
        );
        assert_eq!(
            entrypoint(&words(&["EPOCHS=3", "python", "train.py", "--lr=0.1", ""])).unwrap(),
            "EPOCHS=3 python train.py --lr=0.1 ''"
        );
        assert_eq!(
            entrypoint(&words(&[" python train.py --epochs 3 "])).unwrap(),
            "python train.py --epochs 3"
        );
        for bad in [words(&[" "]), words(&[&"x".repeat(MAX_ENTRYPOINT + 1)])] {
            let error = entrypoint(&bad).unwrap_err();
            assert!(error.lines()[0].starts_with("entrypoint: required"), "{error}");
        }
    }

    fn rayjob(status: Value) -> RayJobSummary {
        RayJobSummary::of(&json!({
            "metadata": {"namespace": "ml", "name": "once"},
            "spec": {"entrypoint": "python x.py", "jobId": "once", "rayClusterSpec": {}},
            "status": status
        }))
    }

    #[test]
    fn a_rayjob_is_followed_once_kuberay_submitted_it() {
        let starting =
            rayjob(json!({"jobDeploymentStatus": "Initializing", "rayClusterName": "once-x1"}));
        assert_eq!(stage(&starting), Stage::Starting);
        assert_eq!(progress(&starting), "RayJob ml/once: Initializing, cluster once-x1");
        assert_eq!(stage(&rayjob(json!({}))), Stage::Starting);
        let posting =
            rayjob(json!({"jobDeploymentStatus": "Running", "rayClusterName": "once-x1"}));
        assert_eq!(stage(&posting), Stage::Starting, "KubeRay has yet to post it to Ray");
        let running = rayjob(json!({"jobDeploymentStatus": "Running", "rayClusterName": "once-x1",
            "jobStatus": "PENDING"}));
        assert_eq!(stage(&running), Stage::Submitted);
        // Ended before it was watched: Ray still has its log (until the cluster goes).
        let done = rayjob(json!({"jobDeploymentStatus": "Failed", "rayClusterName": "once-x1",
            "jobStatus": "FAILED"}));
        assert_eq!(stage(&done), Stage::Submitted);
        let never = rayjob(json!({"jobDeploymentStatus": "Failed", "rayClusterName": "once-x1",
            "reason": "DeadlineExceeded", "message": "past activeDeadlineSeconds"}));
        assert_eq!(stage(&never), Stage::Failed);
        assert_eq!(
            progress(&never),
            "RayJob ml/once: Failed, cluster once-x1 (DeadlineExceeded: past activeDeadlineSeconds)"
        );
        assert_eq!(
            stage(&rayjob(json!({"jobDeploymentStatus": "ValidationFailed"}))),
            Stage::Failed
        );
    }

    #[test]
    fn a_report_says_how_the_job_ended_once_waited_for() {
        let submitted = rayjob(json!({"rayClusterName": "once-x1", "jobStatus": "RUNNING"}));
        let report =
            serde_json::to_value(JobReport::new(&submitted, "alice@example.com", None)).unwrap();
        assert_eq!(
            report,
            json!({"namespace": "ml", "name": "once", "cluster": "once-x1", "jobId": "once",
                "owner": "alice@example.com"})
        );
        let ended =
            RayJob { status: "FAILED".into(), message: Some("exit 3".into()), ..RayJob::default() };
        let report =
            serde_json::to_value(JobReport::new(&submitted, "alice", Some(&ended))).unwrap();
        assert_eq!(
            (report["status"].as_str(), report["message"].as_str()),
            (Some("FAILED"), Some("exit 3"))
        );
    }
}
