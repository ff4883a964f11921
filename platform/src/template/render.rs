//! Rendering: a launch request and the launcher's identity, through a template, into a complete
//! RayCluster manifest (ray.io/v1), or every reason it cannot be launched.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::check::{scalar_json, ParameterValue};
use super::parameter::FieldError;
use super::policy::{
    check_spec, cluster_name_problem, culprits, label_pods, label_value, namespace_problem,
    Culprit, ANNOTATION_AT_EXPIRY, ANNOTATION_EXPIRES_AT, ANNOTATION_IDLE, ANNOTATION_LEASE,
    ANNOTATION_OWNER, ANNOTATION_PARAMETERS, LABEL_OWNER, LABEL_PIPELINE, LABEL_RUN, LABEL_TEAM,
    LABEL_TEMPLATE,
};
use super::reference::{display_path, get_mut, is_parameter_name};
use super::validate::{compile, CompiledTemplate};
use super::{Error, RayClusterTemplate, Result};

/// What a launcher asks for: where the cluster goes and the parameter values they set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LaunchRequest {
    /// Name of the RayCluster.
    pub name: String,
    /// Namespace of the RayCluster.
    pub namespace: String,
    /// Values by parameter name: JSON strings or numbers (forms and `--set` send text, the API
    /// may send numbers). Parameters left out take their defaults.
    #[serde(default)]
    pub parameters: BTreeMap<String, Value>,
    /// The pipeline run launching it, if one is: labels, so the list shows which run made what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<PipelineRun>,
    /// Launch it with a lease (`raydar.dev/lease-renewed-at`, now) that its launcher renews:
    /// unrenewed for raydar's `--lease-timeout`, it is reclaimed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lease: bool,
}

/// A pipeline's run, as the pipeline names itself. Informational: who launched is the owner,
/// from identity; these say which of the owner's pipelines and runs it was. Written as label
/// values: characters a label cannot hold become `_`, and each is cut to 63.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelineRun {
    /// The pipeline (a Dagster job's name, say): the `raydar.dev/pipeline` label.
    #[serde(default)]
    pub name: String,
    /// Its run (a Dagster run id, say): the `raydar.dev/run` label.
    #[serde(default)]
    pub run: String,
}

/// Who launches, as the authenticating proxy said; never taken from a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// The user name (`alice@example.com`).
    pub user: String,
    /// The user's team; empty for none.
    pub team: String,
}

impl LaunchRequest {
    /// A request for `namespace/name` with every parameter at its default.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        LaunchRequest {
            name: name.into(),
            namespace: namespace.into(),
            parameters: BTreeMap::new(),
            pipeline: None,
            lease: false,
        }
    }

    /// Sets one parameter (builder style, for the CLI's `--set` and tests).
    pub fn set(mut self, parameter: impl Into<String>, value: impl Into<Value>) -> Self {
        self.parameters.insert(parameter.into(), value.into());
        self
    }
}

