//! Machine identity: a bearer token, checked by the apiserver with a TokenReview.
//!
//! A pipeline running in the cluster calls raydar with its own ServiceAccount's token
//! (`Authorization: Bearer …`), or any token the apiserver accepts. raydar asks the apiserver
//! who that is (a TokenReview made as raydar, for `--token-audience` when set) and then treats
//! the answer like a person the authenticating proxy named: every action is made as them
//! (impersonated), what they see is what their RBAC lets them read, the audit names them.
//! Kubernetes' own names (`system:serviceaccount:…`) are fine here, unlike from the proxy: the
//! apiserver vouched for them.
//!
//! A token carries no ambient credential (a browser never sends one by itself), so a request
//! with one needs no CSRF token and may come under any host name. A token that is refused never
//! falls back to another identity: 401, and nothing else happens.
//!
//! Answers are kept briefly, by the token's SHA-256 (never the token): accepted ones for
//! [`ACCEPTED_FOR`], refused ones for [`REFUSED_FOR`], at most [`MAX_KEPT`] tokens. At most
//! [`MAX_REVIEWS`] reviews are asked at once, each within [`REVIEW_TIMEOUT`] (the wait for a
//! turn included): a flood of made-up tokens costs the apiserver that many calls at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::Semaphore;

use super::identity::User;

/// How long an accepted token's user is kept before the apiserver is asked again.
pub const ACCEPTED_FOR: Duration = Duration::from_secs(30);
/// How long a refused token stays refused without asking again.
pub const REFUSED_FOR: Duration = Duration::from_secs(5);
/// Tokens whose answer is kept at once; past it, the expired go first, then the oldest.
pub const MAX_KEPT: usize = 4096;
/// TokenReviews in flight at once.
pub const MAX_REVIEWS: usize = 16;
/// A review, the wait for its turn included, ends within this.
pub const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a token gave no user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The apiserver does not accept it (invalid, expired, another audience's): 401.
    #[error("{0}")]
    Refused(String),
    /// It could not be checked (the apiserver did not answer): 503, and nothing is kept.
    #[error("{0}")]
    Unchecked(String),
}

/// Checks bearer tokens with the apiserver: cheap to clone.
#[derive(Clone)]
pub struct TokenReviews {
    inner: Arc<Inner>,
}

struct Inner {
    kube: Client,
    /// The audience tokens must be meant for; `None`: the apiserver's own.
    audience: Option<String>,
    kept: Mutex<HashMap<[u8; 32], Kept>>,
    turns: Semaphore,
}

struct Kept {
    until: Instant,
    answer: Result<User, TokenError>,
}

impl TokenReviews {
    /// Reviews tokens through `kube` (as raydar), for `audience` when given.
    pub fn new(kube: Client, audience: Option<String>) -> Self {
        let inner =
            Inner { kube, audience, kept: Mutex::default(), turns: Semaphore::new(MAX_REVIEWS) };
        TokenReviews { inner: Arc::new(inner) }
    }

    /// The user `token` belongs to, as the apiserver says.
    pub async fn user(&self, token: &str) -> Result<User, TokenError> {
        let digest = digest(token);
        if let Some(answer) = self.kept(&digest) {
            return answer;
        }
        let answer = match tokio::time::timeout(REVIEW_TIMEOUT, self.review(token)).await {
            Ok(answer) => answer,
            Err(_) => Err(TokenError::Unchecked(format!(
                "the Kubernetes apiserver did not check the token within {} s",
                REVIEW_TIMEOUT.as_secs()
            ))),
        };
        let keep_for = match &answer {
            Ok(_) => ACCEPTED_FOR,
            Err(TokenError::Refused(_)) => REFUSED_FOR,
            Err(TokenError::Unchecked(_)) => return answer,
        };
        self.keep(digest, Kept { until: Instant::now() + keep_for, answer: answer.clone() });
        answer
    }

