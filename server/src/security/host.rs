//! DNS rebinding: raydar answers only under the names it is served as.
//!
//! A web page on `evil.example` can point its own name at 127.0.0.1 and then talk to a raydar
//! listening there as if it were same-origin: its requests carry `Host: evil.example:3000` and a
//! matching `Origin`, so the CSRF check (Origin against Host) passes. Dev mode, which makes
//! everyone who connects the developer, therefore answers only to loopback names; with
//! `--public-url`, raydar answers only to that URL's host (behind a proxy that forwards the
//! Host it was asked under). Health probes (`/healthz`, `/readyz`) come from kubelets and load
//! balancers that name the pod's address, and reveal nothing: they are not checked. Nor are
//! requests with a bearer token, which a rebound page does not have (`super::tokens`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use reqwest::Url;

use crate::error::ApiError;

/// The host names a browser may reach raydar under.
#[derive(Clone, Debug, Default)]
pub struct ServedAs {
    /// Any port of `localhost`, `127.0.0.1` or `[::1]`, over http (dev mode).
    loopback: bool,
    /// The public URL's origin (`https://raydar.example.com`), whose host and port the `Host`
    /// header must name.
    public: Option<Url>,
}

/// Loopback names a browser on this machine uses; anything else may be a rebound DNS name.
const LOOPBACK: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

impl ServedAs {
    /// Served under `public` (its origin), and also under loopback names when `loopback`.
    /// Neither: any host (behind a proxy that chooses it).
    pub fn new(loopback: bool, public: Option<Url>) -> Self {
        ServedAs { loopback, public }
    }

    /// Whether any host is answered.
    pub fn anywhere(&self) -> bool {
        !self.loopback && self.public.is_none()
    }

    /// Whether `host` (a `Host` header: name and optional port) is one raydar is served under.
    fn host(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        if let Some(url) = &self.public {
            if authority(url).is_some_and(|a| a == host) {
                return true;
            }
        }
        self.loopback && LOOPBACK.contains(&strip_port(&host))
    }

    /// Whether `origin` (an `Origin` header) is a page of raydar's.
    fn origin(&self, origin: &str) -> bool {
        let Ok(url) = Url::parse(origin) else { return false };
        if let Some(public) = &self.public {
            if url.origin() == public.origin() {
                return true;
            }
        }
        self.loopback
            && url.scheme() == "http"
            && authority(&url).is_some_and(|a| LOOPBACK.contains(&strip_port(&a)))
    }
}

/// `host[:port]` of `url` as a browser puts it in `Host` (no port when it is the scheme's own).
fn authority(url: &Url) -> Option<String> {
    // An IPv6 host comes in brackets, as in `Host`.
    let host = url.host_str()?.to_ascii_lowercase();
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

/// The name of `host[:port]`, `[v6]` kept whole.
fn strip_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => &host[..i],
        _ => host,
    }
}

/// Middleware (outermost of the security layers): refuses a request whose `Host`, or `Origin`
/// when sent, is not one raydar is served under, before anyone is taken to be signed in.
pub async fn served_host(
    State(served): State<Arc<ServedAs>>,
    request: Request,
    next: Next,
) -> Response {
    // A bearer token is what a rebound page cannot have: such a request is checked by its token
    // (super::tokens), under whatever name a pipeline reaches raydar by.
    let with_token = super::tokens::bearer(request.headers()).is_some();
    if served.anywhere()
        || with_token
        || super::identity::OPEN_PATHS.contains(&request.uri().path())
    {
        return next.run(request).await;
    }
    // HTTP/2 names the host in the request's authority, not in a Host header.
    let authority = request.uri().authority().map(|a| a.as_str().to_owned());
    if let Some(refusal) = refusal(&served, request.headers(), authority.as_deref()) {
        return refusal.into_response();
    }
    next.run(request).await
}

/// Why a request with these headers is not for raydar, if it is not.
fn refusal(served: &ServedAs, headers: &HeaderMap, authority: Option<&str>) -> Option<ApiError> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let host = text(header::HOST).or(authority).unwrap_or_default();
    if !served.host(host) {
        return Some(ApiError::forbidden(format!(
            "raydar is not served as {host:?}: open it at its own address (this guards against \
             web pages that rebind their name to raydar's address)"
        )));
    }
    let origin = text(header::ORIGIN)?;
    (!served.origin(origin))
        .then(|| ApiError::forbidden(format!("requests from {origin:?} are not allowed")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_mode_answers_to_loopback_names_only() {
        let dev = ServedAs::new(true, None);
        for host in ["127.0.0.1:3000", "localhost:8080", "LOCALHOST:1", "[::1]:3000", "localhost"] {
            assert!(dev.host(host), "{host}");
        }
        for host in ["evil.example:3000", "127.0.0.1.evil.example:3000", "10.0.0.1:3000", ""] {
            assert!(!dev.host(host), "{host}");
        }
        assert!(dev.origin("http://127.0.0.1:3000"));
        assert!(dev.origin("http://[::1]:3000"));
        assert!(!dev.origin("http://evil.example:3000"));
        assert!(!dev.origin("https://localhost.evil.example"));
        assert!(!dev.origin("null"));
        assert!(!dev.anywhere());
    }

    #[test]
    fn a_public_url_is_the_one_name() {
        let served = ServedAs::new(false, Some(Url::parse("https://Raydar.example.com").unwrap()));
        assert!(served.host("raydar.example.com"));
        assert!(!served.host("raydar.example.com:8443"));
        assert!(!served.host("localhost:3000"), "no loopback behind a proxy");
        assert!(served.origin("https://raydar.example.com"));
        assert!(!served.origin("http://raydar.example.com"), "another scheme is another origin");
        let port = ServedAs::new(true, Some(Url::parse("http://raydar.local:8080/").unwrap()));
        assert!(port.host("raydar.local:8080") && port.host("127.0.0.1:3000"));
        assert!(ServedAs::new(false, None).anywhere());
    }
}
