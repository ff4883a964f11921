//! The one watch loop every watched kind runs: a store of what raydar keeps of each object (a
//! projection, not the object) that survives a restart of its source, the watch's health, and its
//! errors in words for whoever runs raydar.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Resource;
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

/// An object's namespace (empty for cluster-scoped kinds) and name.
pub type Key = (String, String);

/// What changed in a [`Projected`] store, told to its source as it happens.
pub enum Change<'a, P> {
    /// An object was created or changed; this is what is kept of it now.
    Applied(&'a P),
    /// An object was deleted; this is what was kept of it.
    Deleted(&'a P),
    /// The watch listed everything again: any object may have changed.
    Relisted,
}

/// What raydar keeps of each object of one kind, as a watch last saw it, with the watch's health:
/// shared by the source that fills it and the handles that read it.
///
/// Only a projection of each object is kept (what raydar shows and decides on), never the object:
/// a Pod is about 18 KB as the apiserver sends it and tens of thousands of them are a fleet. The
/// map outlives the source's runs: a run that relists (after a restart of the source, or a
/// watch that could not resume) builds its map aside and swaps it in only once the list is
/// complete, so readers keep the last known objects meanwhile, never an empty or half list.
pub struct Projected<P> {
    objects: RwLock<BTreeMap<Key, P>>,
    /// Synced, errors.
    pub health: WatchHealth,
}

impl<P> Default for Projected<P> {
    fn default() -> Self {
        Projected { objects: RwLock::default(), health: WatchHealth::default() }
    }
}

impl<P> Projected<P> {
    /// The objects, by namespace and name; held briefly (the watch waits to write meanwhile).
    pub fn read(&self) -> RwLockReadGuard<'_, BTreeMap<Key, P>> {
        self.objects.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<Key, P>> {
        self.objects.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The map to fill by hand (tests of what reads it).
    #[cfg(test)]
    pub fn write_for_tests(&self) -> RwLockWriteGuard<'_, BTreeMap<Key, P>> {
        self.write()
    }

    /// Keeps the store current with the objects `events` (a kube-rs `watcher`) tells of until
    /// `shutdown`, keeping what `project` makes of each, and telling `on_change` of each change
    /// once the store has it. Errors are recorded in [`Self::health`] (in words, as `explain`
    /// says) and retried with backoff (0.8 s growing to 30 s); they never end the watch.
    pub async fn run<K>(
        &self,
        events: impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send,
        what: Watched,
        apiserver: &str,
        project: impl Fn(&K) -> P,
        mut on_change: impl FnMut(Change<'_, P>),
        shutdown: impl Future<Output = ()>,
    ) where
        K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    {
        let key = |o: &K| {
            let meta = o.meta();
            (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default())
        };
        // The list in progress, swapped in whole when it is complete.
        let mut relist: Option<BTreeMap<Key, P>> = None;
        let stream = events.default_backoff();
        tokio::pin!(stream);
        tokio::pin!(shutdown);
        loop {
            let event = tokio::select! {
                _ = &mut shutdown => break,
                event = stream.next() => event,
            };
            let event = match event {
                None => break,
                Some(Err(e)) => {
                    self.health.failed(explain(&e, what, apiserver));
                    continue;
                }
                Some(Ok(event)) => event,
            };
            self.health.recovered();
            match event {
                watcher::Event::Init => relist = Some(BTreeMap::new()),
                watcher::Event::InitApply(o) => {
                    relist.get_or_insert_default().insert(key(&o), project(&o));
                }
                watcher::Event::InitDone => {
                    let listed = relist.take().unwrap_or_default();
                    let count = listed.len();
                    // The old map is freed after the lock is let go.
                    let old = std::mem::replace(&mut *self.write(), listed);
                    drop(old);
                    if self.health.mark_synced() {
                        tracing::info!(objects = count, "{} watch synced", what.kind);
                    }
                    on_change(Change::Relisted);
                }
                watcher::Event::Apply(o) => {
                    let (key, kept) = (key(&o), project(&o));
                    let mut objects = self.write();
                    objects.insert(key.clone(), kept);
                    on_change(Change::Applied(&objects[&key]));
                }
                watcher::Event::Delete(o) => {
                    let removed = self.write().remove(&key(&o));
                    if let Some(removed) = removed {
                        on_change(Change::Deleted(&removed));
                    }
                }
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
