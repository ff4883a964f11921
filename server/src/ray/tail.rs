//! Ray's WebSocket log tail of a job, opened through the apiserver's proxy or straight.

use axum::http::{header, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use super::{cluster_id, excerpt, proxy_uri, unreachable, DashboardError, Dashboards, Reach, Read};

/// Largest WebSocket message or frame taken from a log tail.
const MAX_TAIL_MESSAGE: usize = 1 << 20;

/// Ray's WebSocket log tail, however it was reached: TEXT frames of log text.
pub type Tail = WebSocketStream<Box<dyn TailIo>>;

/// The connection under a [`Tail`]: an upgraded apiserver proxy or dashboard connection.
pub trait TailIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> TailIo for T {}

impl Dashboards {
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
        let key = generate_key();
        let upgrade = [
            (header::CONNECTION, "Upgrade"),
            (header::UPGRADE, "websocket"),
            (header::SEC_WEBSOCKET_VERSION, "13"),
            (header::SEC_WEBSOCKET_KEY, key.as_str()),
        ];
        let handshake = async {
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
        let io = self.in_slot(&id, handshake).await?;
        // Ray sends frames of at most 10 lines or 20,000 characters; anything far larger is not Ray.
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_TAIL_MESSAGE))
            .max_frame_size(Some(MAX_TAIL_MESSAGE));
        Ok(WebSocketStream::from_raw_socket(io, Role::Client, Some(config)).await)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
