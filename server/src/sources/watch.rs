//! The one reflector loop every watched kind runs: a store that survives a restart of its source,
//! the watch's health, and its errors in words for whoever runs raydar.

use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

/// What a watch lists, named for error messages.
#[derive(Clone, Copy, Debug)]
pub struct Watched {
    /// Kind, e.g. `RayCluster`.
    pub kind: &'static str,
    /// Plural name and group, e.g. `rayclusters.ray.io`.
    pub resource: &'static str,
    /// How to install the CRD when it is missing.
    pub install: &'static str,
}

/// The health of one watch. Written by its source, read by handlers.
#[derive(Debug)]
pub struct WatchHealth {
    /// True once the first full list has arrived; a channel, so readers can wait for it.
    synced: watch::Sender<bool>,
    /// Errors since start, for /metrics.
    errors: AtomicU64,
    /// The last error in words, cleared when the watch recovers. The lock is never held across
    /// an await, so a std mutex is enough.
    last_error: Mutex<Option<String>>,
}

impl Default for WatchHealth {
    fn default() -> Self {
        WatchHealth {
            synced: watch::channel(false).0,
            errors: AtomicU64::new(0),
            last_error: Mutex::default(),
        }
    }
}

impl WatchHealth {
    /// True once the watch has listed everything at least once.
    pub fn synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Records a completed list; true the first time, so the caller can say so once.
    pub fn mark_synced(&self) -> bool {
        !self.synced.send_replace(true)
    }

    /// Waits up to `limit` for the first full list; the last error (or that there was none yet)
    /// when it has not come.
    pub async fn wait_synced(&self, limit: Duration, what: &str) -> Result<(), String> {
        let mut synced = self.synced.subscribe();
        let came = matches!(tokio::time::timeout(limit, synced.wait_for(|s| *s)).await, Ok(Ok(_)));
        match came {
            true => Ok(()),
            false => Err(self
                .last_error()
                .unwrap_or_else(|| format!("the {what} watch has not listed everything yet"))),
        }
    }

    /// Records that the watch delivered an event, so the last error no longer holds.
    pub fn recovered(&self) {
        self.lock().take();
    }

    /// Records and logs an error the watch will retry after.
    pub fn failed(&self, message: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("{message}; retrying");
        *self.lock() = Some(message);
    }

    /// The last error, if the watch has not recovered since.
    pub fn last_error(&self) -> Option<String> {
        self.lock().clone()
    }

    /// Errors since start.
    pub fn error_count(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Objects of one kind as a watch last saw them, with the watch's health: shared by the source
/// that fills it and the handles that read it.
///
/// A kube-rs reflector's store belongs to the stream that writes it, and a source that fails is
/// started again with a new stream. So the store readers see is swapped for the new one only
/// once the new stream has listed everything: until then pages keep showing what was last known.
pub struct Reflected<K: Resource + 'static>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    store: RwLock<Store<K>>,
    /// Whether the current store has been filled by a list once.
    filled: AtomicBool,
    /// Synced, errors.
    pub health: WatchHealth,
}

impl<K> Default for Reflected<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Default,
{
    fn default() -> Self {
        Reflected {
            store: RwLock::new(reflector::store().0),
            filled: AtomicBool::new(false),
            health: WatchHealth::default(),
        }
    }
}

impl<K> Reflected<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Default,
{
    /// The objects as last listed and watched (cheap: a handle on the store).
    pub fn store(&self) -> Store<K> {
        self.store.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Keeps the store current with `api`'s objects that `config` selects until `shutdown`,
    /// calling `on_event` with each event once the store has it. Errors are recorded in
    /// [`Self::health`] (in words, as `explain` says) and retried with backoff (0.8 s growing to
    /// 30 s); they never end the watch. Managed fields and the last-applied annotation are
    /// dropped: often larger than the rest of the object together, and nothing here reads them.
    pub async fn run(
        &self,
        api: Api<K>,
        config: watcher::Config,
        what: Watched,
        apiserver: &str,
        mut on_event: impl FnMut(&watcher::Event<K>),
        shutdown: impl Future<Output = ()>,
    ) {
        let (store, writer) = reflector::store();
        if !self.filled.load(Ordering::Acquire) {
            *self.store.write().unwrap_or_else(|e| e.into_inner()) = store.clone();
        }
        let mut pending = Some(store);
        let stream = watcher(api, config)
            .default_backoff()
            .modify(|o: &mut K| {
                let meta = o.meta_mut();
                meta.managed_fields = None;
                if let Some(a) = meta.annotations.as_mut() {
                    a.remove("kubectl.kubernetes.io/last-applied-configuration");
                }
            })
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
                    if matches!(event, watcher::Event::InitDone) {
                        if let Some(store) = pending.take() {
                            *self.store.write().unwrap_or_else(|e| e.into_inner()) = store;
                            self.filled.store(true, Ordering::Release);
                        }
                        if self.health.mark_synced() {
                            tracing::info!(
                                objects = self.store().len(),
                                "{} watch synced",
                                what.kind
                            );
                        }
                    }
                    self.health.recovered();
                    on_event(&event);
                }
                Some(Err(e)) => self.health.failed(explain(&e, what, apiserver)),
            }
        }
    }
}

