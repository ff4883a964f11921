//! Extractors whose rejections are [`ApiError`]s, and the checks that keep a path segment that
//! cannot be a Kubernetes name from reaching Kubernetes or a Ray dashboard.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use platform::template::value::{cluster_name_problem, is_dns_label_body, namespace_problem};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};

/// `{namespace}` and `{name}` of a cluster's route, both checked as Kubernetes names.
#[derive(Clone, Debug)]
pub struct ClusterPath {
    /// The RayCluster's namespace.
    pub namespace: String,
    /// The RayCluster's name.
    pub name: String,
}

impl ClusterPath {
    /// `namespace/name`, as messages name a cluster.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClusterPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        let Path(params) =
            Path::<HashMap<String, String>>::from_request_parts(parts, state).await?;
        let param = |key: &str| params.get(key).cloned().unwrap_or_default();
        let (namespace, name) = (param("namespace"), param("name"));
        check_cluster(&namespace, &name)?;
        Ok(ClusterPath { namespace, name })
    }
}

/// 400 unless each of a route's `{namespace}`, `{name}` and `{pod}` that `params` holds can be
/// what it names: checked before anything (an access review too) is asked of Kubernetes.
pub fn check_params(params: &HashMap<String, String>) -> ApiResult<()> {
    if let Some(namespace) = params.get("namespace") {
        let name = params.get("name").map_or("x", String::as_str);
        check_cluster(namespace, name)?;
    }
    params.get("pod").map_or(Ok(()), |pod| check_pod(pod))
}

/// 400 unless `namespace` and `name` can be a RayCluster's.
pub fn check_cluster(namespace: &str, name: &str) -> ApiResult<()> {
    if let Some(problem) = namespace_problem(namespace) {
        return Err(ApiError::bad_request(format!("namespace {problem}")));
    }
    if let Some(problem) = cluster_name_problem(name) {
        return Err(ApiError::bad_request(format!("name {problem}")));
    }
    Ok(())
}

/// 400 unless `pod` is a Kubernetes object name (DNS subdomain), which is what keeps it from
/// leaving its URL path.
pub fn check_pod(pod: &str) -> ApiResult<()> {
    let valid = !pod.is_empty()
        && pod.len() <= 253
        && pod.split('.').all(|l| l.len() <= 63 && is_dns_label_body(l));
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("pod {pod:?} is not a pod name")))
    }
}

/// axum's `Path`, rejected with an [`ApiError`].
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::new(e.status(), e.body_text()))
    }
}

/// axum's `Query`, rejected with an [`ApiError`] (400 naming the parameter).
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// A JSON body of a write, or 400 saying it is not `what`.
pub fn body<T: DeserializeOwned>(bytes: &[u8], what: &str) -> ApiResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("request body is not {what}: {e}")))
}
