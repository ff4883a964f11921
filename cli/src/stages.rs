//! The stages of a cluster's start for `up --wait`: its pods and the Warning Events on it read
//! (each call within the request timeout), judged by `platform::waiting` as raydar's cluster page
//! judges them, and said in a line each.

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, LogParams};
use platform::kuberay::RayCluster;
use platform::status::format_age;
use platform::waiting::objects::{cluster_progress, pod_progress};
use platform::waiting::{waiting, Refusal, Waiting};

use crate::kubernetes::Kubernetes;

/// Lines read of a crash-looping container's previous run.
const LAST_LINES: i64 = 10;

/// The stages of `cluster` now; `None` when they cannot be read (the wait goes on without them)
/// or it is suspended.
pub async fn read(kubernetes: &Kubernetes, cluster: &RayCluster) -> Option<Waiting> {
    let namespace = cluster.metadata.namespace.clone().unwrap_or_default();
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(kubernetes.client.clone(), &namespace);
    let mine = ListParams::default().labels(&format!("ray.io/cluster={name}"));
    let listed = kubernetes.call("listing the cluster's pods", pods.list(&mine)).await.ok()?;
    let mut progress: Vec<_> = listed.items.iter().filter_map(pod_progress).collect();
    for pod in &mut progress {
        let Some(trouble) = pod.trouble.as_mut().filter(|t| t.reason == "CrashLoopBackOff") else {
            continue;
        };
        let params = LogParams {
            container: Some(trouble.container.clone()),
            previous: true,
            tail_lines: Some(LAST_LINES),
            ..LogParams::default()
        };
        let read =
            kubernetes.call("reading the crashed container's log", pods.logs(&pod.name, &params));
        trouble.last_lines = read.await.unwrap_or_default();
    }
    let events: Api<Event> = Api::namespaced(kubernetes.client.clone(), &namespace);
    let against = ListParams::default()
        .fields(&format!("involvedObject.kind=RayCluster,involvedObject.name={name},type=Warning"));
    let warnings =
        match kubernetes.call("listing the cluster's events", events.list(&against)).await {
            Ok(listed) => listed.items.into_iter().map(refusal).collect(),
            // Events are an aid: without them the stages still say what the pods say.
            Err(_) => Vec::new(),
        };
    let status = cluster.status.clone().unwrap_or_default();
    let progress_of_cluster = cluster_progress(
        &cluster.summary(),
        cluster.spec.suspend.unwrap_or(false),
        &status.conditions,
        warnings,
        None,
    );
    waiting(&progress_of_cluster, &progress, crate::list::unix_now())
}

fn refusal(event: Event) -> Refusal {
    let at = event
        .last_timestamp
        .map(|t| t.0.as_second())
        .or(event.event_time.map(|t| t.0.as_second()))
        .unwrap_or(0);
    Refusal {
        reason: event.reason.unwrap_or_default(),
        message: event.message.unwrap_or_default(),
        at,
    }
}

/// The stage it is in, and what holds it: "Pods scheduled: 3 of 4 pods" then, indented, the
/// reason and a crashed container's last lines. Empty once every stage is done.
pub fn now(waiting: &Waiting) -> String {
    let Some(stage) = waiting.stages.iter().find(|s| s.state == "now") else {
        return String::new();
    };
    let mut text = match stage.progress.as_str() {
        "" => format!("stage: {}", stage.label),
        progress => format!("stage: {} ({progress})", stage.label),
    };
    if let Some(reason) = &waiting.reason {
        text.push_str(&format!("\n  waiting: {}", reason.message));
        for line in reason.last_lines.lines() {
            text.push_str(&format!("\n  | {line}"));
        }
    }
    text
}

/// How long each stage took: "created → Ready in 44s: Pods scheduled 5s, Containers running 10s,
/// Ray head answering 15s, Workers joined 14s" (the stages done so far, when not all are).
pub fn durations(waiting: &Waiting) -> String {
    let took: Vec<String> = waiting
        .stages
        .iter()
        .filter(|s| s.state == "done" && s.name != "created" && s.name != "ready")
        .filter_map(|s| Some(format!("{} {}", s.label, format_age(s.took_s?))))
        .collect();
    match waiting.time_to_ready_s {
        Some(total) => format!("created → Ready in {}: {}", format_age(total), took.join(", ")),
        None => format!("so far: {}", took.join(", ")),
    }
}
