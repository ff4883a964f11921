//! Reading a Ray cluster's dashboard, and nothing else.
//!
//! Whoever can send requests to a Ray dashboard runs code on the cluster: its job API takes any
//! entrypoint (ShadowRay, CVE-2023-48022), and some of its DELETE routes took no authentication
//! at all (CVE-2026-27482). So raydar never forwards a request to a dashboard. What it can ask for
//! is the closed set of reads in [`Read`], and a [`Read`] only comes from [`Read::parse`] of an
//! allowlisted path; every request raydar makes from it is a GET that raydar builds. The browser
//! route `GET /api/v1/clusters/{namespace}/{name}/ray/{*path}` answers any other method with 405
//! and any other path with 403, before anything is sent to Ray.
//!
//! How raydar reaches a dashboard ([`Reach`], `--ray-dashboard`):
//! - `proxy` (the default): through the apiserver's service proxy,
//!   `/api/v1/namespaces/{namespace}/services/{name}-head-svc:dashboard/proxy/{path}`, with
//!   raydar's own Kubernetes credentials: works from outside the cluster.
//! - `service`: straight to KubeRay's head service,
//!   `http://{name}-head-svc.{namespace}.svc:8265`: for raydar running in the cluster.
//! - a URL template with `{namespace}` and `{name}` placeholders, for anything else.
//!
//! Every call ends within a timeout, and each cluster has its own small limit of calls in flight:
//! a slow or unreachable dashboard fills only its own cluster's slots, never another cluster's.
//!
//! One read is not a JSON answer but Ray's WebSocket log tail ([`Read::JobLogTail`], opened by
//! [`Dashboards::tail`] for [`crate::logs`]): still a GET raydar builds from a parsed id, but the
//! generic route refuses it, so a browser can only follow it through raydar's shared log streams.

//! # Layout
//! - [`Dashboards`]: how a dashboard is reached ([`Reach`]), with timeouts and per-cluster limits.
//! - [`read`]: the allowlist: every [`Read`] raydar may send.
//! - [`tail`]: Ray's WebSocket log tail of a job.
//! - [`metrics`]: Ray's own metrics port of a head, cached briefly.

pub mod metrics;
pub mod read;
pub mod tail;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use futures::{AsyncRead, AsyncReadExt, TryStreamExt};
use kube::Client;
use platform::template::value::{cluster_name_problem, namespace_problem};
use tokio::sync::Semaphore;

pub use metrics::RayMetrics;
pub use read::Read;
pub use tail::Tail;

use crate::error::ApiError;

/// Clusters whose call slots are remembered before idle ones are forgotten.
const MAX_GATES: usize = 4096;
/// Longest dashboard answer raydar reads. The job list of a busy cluster is a few MB; beyond
/// this a dashboard is broken or hostile, and its answer is refused rather than held in memory
/// (a page's every poll would hold another copy).
pub const MAX_ANSWER: usize = 16 << 20;

/// How raydar reaches a cluster's dashboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Through the apiserver's service proxy to KubeRay's head service.
    ApiserverProxy,
    /// Straight to a URL: `{namespace}` and `{name}` are replaced by the cluster's.
    Direct(String),
}

impl Reach {
    /// Reads `proxy`, `service` or a URL template (`--ray-dashboard`).
    pub fn parse(text: &str) -> Result<Reach, String> {
        match text {
            "proxy" => Ok(Reach::ApiserverProxy),
            "service" => Ok(Reach::Direct("http://{name}-head-svc.{namespace}.svc:8265".into())),
            url if url.starts_with("http://") || url.starts_with("https://") => {
                Ok(Reach::Direct(url.trim_end_matches('/').to_owned()))
            }
            other => Err(format!(
                "--ray-dashboard/RAYDAR_RAY_DASHBOARD: {other:?} is not `proxy`, `service` or an http(s) URL \
                 template with {{namespace}} and {{name}}"
            )),
        }
    }
}

