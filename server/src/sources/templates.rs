//! The RayClusterTemplate watch: the cluster-scoped templates that launches are rendered from
//! (kept whole: they are few, and launches read all of them), and what `GET /api/v1/templates`
//! shows of them.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::watcher;
use kube::{Api, Client};
use platform::template::{RayClusterTemplate, TemplateForm};
use tokio_util::sync::CancellationToken;

use super::watch::{Projected, Watch, WatchHealth, Watched};

const WATCHED: Watched = Watched {
    kind: "RayClusterTemplate",
    resource: "rayclustertemplates.raydar.dev",
    install: "apply deploy/crds/ and the templates in deploy/templates/",
};

/// The watched templates: cheap to clone. Handlers read it; [`Templates::run`] (the source)
/// fills it.
#[derive(Clone)]
pub struct Templates {
    inner: Arc<Shared>,
}

struct Shared {
    client: Client,
    apiserver: String,
    /// Every RayClusterTemplate, as the watch last saw it; synced, errors.
    kept: Projected<Arc<RayClusterTemplate>>,
}

impl Templates {
    /// An empty store, filled once [`Templates::run`] runs; `apiserver` names the cluster in
    /// error messages.
    pub fn new(client: Client, apiserver: String) -> Self {
        Templates { inner: Arc::new(Shared { client, apiserver, kept: Projected::default() }) }
    }

    /// The source: watches RayClusterTemplates until `shutdown`; errors are reported and
    /// retried, they never end the watch.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), String> {
        let shared = &self.inner;
        let api = Api::<RayClusterTemplate>::all(shared.client.clone());
        let watch = Watch::all(api, watcher::Config::default().any_semantic(), WATCHED);
        let keep = |t: &RayClusterTemplate| Arc::new(t.clone());
        shared.kept.watch(watch, &shared.apiserver, keep, |_| {}, shutdown.cancelled()).await;
        Ok(())
    }

    /// Waits up to `limit` for the first full list; the last watch error if it has not come.
    pub async fn ready(&self, limit: Duration) -> Result<(), String> {
        self.health().wait_synced(limit, "RayClusterTemplate").await
    }

    /// Every template as a launch form shows it, sorted by name.
    pub fn forms(&self) -> Vec<TemplateForm> {
        // Kept in order of name.
        self.inner.kept.read().values().map(|t| t.form()).collect()
    }

    /// One template by name.
    pub fn get(&self, name: &str) -> Option<Arc<RayClusterTemplate>> {
        self.inner.kept.read().get(&(String::new(), name.to_owned())).cloned()
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
