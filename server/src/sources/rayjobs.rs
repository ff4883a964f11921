//! The RayJob watch: every KubeRay RayJob in every namespace, kept as its row
//! ([`RayJobSummary`]), for the RayJob list and its API.

use std::sync::Arc;

use kube::api::DynamicObject;
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::watcher;
use kube::Client;
use platform::rayjob::RayJobSummary;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::dynamic_api;
use super::watch::{Change, Projected, Watch, WatchHealth, Watched};
use crate::config::Scope;

const WATCHED: Watched = Watched {
    kind: "RayJob",
    resource: "rayjobs.ray.io",
    install: "install the KubeRay operator or its CRDs",
};

/// The RayJob resource, ray.io/v1.
pub fn resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("ray.io", "v1", "RayJob"))
}

/// The watched RayJobs: cheap to clone. Handlers read it; [`RayJobs::run`] (the source) fills it.
#[derive(Clone)]
pub struct RayJobs {
    inner: Arc<Shared>,
}

struct Shared {
    client: Client,
    apiserver: String,
    scope: Scope,
    kept: Projected<RayJobSummary>,
    /// Counts changes, for pages that follow the list: a watch channel, so a follower that
    /// falls behind sees only that something changed, never a queue.
    changed: watch::Sender<u64>,
}

impl RayJobs {
    /// An empty store, filled once [`RayJobs::run`] runs; `apiserver` names the cluster in
    /// error messages.
    pub fn new(client: Client, apiserver: String, scope: Scope) -> Self {
        let shared = Shared {
            client,
            apiserver,
            scope,
            kept: Projected::default(),
            changed: watch::Sender::new(0),
        };
        RayJobs { inner: Arc::new(shared) }
    }

    /// The source: watches RayJobs in the namespaces of its scope until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), String> {
        let shared = &self.inner;
        let api = |ns: Option<&str>| dynamic_api(&shared.client, ns, &resource());
        let config = watcher::Config::default().any_semantic();
        let watch = Watch::scoped(&shared.scope, api, config, WATCHED);
        // Read from the object's JSON, as the apiserver sent it: a field of the wrong type reads
        // as absent rather than failing the watch.
        let keep =
            |job: &DynamicObject| RayJobSummary::of(&serde_json::to_value(job).unwrap_or_default());
        let changed = |_: Change<'_, RayJobSummary>| {
            shared.changed.send_modify(|n| *n += 1);
        };
        shared.kept.watch(watch, &shared.apiserver, keep, changed, shutdown.cancelled()).await;
        Ok(())
    }

    /// The RayJobs in `namespaces`, newest first.
    pub fn list(&self, mut namespaces: impl FnMut(&str) -> bool) -> Vec<RayJobSummary> {
        let mut jobs: Vec<RayJobSummary> =
            self.inner.kept.read().values().filter(|j| namespaces(&j.namespace)).cloned().collect();
        jobs.sort_by(|a, b| {
            (b.created, &a.namespace, &a.name).cmp(&(a.created, &b.namespace, &b.name))
        });
        jobs
    }

    /// One RayJob.
    pub fn get(&self, namespace: &str, name: &str) -> Option<RayJobSummary> {
        self.inner.kept.read().get(&(namespace.to_owned(), name.to_owned())).cloned()
    }

    /// The namespaces that hold a RayJob.
    pub fn namespaces(&self) -> Vec<String> {
        let mut namespaces: Vec<String> =
            self.inner.kept.read().keys().map(|(ns, _)| ns.clone()).collect();
        namespaces.dedup();
        namespaces
    }

    /// Follows changes to the RayJobs (any of them, a relist, an outage).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    /// Whether the watch has synced, and its errors.
    pub fn health(&self) -> &WatchHealth {
        &self.inner.kept.health
    }

    /// How many the watch keeps.
    pub fn count(&self) -> usize {
        self.inner.kept.read().len()
    }
}
