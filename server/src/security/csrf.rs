//! Cross-site request forgery: writes (`POST`, `PUT`, `PATCH`, `DELETE` under `/api/v1`) need an
//! `Origin` naming this server and the user's CSRF token in `X-CSRF-Token` ([`CsrfKey`]): a page
//! elsewhere can make a browser send a request, but cannot read the token out of raydar's pages.
//! Server functions (reads) and event streams need a same-origin `Origin` when the browser sends
//! one.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ring::hmac;

use super::identity::User;
use crate::error::ApiError;

/// The header that carries the CSRF token on writes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Signs CSRF tokens: a token is the HMAC of the user name under a key, so it needs no storage.
/// The key is made at start-up (a restart only asks open pages to reload), or derived from the
/// secret every replica is given (`--session-secret`), so a token is good on all of them.
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

    /// The key every replica given `secret` derives alike (HMAC of a fixed label under it, so the
    /// secret itself signs nothing).
    pub fn from_secret(secret: &str) -> Self {
        let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()), LABEL);
        CsrfKey(Arc::new(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())))
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

/// What the session secret is used for here, so that a second use of it would derive another key.
const LABEL: &[u8] = b"raydar csrf tokens v1";

fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
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
    ApiError::forbidden(message).into_response()
}

/// Middleware (after [`crate::auth::authenticate`]): refuses cross-origin requests, and writes
/// without a same-origin `Origin` and the user's CSRF token.
pub async fn same_origin_writes(
    State(key): State<CsrfKey>,
    request: Request,
    next: Next,
) -> Response {
    // A bearer token is no ambient credential: a page on another site cannot make a browser
    // send one, so a request that carries one is not a forgery (and pipelines send no Origin).
    if request.extensions().get::<User>().is_some_and(|user| user.by_token) {
        return next.run(request).await;
    }
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

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn a_csrf_token_is_good_for_its_user_only() {
        let key = CsrfKey::generate();
        let token = key.token(&User::named("alice"));
        assert!(key.verify(&User::named("alice"), &token));
        assert!(!key.verify(&User::named("bob"), &token));
        assert!(!key.verify(&User::named("alice"), ""));
        assert!(!key.verify(&User::named("alice"), &token[1..]));
        assert!(!CsrfKey::generate().verify(&User::named("alice"), &token), "another server's key");
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
}