    /// One TokenReview, in turn.
    async fn review(&self, token: &str) -> Result<User, TokenError> {
        let inner = &self.inner;
        let _turn =
            inner.turns.acquire().await.map_err(|e| TokenError::Unchecked(e.to_string()))?;
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                audiences: inner.audience.clone().map(|a| vec![a]),
            },
            ..TokenReview::default()
        };
        let reviewed = Api::<TokenReview>::all(inner.kube.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| {
                TokenError::Unchecked(format!(
                    "cannot check the token: the Kubernetes apiserver answered {e}"
                ))
            })?;
        let status = reviewed.status.unwrap_or_default();
        match status.user.filter(|_| status.authenticated == Some(true)) {
            Some(user) => {
                let name = user.username.filter(|n| !n.is_empty()).ok_or_else(|| {
                    TokenError::Refused("the apiserver accepted the token but named no user".into())
                })?;
                Ok(User::from_token(name, user.groups.unwrap_or_default()))
            }
            None => {
                let why = status.error.filter(|e| !e.is_empty());
                Err(TokenError::Refused(match (why, &inner.audience) {
                    (Some(why), _) => format!("the Kubernetes apiserver refused the token: {why}"),
                    (None, Some(audience)) => format!(
                        "the Kubernetes apiserver does not accept the token for the audience \
                         {audience:?}"
                    ),
                    (None, None) => "the Kubernetes apiserver does not accept the token".into(),
                }))
            }
        }
    }

    fn kept(&self, digest: &[u8; 32]) -> Option<Result<User, TokenError>> {
        let kept = self.inner.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.get(digest).filter(|k| k.until > Instant::now()).map(|k| k.answer.clone())
    }

    fn keep(&self, digest: [u8; 32], answer: Kept) {
        let mut kept = self.inner.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= MAX_KEPT {
            let now = Instant::now();
            kept.retain(|_, k| k.until > now);
        }
        if kept.len() >= MAX_KEPT {
            let oldest = kept.iter().min_by_key(|(_, k)| k.until).map(|(d, _)| *d);
            if let Some(oldest) = oldest {
                kept.remove(&oldest);
            }
        }
        kept.insert(digest, answer);
    }
}

/// The token's SHA-256: what is kept instead of it.
fn digest(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The token of an `Authorization: Bearer …` header: `None` without one, an error when the
/// header is there but holds no bearer token.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<Result<&str, String>> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?;
    let text = value.to_str().unwrap_or_default().trim();
    let token = text
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty() && !token.contains(char::is_whitespace));
    Some(token.ok_or_else(|| {
        "the Authorization header must be `Bearer <token>` (a Kubernetes ServiceAccount's token, \
         or another the apiserver accepts)"
            .to_owned()
    }))
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::*;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(axum::http::header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn only_a_bearer_token_is_taken() {
        assert_eq!(bearer(&HeaderMap::new()), None);
        assert_eq!(bearer(&with_authorization("Bearer abc.def")), Some(Ok("abc.def")));
        assert_eq!(bearer(&with_authorization("bearer  abc ")), Some(Ok("abc")));
        for wrong in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer a b", "abc"] {
            let refused = bearer(&with_authorization(wrong)).unwrap().unwrap_err();
            assert!(refused.contains("Bearer <token>"), "{wrong}: {refused}");
        }
    }

    /// Reviews against an apiserver that is not there (nothing listens on port 1).
    fn nowhere() -> TokenReviews {
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        TokenReviews::new(Client::try_from(config).unwrap(), None)
    }

    #[tokio::test]
    async fn an_unchecked_token_is_503_material_and_not_kept() {
        let reviews = nowhere();
        let answer = reviews.user("some-token").await;
        assert!(
            matches!(&answer, Err(TokenError::Unchecked(why)) if why.contains("cannot check")),
            "{answer:?}"
        );
        assert!(reviews.kept(&digest("some-token")).is_none(), "asked again next time");
    }

    #[tokio::test]
    async fn answers_are_kept_by_digest_for_a_while_and_bounded() {
        let reviews = nowhere();
        let refused = || Err(TokenError::Refused("no".into()));
        let later = Instant::now() + REFUSED_FOR;
        for i in 0..MAX_KEPT + 10 {
            reviews.keep(digest(&format!("token-{i}")), Kept { until: later, answer: refused() });
        }
        assert_eq!(reviews.inner.kept.lock().unwrap().len(), MAX_KEPT);
        let last = digest(&format!("token-{}", MAX_KEPT + 9));
        assert_eq!(reviews.kept(&last), Some(refused()));
        let gone = Instant::now() - Duration::from_secs(1);
        reviews.keep(digest("old"), Kept { until: gone, answer: refused() });
        assert_eq!(reviews.kept(&digest("old")), None, "an expired answer is asked again");
    }
}