/// Why a read of a dashboard gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The namespace or name cannot be a RayCluster's: nothing was sent.
    #[error("{0}")]
    NotACluster(String),
    /// The cluster's calls in flight are at their limit for the whole timeout.
    #[error(
        "the Ray dashboard of {0} is busy: its {1} call slots stayed taken for the whole timeout"
    )]
    Busy(String, usize),
    /// No answer within the timeout.
    #[error("the Ray dashboard of {0} did not answer within {1} s")]
    Timeout(String, u64),
    /// No connection, or the apiserver's proxy could not reach the head service.
    #[error("cannot reach the Ray dashboard of {0}: {1}")]
    Unreachable(String, String),
    /// The dashboard, or the apiserver for it, answered 404: no such job, or no head service.
    #[error("not found at the Ray dashboard of {0}: {1}")]
    NotFound(String, String),
    /// A JSON read asked of the WebSocket tail or the other way round: nothing was sent.
    #[error("{0}")]
    Refused(String),
    /// The dashboard answered 400: it will not do this for this job (say, tail a job it was
    /// not given by `ray job submit`).
    #[error("the Ray dashboard of {0} refused: {1}")]
    Rejected(String, String),
    /// The answer is longer than [`MAX_ANSWER`]: not read further, nothing of it kept.
    #[error("the Ray dashboard of {0} answered more than {mib} MiB; raydar reads no more", mib = MAX_ANSWER >> 20)]
    TooLong(String),
}

impl From<DashboardError> for ApiError {
    fn from(error: DashboardError) -> ApiError {
        let status = match error {
            DashboardError::NotACluster(_) => StatusCode::BAD_REQUEST,
            DashboardError::Busy(..) => StatusCode::SERVICE_UNAVAILABLE,
            DashboardError::Timeout(..) => StatusCode::GATEWAY_TIMEOUT,
            DashboardError::Unreachable(..) | DashboardError::TooLong(_) => StatusCode::BAD_GATEWAY,
            DashboardError::NotFound(..) => StatusCode::NOT_FOUND,
            DashboardError::Refused(_) => StatusCode::FORBIDDEN,
            DashboardError::Rejected(..) => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, error.to_string())
    }
}

/// raydar's reader of Ray dashboards: cheap to clone.
#[derive(Clone)]
pub struct Dashboards {
    inner: Arc<Inner>,
}

struct Inner {
    reach: Reach,
    kube: Client,
    http: reqwest::Client,
    /// For WebSocket tails: no overall timeout, which would cut a tail that runs for hours; the
    /// handshake has one of its own.
    tail_http: reqwest::Client,
    timeout: Duration,
    per_cluster: usize,
    /// Call slots by cluster (`namespace/name`).
    gates: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Dashboards {
    /// Reads dashboards as `reach` says, through `kube` for the apiserver proxy; every call ends
    /// within `timeout`, at most `per_cluster` at once per cluster.
    pub fn new(reach: Reach, kube: Client, timeout: Duration, per_cluster: usize) -> Self {
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                // A dashboard that redirects is not followed anywhere.
                .redirect(reqwest::redirect::Policy::none())
        };
        // No timeout of reqwest's own: every call runs within `in_slot`'s (or the metrics read's),
        // which covers the wait for a slot and the body too; a second clock racing it would
        // make a slow dashboard read as unreachable ("error sending request") half the time.
        let http = builder().build().unwrap_or_default();
        // HTTP/1.1 only: a WebSocket upgrade does not exist in HTTP/2.
        let tail_http = builder().http1_only().build().unwrap_or_default();
        let per_cluster = per_cluster.max(1);
        let inner =
            Inner { reach, kube, http, tail_http, timeout, per_cluster, gates: Mutex::default() };
        Dashboards { inner: Arc::new(inner) }
    }

    /// Sends `read` to the dashboard of RayCluster `namespace/name`; the answer's body.
    pub async fn read(
        &self,
        namespace: &str,
        name: &str,
        read: &Read,
    ) -> Result<String, DashboardError> {
        if read.is_tail() {
            return Err(DashboardError::Refused(format!(
                "/{} is a WebSocket, not a JSON read",
                read.path()
            )));
        }
        let id = cluster_id(namespace, name)?;
        let inner = &self.inner;
        let call = async {
            match &inner.reach {
                Reach::ApiserverProxy => {
                    let request = axum::http::Request::get(proxy_uri(namespace, name, read))
                        .body(Vec::new())
                        .map_err(|e| DashboardError::Unreachable(id.clone(), e.to_string()))?;
                    let body = inner.kube.request_stream(request).await.map_err(|e| match e {
                        kube::Error::Api(status) if status.code == 404 => {
                            DashboardError::NotFound(id.clone(), status.message)
                        }
                        e => DashboardError::Unreachable(id.clone(), e.to_string()),
                    })?;
                    read_capped(body, &id).await
                }
                Reach::Direct(template) => {
                    let base = template.replace("{namespace}", namespace).replace("{name}", name);
                    let url = format!("{base}/{}", read.path());
                    let response =
                        inner.http.get(url).send().await.map_err(|e| unreachable(&id, e))?;
                    let status = response.status();
                    let body = response.bytes_stream().map_err(std::io::Error::other);
                    let body = read_capped(body.into_async_read(), &id).await?;
                    if status.is_success() {
                        Ok(body)
                    } else if status == StatusCode::NOT_FOUND {
                        Err(DashboardError::NotFound(id.clone(), excerpt(&body).to_owned()))
                    } else {
                        Err(DashboardError::Unreachable(
                            id.clone(),
                            format!("HTTP {status}: {}", excerpt(&body)),
                        ))
                    }
                }
            }
        };
        self.in_slot(&id, call).await
    }

