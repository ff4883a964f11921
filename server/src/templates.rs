//! The RayClusterTemplate watch: a kube-rs reflector over the cluster-scoped templates that
//! launches are rendered from, and what `GET /api/v1/templates` shows of them.

use std::sync::Arc;
use std::time::Duration;

use futures::{Future, StreamExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use platform::template::{RayClusterTemplate, TemplateForm};

use crate::watch::{explain, WatchHealth, Watched};

const WATCHED: Watched = Watched {
    kind: "RayClusterTemplate",
    resource: "rayclustertemplates.raydar.dev",
    install: "apply deploy/crds/ and the templates in deploy/templates/",
};

/// The web side's handle on the watched templates: cheap to clone.
#[derive(Clone)]
pub struct Templates {
    inner: Arc<Shared>,
}

struct Shared {
    /// Every RayClusterTemplate, as the reflector last saw it.
    store: Store<RayClusterTemplate>,
    /// Synced, errors.
    health: WatchHealth,
}

/// What the background watch task needs: the reflector's writer and the shared state.
pub struct TemplateWatch {
    api: Api<RayClusterTemplate>,
    writer: reflector::store::Writer<RayClusterTemplate>,
    shared: Arc<Shared>,
    apiserver: String,
}

/// Creates the store (for the web side) and the watch (to run in the background). `apiserver`
/// names the cluster in error messages.
pub fn watch(client: Client, apiserver: String) -> (Templates, TemplateWatch) {
    let (store, writer) = reflector::store();
    let shared = Arc::new(Shared { store, health: WatchHealth::default() });
    (
        Templates { inner: shared.clone() },
        TemplateWatch { api: Api::all(client), writer, shared, apiserver },
    )
}

impl Templates {
    /// Waits up to `limit` for the first full list; the last watch error if it has not come.
    pub async fn ready(&self, limit: Duration) -> Result<(), String> {
        if self.health().synced() {
            return Ok(());
        }
        match tokio::time::timeout(limit, self.inner.store.wait_until_ready()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(self.health().last_error().unwrap_or_else(|| {
                "the RayClusterTemplate watch has not listed the templates yet".into()
            })),
        }
    }

    /// Every template as a launch form shows it, sorted by name.
    pub fn forms(&self) -> Vec<TemplateForm> {
        let mut forms: Vec<TemplateForm> =
            self.inner.store.state().iter().map(|t| t.form()).collect();
        forms.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        forms
    }

    /// One template by name.
    pub fn get(&self, name: &str) -> Option<Arc<RayClusterTemplate>> {
        self.inner.store.get(&reflector::ObjectRef::new(name))
    }

    /// Whether the watch has synced, and its errors.
    pub fn health(&self) -> &WatchHealth {
        &self.inner.health
    }
}

impl TemplateWatch {
    /// Watches RayClusterTemplates until `shutdown` completes; errors are reported and retried
    /// with backoff, they never end the watch.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let TemplateWatch { api, writer, shared, apiserver } = self;
        let stream = watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            .modify(|t: &mut RayClusterTemplate| t.meta_mut().managed_fields = None)
            .reflect(writer);
        tokio::pin!(stream);
        tokio::pin!(shutdown);
        loop {
            let event = tokio::select! {
                _ = &mut shutdown => break,
                event = stream.next() => event,
            };
            match event {
                None => break,
                Some(Ok(event)) => {
                    if matches!(event, watcher::Event::InitDone) && shared.health.mark_synced() {
                        tracing::info!(
                            templates = shared.store.len(),
                            "RayClusterTemplate watch synced"
                        );
                    }
                    shared.health.recovered();
                }
                Some(Err(e)) => shared.health.failed(explain(&e, WATCHED, &apiserver)),
            }
        }
    }
}
