//! The RayClusterTemplates clusters are launched from.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use platform::TemplateForm;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::sources::Templates;

/// Every template that may be launched.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateItems {
    /// Sorted by name.
    pub items: Vec<TemplateForm>,
}

/// `GET /api/v1/templates`: every RayClusterTemplate with its description, parameter schemas and
/// policy, sorted by name; 503 with the reason while the template watch has not listed them.
#[utoipa::path(get, path = "/templates", tag = "templates",
    responses(
        (status = 200, description = "The templates", body = TemplateItems),
        (status = 503, description = "The template watch has not listed them yet", body = ApiError)))]
pub async fn list(State(templates): State<Templates>) -> ApiResult<Json<TemplateItems>> {
    templates.ready(Duration::from_secs(10)).await.map_err(ApiError::unavailable)?;
    Ok(Json(TemplateItems { items: templates.forms() }))
}