    /// Runs `call` in one of cluster `id`'s call slots, all of it (the wait for a slot too)
    /// within the timeout: busy when no slot came free in time, a timeout when Ray did not
    /// answer. The slot is freed when `call` is done.
    async fn in_slot<T>(
        &self,
        id: &str,
        call: impl std::future::Future<Output = Result<T, DashboardError>>,
    ) -> Result<T, DashboardError> {
        let inner = &self.inner;
        let gate = self.gate(id);
        // Whether the time ran out waiting for a slot (busy) or for Ray (timeout).
        let acquired = AtomicBool::new(false);
        let in_slot = async {
            let _slot = gate
                .acquire()
                .await
                .map_err(|_| DashboardError::Busy(id.to_owned(), inner.per_cluster))?;
            acquired.store(true, Ordering::Relaxed);
            call.await
        };
        match tokio::time::timeout(inner.timeout, in_slot).await {
            Ok(answer) => answer,
            Err(_) if !acquired.load(Ordering::Relaxed) => {
                Err(DashboardError::Busy(id.to_owned(), inner.per_cluster))
            }
            Err(_) => Err(DashboardError::Timeout(id.to_owned(), inner.timeout.as_secs())),
        }
    }

    /// The call slots of one cluster. Forgets clusters with nothing in flight when the map is
    /// full, so it stays bounded however many clusters come and go.
    fn gate(&self, id: &str) -> Arc<Semaphore> {
        let mut gates = self.inner.gates.lock().unwrap_or_else(|e| e.into_inner());
        if gates.len() >= MAX_GATES && !gates.contains_key(id) {
            gates.retain(|_, gate| Arc::strong_count(gate) > 1);
        }
        gates
            .entry(id.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.inner.per_cluster)))
            .clone()
    }
}

/// `namespace/name` once both can be a RayCluster's; otherwise nothing may be sent.
fn cluster_id(namespace: &str, name: &str) -> Result<String, DashboardError> {
    if let Some(problem) = namespace_problem(namespace) {
        return Err(DashboardError::NotACluster(format!("namespace {problem}")));
    }
    if let Some(problem) = cluster_name_problem(name) {
        return Err(DashboardError::NotACluster(format!("name {problem}")));
    }
    Ok(format!("{namespace}/{name}"))
}

/// Where the apiserver's service proxy passes `read` to the cluster's head service.
fn proxy_uri(namespace: &str, name: &str, read: &Read) -> String {
    format!(
        "/api/v1/namespaces/{namespace}/services/{name}-head-svc:dashboard/proxy/{}",
        read.path()
    )
}

fn unreachable(id: &str, error: reqwest::Error) -> DashboardError {
    DashboardError::Unreachable(id.to_owned(), error.without_url().to_string())
}

/// A dashboard's answer as text, if it is at most [`MAX_ANSWER`] long.
pub(crate) async fn read_capped(body: impl AsyncRead, id: &str) -> Result<String, DashboardError> {
    let mut bytes = Vec::new();
    let read = std::pin::pin!(body.take(MAX_ANSWER as u64 + 1)).read_to_end(&mut bytes).await;
    read.map_err(|e| DashboardError::Unreachable(id.to_owned(), e.to_string()))?;
    if bytes.len() > MAX_ANSWER {
        return Err(DashboardError::TooLong(id.to_owned()));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The start of an error body, enough to say what went wrong.
fn excerpt(body: &str) -> &str {
    match body.char_indices().nth(200) {
        Some((end, _)) => &body[..end],
        None => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reach_is_proxy_service_or_a_url() {
        assert_eq!(Reach::parse("proxy"), Ok(Reach::ApiserverProxy));
        assert_eq!(
            Reach::parse("service"),
            Ok(Reach::Direct("http://{name}-head-svc.{namespace}.svc:8265".into()))
        );
        assert_eq!(
            Reach::parse("http://127.0.0.1:8265/"),
            Ok(Reach::Direct("http://127.0.0.1:8265".into()))
        );
        assert!(Reach::parse("ftp://x").unwrap_err().contains("--ray-dashboard"));
    }
}
