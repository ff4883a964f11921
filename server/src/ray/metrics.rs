//! Ray's own metrics (`ray_node_*`, its head's metrics port, KubeRay's head service port
//! `metrics`, 8080), read the way the dashboard is reached and cached briefly, so open pages cost
//! one read per cluster every few seconds.

use std::time::Duration;

use futures::TryStreamExt;
use platform::gpu::ray::parse_ray;
use platform::utilization::RayUsage;

use super::{read_capped, Dashboards, Reach};
use crate::cache::Cache;

/// Every read of Ray's metrics ends within this.
const RAY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a read of Ray's metrics stays fresh.
const RAY_FRESH_FOR: Duration = Duration::from_secs(5);

/// Reads of Ray's metrics ports, cached: cheap to clone.
#[derive(Clone)]
pub struct RayMetrics {
    dashboards: Dashboards,
    cache: std::sync::Arc<Cache<Result<RayUsage, String>>>,
}

impl RayMetrics {
    /// Reads through `dashboards`' reach.
    pub fn new(dashboards: Dashboards) -> Self {
        RayMetrics { dashboards, cache: std::sync::Arc::new(Cache::new(RAY_FRESH_FOR)) }
    }

    /// What Ray's metrics port says of RayCluster `namespace/name`, read at most every few
    /// seconds however many pages ask.
    pub async fn usage(&self, namespace: &str, name: &str) -> Result<RayUsage, String> {
        let (dashboards, ns, cluster) =
            (self.dashboards.clone(), namespace.to_owned(), name.to_owned());
        let read = async move { read(&dashboards, &ns, &cluster).await };
        self.cache
            .get(&format!("{namespace}/{name}"), read, |_, new| new)
            .await
            .unwrap_or_else(|| Err("Ray's metrics have not been read yet".into()))
    }
}

/// Reads the metrics port of a cluster's head once, within [`RAY_TIMEOUT`].
async fn read(dashboards: &Dashboards, namespace: &str, name: &str) -> Result<RayUsage, String> {
    let inner = &dashboards.inner;
    let id = format!("{namespace}/{name}");
    let call = async {
        let text = match &inner.reach {
            Reach::ApiserverProxy => {
                let uri = format!(
                    "/api/v1/namespaces/{namespace}/services/{name}-head-svc:metrics/proxy/metrics"
                );
                let request =
                    axum::http::Request::get(uri).body(Vec::new()).map_err(|e| e.to_string())?;
                let body = inner.kube.request_stream(request).await.map_err(|e| e.to_string())?;
                read_capped(body, &id).await.map_err(|e| e.to_string())?
            }
            Reach::Direct(template) => {
                // Only the head service form says where the metrics port is.
                let Some(base) = template.strip_suffix(":8265") else {
                    return Err(
                        "Ray's metrics are read with --ray-dashboard proxy or service only".into(),
                    );
                };
                let url = format!(
                    "{}:8080/metrics",
                    base.replace("{namespace}", namespace).replace("{name}", name)
                );
                let response =
                    inner.http.get(url).send().await.map_err(|e| e.without_url().to_string())?;
                let body = response.bytes_stream().map_err(std::io::Error::other);
                read_capped(body.into_async_read(), &id).await.map_err(|e| e.to_string())?
            }
        };
        parse_ray(&text).map_err(|e| e.to_string())
    };
    match tokio::time::timeout(RAY_TIMEOUT, call).await {
        Ok(usage) => usage.map_err(|e| format!("Ray's metrics of {namespace}/{name}: {e}")),
        Err(_) => Err(format!(
            "Ray's metrics of {namespace}/{name}: no answer within {} s",
            RAY_TIMEOUT.as_secs()
        )),
    }
}
