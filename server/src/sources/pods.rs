//! The Ray pod watch: every pod KubeRay made for a RayCluster (label `ray.io/is-ray-node=yes`),
//! kept as the row cluster pages list and the cluster it belongs to (GPU attribution): a few
//! hundred bytes a pod, where the Pod object is about 18 KB. Containers that end (OOMKilled, an
//! error, done) are recorded into history once each, a failed one with its last lines.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::runtime::watcher;
use kube::{Api, Client};
use platform::gpu::PodRef;
use platform::history::Termination;
use platform::overview::PodRow;
use platform::waiting::PodProgress;
use tokio::sync::{broadcast, Semaphore};
use tokio_util::sync::CancellationToken;

use super::watch::{Change, Projected, Watch, WatchHealth, Watched};
use crate::config::Scope;
use crate::history::{Record, Sink};

/// A pod, by namespace and name.
type Key = (String, String);

const WATCHED: Watched = Watched { kind: "Pod", resource: "pods", install: "" };

/// The label KubeRay puts on every pod of a RayCluster.
const RAY_PODS: &str = "ray.io/is-ray-node=yes";
/// Pod changes held for a slow follower; one that falls behind takes everything as changed.
const CHANGES_CAPACITY: usize = 1024;
/// Lines kept of a failed container's log, at most so many bytes, read within the timeout; and
/// how many such reads at once (more failures meanwhile are recorded without their lines).
const LAST_LINES: i64 = 50;
const LAST_LINES_BYTES: i64 = 64 * 1024;
const TAIL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const TAILS_AT_ONCE: usize = 4;

/// A RayCluster, by namespace and name.
pub type ClusterKey = (String, String);

/// The watched Ray pods: cheap to clone. Handlers read it; [`RayPods::run`] (the source) fills it.
#[derive(Clone)]
pub struct RayPods {
    inner: Arc<Shared>,
}

struct Shared {
    client: Client,
    apiserver: String,
    /// The namespaces watched.
    scope: Scope,
    /// Where container terminations are recorded, when history is kept.
    history: Option<Sink>,
    /// The terminations recorded of each pod (container, when), so each is recorded once.
    recorded: Mutex<HashMap<Key, BTreeSet<(String, i64)>>>,
    /// Reads of a failed container's last lines in flight.
    tails: Arc<Semaphore>,
    /// What is kept of every Ray pod; synced, errors.
    kept: Projected<RayPod>,
    /// The cluster of every pod that changed, as the watch saw it; `None` after a relist.
    changes: broadcast::Sender<Option<ClusterKey>>,
}

impl RayPods {
    /// An empty store, filled once [`RayPods::run`] runs; containers that end are recorded into
    /// `history`.
    pub fn new(client: Client, apiserver: String, scope: Scope, history: Option<Sink>) -> Self {
        let (changes, _) = broadcast::channel(CHANGES_CAPACITY);
        let shared = Shared {
            client,
            apiserver,
            scope,
            history,
            recorded: Mutex::default(),
            tails: Arc::new(Semaphore::new(TAILS_AT_ONCE)),
            kept: Projected::default(),
            changes,
        };
        RayPods { inner: Arc::new(shared) }
    }

