//! The RayClusterTemplate watch: a kube-rs reflector over the cluster-scoped templates that
//! launches are rendered from, and what `GET /api/v1/templates` shows of them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Future, StreamExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use platform::template::{RayClusterTemplate, TemplateForm};

/// The web side's handle on the watched templates: cheap to clone.
#[derive(Clone)]
pub struct Templates {
    inner: Arc<Shared>,
}

struct Shared {
    /// Every RayClusterTemplate, as the reflector last saw it.
    store: Store<RayClusterTemplate>,
    /// True once the first full list has arrived.
    synced: AtomicBool,
    /// Watch errors since start.
    errors: AtomicU64,
    /// The last watch error in words, cleared when the watch recovers. Never held across an
    /// await, so a std mutex is enough.
    last_error: Mutex<Option<String>>,
}

/// What the background watch task needs: the reflector's writer and the shared state.
pub struct TemplateWatch {
    api: Api<RayClusterTemplate>,
    writer: reflector::store::Writer<RayClusterTemplate>,
    shared: Arc<Shared>,
}

/// Creates the store (for the web side) and the watch (to run in the background).
pub fn watch(client: Client) -> (Templates, TemplateWatch) {
    let (store, writer) = reflector::store();
    let shared = Arc::new(Shared {
        store,
        synced: AtomicBool::new(false),
        errors: AtomicU64::new(0),
        last_error: Mutex::new(None),
    });
    (Templates { inner: shared.clone() }, TemplateWatch { api: Api::all(client), writer, shared })
}

impl Templates {
    /// Waits up to `limit` for the first full list; the last watch error if it has not come.
    pub async fn ready(&self, limit: Duration) -> Result<(), String> {
        if self.synced() {
            return Ok(());
        }
        match tokio::time::timeout(limit, self.inner.store.wait_until_ready()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(self
                .last_error()
                .unwrap_or_else(|| "the RayClusterTemplate watch has not listed the templates yet".into())),
        }
    }

    /// Every template as a launch form shows it, sorted by name.
    pub fn forms(&self) -> Vec<TemplateForm> {
        let mut forms: Vec<TemplateForm> = self.inner.store.state().iter().map(|t| t.form()).collect();
        forms.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        forms
    }

    /// One template by name.
    pub fn get(&self, name: &str) -> Option<Arc<RayClusterTemplate>> {
        self.inner.store.get(&reflector::ObjectRef::new(name))
    }

    /// True once the watch has listed every template at least once.
    pub fn synced(&self) -> bool {
        self.inner.synced.load(Ordering::Acquire)
    }

    /// The last watch error, if the watch has not recovered since.
    pub fn last_error(&self) -> Option<String> {
        self.inner.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Watch errors since start.
    pub fn error_count(&self) -> u64 {
        self.inner.errors.load(Ordering::Relaxed)
    }
}

impl TemplateWatch {
    /// Watches RayClusterTemplates until `shutdown` completes; errors are reported and retried
    /// with backoff, they never end the watch.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let TemplateWatch { api, writer, shared } = self;
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
                    if matches!(event, watcher::Event::InitDone) && !shared.synced.swap(true, Ordering::AcqRel) {
                        tracing::info!(templates = shared.store.len(), "RayClusterTemplate watch synced");
                    }
                    shared.last_error.lock().unwrap_or_else(|e| e.into_inner()).take();
                }
                Some(Err(e)) => {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                    let message = explain(&e);
                    tracing::warn!("{message}; retrying");
                    *shared.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
                }
            }
        }
    }
}

/// Says in plain words what a template watch error means for the person running raydar.
fn explain(error: &watcher::Error) -> String {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
            if status.code == 404 =>
        {
            "the RayClusterTemplate CRD (rayclustertemplates.raydar.dev) is not installed: apply it from deploy/"
                .into()
        }
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
            if status.code == 401 || status.code == 403 =>
        {
            format!(
                "raydar may not list RayClusterTemplates ({}): grant its identity get/list/watch on \
                 rayclustertemplates.raydar.dev",
                status.message
            )
        }
        other => format!("RayClusterTemplate watch failed: {other}"),
    }
}
