//! What the template tests share: the shipped templates, a fixed launcher and clock, and small
//! templates written for one case.

#![allow(dead_code)] // each test binary uses its own part of this

use std::path::PathBuf;

use k8s_openapi::jiff::Timestamp;
use raydar_platform::template::{
    parse_template, render, Error, FieldError, Identity, LaunchRequest, RayClusterTemplate,
};
use serde_json::Value;

/// deploy/templates, where the shipped templates live.
pub fn templates_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/templates")
}

/// Every shipped template with its file stem, sorted by name.
pub fn shipped() -> Vec<(String, RayClusterTemplate)> {
    let mut found: Vec<_> = std::fs::read_dir(templates_dir())
        .expect("deploy/templates exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable template");
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            let template =
                parse_template(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (stem, template)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// One shipped template by name.
pub fn shipped_template(name: &str) -> RayClusterTemplate {
    shipped().into_iter().find(|(stem, _)| stem == name).map(|(_, t)| t).expect("shipped template")
}

/// The launcher of every test.
pub fn alice() -> Identity {
    Identity { user: "alice@example.com".to_owned(), team: "ml-research".to_owned() }
}

/// The clock of every test.
pub fn now() -> Timestamp {
    "2025-06-01T12:00:00Z".parse().expect("valid timestamp")
}

/// A request for `ml-research/demo` with every parameter at its default.
pub fn request() -> LaunchRequest {
    LaunchRequest::new("ml-research", "demo")
}

/// Renders as alice, now.
pub fn render_as_alice(
    template: &RayClusterTemplate,
    request: &LaunchRequest,
) -> Result<Value, Error> {
    render(template, request, &alice(), now())
}

/// The field errors of a render that must fail because of the request.
pub fn request_errors(template: &RayClusterTemplate, request: &LaunchRequest) -> Vec<FieldError> {
    match render_as_alice(template, request) {
        Err(Error::InvalidRequest(errors)) => errors,
        other => panic!("expected invalid request, got {other:?}"),
    }
}

/// A template from YAML without validation, for tests of broken templates.
pub fn unchecked_template(yaml: &str) -> RayClusterTemplate {
    serde_saphyr::from_str(yaml).expect("template YAML")
}

/// A small template exercising every parameter type, whose string parameter accepts anything.
pub const EVERY_TYPE: &str = r#"
apiVersion: raydar.dev/v1alpha1
kind: RayClusterTemplate
metadata:
  name: every-type
spec:
  description: one parameter of each type
  parameters:
    - { name: workers, type: integer, default: 1, min: 0, max: 16 }
    - { name: note, type: string, pattern: "(?s).*", default: "hello" }
    - { name: flavour, type: enum, values: [small, large], default: small }
    - { name: memory, type: quantity, default: 4Gi, min: 1Gi, max: 64Gi }
    - { name: idle, type: duration, default: 10m, max: 2h }
    - { name: gpus, type: integer, default: 1, min: 0, max: 8 }
  policy:
    maxGpus: 16
    allowedImages: ["rayproject/ray:2.46.0*"]
    maxLifetime: 8h
  rayClusterSpec:
    rayVersion: "2.46.0"
    autoscalerOptions:
      idleTimeoutSeconds: "{{ idle }}"
    headGroupSpec:
      rayStartParams:
        num-cpus: "0"
        flavour: "{{ flavour }}"
      template:
        metadata:
          annotations:
            note: "{{ note }}"
        spec:
          containers:
            - name: ray-head
              image: rayproject/ray:2.46.0
              env:
                - { name: NOTE, value: "{{ note }}" }
                - { name: WORKERS, value: "{{ workers | string }}" }
                - { name: IDLE, value: "{{ idle | string }}" }
              resources:
                limits: { memory: "{{ memory }}" }
    workerGroupSpecs:
      - groupName: gpu
        replicas: "{{ workers }}"
        minReplicas: 0
        maxReplicas: 2
        template:
          spec:
            containers:
              - name: ray-worker
                image: rayproject/ray:2.46.0-gpu
                resources:
                  limits: { nvidia.com/gpu: "{{ gpus }}", memory: "{{ memory }}" }
"#;

/// [`EVERY_TYPE`], parsed and validated.
pub fn every_type() -> RayClusterTemplate {
    parse_template(EVERY_TYPE).expect("valid test template")
}
