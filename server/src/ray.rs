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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kube::Client;
use platform::template::value::{cluster_name_problem, namespace_problem};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::web::AppState;

/// Longest a job id may be: Ray's submission ids are `raysubmit_` and 16 characters.
const MAX_JOB_ID: usize = 128;
/// Clusters whose call slots are remembered before idle ones are forgotten.
const MAX_GATES: usize = 4096;
/// Largest WebSocket message or frame taken from a log tail.
const MAX_TAIL_MESSAGE: usize = 1 << 20;

/// Ray's WebSocket log tail, however it was reached: TEXT frames of log text.
pub type Tail = WebSocketStream<Box<dyn TailIo>>;

/// The connection under a [`Tail`]: an upgraded apiserver proxy or dashboard connection.
pub trait TailIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> TailIo for T {}

/// One read of a Ray dashboard: the only requests raydar ever sends to one, each a GET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    /// `GET /api/version`: Ray's version and session.
    Version,
    /// `GET /api/jobs/`: every job.
    Jobs,
    /// `GET /api/jobs/{id}`: one job.
    Job(String),
    /// `GET /api/jobs/{id}/logs`: a job's log so far.
    JobLogs(String),
    /// `GET /api/jobs/{id}/logs/tail`, upgraded to a WebSocket: a job's log from its start, then
    /// live until the job is done. Opened only by [`Dashboards::tail`].
    JobLogTail(String),
    /// `GET /nodes?view=summary`: Ray's nodes with CPU, memory and GPUs.
    Nodes,
    /// `GET /api/cluster_status`: the autoscaler's view.
    ClusterStatus,
    /// `GET /api/gcs_healthz`: whether the head's GCS answers.
    GcsHealth,
}

impl Read {
    /// The read a dashboard path (without the leading `/`) and query name, if it is one of them;
    /// otherwise why not.
    pub fn parse(path: &str, query: Option<&str>) -> Result<Read, String> {
        let query = query.filter(|q| !q.is_empty());
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let read = match segments.as_slice() {
            ["api", "version"] => Read::Version,
            ["api", "jobs"] => Read::Jobs,
            ["api", "jobs", id] => Read::Job(job_id(id)?),
            ["api", "jobs", id, "logs"] => Read::JobLogs(job_id(id)?),
            ["api", "jobs", id, "logs", "tail"] => Read::JobLogTail(job_id(id)?),
            ["nodes"] if query == Some("view=summary") => return Ok(Read::Nodes),
            ["api", "cluster_status"] => Read::ClusterStatus,
            ["api", "gcs_healthz"] => Read::GcsHealth,
            _ => {
                return Err(format!(
                    "/{path} is not one of the Ray dashboard reads raydar makes ({})",
                    Read::ALLOWED
                ))
            }
        };
        match query {
            None => Ok(read),
            Some(q) => Err(format!("/{path} takes no query, got {q:?}")),
        }
    }

    /// The allowlist, for messages and the API's description.
    pub const ALLOWED: &'static str =
        "GET /api/version, /api/jobs/, /api/jobs/{id}, /api/jobs/{id}/logs, \
        /nodes?view=summary, /api/cluster_status, /api/gcs_healthz; and the WebSocket GET \
        /api/jobs/{id}/logs/tail, only through raydar's log streams";

    /// Whether this read is Ray's WebSocket log tail rather than a JSON answer.
    pub fn is_tail(&self) -> bool {
        matches!(self, Read::JobLogTail(_))
    }

    /// Path and query on the dashboard, without the leading `/`.
    pub fn path(&self) -> String {
        match self {
            Read::Version => "api/version".into(),
            Read::Jobs => "api/jobs/".into(),
            Read::Job(id) => format!("api/jobs/{id}"),
            Read::JobLogs(id) => format!("api/jobs/{id}/logs"),
            Read::JobLogTail(id) => format!("api/jobs/{id}/logs/tail"),
            Read::Nodes => "nodes?view=summary".into(),
            Read::ClusterStatus => "api/cluster_status".into(),
            Read::GcsHealth => "api/gcs_healthz".into(),
        }
    }
}

