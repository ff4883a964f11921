//! `raydar render` and argument handling, with no Kubernetes cluster anywhere: the built binary
//! runs without a kubeconfig.

mod support;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use support::{raydar_offline, repo_root};

const CPU_SMALL: &str = "deploy/templates/cpu-small.yaml";

fn golden(template: &str) -> Value {
    let path = repo_root().join(format!("platform/tests/golden/{template}.yaml"));
    serde_saphyr::from_str(&std::fs::read_to_string(path).expect("golden file"))
        .expect("golden YAML")
}

/// Renders as platform's golden files were rendered (alice, ml-research), except for the clock.
fn render_as_alice(template: &str, output: &str) -> support::Run {
    let file = format!("deploy/templates/{template}.yaml");
    let name = format!("{template}-demo");
    raydar_offline(&[
        "render",
        "-t",
        &file,
        "--name",
        &name,
        "-n",
        "ml-research",
        "--user",
        "alice@example.com",
        "--team",
        "ml-research",
        "-o",
        output,
    ])
}

/// Each shipped template prints the reviewed golden manifest, but for the expiry, which counts
/// from now.
#[test]
fn render_from_a_file_prints_the_golden_manifest() {
    for template in ["cpu-small", "gpu-single-node", "gpu-multi-node"] {
        let started = Timestamp::now();
        let run = render_as_alice(template, "text");
        assert_eq!(run.stderr, "", "{template}");
        let mut printed: Value = serde_saphyr::from_str(run.ok()).expect("stdout is YAML");
        let mut expected = golden(template);
        let expiry = "/metadata/annotations/raydar.dev~1expires-at";
        let expires: Timestamp =
            printed.pointer(expiry).and_then(Value::as_str).expect("expiry").parse().unwrap();
        let reviewed: Timestamp =
            expected.pointer(expiry).and_then(Value::as_str).unwrap().parse().unwrap();
        // platform's golden files render at 2025-06-01T12:00:00Z.
        let lifetime = reviewed.duration_since("2025-06-01T12:00:00Z".parse().unwrap());
        let from_now = expires.duration_since(started);
        assert!(
            (from_now - lifetime).abs() <= SignedDuration::from_secs(5),
            "{template}: expires {expires}, expected about {lifetime:?} after {started}"
        );
        *printed.pointer_mut(expiry).unwrap() = Value::Null;
        *expected.pointer_mut(expiry).unwrap() = Value::Null;
        assert_eq!(printed, expected, "{template}");
    }
}

#[test]
fn render_json_is_the_same_manifest() {
    let yaml: Value = serde_saphyr::from_str(render_as_alice("cpu-small", "text").ok()).unwrap();
    let json = render_as_alice("cpu-small", "json").json();
    assert_eq!(json["kind"], "RayCluster");
    assert_eq!(json["spec"], yaml["spec"]);
}

#[test]
fn set_values_reach_their_fields_typed() {
    let run = raydar_offline(&[
        "render",
        "-t",
        CPU_SMALL,
        "--set",
        "workers=3",
        "--set",
        "memory=16Gi",
        "--user",
        "bob",
        "-o",
        "json",
    ]);
    let manifest = run.json();
    let worker = &manifest["spec"]["workerGroupSpecs"][0];
    assert_eq!(worker["replicas"], 3);
    assert_eq!(
        worker["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "16Gi"
    );
    assert_eq!(
        manifest["metadata"]["namespace"], "default",
        "no kubeconfig: the default namespace"
    );
    assert_eq!(manifest["metadata"]["name"], "my-cluster");
}

/// Without --user nobody is authenticated: the owner is a placeholder, and the output says so.
#[test]
fn render_without_a_user_marks_the_owner_as_a_placeholder() {
    let run = raydar_offline(&["render", "-t", CPU_SMALL]);
    let text = run.ok();
    assert!(text.starts_with("# preview only: the owner is a placeholder"), "{text}");
    let manifest: Value = serde_saphyr::from_str(text).unwrap();
    assert_eq!(manifest["metadata"]["labels"]["raydar.dev/owner"], "placeholder-render-only");

    let run = raydar_offline(&["render", "-t", CPU_SMALL, "-o", "json"]);
    assert_eq!(
        run.json()["metadata"]["annotations"]["raydar.dev/owner"],
        "placeholder-render-only"
    );
    assert!(run.stderr.starts_with("note: preview only"), "{}", run.stderr);
}

#[test]
fn bad_set_value_is_a_field_error_and_a_failure() {
    let run = raydar_offline(&["render", "-t", CPU_SMALL, "--set", "workers=abc"]);
    assert_eq!(
        run.error_lines(),
        vec![r#"error: workers: must be an integer from 0 to 4, got "abc""#]
    );
    assert_eq!(run.stdout, "", "nothing rendered");

    let run = raydar_offline(&[
        "render",
        "-t",
        CPU_SMALL,
        "--set",
        "workers=9",
        "--set",
        "image=evil/miner:latest",
        "--set",
        "gpus=1",
        "--name",
        "Not_A_Name",
    ]);
    let lines = run.error_lines();
    for field in ["name", "workers", "image", "gpus"] {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("error: {field}: "))),
            "{field} in {lines:#?}"
        );
    }
}

/// Hostile values are refused with a field error, never a panic or a YAML surprise.
#[test]
fn hostile_values_are_refused_cleanly() {
    let long = format!("workers={}", "9".repeat(10_000));
    for set in [
        "workers=1e100",
        "workers=-1",
        "workers=NaN",
        "workers=1\nkind: Pod",
        "memory=\"8Gi\"",
        &long,
        "workers=🦀",
        "image=rayproject/ray:2.46.0-py311\n- evil",
    ] {
        let run = raydar_offline(&["render", "-t", CPU_SMALL, "--set", set]);
        let lines = run.error_lines();
        assert_eq!(lines.len(), 1, "{set:?}: {lines:#?}");
    }
}

#[test]
fn template_problems_are_one_line_failures() {
    let missing = raydar_offline(&["render", "-t", "deploy/templates/no-such.yaml"]);
    assert!(missing.error_lines()[0]
        .starts_with("error: cannot read template file deploy/templates/no-such.yaml"));

    // A RayCluster is not a template.
    let not_template = raydar_offline(&["render", "-t", "platform/tests/golden/cpu-small.yaml"]);
    let line = not_template.error_lines()[0];
    assert!(line.contains("not a RayClusterTemplate"), "{line}");

    // A template name needs the cluster, and there is none.
    let by_name = raydar_offline(&["render", "-t", "cpu-small"]);
    let lines = by_name.error_lines();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with("error: cannot load the Kubernetes configuration"),
        "{}",
        lines[0]
    );
}

#[test]
fn commands_that_need_a_cluster_fail_in_one_line_without_one() {
    for args in [
        &["ls"][..],
        &["templates"],
        &["down", "demo"],
        &["up", "demo", "-t", CPU_SMALL],
        &["extend", "demo", "--by", "1h"],
        &["protect", "demo", "--off"],
    ] {
        let run = raydar_offline(args);
        assert_eq!(run.error_lines().len(), 1, "{args:?}: {run:#?}");
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["render", "-t", CPU_SMALL, "--set", "workers"][..],
        &["up"],
        &["ls", "-o", "xml"],
        &["extend", "demo"],
        &["extend", "demo", "--by", "soon"],
        &["frobnicate"],
    ] {
        let run = raydar_offline(args);
        assert_eq!(run.code, 2, "{args:?}: {run:#?}");
    }
}
