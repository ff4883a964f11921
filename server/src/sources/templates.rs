//! The RayClusterTemplate watch: a kube-rs reflector over the cluster-scoped templates that
//! launches are rendered from, and what `GET /api/v1/templates` shows of them.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::{reflector, watcher};
use kube::{Api, Client};
use platform::template::{RayClusterTemplate, TemplateForm};
use tokio_util::sync::CancellationToken;

use super::watch::{Reflected, WatchHealth, Watched};

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
    /// Every RayClusterTemplate, as the reflector last saw it; synced, errors.
    reflected: Reflected<RayClusterTemplate>,
}

impl Templates {
    /// An empty store, filled once [`Templates::run`] runs; `apiserver` names the cluster in
    /// error messages.
    pub fn new(client: Client, apiserver: String) -> Self {
        Templates { inner: Arc::new(Shared { client, apiserver, reflected: Reflected::default() }) }
    }

    /// The source: watches RayClusterTemplates until `shutdown`; errors are reported and
    /// retried with backoff, they never end the watch.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), String> {
        let shared = &self.inner;
        let api = Api::<RayClusterTemplate>::all(shared.client.clone());
        let config = watcher::Config::default().any_semantic();
        shared
            .reflected
            .run(api, config, WATCHED, &shared.apiserver, |_| {}, shutdown.cancelled())
            .await;
        Ok(())
    }

    /// Waits up to `limit` for the first full list; the last watch error if it has not come.
    pub async fn ready(&self, limit: Duration) -> Result<(), String> {
        self.health().wait_synced(limit, "RayClusterTemplate").await
    }

    /// Every template as a launch form shows it, sorted by name.
    pub fn forms(&self) -> Vec<TemplateForm> {
        let mut forms: Vec<TemplateForm> =
            self.inner.reflected.store().state().iter().map(|t| t.form()).collect();
        forms.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        forms
    }

    /// One template by name.
    pub fn get(&self, name: &str) -> Option<Arc<RayClusterTemplate>> {
        self.inner.reflected.store().get(&reflector::ObjectRef::new(name))
    }

    /// Whether the watch has synced, and its errors.
    pub fn health(&self) -> &WatchHealth {
        &self.inner.reflected.health
    }
}