/// Says in plain words what a watch error means for the person running raydar.
pub fn explain(error: &watcher::Error, what: Watched, apiserver: &str) -> String {
    let Watched { kind, resource, install } = what;
    let client_error = match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => e,
        other => return format!("{kind} watch failed: {other}"),
    };
    match client_error {
        kube::Error::Api(status) if status.code == 404 => {
            format!("the {kind} CRD ({resource}) is not installed in the Kubernetes cluster at {apiserver}: {install}")
        }
        kube::Error::Api(status) if status.code == 401 || status.code == 403 => format!(
            "raydar may not list {kind}s at {apiserver} ({}): grant its identity get/list/watch on {resource}",
            status.message
        ),
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            format!("cannot reach the Kubernetes apiserver at {apiserver}: {client_error}")
        }
        other => format!("{kind} watch failed at {apiserver}: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use kube::core::Status;

    use super::*;

    const RAYCLUSTER: Watched = Watched {
        kind: "RayCluster",
        resource: "rayclusters.ray.io",
        install: "install the KubeRay operator or its CRDs",
    };

    fn api_error(code: u16, message: &str) -> watcher::Error {
        watcher::Error::InitialListFailed(kube::Error::Api(
            Status::failure(message, "x").with_code(code).boxed(),
        ))
    }

    #[test]
    fn a_missing_crd_is_named_with_the_fix() {
        let message = explain(
            &api_error(404, "the server could not find the requested resource"),
            RAYCLUSTER,
            "https://k8s:6443",
        );
        assert!(
            message.contains("rayclusters.ray.io") && message.contains("not installed"),
            "{message}"
        );
        assert!(
            message.contains("https://k8s:6443")
                && message.contains("install the KubeRay operator"),
            "{message}"
        );
    }

    #[test]
    fn a_forbidden_list_says_which_permission_is_missing() {
        let message = explain(
            &api_error(403, "rayclusters.ray.io is forbidden"),
            RAYCLUSTER,
            "https://k8s:6443",
        );
        assert!(message.contains("get/list/watch on rayclusters.ray.io"), "{message}");
    }

    #[test]
    fn health_reports_the_last_error_until_recovery() {
        let health = WatchHealth::default();
        assert!(!health.synced() && health.last_error().is_none());
        health.failed("cannot reach".into());
        health.failed("still cannot reach".into());
        assert_eq!(
            (health.error_count(), health.last_error().as_deref()),
            (2, Some("still cannot reach"))
        );
        assert!(health.mark_synced() && !health.mark_synced());
        health.recovered();
        assert_eq!((health.synced(), health.last_error()), (true, None));
    }

    #[tokio::test]
    async fn waiting_for_a_sync_says_why_it_has_not_come() {
        let health = WatchHealth::default();
        let waited = health.wait_synced(Duration::from_millis(10), "RayCluster").await;
        assert!(waited.unwrap_err().contains("RayCluster watch has not listed"));
        health.failed("cannot reach the apiserver".into());
        let waited = health.wait_synced(Duration::from_millis(10), "RayCluster").await;
        assert_eq!(waited.unwrap_err(), "cannot reach the apiserver");
        health.mark_synced();
        assert_eq!(health.wait_synced(Duration::from_millis(10), "RayCluster").await, Ok(()));
    }
}
