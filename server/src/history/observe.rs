//! The cluster watch's records: a cluster at first sight (who launched it, how, its manifest),
//! each change of phase, its deletion, and, when the watch lists everything again, the clusters
//! that went while it was not watching.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::api::DynamicObject;
use platform::ClusterSummary;

use super::record::{Launched, Record, Seen};
use super::Sink;
use crate::unix_now_ms;

/// Turns what the cluster watch sees into history records: cheap to clone.
#[derive(Clone)]
pub struct Observer {
    sink: Sink,
    /// The Kubernetes cluster watched (its context), `""` for the home one: written on each
    /// cluster's row, and the rows a relist may end.
    context: Arc<str>,
    /// What was last recorded of each live cluster, by uid: as many as the watch holds.
    known: Arc<Mutex<HashMap<String, Known>>>,
}

/// What was last recorded of a live cluster.
#[derive(Clone, Debug, PartialEq)]
struct Known {
    phase: String,
    reason: String,
    gpus: u64,
    by_rayjob: bool,
}

impl Observer {
    /// Records into `sink` what the watch of `context` (`""`: the home Kubernetes cluster) sees.
    pub fn new(sink: Sink, context: &str) -> Observer {
        Observer { sink, context: context.into(), known: Arc::default() }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `object` (whose row is `summary`) was listed, created or changed.
    pub fn applied(&self, object: &DynamicObject, summary: &ClusterSummary) {
        if summary.uid.is_empty() {
            return;
        }
        let seen = Seen::of(object, summary, unix_now_ms());
        let mut known = self.known();
        let first = !known.contains_key(&summary.uid);
        let by_rayjob = if first {
            let launched = Launched::of(object, summary.clone(), &self.context);
            let by_rayjob = launched.by_rayjob();
            self.sink.send(Record::Launched(Box::new(launched)));
            by_rayjob
        } else {
            known[&summary.uid].by_rayjob
        };
        let now = Known {
            phase: seen.phase.clone(),
            reason: seen.reason.clone(),
            gpus: seen.gpus,
            by_rayjob,
        };
        if known.get(&summary.uid) != Some(&now) {
            known.insert(summary.uid.clone(), now);
            self.sink.send(Record::Seen(seen));
        }
    }

    /// The cluster whose row was `summary` was deleted.
    pub fn deleted(&self, summary: &ClusterSummary) {
        let by_rayjob = self.known().remove(&summary.uid).is_some_and(|k| k.by_rayjob);
        self.sink.send(Record::Deleted { uid: summary.uid.clone(), at: unix_now_ms(), by_rayjob });
    }

    /// The watch listed everything again and these are the clusters there are: any other that
    /// history holds as live went while it was not watching.
    pub fn relisted(&self, live: impl IntoIterator<Item = String>) {
        let live: std::collections::HashSet<String> = live.into_iter().collect();
        self.known().retain(|uid, _| live.contains(uid));
        self.sink.send(Record::Relisted {
            context: self.context.to_string(),
            live: live.into_iter().collect(),
            at: unix_now_ms(),
        });
    }
}