/// A Ray job or submission id: letters, digits, `_` and `-`, nothing that could leave the path.
fn job_id(id: &str) -> Result<String, String> {
    let valid = !id.is_empty()
        && id.len() <= MAX_JOB_ID
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(id.to_owned())
    } else {
        Err(format!(
            "{id:?} is not a Ray job id (letters, digits, '_' and '-', at most {MAX_JOB_ID})"
        ))
    }
}

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
}

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        let status = match self {
            DashboardError::NotACluster(_) => StatusCode::BAD_REQUEST,
            DashboardError::Busy(..) => StatusCode::SERVICE_UNAVAILABLE,
            DashboardError::Timeout(..) => StatusCode::GATEWAY_TIMEOUT,
            DashboardError::Unreachable(..) => StatusCode::BAD_GATEWAY,
            DashboardError::NotFound(..) => StatusCode::NOT_FOUND,
            DashboardError::Refused(_) => StatusCode::FORBIDDEN,
            DashboardError::Rejected(..) => StatusCode::BAD_REQUEST,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
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
        let http = builder().timeout(timeout).build().unwrap_or_default();
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
        let seconds = inner.timeout.as_secs();
        let gate = self.gate(&id);
        // Whether the time ran out waiting for a slot (busy) or for Ray (timeout).
        let acquired = AtomicBool::new(false);
        let call = async {
            let _slot = gate
                .acquire()
                .await
                .map_err(|_| DashboardError::Busy(id.clone(), inner.per_cluster))?;
            acquired.store(true, Ordering::Relaxed);
            match &inner.reach {
                Reach::ApiserverProxy => {
                    let request = axum::http::Request::get(proxy_uri(namespace, name, read))
                        .body(Vec::new())
                        .map_err(|e| DashboardError::Unreachable(id.clone(), e.to_string()))?;
                    inner.kube.request_text(request).await.map_err(|e| match e {
                        kube::Error::Api(status) if status.code == 404 => {
                            DashboardError::NotFound(id.clone(), status.message)
                        }
                        e => DashboardError::Unreachable(id.clone(), e.to_string()),
                    })
                }
                Reach::Direct(template) => {
                    let base = template.replace("{namespace}", namespace).replace("{name}", name);
                    let url = format!("{base}/{}", read.path());
                    let response =
                        inner.http.get(url).send().await.map_err(|e| unreachable(&id, e))?;
                    let status = response.status();
                    let body = response.text().await.map_err(|e| unreachable(&id, e))?;
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
        match tokio::time::timeout(inner.timeout, call).await {
            Ok(answer) => answer,
            Err(_) if !acquired.load(Ordering::Relaxed) => {
                Err(DashboardError::Busy(id, inner.per_cluster))
            }
            Err(_) => Err(DashboardError::Timeout(id, seconds)),
        }
    }

    /// Opens Ray's WebSocket log tail `read` ([`Read::JobLogTail`]) on the dashboard of RayCluster
    /// `namespace/name`: an upgraded GET, through the apiserver's proxy or straight, as `reach`
    /// says. The handshake ends within the timeout; the tail then runs as long as Ray keeps it.
    ///
    /// Why not `kube::Client::connect`: it insists that the server picks one of Kubernetes'
    /// `v4/v5.channel.k8s.io` subprotocols, and Ray's dashboard (aiohttp) answers without any, so
    /// the upgrade is made here and checked as RFC 6455 asks, without a subprotocol.
    ///
    /// The cluster's call slot is held for the handshake only, not for the tail's life: a
    /// long-lived tail would otherwise keep one of the few short-read slots for hours, and four
    /// followed jobs would starve the cluster's page. How many tails run at once is bounded by
    /// [`crate::logs`]' stream cap instead; the handshake, the part that piles up when a dashboard
    /// is slow, still queues with the cluster's other calls.
    pub async fn tail(
        &self,
        namespace: &str,
        name: &str,
        read: &Read,
    ) -> Result<Tail, DashboardError> {
        if !read.is_tail() {
            return Err(DashboardError::Refused(format!(
                "/{} is a JSON read, not a WebSocket",
                read.path()
            )));
        }
        let id = cluster_id(namespace, name)?;
        let inner = &self.inner;
        let gate = self.gate(&id);
        let acquired = AtomicBool::new(false);
        let key = generate_key();
        let upgrade = [
            (header::CONNECTION, "Upgrade"),
            (header::UPGRADE, "websocket"),
            (header::SEC_WEBSOCKET_VERSION, "13"),
            (header::SEC_WEBSOCKET_KEY, key.as_str()),
        ];
        let call = async {
            let _slot = gate
                .acquire()
                .await
                .map_err(|_| DashboardError::Busy(id.clone(), inner.per_cluster))?;
            acquired.store(true, Ordering::Relaxed);
            let io: Box<dyn TailIo> = match &inner.reach {
                Reach::ApiserverProxy => {
                    let request = upgrade
                        .iter()
                        .fold(
                            axum::http::Request::get(proxy_uri(namespace, name, read)),
                            |r, (k, v)| r.header(k, *v),
                        )
                        .body(kube::client::Body::from(Vec::new()))
                        .map_err(|e| DashboardError::Unreachable(id.clone(), e.to_string()))?;
                    let response = inner
                        .kube
                        .send(request)
                        .await
                        .map_err(|e| DashboardError::Unreachable(id.clone(), e.to_string()))?;
                    if let Err(refusal) = upgraded(&id, response.status(), response.headers(), &key)
                    {
                        let body =
                            axum::body::to_bytes(axum::body::Body::new(response.into_body()), 4096)
                                .await;
                        return Err(refusal(&String::from_utf8_lossy(&body.unwrap_or_default())));
                    }
                    let io = hyper::upgrade::on(response)
                        .await
                        .map_err(|e| DashboardError::Unreachable(id.clone(), e.to_string()))?;
                    Box::new(hyper_util::rt::TokioIo::new(io))
                }
                Reach::Direct(template) => {
                    let base = template.replace("{namespace}", namespace).replace("{name}", name);
                    let request = inner.tail_http.get(format!("{base}/{}", read.path()));
                    let request = upgrade.iter().fold(request, |r, (k, v)| r.header(k, *v));
                    let response = request.send().await.map_err(|e| unreachable(&id, e))?;
                    if let Err(refusal) = upgraded(&id, response.status(), response.headers(), &key)
                    {
                        return Err(refusal(&response.text().await.unwrap_or_default()));
                    }
                    Box::new(response.upgrade().await.map_err(|e| unreachable(&id, e))?)
                }
            };
            Ok(io)
        };
        let io = match tokio::time::timeout(inner.timeout, call).await {
            Ok(io) => io?,
            Err(_) if !acquired.load(Ordering::Relaxed) => {
                return Err(DashboardError::Busy(id, inner.per_cluster))
            }
            Err(_) => return Err(DashboardError::Timeout(id, inner.timeout.as_secs())),
        };
        // Ray sends frames of at most 10 lines or 20,000 characters; anything far larger is not Ray.
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_TAIL_MESSAGE))
            .max_frame_size(Some(MAX_TAIL_MESSAGE));
        Ok(WebSocketStream::from_raw_socket(io, Role::Client, Some(config)).await)
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

/// Whether an answer to a WebSocket upgrade accepted it (RFC 6455 4.1: 101, `Upgrade:
/// websocket`, the key's accept value); if not, how to say why, given the answer's body.
fn upgraded<'a>(
    id: &'a str,
    status: StatusCode,
    headers: &axum::http::HeaderMap,
    key: &str,
) -> Result<(), impl FnOnce(&str) -> DashboardError + 'a> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let accepted = status == StatusCode::SWITCHING_PROTOCOLS
        && header(header::UPGRADE).is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        // Base64: compared exactly.
        && header(header::SEC_WEBSOCKET_ACCEPT) == Some(derive_accept_key(key.as_bytes()).as_str());
    if accepted {
        return Ok(());
    }
    Err(move |body: &str| {
        // The apiserver's own refusals are a Status: its message says it all.
        let status_message = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned));
        let said = status_message.unwrap_or_else(|| excerpt(body.trim()).to_owned());
        match status {
            StatusCode::NOT_FOUND => DashboardError::NotFound(id.to_owned(), said),
            StatusCode::BAD_REQUEST => DashboardError::Rejected(id.to_owned(), said),
            StatusCode::SWITCHING_PROTOCOLS => DashboardError::Unreachable(
                id.to_owned(),
                "the WebSocket upgrade was not accepted".into(),
            ),
            status => DashboardError::Unreachable(id.to_owned(), format!("HTTP {status}: {said}")),
        }
    })
}