/// Renders `request` through `template` for `identity` at time `now` into a RayCluster manifest.
///
/// Checks every parameter, the name, the namespace and the template's policy, and reports all
/// problems at once ([`Error::InvalidRequest`]); [`Error::InvalidTemplate`] if the template itself
/// is broken. Never panics, whatever the values.
pub fn render(
    template: &RayClusterTemplate,
    request: &LaunchRequest,
    identity: &Identity,
    now: Timestamp,
) -> Result<Value> {
    let compiled = compile(template).map_err(|errors| Error::InvalidTemplate {
        template: template.template_name().to_owned(),
        errors,
    })?;
    let mut errors = Vec::new();
    if let Some(problem) = cluster_name_problem(&request.name) {
        errors.push(FieldError::new("name", problem));
    }
    if let Some(problem) = namespace_problem(&request.namespace) {
        errors.push(FieldError::new("namespace", problem));
    }
    if identity.user.is_empty() {
        errors.push(FieldError::new(
            "owner",
            "no authenticated user: clusters are launched only for a known identity",
        ));
    }
    let values = compiled.values(&request.parameters, &mut errors);
    let known: Vec<&str> = compiled.checks.iter().map(|c| c.parameter.name.as_str()).collect();
    for name in request.parameters.keys().filter(|name| !known.contains(&name.as_str())) {
        let field = if is_parameter_name(name) { name.clone() } else { super::check::quoted(name) };
        let message = format!(
            "is not a parameter of template {}; it has {}",
            template.template_name(),
            known.join(", ")
        );
        errors.push(FieldError::new(field, message));
    }
    if !errors.is_empty() {
        return Err(Error::InvalidRequest(errors));
    }

    let mut spec = compiled.substitute(&values);
    let errors = compiled.policy_errors(&spec, |field| field.to_owned(), "spec");
    if !errors.is_empty() {
        return Err(Error::InvalidRequest(errors));
    }

    let mut labels = BTreeMap::from([
        (LABEL_OWNER.to_owned(), label_value(&identity.user)),
        (LABEL_TEMPLATE.to_owned(), template.template_name().to_owned()),
    ]);
    if !identity.team.is_empty() {
        labels.insert(LABEL_TEAM.to_owned(), label_value(&identity.team));
    }
    if let Some(pipeline) = &request.pipeline {
        for (key, value) in [(LABEL_PIPELINE, &pipeline.name), (LABEL_RUN, &pipeline.run)] {
            let value = label_value(value);
            if !value.is_empty() {
                labels.insert(key.to_owned(), value);
            }
        }
    }
    label_pods(&mut spec, &labels);
    let mut annotations = BTreeMap::from([
        (ANNOTATION_OWNER.to_owned(), identity.user.clone()),
        (ANNOTATION_PARAMETERS.to_owned(), compiled.chosen(&request.parameters).to_string()),
    ]);
    if request.lease {
        let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
        annotations.insert(ANNOTATION_LEASE.to_owned(), now.to_string());
    }
    if let Some(lifetime) = compiled.max_lifetime {
        let expires_at = expiry(now, lifetime).ok_or_else(|| Error::InvalidTemplate {
            template: template.template_name().to_owned(),
            errors: vec![FieldError::new("spec.policy.maxLifetime", "ends after the year 9999")],
        })?;
        annotations.insert(ANNOTATION_EXPIRES_AT.to_owned(), expires_at);
        if template.spec.policy.at_expiry == Some(super::ExpiryAction::Suspend) {
            annotations.insert(ANNOTATION_AT_EXPIRY.to_owned(), "suspend".to_owned());
        }
    }
    if let Some(idle) = &template.spec.policy.idle {
        // Stamped with its action spelled out: what the cluster was launched under, whatever
        // the default becomes.
        let action = idle.action.unwrap_or(super::ExpiryAction::Suspend);
        let stamped = super::IdlePolicy { action: Some(action), ..idle.clone() };
        annotations.insert(ANNOTATION_IDLE.to_owned(), json!(stamped).to_string());
    }
    Ok(json!({
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {
            "name": request.name,
            "namespace": request.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }))
}

/// `now + lifetime` in RFC 3339, to the second.
fn expiry(now: Timestamp, lifetime: Duration) -> Option<String> {
    let lifetime = SignedDuration::try_from(lifetime).ok()?;
    let end = Timestamp::from_second(now.as_second()).ok()?.checked_add(lifetime).ok()?;
    Some(end.to_string())
}

impl CompiledTemplate<'_> {
    /// Every parameter's value as the launch chose it (given, or the default), as a JSON object:
    /// what `raydar.dev/parameters` records, so history can say how a cluster was launched.
    fn chosen(&self, requested: &BTreeMap<String, Value>) -> Value {
        let chosen = self.checks.iter().filter_map(|check| {
            let parameter = check.parameter;
            let value = requested
                .get(&parameter.name)
                .cloned()
                .or_else(|| parameter.default.as_ref().map(scalar_json))?;
            Some((parameter.name.clone(), value))
        });
        Value::Object(chosen.collect())
    }

    /// Every parameter's checked value, from the request or the default, by name; failures go to
    /// `errors` under the parameter's name.
    pub(super) fn values(
        &self,
        requested: &BTreeMap<String, Value>,
        errors: &mut Vec<FieldError>,
    ) -> BTreeMap<String, ParameterValue> {
        let mut values = BTreeMap::new();
        for check in &self.checks {
            let parameter = check.parameter;
            let given = requested
                .get(&parameter.name)
                .cloned()
                .or_else(|| parameter.default.as_ref().map(scalar_json));
            let Some(given) = given else {
                errors.push(FieldError::new(&parameter.name, parameter.missing()));
                continue;
            };
            match check.check(&given) {
                Ok(value) => {
                    values.insert(parameter.name.clone(), value);
                }
                Err(message) => errors.push(FieldError::new(&parameter.name, message)),
            }
        }
        values
    }

    /// The RayCluster spec with every reference replaced by its typed value.
    pub(super) fn substitute(&self, values: &BTreeMap<String, ParameterValue>) -> Value {
        let mut spec = self.template.spec.ray_cluster_spec.clone();
        for (path, reference) in &self.references {
            if let (Some(slot), Some(value)) =
                (get_mut(&mut spec, path), values.get(&reference.name))
            {
                *slot = value.to_json(reference.as_string);
            }
        }
        spec
    }

    /// The policy's verdict on a substituted spec, as field errors: parameters are named through
    /// `parameter_field`, template paths start at `spec_prefix`.
    pub(super) fn policy_errors(
        &self,
        spec: &Value,
        parameter_field: impl Fn(&str) -> String,
        spec_prefix: &str,
    ) -> Vec<FieldError> {
        let policy = &self.template.spec.policy;
        let mut errors: Vec<FieldError> = Vec::new();
        for violation in check_spec(spec, policy.max_gpus, &policy.allowed_images) {
            let mut found = culprits(&violation, &self.references);
            // In the form's order, which is the template's.
            found.sort_by_key(|culprit| match culprit {
                Culprit::Parameter(name) => {
                    self.checks.iter().position(|c| &c.parameter.name == name)
                }
                Culprit::Template(_) => None,
            });
            for culprit in found {
                let field = match culprit {
                    Culprit::Parameter(name) => parameter_field(&name),
                    Culprit::Template(path) => display_path(spec_prefix, &path),
                };
                let error = FieldError::new(field, violation.message.clone());
                if !errors.contains(&error) {
                    errors.push(error);
                }
            }
        }
        errors
    }
}
