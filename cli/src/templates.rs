//! Templates: `raydar templates`, and finding the template `-t` names (a file or a
//! RayClusterTemplate in the cluster).

use std::path::Path;

use kube::api::{Api, ListParams};
use platform::template::{
    parse_template, validate_template, RayClusterTemplate, Scalar, TemplateForm, TemplateParameter,
};

use crate::args::Output;
use crate::error::{Error, Result};
use crate::kubernetes::Kubernetes;
use crate::output::{print_json, print_text, table};

/// Where `-t` points.
pub enum TemplateSource {
    /// A YAML (or JSON) file.
    File(String),
    /// A RayClusterTemplate in the cluster, by name.
    Cluster(String),
}

impl TemplateSource {
    /// A file if one exists at `given`, or `given` looks like a path; else a template name.
    pub fn from_arg(given: &str) -> Self {
        let looks_like_path = given.contains(std::path::MAIN_SEPARATOR)
            || given.contains('/')
            || given.ends_with(".yaml")
            || given.ends_with(".yml")
            || given.ends_with(".json");
        if looks_like_path || Path::new(given).is_file() {
            TemplateSource::File(given.to_owned())
        } else {
            TemplateSource::Cluster(given.to_owned())
        }
    }

    /// Reads a file template; `None` for one that lives in the cluster.
    pub fn read_file(&self) -> Option<Result<RayClusterTemplate>> {
        let TemplateSource::File(path) = self else { return None };
        Some(
            std::fs::read_to_string(path)
                .map_err(|source| Error::TemplateFile { path: path.clone(), source })
                .and_then(|text| {
                    parse_template(&text).map_err(|e| Error::Template(format!("{path}: {e}")))
                }),
        )
    }

    /// The template, from its file or from the cluster.
    pub async fn load(&self, kubernetes: &Kubernetes) -> Result<RayClusterTemplate> {
        if let Some(file) = self.read_file() {
            return file;
        }
        let TemplateSource::Cluster(name) = self else { unreachable!("files were read above") };
        fetch(kubernetes, name).await
    }
}

/// One RayClusterTemplate from the cluster, checked as the platform checks templates.
async fn fetch(kubernetes: &Kubernetes, name: &str) -> Result<RayClusterTemplate> {
    let Some(template) = installed(kubernetes, name).await? else {
        return Err(Error::Precondition(format!(
            "no RayClusterTemplate {name} in the cluster and no file of that name; `raydar templates` lists them"
        )));
    };
    validate_template(&template)?;
    Ok(template)
}

/// The RayClusterTemplate `name` as the cluster has it, unchecked; `None` if it has none.
pub async fn installed(kubernetes: &Kubernetes, name: &str) -> Result<Option<RayClusterTemplate>> {
    let api: Api<RayClusterTemplate> = Api::all(kubernetes.client.clone());
    let action = format!("reading RayClusterTemplate {name}");
    kubernetes.call(&action, api.get_opt(name)).await.map_err(crd_missing)
}

/// `raydar templates`: every template of the cluster, with its parameters.
pub async fn list(kubernetes: &Kubernetes, output: Output) -> Result<()> {
    let api: Api<RayClusterTemplate> = Api::all(kubernetes.client.clone());
    let templates = kubernetes
        .call("listing RayClusterTemplates", api.list(&ListParams::default()))
        .await
        .map_err(crd_missing)?;
    let mut forms: Vec<TemplateForm> =
        templates.items.iter().map(RayClusterTemplate::form).collect();
    forms.sort_by(|a, b| a.name.cmp(&b.name));
    for template in &templates.items {
        if let Err(e) = validate_template(template) {
            eprintln!("warning: {}", e.to_string().replace('\n', " "));
        }
    }
    match output {
        Output::Json => print_json(&forms),
        Output::Text if forms.is_empty() => {
            eprintln!(
                "No RayClusterTemplates found; platform admins install them (deploy/templates)."
            );
        }
        Output::Text => print_text(&describe(&forms)),
    }
    Ok(())
}

/// The templates as text: each name and description, a table of its parameters, its limits.
pub fn describe(forms: &[TemplateForm]) -> String {
    let mut text = String::new();
    for (i, form) in forms.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(&format!("{}: {}\n", form.name, form.description));
        let mut rows = vec![["PARAMETER", "TYPE", "DEFAULT", "ALLOWED", "DESCRIPTION"]
            .map(str::to_owned)
            .to_vec()];
        rows.extend(form.parameters.iter().map(|p| {
            let default =
                p.default.as_ref().map_or_else(|| "(required)".to_owned(), Scalar::to_string);
            vec![p.name.clone(), p.kind.to_string(), default, allowed(p), p.description.clone()]
        }));
        for line in table(&rows).lines() {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
        let policy = &form.policy;
        let mut limits = Vec::new();
        if let Some(gpus) = policy.max_gpus {
            limits.push(format!("at most {gpus} GPUs"));
        }
        if let Some(lifetime) = &policy.max_lifetime {
            limits.push(format!("lives at most {lifetime}"));
        }
        if !policy.allowed_images.is_empty() {
            limits.push(format!("images {}", policy.allowed_images.join(", ")));
        }
        if !limits.is_empty() {
            text.push_str(&format!("  limits: {}\n", limits.join("; ")));
        }
    }
    text
}

/// What a parameter accepts, in a few words: `0 to 4`, `one of a, b`, `/[a-z]+/`.
fn allowed(parameter: &TemplateParameter) -> String {
    if !parameter.values.is_empty() {
        return format!("one of {}", parameter.values.join(", "));
    }
    if let Some(pattern) = &parameter.pattern {
        return format!("matches {pattern}");
    }
    match (&parameter.min, &parameter.max) {
        (Some(min), Some(max)) => format!("{min} to {max}"),
        (Some(min), None) => format!("at least {min}"),
        (None, Some(max)) => format!("at most {max}"),
        (None, None) => "any".to_owned(),
    }
}

/// A 404 on the template resource means the CRD is not installed; say how to fix that.
fn crd_missing(error: Error) -> Error {
    match error {
        Error::Refused { code: 404, .. } => Error::Precondition(
            "the RayClusterTemplate CRD (rayclustertemplates.raydar.dev) is not installed in this cluster; \
             a platform admin installs it from deploy/crds"
                .to_owned(),
        ),
        other => other,
    }
}
