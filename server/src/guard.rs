//! Web hardening: what a browser may be tricked into, and how much one user may do.
//!
//! - Writes (`POST`, `PUT`, `PATCH`, `DELETE` under `/api/v1`) need an `Origin` naming this server
//!   and the user's CSRF token in `X-CSRF-Token` ([`CsrfKey`]): a page elsewhere can make a
//!   browser send a request, but cannot read the token out of raydar's pages. Server functions
//!   (reads) and event streams need a same-origin `Origin` when the browser sends one.
//! - Every response carries security headers; pages get a Content-Security-Policy that lets only
//!   raydar's own scripts run (the hydration script by its per-response nonce) and no one frame
//!   them.
//! - Actions are limited per user ([`ActionLimit`]), so one account (or a stolen session) cannot
//!   flood Kubernetes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ring::hmac;
use serde_json::json;

use crate::auth::User;

/// The header that carries the CSRF token on writes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Signs CSRF tokens: a token is the HMAC of the user name under a key made at start-up, so it
/// needs no storage, and a restart (new key) only asks open pages to reload.
#[derive(Clone)]
pub struct CsrfKey(Arc<hmac::Key>);

impl CsrfKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let rng = ring::rand::SystemRandom::new();
        // Only fails without an OS random source, when nothing else would work either.
        let key =
            hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("the OS provides random numbers");
        CsrfKey(Arc::new(key))
    }

    /// The token pages of `user` send with writes.
    pub fn token(&self, user: &User) -> String {
        let tag = hmac::sign(&self.0, user.name.as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `token` is `user`'s (compared in constant time).
    pub fn verify(&self, user: &User, token: &str) -> bool {
        let Some(bytes) = hex(token) else { return false };
        hmac::verify(&self.0, user.name.as_bytes(), &bytes).is_ok()
    }
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// A browser sends Origin on cross-site requests; when it does, it must name this server.
pub fn origin_matches(headers: &HeaderMap) -> Option<bool> {
    let origin = headers.get(header::ORIGIN)?.to_str().ok();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    Some(match (origin, host) {
        (Some(origin), Some(host)) => {
            origin.split_once("://").is_some_and(|(_, authority)| authority == host)
        }
        _ => false,
    })
}

fn forbidden(message: &str) -> Response {
    (StatusCode::FORBIDDEN, Json(json!({ "error": message, "reason": "Forbidden" })))
        .into_response()
}

/// Middleware (after [`crate::auth::authenticate`]): refuses cross-origin requests, and writes
/// without a same-origin `Origin` and the user's CSRF token.
pub async fn same_origin_writes(
    State(key): State<CsrfKey>,
    request: Request,
    next: Next,
) -> Response {
    let writes =
        matches!(*request.method(), Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    let api = request.uri().path().starts_with("/api/");
    match origin_matches(request.headers()) {
        Some(false) => return forbidden("cross-origin requests are not allowed"),
        None if writes && api => return forbidden(
            "a write needs an Origin header naming this server (browsers send it by themselves)",
        ),
        _ => {}
    }
    if writes && api {
        let token =
            request.headers().get(CSRF_HEADER).and_then(|t| t.to_str().ok()).unwrap_or_default();
        let valid = request.extensions().get::<User>().is_some_and(|user| key.verify(user, token));
        if !valid {
            return forbidden("the request lacks this page's CSRF token (X-CSRF-Token); reload the page and try again");
        }
    }
    next.run(request).await
}

/// The Content-Security-Policy of pages: raydar's own scripts (the inline hydration script by its
/// `nonce`) and WebAssembly, its own styles, nothing framed, no plugins, no base or form hijack.
pub fn page_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// Middleware: security headers on every response. Pages set their own policy (with their
/// nonce, [`page_policy`]); everything else gets one that allows nothing to run.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    response
}

/// Actions (launch, change, teardown) per user per minute, as a token bucket: a burst of the
/// whole minute's allowance, refilled evenly.
#[derive(Clone)]
pub struct ActionLimit {
    per_minute: f64,
    buckets: Arc<Mutex<HashMap<String, (f64, Instant)>>>,
}

impl ActionLimit {
    /// Most users tracked; beyond, full buckets (users idle for a minute) are forgotten.
    const MAX_USERS: usize = 100_000;

    /// `per_minute` actions per user.
    pub fn new(per_minute: u32) -> Self {
        ActionLimit { per_minute: f64::from(per_minute), buckets: Arc::default() }
    }

    /// Takes one action from `user`'s allowance; `Err` with seconds to wait when there is none.
    pub fn take(&self, user: &User) -> Result<(), u64> {
        let Ok(mut buckets) = self.buckets.lock() else { return Ok(()) };
        let now = Instant::now();
        if buckets.len() >= Self::MAX_USERS && !buckets.contains_key(&user.name) {
            let per_minute = self.per_minute;
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * per_minute / 60.0 < per_minute
            });
        }
        let (tokens, at) = buckets.entry(user.name.clone()).or_insert((self.per_minute, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_minute / 60.0)
            .min(self.per_minute);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) * 60.0 / self.per_minute).ceil() as u64)
        }
    }
}

/// 429 for a user over their action allowance.
pub fn too_many(wait_secs: u64) -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({
            "error": format!("too many actions: try again in {wait_secs} s (raydar allows each person a few a minute)"),
            "reason": "TooManyRequests",
        })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&wait_secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> User {
        User { name: name.into(), email: None, groups: vec![] }
    }

    #[test]
    fn a_csrf_token_is_good_for_its_user_only() {
        let key = CsrfKey::generate();
        let token = key.token(&user("alice"));
        assert!(key.verify(&user("alice"), &token));
        assert!(!key.verify(&user("bob"), &token));
        assert!(!key.verify(&user("alice"), ""));
        assert!(!key.verify(&user("alice"), &token[1..]));
        assert!(!CsrfKey::generate().verify(&user("alice"), &token), "another server's key");
    }

    #[test]
    fn origin_must_name_this_server_when_sent() {
        let headers = |origin: Option<&str>| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static("raydar.example:8443"));
            if let Some(o) = origin {
                h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
            }
            h
        };
        assert_eq!(origin_matches(&headers(Some("https://raydar.example:8443"))), Some(true));
        assert_eq!(origin_matches(&headers(Some("https://evil.example"))), Some(false));
        assert_eq!(origin_matches(&headers(Some("null"))), Some(false));
        assert_eq!(origin_matches(&headers(None)), None);
    }

    #[test]
    fn actions_are_limited_per_user() {
        let limit = ActionLimit::new(3);
        for _ in 0..3 {
            assert_eq!(limit.take(&user("alice")), Ok(()));
        }
        let wait = limit.take(&user("alice")).unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert_eq!(limit.take(&user("bob")), Ok(()), "bob has his own allowance");
    }
}