    /// The source: watches Ray pods in the namespaces of its scope until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), String> {
        let shared = &self.inner;
        let api = |ns: Option<&str>| super::typed_api::<Pod>(&shared.client, ns);
        let config = watcher::Config::default().labels(RAY_PODS).any_semantic();
        let watch = Watch::scoped(&shared.scope, api, config, WATCHED);
        let publish = |change: Change<'_, RayPod>| {
            match change {
                Change::Applied(pod) => shared.record_terminations(pod, false),
                Change::Deleted(pod) => shared.record_terminations(pod, true),
                Change::Relisted | Change::Unanswered(_) => {}
            }
            let change = match change {
                Change::Applied(pod) | Change::Deleted(pod) => {
                    Some((pod.namespace.clone(), pod.cluster.clone()))
                }
                Change::Relisted | Change::Unanswered(_) => None,
            };
            // Nobody following is fine.
            let _ = shared.changes.send(change);
        };
        shared
            .kept
            .watch(watch, &shared.apiserver, RayPod::of, publish, shutdown.cancelled())
            .await;
        Ok(())
    }

    /// Follows which clusters' pods change: `Some(cluster)` for each change, `None` when the
    /// watch relisted (anything may have changed).
    pub fn changes(&self) -> broadcast::Receiver<Option<ClusterKey>> {
        self.inner.changes.subscribe()
    }

    /// The pods of RayCluster `namespace/name`: head first, then workers by group and name.
    pub fn of_cluster(&self, namespace: &str, name: &str) -> Vec<PodRow> {
        // The namespace's pods only: they are kept in order of namespace and name.
        let from = (namespace.to_owned(), String::new());
        let mut rows: Vec<PodRow> = self
            .inner
            .kept
            .read()
            .range(from..)
            .take_while(|((ns, _), _)| ns == namespace)
            .filter(|(_, pod)| pod.cluster == name)
            .map(|(_, pod)| pod.row.clone())
            .collect();
        rows.sort_by(|a, b| {
            (a.role != "head", &a.group, &a.name).cmp(&(b.role != "head", &b.group, &b.name))
        });
        rows
    }

    /// How far each pod of RayCluster `namespace/name` has got in starting (pods being deleted
    /// left out).
    pub fn progress_of(&self, namespace: &str, name: &str) -> Vec<PodProgress> {
        let from = (namespace.to_owned(), String::new());
        self.inner
            .kept
            .read()
            .range(from..)
            .take_while(|((ns, _), _)| ns == namespace)
            .filter(|(_, pod)| pod.cluster == name)
            .filter_map(|(_, pod)| pod.progress.clone())
            .collect()
    }

    /// Which RayCluster each of `pods` that is a Ray pod belongs to: `(namespace, pod)` to the
    /// cluster's name (KubeRay's `ray.io/cluster` label). Only those asked about are copied: the
    /// pods holding GPUs are a few thousand at most, the store tens of thousands.
    pub fn clusters_of<'a>(
        &self,
        pods: impl IntoIterator<Item = &'a PodRef>,
    ) -> HashMap<(String, String), String> {
        let kept = self.inner.kept.read();
        pods.into_iter()
            .filter_map(|pod| {
                let key = (pod.namespace.clone(), pod.pod.clone());
                let cluster = kept.get(&key)?.cluster.clone();
                Some((key, cluster))
            })
            .collect()
    }

    /// The cluster (`ray.io/cluster`) of the Ray pod `namespace/pod`, when it is one.
    pub fn cluster_of(&self, namespace: &str, pod: &str) -> Option<String> {
        let kept = self.inner.kept.read();
        kept.get(&(namespace.to_owned(), pod.to_owned())).map(|p| p.cluster.clone())
    }

    /// Whether the watch has synced, and its errors.
    pub fn health(&self) -> &WatchHealth {
        &self.inner.kept.health
    }

    /// Ray pods in the store.
    pub fn len(&self) -> usize {
        self.inner.kept.read().len()
    }

    /// True when no Ray pod is stored.
    pub fn is_empty(&self) -> bool {
        self.inner.kept.read().is_empty()
    }
}

impl Shared {
    /// Records, once each, the containers of `pod` that ended; for a failed one, also its last
    /// lines, read in the background. `gone`: the pod was deleted (what was recorded of it is
    /// forgotten here; history keeps it).
    fn record_terminations(&self, pod: &RayPod, gone: bool) {
        let Some(history) = &self.history else { return };
        // Most pod changes end no container: they take no lock.
        if pod.terminations.is_empty() && !gone {
            return;
        }
        let key = (pod.namespace.clone(), pod.row.name.clone());
        let mut recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
        let mut new = Vec::new();
        if !pod.terminations.is_empty() && !pod.owner.is_empty() {
            let seen = recorded.entry(key.clone()).or_default();
            for ended in &pod.terminations {
                if seen.insert((ended.termination.container.clone(), ended.termination.finished_at))
                {
                    new.push(ended.clone());
                }
            }
        }
        if gone {
            recorded.remove(&key);
        }
        drop(recorded);
        for ended in new {
            let record =
                |termination| Record::Terminated { cluster: pod.owner.clone(), termination };
            history.send(record(ended.termination.clone()));
            if !ended.termination.failed() {
                continue;
            }
            // Its last lines, if a read is free (else it is recorded without them).
            let Ok(permit) = self.tails.clone().try_acquire_owned() else { continue };
            let (client, history) = (self.client.clone(), history.clone());
            let (namespace, cluster) = (pod.namespace.clone(), pod.owner.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let t = &ended.termination;
                let read = last_lines(client, &namespace, &t.pod, &t.container, ended.previous)
                    .lines(LAST_LINES, LAST_LINES_BYTES);
                if let Ok(text) = read.await {
                    let termination = Termination { last_lines: text, ..ended.termination };
                    history.send(Record::Terminated { cluster, termination });
                }
            });
        }
    }
}

/// A read of a container's last lines: [`LastLines::lines`] says how many, within [`TAIL_TIMEOUT`].
pub(crate) struct LastLines<'a> {
    pods: Api<Pod>,
    pod: &'a str,
    container: &'a str,
    previous: bool,
}

/// The last lines of `container` of `pod` in `namespace`: its previous run's when `previous`.
pub(crate) fn last_lines<'a>(
    client: Client,
    namespace: &str,
    pod: &'a str,
    container: &'a str,
    previous: bool,
) -> LastLines<'a> {
    LastLines { pods: Api::namespaced(client, namespace), pod, container, previous }
}

impl LastLines<'_> {
    /// At most `lines` lines and `bytes` bytes of them, or why they were not read.
    pub(crate) async fn lines(self, lines: i64, bytes: i64) -> Result<String, String> {
        let params = LogParams {
            container: Some(self.container.to_owned()),
            previous: self.previous,
            tail_lines: Some(lines),
            limit_bytes: Some(bytes),
            ..LogParams::default()
        };
        match tokio::time::timeout(TAIL_TIMEOUT, self.pods.logs(self.pod, &params)).await {
            Ok(Ok(text)) => Ok(text),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("not read within {} s", TAIL_TIMEOUT.as_secs())),
        }
    }
}

