//! The `RayClusterTemplate` custom resource (raydar.dev/v1alpha1) and its CRD.
//!
//! Cluster-scoped, so only platform admins (who may write cluster-scoped resources) can change
//! what every team launches.

use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::parameter::{TemplateForm, TemplateParameter, TemplatePolicy};
use super::{validate_template, Error, Result};

/// A vetted Ray cluster: typed parameters, the policy, and the RayCluster spec they fill.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "raydar.dev",
    version = "v1alpha1",
    kind = "RayClusterTemplate",
    plural = "rayclustertemplates",
    shortname = "rct",
    doc = "A vetted Ray cluster that launchers fill with a few typed parameters.",
    printcolumn = r#"{"name":"Description","type":"string","jsonPath":".spec.description"}"#,
    printcolumn = r#"{"name":"Max GPUs","type":"integer","jsonPath":".spec.policy.maxGpus"}"#,
    printcolumn = r#"{"name":"Max lifetime","type":"string","jsonPath":".spec.policy.maxLifetime"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterTemplateSpec {
    /// What the template is for, shown when choosing one.
    #[serde(default)]
    pub description: String,
    /// The values a launcher may set, in the order a form shows them.
    #[serde(default)]
    pub parameters: Vec<TemplateParameter>,
    /// The rules every cluster launched from this template is held to.
    #[serde(default)]
    pub policy: TemplatePolicy,
    /// The `spec` of the RayCluster (ray.io/v1). A parameter may stand only as a whole string
    /// value, exactly `"{{ name }}"` or `"{{ name | string }}"`.
    #[schemars(schema_with = "opaque_object")]
    pub ray_cluster_spec: serde_json::Value,
}

/// The RayCluster spec is KubeRay's to define; the apiserver keeps it as written and raydar
/// checks it when the template is loaded and rendered.
fn opaque_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

impl RayClusterTemplate {
    /// The template's name (its `metadata.name`).
    pub fn template_name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    /// What a launch form shows for this template.
    pub fn form(&self) -> TemplateForm {
        TemplateForm {
            name: self.template_name().to_owned(),
            description: self.spec.description.clone(),
            parameters: self.spec.parameters.clone(),
            policy: self.spec.policy.clone(),
        }
    }
}

/// Reads a RayClusterTemplate from YAML (or JSON) and validates it.
pub fn parse_template(text: &str) -> Result<RayClusterTemplate> {
    let document: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| Error::Parse(e.to_string()))?;
    // The derived Deserialize ignores apiVersion and kind; a RayCluster or a template of another
    // version must not pass for one of ours.
    let expected = RayClusterTemplate::api_resource();
    if document["apiVersion"] != expected.api_version.as_str()
        || document["kind"] != expected.kind.as_str()
    {
        return Err(Error::Parse(format!(
            "expected apiVersion {} and kind {}",
            expected.api_version, expected.kind
        )));
    }
    let template: RayClusterTemplate =
        serde_json::from_value(document).map_err(|e| Error::Parse(e.to_string()))?;
    validate_template(&template)?;
    Ok(template)
}

/// The RayClusterTemplate CRD as YAML, as committed in deploy/crds.
pub fn crd_yaml() -> String {
    manifest_yaml(&RayClusterTemplate::crd())
}

/// Any manifest as YAML, the way raydar prints rendered clusters.
pub fn manifest_yaml(manifest: &impl Serialize) -> String {
    // Serializing plain data (no non-string map keys, no NaN) into a String cannot fail.
    serde_saphyr::to_string(manifest).unwrap_or_default()
}
