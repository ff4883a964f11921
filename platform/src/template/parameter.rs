//! What a launcher fills in: the parameters a template declares and the policy it states, as
//! stored in the `RayClusterTemplate` resource and as launch forms and the API show them.
//!
//! These types only need serde, so the browser build has them too and a form can be generated
//! from them; checking values against them happens on the server (module `render`, feature `kube`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// One typed value a launcher may set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TemplateParameter {
    /// Name used in requests and in references (`"{{ name }}"`): a letter, then letters, digits or `_`.
    pub name: String,
    /// What kind of value it takes.
    #[serde(rename = "type")]
    pub kind: ParameterKind,
    /// Help text shown next to the field.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Value used when a request leaves the parameter out; without one the parameter is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Scalar>,
    /// Smallest allowed value (integer, quantity and duration parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Scalar>,
    /// Largest allowed value (integer, quantity and duration parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Scalar>,
    /// Regular expression the whole value must match (string parameters, required there), as an
    /// HTML form's `pattern` attribute does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The allowed values (enum parameters, required there).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// The type of a parameter; it decides how the value is parsed and what it becomes in the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ParameterKind {
    /// A whole number (i64), substituted as a JSON number.
    Integer,
    /// Text matching `pattern`, substituted as a string.
    String,
    /// One of `values`, substituted as a string.
    Enum,
    /// A non-negative Kubernetes quantity such as `500m` or `8Gi`, substituted as a string.
    Quantity,
    /// A duration such as `30m`, `2h` or `1h30m`, substituted as whole seconds, because the
    /// KubeRay and Kubernetes fields that take durations count seconds (`idleTimeoutSeconds`).
    Duration,
}

/// A default or bound as written in the template: an integer or a text (`8Gi`, `2h`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Scalar {
    /// Written as a number.
    Integer(i64),
    /// Written as a string.
    Text(String),
}

/// The platform's rules for every cluster launched from a template.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TemplatePolicy {
    /// Most `nvidia.com/gpu` a cluster may hold at full scale: the head plus every worker group at
    /// `maxReplicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gpus: Option<u32>,
    /// Container images a cluster may run; an entry ending in `*` allows every image that starts
    /// with the rest. Empty allows any image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_images: Vec<String>,
    /// Longest a cluster may live (`8h`, `1d`); rendering sets the `raydar.dev/expires-at`
    /// annotation to the launch time plus this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lifetime: Option<String>,
    /// What raydar does when that lifetime ends: `teardown` (the default) deletes the cluster,
    /// `suspend` keeps it without pods, to be extended and resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_expiry: Option<ExpiryAction>,
    /// When raydar gives back the GPUs of a cluster that sits idle; none: it never does. Rendering
    /// stamps it on the cluster (`raydar.dev/idle`), so a later change of the template does not
    /// change the rules a running cluster was launched under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdlePolicy>,
}

/// Idle reclaim: a cluster is idle when no Ray job of it is pending or running and every GPU it
/// holds stays below `gpuBelow` percent utilization for `after`; then raydar warns its owner and,
/// a few minutes later, suspends it or tears it down.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct IdlePolicy {
    /// Utilization, percent (above 0, at most 100), below which a GPU counts as idle.
    pub gpu_below: f64,
    /// How long a cluster must stay idle before it is reclaimed (`2h`; from 1m to 6h, the
    /// readings raydar keeps at full resolution).
    pub after: String,
    /// What raydar does then: `suspend` (the default: its pods go, it can be resumed) or
    /// `teardown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ExpiryAction>,
}

/// What raydar does to a cluster whose lifetime ended, or that sat idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ExpiryAction {
    /// Delete it.
    Teardown,
    /// Suspend it: its pods go, the cluster stays.
    Suspend,
}

/// What a launch form (and `GET /api/v1/templates`) shows for one template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TemplateForm {
    /// Name of the template.
    pub name: String,
    /// What the template is for.
    pub description: String,
    /// The fields of the form, in the template's order.
    pub parameters: Vec<TemplateParameter>,
    /// The limits the launched cluster is held to.
    pub policy: TemplatePolicy,
}

/// One problem with a template or a launch request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// The parameter (or `name`, `namespace`) of a request, or the path in a template.
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl FieldError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Integer(n) => write!(f, "{n}"),
            Scalar::Text(s) => f.write_str(s),
        }
    }
}

impl fmt::Display for ParameterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParameterKind::Integer => "integer",
            ParameterKind::String => "string",
            ParameterKind::Enum => "enum",
            ParameterKind::Quantity => "quantity",
            ParameterKind::Duration => "duration",
        })
    }
}

/// Stored like Kubernetes' IntOrString, the only union a structural CRD schema allows.
#[cfg(feature = "kube")]
impl schemars::JsonSchema for Scalar {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Scalar".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "x-kubernetes-int-or-string": true })
    }
}
