//! What raydar's Kubernetes watches share: whether a watch has listed everything, its errors in
//! words for /readyz and the log, and how a watch error is explained to whoever runs raydar.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::store::Writer;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource};

/// The health of one watch. Written by its background task, read by handlers.
#[derive(Debug, Default)]
pub struct WatchHealth {
    /// True once the first full list has arrived.
    synced: AtomicBool,
    /// Errors since start, for /metrics.
    errors: AtomicU64,
    /// The last error in words, cleared when the watch recovers. The lock is never held across
    /// an await, so a std mutex is enough.
    last_error: Mutex<Option<String>>,
}

impl WatchHealth {
    /// True once the watch has listed everything at least once.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Records a completed list; true the first time, so the caller can say so once.
    pub fn mark_synced(&self) -> bool {
        !self.synced.swap(true, Ordering::AcqRel)
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

/// Keeps `writer`'s store of the pods `api` and `labels` select current, for as long as the
/// runtime runs, and `health` telling how that goes. Pods are stored without their managed
/// fields, which nobody here reads.
pub async fn reflect_pods(
    api: Api<Pod>,
    labels: &str,
    writer: Writer<Pod>,
    health: &WatchHealth,
    what: Watched,
    apiserver: &str,
) {
    let config = watcher::Config::default().labels(labels).any_semantic();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(|pod: &mut Pod| pod.meta_mut().managed_fields = None)
        .reflect(writer);
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::InitDone) => {
                health.mark_synced();
                health.recovered();
            }
            Ok(_) => health.recovered(),
            Err(e) => health.failed(explain(&e, what, apiserver)),
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
}