fn unreachable(id: &str, error: reqwest::Error) -> DashboardError {
    DashboardError::Unreachable(id.to_owned(), error.without_url().to_string())
}

/// The start of an error body, enough to say what went wrong.
fn excerpt(body: &str) -> &str {
    match body.char_indices().nth(200) {
        Some((end, _)) => &body[..end],
        None => body,
    }
}

/// `GET /api/v1/clusters/{namespace}/{name}/ray/{*path}`: one allowlisted read of the cluster's
/// Ray dashboard, answered with the dashboard's JSON. Only this method is routed: POST, PUT,
/// DELETE and PATCH are 405 without reaching this handler.
pub async fn read_dashboard(
    State(state): State<AppState>,
    Path((namespace, name, path)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let read = match Read::parse(&path, query.as_deref()) {
        Ok(Read::JobLogTail(id)) => {
            let why = format!(
                "/{path} is Ray's WebSocket log tail, not a JSON read: follow it at \
                 /api/v1/clusters/{namespace}/{name}/jobs/{id}/logs/stream"
            );
            return (StatusCode::FORBIDDEN, Json(json!({ "error": why }))).into_response();
        }
        Ok(read) => read,
        Err(why) => return (StatusCode::FORBIDDEN, Json(json!({ "error": why }))).into_response(),
    };
    match state.dashboards.read(&namespace, &name, &read).await {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_allowlisted_reads_parse() {
        assert_eq!(Read::parse("api/version", None), Ok(Read::Version));
        assert_eq!(Read::parse("api/jobs/", None), Ok(Read::Jobs));
        assert_eq!(
            Read::parse("api/jobs/raysubmit_a1B2", None),
            Ok(Read::Job("raysubmit_a1B2".into()))
        );
        assert_eq!(
            Read::parse("api/jobs/02000000/logs", None),
            Ok(Read::JobLogs("02000000".into()))
        );
        assert_eq!(Read::parse("nodes", Some("view=summary")), Ok(Read::Nodes));
        // Parsed so that its id is checked like every other; the generic route still refuses it.
        assert_eq!(
            Read::parse("api/jobs/raysubmit_1/logs/tail", None),
            Ok(Read::JobLogTail("raysubmit_1".into()))
        );
        for (path, query) in [
            ("api/jobs/x/stop", None),
            ("api/jobs/x/logs/tail/x", None),
            ("api/jobs/a%2Fb/logs/tail", None),
            ("api/jobs/x/logs/tail", Some("follow=1")),
            ("api/v0/tasks", None),
            ("api/jobs/../../etc", None),
            ("api/jobs/%2e%2e", None),
            ("nodes", Some("view=details")),
            ("nodes", None),
            ("api/version", Some("x=1")),
            ("", None),
        ] {
            assert!(Read::parse(path, query).is_err(), "{path}?{query:?} must be refused");
        }
    }

    #[test]
    fn every_read_goes_back_to_the_path_it_came_from() {
        for read in [
            Read::Version,
            Read::Jobs,
            Read::Job("j-1".into()),
            Read::JobLogs("j_2".into()),
            Read::JobLogTail("j_3".into()),
            Read::ClusterStatus,
            Read::GcsHealth,
        ] {
            assert_eq!(read.is_tail(), matches!(read, Read::JobLogTail(_)));
            assert_eq!(Read::parse(&read.path(), None), Ok(read));
        }
        let (path, query) =
            Read::Nodes.path().split_once('?').map(|(p, q)| (p.to_owned(), q.to_owned())).unwrap();
        assert_eq!(Read::parse(&path, Some(&query)), Ok(Read::Nodes));
    }

    #[test]
    fn an_upgrade_is_taken_only_as_rfc_6455_says_and_a_refusal_says_why() {
        // RFC 6455's own example key and answer.
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(header::UPGRADE, "WebSocket".parse().unwrap());
        headers
            .insert(header::SEC_WEBSOCKET_ACCEPT, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".parse().unwrap());
        assert!(
            upgraded("a/b", StatusCode::SWITCHING_PROTOCOLS, &headers, key).is_ok(),
            "no subprotocol needed"
        );
        headers
            .insert(header::SEC_WEBSOCKET_ACCEPT, "S3PPLMBITXAQ9KYGZZHZRBK+XOO=".parse().unwrap());
        assert!(
            upgraded("a/b", StatusCode::SWITCHING_PROTOCOLS, &headers, key).is_err(),
            "the accept value is exact"
        );

        let refusal = |status, body: &str| {
            upgraded("a/b", status, &axum::http::HeaderMap::new(), key).unwrap_err()(body)
        };
        let missing = refusal(StatusCode::NOT_FOUND, "Job raysubmit_x does not exist");
        assert!(
            matches!(&missing, DashboardError::NotFound(_, m) if m == "Job raysubmit_x does not exist"),
            "{missing}"
        );
        let driver = refusal(StatusCode::BAD_REQUEST, "Can only get logs of submission type jobs");
        assert!(matches!(driver, DashboardError::Rejected(..)));
        let proxy =
            r#"{"kind":"Status","message":"error dialing backend: connection refused","code":500}"#;
        assert_eq!(
            refusal(StatusCode::INTERNAL_SERVER_ERROR, proxy).to_string(),
            "cannot reach the Ray dashboard of a/b: HTTP 500 Internal Server Error: error dialing backend: connection refused"
        );
    }

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
