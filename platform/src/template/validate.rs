//! Checking a template when it is loaded, so that a broken template is an admin's error at load
//! time, not a launcher's surprise.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::check::{quoted, scalar_json, ParameterCheck};
use super::duration::parse_duration;
use super::parameter::FieldError;
use super::policy::is_dns_label_body;
use super::reference::{display_path, is_parameter_name, scan, Path, Reference};
use super::{Error, RayClusterTemplate, Result};

/// Request fields that errors are reported under next to parameters, so no parameter may take
/// their names.
const RESERVED_NAMES: [&str; 3] = ["name", "namespace", "owner"];

/// A template taken apart for rendering: checks per parameter and where each is referenced.
pub(super) struct CompiledTemplate<'a> {
    /// The template.
    pub template: &'a RayClusterTemplate,
    /// One check per parameter, in the template's order.
    pub checks: Vec<ParameterCheck<'a>>,
    /// Every reference in the spec document.
    pub references: Vec<(Path, Reference)>,
    /// `policy.maxLifetime`, parsed.
    pub max_lifetime: Option<Duration>,
}

/// Checks everything rendering relies on; errors name paths in the template.
pub(super) fn compile(
    template: &RayClusterTemplate,
) -> Result<CompiledTemplate<'_>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let name = template.template_name();
    // The name becomes the value of the raydar.dev/template label.
    if name.len() > 63 || !is_dns_label_body(name) {
        errors.push(FieldError::new(
            "metadata.name",
            format!(
                "must be a DNS label (at most 63 lowercase letters, digits and '-'), got {}",
                quoted(name)
            ),
        ));
    }

    let mut checks = Vec::new();
    let mut seen = Vec::new();
    for (index, parameter) in template.spec.parameters.iter().enumerate() {
        let field = parameter_path(index, &parameter.name);
        if !is_parameter_name(&parameter.name) {
            errors.push(FieldError::new(
                format!("{field}.name"),
                "must be a letter, then letters, digits or _",
            ));
        } else if RESERVED_NAMES.contains(&parameter.name.as_str()) {
            errors.push(FieldError::new(
                format!("{field}.name"),
                format!("{} is reserved", parameter.name),
            ));
        } else if seen.contains(&parameter.name.as_str()) {
            errors.push(FieldError::new(format!("{field}.name"), "is declared twice"));
        }
        seen.push(parameter.name.as_str());
        match ParameterCheck::new(parameter) {
            Ok(check) => checks.push(check),
            Err(problems) => errors.extend(
                problems
                    .into_iter()
                    .map(|(sub, message)| FieldError::new(format!("{field}.{sub}"), message)),
            ),
        }
    }

    let policy = &template.spec.policy;
    let max_lifetime = policy.max_lifetime.as_deref().and_then(|text| match parse_duration(text) {
        Ok(lifetime) if !lifetime.is_zero() => Some(lifetime),
        _ => {
            errors.push(FieldError::new(
                "spec.policy.maxLifetime",
                format!("must be a duration above zero like 8h or 7d, got {}", quoted(text)),
            ));
            None
        }
    });
    if let Some(idle) = &policy.idle {
        if let Err(problems) = crate::lifecycle::IdleRule::of(idle) {
            errors.extend(problems.into_iter().map(|(field, message)| {
                FieldError::new(format!("spec.policy.idle.{field}"), message)
            }));
        }
    }
    for (index, image) in policy.allowed_images.iter().enumerate() {
        if image.is_empty() || image.trim_end_matches('*').contains('*') {
            errors.push(FieldError::new(
                format!("spec.policy.allowedImages[{index}]"),
                "must be an image, or an image prefix followed by a single trailing *",
            ));
        }
    }

    let spec = &template.spec.ray_cluster_spec;
    if !spec.is_object() {
        errors
            .push(FieldError::new("spec.rayClusterSpec", "must be a RayCluster spec (a mapping)"));
    }
    let found = scan(spec);
    for (path, message) in found.errors {
        errors.push(FieldError::new(display_path("spec.rayClusterSpec", &path), message));
    }
    for (path, reference) in &found.references {
        if !seen.contains(&reference.name.as_str()) {
            errors.push(FieldError::new(
                display_path("spec.rayClusterSpec", path),
                format!(
                    "refers to {}, which is not a parameter of this template",
                    quoted(&reference.name)
                ),
            ));
        }
    }

    if errors.is_empty() {
        Ok(CompiledTemplate { template, checks, references: found.references, max_lifetime })
    } else {
        Err(errors)
    }
}

/// How errors name a parameter of the template: by name where it has a usable one.
fn parameter_path(index: usize, name: &str) -> String {
    if is_parameter_name(name) {
        format!("spec.parameters.{name}")
    } else {
        format!("spec.parameters[{index}]")
    }
}

/// Checks a template as it is loaded: everything rendering relies on, every parameter used and
/// every default valid, and the defaults within the template's own policy.
pub fn validate_template(template: &RayClusterTemplate) -> Result<()> {
    let invalid =
        |errors| Error::InvalidTemplate { template: template.template_name().to_owned(), errors };
    let compiled = compile(template).map_err(invalid)?;
    let mut errors = Vec::new();
    for check in &compiled.checks {
        let name = &check.parameter.name;
        if !compiled.references.iter().any(|(_, reference)| &reference.name == name) {
            errors.push(FieldError::new(
                format!("spec.parameters.{name}"),
                "is never used in rayClusterSpec",
            ));
        }
        if let Some(default) = &check.parameter.default {
            if let Err(message) = check.check(&scalar_json(default)) {
                errors.push(FieldError::new(format!("spec.parameters.{name}.default"), message));
            }
        }
    }
    // A template whose defaults break its own policy would refuse its own form as first shown.
    let all_defaulted = compiled.checks.iter().all(|c| c.parameter.default.is_some());
    if errors.is_empty() && all_defaulted {
        let values = compiled.values(&BTreeMap::<String, Value>::new(), &mut errors);
        let spec = compiled.substitute(&values);
        errors.extend(compiled.policy_errors(
            &spec,
            |name| format!("spec.parameters.{name}.default"),
            "spec.rayClusterSpec",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(invalid(errors))
    }
}