/// What is kept of a Ray pod.
struct RayPod {
    namespace: String,
    /// Its RayCluster's name (KubeRay's `ray.io/cluster` label); empty when it has none.
    cluster: String,
    /// Its RayCluster's uid (its owner reference); empty when it has none.
    owner: String,
    /// The row its cluster's page shows.
    row: PodRow,
    /// How far it has got in starting, for its cluster's stages; `None` while it is deleted.
    progress: Option<PodProgress>,
    /// Its containers that ended, as their state and last state say.
    terminations: Vec<Ended>,
}

/// A container that ended, and whether its log is now its previous one (it restarted since).
#[derive(Clone)]
struct Ended {
    termination: Termination,
    previous: bool,
}

impl RayPod {
    fn of(pod: &Pod) -> RayPod {
        let owner = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.kind == "RayCluster")
            .map(|o| o.uid.clone())
            .unwrap_or_default();
        RayPod {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            cluster: label(pod, "ray.io/cluster").unwrap_or_default().to_owned(),
            owner,
            row: pod_row(pod),
            progress: platform::waiting::objects::pod_progress(pod),
            terminations: terminations(pod),
        }
    }
}

/// The containers of `pod` that ended: each container's state, and its last state (before its
/// latest restart), when `terminated`.
fn terminations(pod: &Pod) -> Vec<Ended> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    let mut ended = Vec::new();
    for c in statuses.into_iter().flatten() {
        let restarts = c.restart_count.max(0) as u32;
        let now =
            c.state.as_ref().and_then(|s| s.terminated.as_ref()).map(|t| (t, false, restarts));
        let before = c
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| (t, true, restarts.saturating_sub(1)));
        for (t, previous, restarts) in now.into_iter().chain(before) {
            let at = t.finished_at.as_ref().or(t.started_at.as_ref());
            let termination = Termination {
                pod: name.clone(),
                container: c.name.clone(),
                finished_at: at.map_or(0, |t| t.0.as_second()),
                reason: t.reason.clone().unwrap_or_default(),
                exit_code: t.exit_code,
                restarts,
                last_lines: String::new(),
            };
            ended.push(Ended { termination, previous });
        }
    }
    ended
}

fn label<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

fn pod_row(pod: &Pod) -> PodRow {
    let meta = &pod.metadata;
    let status = pod.status.as_ref();
    let phase = if meta.deletion_timestamp.is_some() {
        "Terminating".to_owned()
    } else {
        status.and_then(|s| s.phase.clone()).unwrap_or_else(|| "Pending".into())
    };
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let restarts = status
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| cs.iter().map(|c| c.restart_count.max(0) as u32).sum());
    PodRow {
        name: meta.name.clone().unwrap_or_default(),
        role: label(pod, "ray.io/node-type").unwrap_or("worker").to_owned(),
        group: label(pod, "ray.io/group").unwrap_or_default().to_owned(),
        phase,
        ready,
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        ip: status.and_then(|s| s.pod_ip.clone()),
        restarts,
        created: meta.creation_timestamp.as_ref().map_or(0, |t| t.0.as_second()),
        containers: pod
            .spec
            .as_ref()
            .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_containers_are_read_from_their_state_and_last_state() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "c-head-x", "namespace": "ml",
                "labels": {"ray.io/cluster": "c", "ray.io/node-type": "head"},
                "ownerReferences": [{"apiVersion": "ray.io/v1", "kind": "RayCluster", "name": "c", "uid": "u-1"}]
            },
            "status": {"containerStatuses": [
                {"name": "ray-head", "restartCount": 2, "ready": false, "image": "", "imageID": "",
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                     "startedAt": "2026-12-07T01:00:00Z", "finishedAt": "2026-12-07T01:05:00Z"}}},
                {"name": "sidecar", "restartCount": 0, "ready": false, "image": "", "imageID": "",
                 "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                     "finishedAt": "2026-12-07T01:06:00Z"}}}
            ]}
        }))
        .unwrap();
        let kept = RayPod::of(&pod);
        assert_eq!(kept.owner, "u-1");
        let ended: Vec<(&str, &str, i32, u32, bool, bool)> = kept
            .terminations
            .iter()
            .map(|e| {
                let t = &e.termination;
                (
                    t.container.as_str(),
                    t.reason.as_str(),
                    t.exit_code,
                    t.restarts,
                    e.previous,
                    t.oom_killed(),
                )
            })
            .collect();
        assert_eq!(
            ended,
            [
                ("ray-head", "OOMKilled", 137, 1, true, true),
                ("sidecar", "Completed", 0, 0, false, false)
            ]
        );
        let finished: Vec<i64> =
            kept.terminations.iter().map(|e| e.termination.finished_at).collect();
        assert_eq!(finished, [1_796_605_500, 1_796_605_560]);
        assert!(
            kept.terminations[0].termination.failed() && !kept.terminations[1].termination.failed()
        );
    }
}
