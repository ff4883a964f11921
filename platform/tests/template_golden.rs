//! The committed CRD and the shipped templates' rendered manifests stay what they were reviewed as.
//!
//! Regenerate after an intended change:
//! `UPDATE_GOLDEN=1 cargo test -p raydar-platform --test template_golden` (manifests) and
//! `cargo run -p raydar-platform --bin crdgen > deploy/crds/raydar.dev_rayclustertemplates.yaml`.

mod template_support;

use std::path::PathBuf;

use raydar_platform::template::{
    crd_yaml, manifest_yaml, LaunchRequest, PipelineRun, ANNOTATION_EXPIRES_AT, LABEL_OWNER,
    LABEL_PIPELINE, LABEL_RUN,
};
use serde_json::Value;
use template_support::{render_as_alice, request, shipped};

#[test]
fn committed_crd_is_generated_one() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/crds/raydar.dev_rayclustertemplates.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == crd_yaml(),
        "{} is not what the RayClusterTemplate type generates; regenerate it with\n  \
         cargo run -p raydar-platform --bin crdgen > deploy/crds/raydar.dev_rayclustertemplates.yaml",
        path.display()
    );
}

#[test]
fn at_least_the_three_templates_ship() {
    let names: Vec<String> = shipped()
        .into_iter()
        .map(|(stem, template)| {
            assert_eq!(
                template.metadata.name.as_deref(),
                Some(stem.as_str()),
                "file name is the template name"
            );
            stem
        })
        .collect();
    for expected in ["cpu-small", "gpu-multi-node", "gpu-single-node"] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
}

/// Each shipped template rendered with its defaults, compared as data (so map order cannot
/// matter) with platform/tests/golden/<template>.yaml.
#[test]
fn shipped_templates_render_as_reviewed() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let golden_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut stale = Vec::new();
    for (name, template) in shipped() {
        let manifest = render_as_alice(
            &template,
            &LaunchRequest { name: format!("{name}-demo"), ..request() },
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let path = golden_dir.join(format!("{name}.yaml"));
        if update {
            std::fs::write(&path, manifest_yaml(&manifest)).expect("golden file written");
            continue;
        }
        let golden: Option<Value> =
            std::fs::read_to_string(&path).ok().and_then(|t| serde_saphyr::from_str(&t).ok());
        if golden.as_ref() != Some(&manifest) {
            stale.push(format!("{}:\n{}", path.display(), manifest_yaml(&manifest)));
        }
    }
    assert!(
        stale.is_empty(),
        "rendered manifests differ from the golden files; if intended, regenerate with\n  \
         UPDATE_GOLDEN=1 cargo test -p raydar-platform --test template_golden\nnow rendered:\n{}",
        stale.join("\n")
    );
}

#[test]
fn shipped_templates_carry_the_policy() {
    for (name, template) in shipped() {
        let manifest =
            render_as_alice(&template, &request()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(manifest["metadata"]["labels"][LABEL_OWNER], "alice_example.com", "{name}");
        assert!(manifest["metadata"]["annotations"][ANNOTATION_EXPIRES_AT].is_string(), "{name}");
        assert!(!template.spec.policy.allowed_images.is_empty(), "{name} restricts images");
        let pods = std::iter::once(&manifest["spec"]["headGroupSpec"]["template"]).chain(
            manifest["spec"]["workerGroupSpecs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| &g["template"]),
        );
        for pod in pods {
            let spec = &pod["spec"];
            assert_eq!(pod["metadata"]["labels"][LABEL_OWNER], "alice_example.com", "{name}");
            assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{name}");
            assert_eq!(
                spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
                "{name}"
            );
            assert_eq!(
                spec["volumes"][0]["emptyDir"]["medium"], "Memory",
                "{name}: /dev/shm volume"
            );
            for container in spec["containers"].as_array().expect("containers") {
                let security = &container["securityContext"];
                assert_eq!(security["allowPrivilegeEscalation"], false, "{name}");
                assert_eq!(security["capabilities"]["drop"][0], "ALL", "{name}");
                let resources = &container["resources"];
                assert_eq!(
                    resources["requests"], resources["limits"],
                    "{name}: requests equal limits"
                );
            }
        }
    }
}

#[test]
fn forms_show_every_parameter() {
    for (name, template) in shipped() {
        let form = template.form();
        assert_eq!(form.name, name);
        assert_eq!(form.parameters.len(), template.spec.parameters.len());
        assert!(
            form.parameters.iter().all(|p| !p.description.is_empty() && p.default.is_some()),
            "{name}"
        );
        let json = serde_json::to_value(&form).expect("form serializes");
        assert!(json["parameters"][0]["type"].is_string());
    }
}

#[test]
fn a_pipelines_launch_is_labelled_with_its_run_as_label_values() {
    let (_, template) = shipped().into_iter().next().expect("a shipped template");
    let run = PipelineRun { name: "nightly train".into(), run: "5f2c-9a".into() };
    let launch = LaunchRequest { pipeline: Some(run), ..request() };
    let cluster = render_as_alice(&template, &launch).expect("renders");
    let labels = &cluster["metadata"]["labels"];
    assert_eq!(
        (&labels[LABEL_PIPELINE], &labels[LABEL_RUN]),
        (&"nightly_train".into(), &"5f2c-9a".into())
    );
    // The owner is still whoever asked, whatever the pipeline calls itself.
    assert_eq!(labels[LABEL_OWNER], "alice_example.com");
    let none = render_as_alice(&template, &request()).expect("renders");
    assert!(none["metadata"]["labels"].get(LABEL_PIPELINE).is_none());
}
