//! The template engine: vetted `RayClusterTemplate`s that launchers fill with a few typed
//! parameters.
//!
//! A template (a cluster-scoped custom resource, so only platform admins change it) declares
//! typed parameters and a RayCluster spec in which a parameter stands only as a whole scalar
//! value, written as the exact string `"{{ name }}"` (or `"{{ name | string }}"` for a string
//! field such as a `rayStartParams` entry). Rendering parses and checks every value, puts typed
//! values into the parsed document (never into YAML text) and applies the platform's policy:
//! owner/team/template labels from the authenticated identity, KubeRay-valid names, the GPU limit,
//! the allowed images and the expiry annotation.
//!
//! # Layout
//!
//! - [`parameter`]: the parameter schema and policy as forms and the API show them
//!   ([`TemplateParameter`], [`TemplatePolicy`], [`TemplateForm`], [`FieldError`]); built for the
//!   browser too.
//! - [`quantity`]: Kubernetes resource quantities ([`Quantity`]); built for the browser too.
//! - [`duration`]: durations such as `1h30m` ([`parse_duration`]); built for the browser too.
//! - [`value`]: what a launcher types, checked: parameter values, the cluster name and namespace
//!   ([`ParameterValue`], [`TemplateParameter::check_text`]); built for the browser too.
//! - `resource`: the `RayClusterTemplate` custom resource and its CRD ([`RayClusterTemplate`],
//!   [`crd_yaml`], [`parse_template`]).
//! - `reference`: finding and substituting `{{ name }}` references in the spec document.
//! - `check`: a parameter's value parsed and checked against its type and bounds.
//! - `validate`: [`validate_template`], run when a template is loaded.
//! - `render`: [`render`] a launch request into a RayCluster manifest ([`LaunchRequest`],
//!   [`Identity`]).
//! - `policy`: the platform's rules applied to every rendered cluster.
//!
//! Everything but the first four modules needs feature `kube`.

pub mod duration;
pub mod parameter;
pub mod quantity;
pub mod value;

#[cfg(feature = "kube")]
mod check;
#[cfg(feature = "kube")]
mod policy;
#[cfg(feature = "kube")]
mod reference;
#[cfg(feature = "kube")]
mod render;
#[cfg(feature = "kube")]
mod resource;
#[cfg(feature = "kube")]
mod validate;

pub use duration::{format_duration, parse_duration};
pub use parameter::{
    ExpiryAction, FieldError, IdlePolicy, ParameterKind, Scalar, TemplateForm, TemplateParameter,
    TemplatePolicy,
};
pub use quantity::Quantity;
pub use value::ParameterValue;

/// The clock type [`render`] takes, as k8s-openapi (and so kube) uses it.
#[cfg(feature = "kube")]
pub use k8s_openapi::jiff::Timestamp;
#[cfg(feature = "kube")]
pub use policy::{
    label_value, ANNOTATION_AT_EXPIRY, ANNOTATION_EXPIRES_AT, ANNOTATION_IDLE, ANNOTATION_LEASE,
    ANNOTATION_OWNER, ANNOTATION_PARAMETERS, ANNOTATION_PROTECT, FIELD_MANAGER, LABEL_OWNER,
    LABEL_PIPELINE, LABEL_RUN, LABEL_TEAM, LABEL_TEMPLATE,
};
#[cfg(feature = "kube")]
pub use render::{render, Identity, LaunchRequest, PipelineRun};
#[cfg(feature = "kube")]
pub use resource::{
    crd_yaml, manifest_yaml, parse_template, ClusterTemplateSpec, RayClusterTemplate,
};
#[cfg(feature = "kube")]
pub use validate::validate_template;

/// Why a template could not be loaded or a launch request could not be rendered.
#[cfg(feature = "kube")]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The template itself is wrong; only a platform admin can fix it.
    #[error("template {template} is invalid: {}", join(errors))]
    InvalidTemplate {
        /// Name of the template.
        template: String,
        /// Every problem, each naming the path in the template.
        errors: Vec<FieldError>,
    },
    /// The request is wrong; each error names a parameter (or `name`, `namespace`) and says what
    /// is allowed. The API answers this with 422.
    #[error("{}", join(.0))]
    InvalidRequest(Vec<FieldError>),
    /// The text is not a RayClusterTemplate in YAML or JSON.
    #[error("not a RayClusterTemplate: {0}")]
    Parse(String),
}

/// Result of the template engine.
#[cfg(feature = "kube")]
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(feature = "kube")]
impl Error {
    /// The field errors, whichever side is at fault.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            Error::InvalidTemplate { errors, .. } | Error::InvalidRequest(errors) => errors,
            Error::Parse(_) => &[],
        }
    }
}

#[cfg(feature = "kube")]
fn join(errors: &[FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}
