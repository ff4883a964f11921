//! The API's one error answer, [`ApiError`]: every handler, extractor and layer under `/api/v1`
//! answers a failure with the same JSON shape.
//!
//! ```json
//! {"error": "RayCluster team-a/demo already exists; choose another name",
//!  "reason": "AlreadyExists",
//!  "errors": [{"field": "name", "message": "..."}]}
//! ```
//!
//! `error` is for people; `reason` is for programs, in Kubernetes' own words where there are
//! some (a refusal from Kubernetes keeps its status, message and reason); `errors` comes with
//! `Invalid` (422) only, one message per field.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use platform::FieldError;
use serde::Serialize;

/// A failed API request: its status and the JSON body that says why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error, utoipa::ToSchema)]
#[error("{status}: {error}")]
pub struct ApiError {
    /// The HTTP status.
    #[serde(skip)]
    #[schema(ignore)]
    pub status: StatusCode,
    /// What went wrong, for a person.
    pub error: String,
    /// What went wrong, for a program: Kubernetes' reason when Kubernetes refused
    /// (`Forbidden`, `AlreadyExists`, `Conflict`, `Invalid`, ...), else one in the same style.
    pub reason: String,
    /// With `Invalid`: one message per field, in the order the fields first appear.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Seconds to wait before trying again (`Retry-After`), with `TooManyRequests`.
    #[serde(skip)]
    #[schema(ignore)]
    pub retry_after: Option<u64>,
}

/// Result of a handler step: the value, or the API's answer saying why not.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with `status`, `message` and the reason its status stands for.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error: message.into(),
            reason: reason_of(status).to_owned(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// The same error with another `reason`.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// 400: the request cannot be a valid one.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401: the request carries no identity raydar accepts.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403: the requester may not.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404: there is no such thing.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 404 for a RayCluster raydar does not know.
    pub fn no_cluster(namespace: &str, name: &str) -> Self {
        Self::not_found(format!("no RayCluster {namespace}/{name}"))
    }

    /// 409: it exists already, or changed meanwhile.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 422 with one message per field (messages about one field joined).
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let errors = one_per_field(errors);
        let summary = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        ApiError { errors, ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, summary) }
    }

    /// 422 about one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError::new(field, message)])
    }

    /// 429: over the requester's allowance; try again in `wait_secs`.
    pub fn too_many(wait_secs: u64) -> Self {
        let message = format!(
            "too many actions: try again in {wait_secs} s (raydar allows each person a few a minute)"
        );
        ApiError {
            retry_after: Some(wait_secs),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, message)
        }
    }

    /// 503: raydar cannot answer this yet (a watch has not listed, a limit is reached).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 502: what raydar asked on the requester's behalf did not answer properly.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, message)
    }

    /// 504: what raydar asked did not answer in time.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, message)
    }

    /// A Kubernetes failure while `action`: a refusal keeps its status, message and reason; a
    /// Kubernetes that cannot be reached is 502.
    pub fn kube(action: &str, error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => {
                let code = StatusCode::from_u16(status.code)
                    .ok()
                    .filter(|c| c.is_client_error() || c.is_server_error())
                    .unwrap_or(StatusCode::BAD_GATEWAY);
                let reason = if status.reason.is_empty() {
                    reason_of(code).to_owned()
                } else {
                    status.reason.clone()
                };
                Self::new(code, status.message.clone()).with_reason(reason)
            }
            other => {
                tracing::warn!("{action}: {other}");
                Self::bad_gateway(format!("{action}: cannot reach the Kubernetes API: {other}"))
                    .with_reason("Unreachable")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok());
        let mut response = (self.status, Json(&self)).into_response();
        if let Some(wait) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, wait);
        }
        response
    }
}

/// Kubernetes' `StatusReason` for a status, or a word in its style where it has none.
pub fn reason_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Gone",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ if status.is_client_error() => "BadRequest",
        _ => "InternalError",
    }
}

/// Messages about the same field joined into one, in the order the fields first appear.
fn one_per_field(errors: Vec<FieldError>) -> Vec<FieldError> {
    let mut merged: Vec<FieldError> = Vec::new();
    for error in errors {
        match merged.iter_mut().find(|e| e.field == error.field) {
            Some(same) => {
                same.message.push_str("; ");
                same.message.push_str(&error.message);
            }
            None => merged.push(error),
        }
    }
    merged
}

/// Largest error body of the framework's own that is read to be put into an [`ApiError`].
const FRAMEWORK_ERROR_BYTES: usize = 16 * 1024;

/// Middleware for the API: an error that did not come from a handler (axum's own answers to a
/// malformed path, query or body, a method the route does not have, a body over the limit) is
/// rewritten into an [`ApiError`] with the same status, its text as the message.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, FRAMEWORK_ERROR_BYTES).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("failed").to_owned()
    } else {
        text
    };
    let mut answer = ApiError::new(status, message).into_response();
    // Keep what the framework said beside the body: Allow on a 405, Retry-After.
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(error: ApiError) -> (StatusCode, serde_json::Value, Option<String>) {
        let response = error.into_response();
        let status = response.status();
        let retry =
            response.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap(), retry)
    }

    #[tokio::test]
    async fn errors_about_one_field_become_one_message() {
        let (status, json, _) = body(ApiError::invalid(vec![
            FieldError::new("workers", "must be an integer"),
            FieldError::new("name", "too long"),
            FieldError::new("workers", "at most 4"),
        ]))
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(json["reason"], "Invalid");
        assert_eq!(
            json["errors"],
            serde_json::json!([
                {"field": "workers", "message": "must be an integer; at most 4"},
                {"field": "name", "message": "too long"}
            ])
        );
        assert_eq!(json["error"], "workers: must be an integer; at most 4; name: too long");
    }

    #[tokio::test]
    async fn a_kubernetes_refusal_keeps_its_status_message_and_reason() {
        let status = kube::core::Status::failure("rayclusters.ray.io is forbidden", "Forbidden")
            .with_code(403);
        let (code, json, _) =
            body(ApiError::kube("applying", kube::Error::Api(status.boxed()))).await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        assert_eq!(
            (json["error"].as_str(), json["reason"].as_str()),
            (Some("rayclusters.ray.io is forbidden"), Some("Forbidden"))
        );
        assert!(json.get("errors").is_none(), "{json}");
        let odd = kube::core::Status::failure("exceeded quota", "Forbidden").with_code(200);
        assert_eq!(
            ApiError::kube("applying", kube::Error::Api(odd.boxed())).status,
            StatusCode::BAD_GATEWAY
        );
    }

    #[tokio::test]
    async fn too_many_says_when_to_come_back() {
        let (status, json, retry) = body(ApiError::too_many(7)).await;
        assert_eq!(
            (status, json["reason"].as_str(), retry.as_deref()),
            (StatusCode::TOO_MANY_REQUESTS, Some("TooManyRequests"), Some("7"))
        );
        assert!(json["error"].as_str().unwrap().contains("try again in 7 s"));
    }
}
