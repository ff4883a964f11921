//! The background sources: everything raydar learns without being asked, each one module with
//! one `run(self, shutdown)` that the [`crate::supervisor`] starts, restarts when it fails, and
//! stops on shutdown. Each fills a cheap-to-clone handle that handlers read; none of them knows a
//! route or a page.
//!
//! # Layout
//! - [`watch`]: the watch loop the watches share: a store of what raydar keeps of each object
//!   (not the object) that outlives a failed run and an unreachable apiserver, the watch's
//!   health (since when it has not been answered, and why), its errors in words.
//! - [`clusters`]: every RayCluster, and the feed of their changes that open pages follow.
//! - [`templates`]: the RayClusterTemplates launches render from.
//! - [`pods`]: every Ray pod: cluster pages' pods, GPU attribution.
//! - [`rayjobs`]: every KubeRay RayJob, for the RayJob list.
//! - [`capacity`]: nodes, what the pods on them request, quotas: what launches are judged
//!   against.
//! - [`exporters`]: dcgm-exporter pods, scraped into [`crate::gpus::GpuMetrics`].
//! - [`prometheus`]: or a Prometheus server, asked for the same (`--prometheus`).

pub mod capacity;
pub mod clusters;
pub mod exporters;
pub mod pods;
pub mod prometheus;
pub mod rayjobs;
pub mod templates;
pub mod watch;

pub use capacity::NodeCapacity;
pub use clusters::{ClusterChange, Clusters};
pub use exporters::Exporters;
pub use pods::RayPods;
pub use prometheus::Prometheus;
pub use rayjobs::RayJobs;
pub use templates::Templates;
pub use watch::{WatchHealth, Watched};

/// The API of a namespaced kind in `namespace`, or in every namespace.
pub(crate) fn typed_api<K>(client: &kube::Client, namespace: Option<&str>) -> kube::Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        None => kube::Api::all(client.clone()),
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
    }
}

/// The API of a dynamic kind (`resource`) in `namespace`, or in every namespace.
pub(crate) fn dynamic_api(
    client: &kube::Client,
    namespace: Option<&str>,
    resource: &kube::core::ApiResource,
) -> kube::Api<kube::core::DynamicObject> {
    match namespace {
        None => kube::Api::all_with(client.clone(), resource),
        Some(ns) => kube::Api::namespaced_with(client.clone(), ns, resource),
    }
}

/// A response's body as text, refused past `max` bytes rather than held.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<String, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.without_url().to_string())? {
        if body.len() + chunk.len() > max {
            return Err(format!("answered more than {} MiB", max >> 20));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| "answered with text that is not UTF-8".to_owned())
}

/// Work a source handed to the blocking pool: a panic there is the source's own, so it goes on
/// up to the supervisor instead of vanishing with the join handle.
pub(crate) fn rethrow<T>(joined: Result<T, tokio::task::JoinError>) -> Option<T> {
    match joined {
        Ok(value) => Some(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => None,
    }
}
