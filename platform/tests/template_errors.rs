//! Every way a template or a launch request can be wrong, and what the error says.

mod template_support;

use raydar_platform::template::{
    parse_template, render, validate_template, Error, FieldError, Identity, LaunchRequest,
    ANNOTATION_EXPIRES_AT, ANNOTATION_IDLE, ANNOTATION_OWNER, LABEL_OWNER, LABEL_TEAM,
    LABEL_TEMPLATE,
};
use serde_json::{json, Value};
use template_support::{
    alice, every_type, now, render_as_alice, request, request_errors, shipped_template,
    unchecked_template, EVERY_TYPE,
};

fn error(field: &str, message: &str) -> FieldError {
    FieldError::new(field, message)
}

fn fields(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.field.as_str()).collect()
}

/// The errors of validating EVERY_TYPE with `from` replaced by `to`.
fn template_errors(from: &str, to: &str) -> Vec<FieldError> {
    assert!(EVERY_TYPE.contains(from), "test edits something that is there: {from}");
    let template = unchecked_template(&EVERY_TYPE.replacen(from, to, 1));
    match validate_template(&template) {
        Err(Error::InvalidTemplate { template, errors }) => {
            assert_eq!(template, "every-type");
            errors
        }
        other => panic!("expected an invalid template, got {other:?}"),
    }
}

// --- requests -------------------------------------------------------------------------------

#[test]
fn integer_says_range_and_value() {
    let template = shipped_template("cpu-small");
    assert_eq!(
        request_errors(&template, &request().set("workers", "abc")),
        [error("workers", r#"must be an integer from 0 to 4, got "abc""#)]
    );
    assert_eq!(
        request_errors(&template, &request().set("workers", 5)),
        [error("workers", "must be an integer from 0 to 4, got 5")]
    );
    for bad in [
        json!(2.5),
        json!("2.5"),
        json!(true),
        json!(null),
        json!([1]),
        json!("1e100"),
        json!("99999999999999999999"),
    ] {
        assert_eq!(
            fields(&request_errors(&template, &request().set("workers", bad.clone()))),
            ["workers"],
            "{bad}"
        );
    }
    let manifest =
        render_as_alice(&template, &request().set("workers", "3")).expect("text digits are fine");
    assert_eq!(manifest["spec"]["workerGroupSpecs"][0]["replicas"], 3, "substituted as a number");
}

#[test]
fn quantity_rejects_out_of_range_negative_and_nan() {
    let template = shipped_template("cpu-small");
    for bad in ["1e100", "-1", "NaN", "8 Gi", "", "64Gi", "1Gi", "1.5.5Gi"] {
        assert_eq!(
            request_errors(&template, &request().set("memory", bad)),
            [error(
                "memory",
                &format!(
                    r#"must be a non-negative Kubernetes quantity like 500m, 4 or 8Gi from 2Gi to 32Gi, got {bad:?}"#
                )
            )],
        );
    }
    let manifest =
        render_as_alice(&template, &request().set("memory", "16384Mi")).expect("valid quantity");
    assert_eq!(
        manifest["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"]
            ["limits"]["memory"],
        "16384Mi"
    );
}

#[test]
fn duration_says_format() {
    let template = shipped_template("gpu-multi-node");
    for bad in ["10", "1.5h", "3h", "30s", "-5m", "NaN"] {
        assert_eq!(
            request_errors(&template, &request().set("idleTimeout", bad)),
            [error(
                "idleTimeout",
                &format!("must be a duration like 30m, 2h or 1h30m from 1m to 2h, got {bad:?}")
            )]
        );
    }
    let manifest =
        render_as_alice(&template, &request().set("idleTimeout", "1h30m")).expect("valid duration");
    assert_eq!(
        manifest["spec"]["autoscalerOptions"]["idleTimeoutSeconds"], 5400,
        "durations become seconds"
    );
}

#[test]
fn enum_lists_values() {
    let template = every_type();
    assert_eq!(
        request_errors(&template, &request().set("flavour", "huge")),
        [error("flavour", r#"must be one of small, large, got "huge""#)]
    );
}

#[test]
fn string_says_pattern() {
    let template =
        unchecked_template(&EVERY_TYPE.replace(r#"pattern: "(?s).*""#, r#"pattern: "[a-z]+""#));
    validate_template(&template).expect("still valid");
    assert_eq!(
        request_errors(&template, &request().set("note", "a\nb")),
        [error("note", r#"must be text matching the pattern [a-z]+, got "a\nb""#)]
    );
    // Anchored: a match inside the value is not enough.
    assert_eq!(fields(&request_errors(&template, &request().set("note", "abc1"))), ["note"]);
}

#[test]
fn long_values_are_cut_in_messages() {
    let errors = request_errors(
        &shipped_template("cpu-small"),
        &request().set("workers", "x".repeat(10_000)),
    );
    assert!(errors[0].message.len() < 120, "{}", errors[0].message);
    assert!(errors[0].message.ends_with("…"));
}

#[test]
fn required_parameter_without_default() {
    let template =
        unchecked_template(&EVERY_TYPE.replace("default: small", "description: no default"));
    validate_template(&template).expect("a parameter without default is allowed");
    assert_eq!(
        request_errors(&template, &request()),
        [error("flavour", "is required: one of small, large")]
    );
}

#[test]
fn unknown_parameters_are_errors() {
    let errors = request_errors(
        &shipped_template("cpu-small"),
        &request().set("gpus", 8).set("bad key\n", 1),
    );
    assert_eq!(fields(&errors), ["\"bad key\\n\"", "gpus"]);
    assert_eq!(
        errors[1].message,
        "is not a parameter of template cpu-small; it has workers, cpus, memory, image"
    );
}

#[test]
fn names_follow_kuberay() {
    let template = shipped_template("cpu-small");
    let expected =
        "must be at most 53 characters of lowercase letters, digits and '-', starting with a letter and \
                    ending with a letter or digit, got";
    for bad in ["", "Demo", "1demo", "demo-", "de_mo", "demo.x", &"a".repeat(54), "démo"] {
        let errors =
            request_errors(&template, &LaunchRequest { name: bad.to_owned(), ..request() });
        assert_eq!(fields(&errors), ["name"], "{bad}");
        assert!(errors[0].message.starts_with(expected), "{}", errors[0].message);
    }
    render_as_alice(&template, &LaunchRequest { name: "a".repeat(53), ..request() })
        .expect("53 is the limit");
    for bad in ["", "Team", "team_a", "-team", &"a".repeat(64)] {
        let errors =
            request_errors(&template, &LaunchRequest { namespace: bad.to_owned(), ..request() });
        assert_eq!(fields(&errors), ["namespace"], "{bad}");
    }
    render_as_alice(&template, &LaunchRequest { namespace: "9-lives".to_owned(), ..request() })
        .expect("DNS-1123 labels may start with a digit");
}

#[test]
fn all_errors_at_once() {
    let bad = LaunchRequest { name: "Bad".to_owned(), namespace: "Bad".to_owned(), ..request() }
        .set("workers", -1)
        .set("memory", "lots")
        .set("image", "ubuntu")
        .set("extra", 1);
    let errors = request_errors(&shipped_template("cpu-small"), &bad);
    assert_eq!(fields(&errors), ["name", "namespace", "workers", "memory", "image", "extra"]);
}

#[test]
fn missing_identity_is_refused() {
    let errors = match render(&every_type(), &request(), &Identity::default(), now()) {
        Err(Error::InvalidRequest(errors)) => errors,
        other => panic!("{other:?}"),
    };
    assert_eq!(fields(&errors), ["owner"]);
}

// --- policy ---------------------------------------------------------------------------------

#[test]
fn gpu_limit_names_the_parameters_involved() {
    let template = shipped_template("gpu-multi-node");
    let message =
        "the cluster could hold 72 GPUs at full scale (gpu 9 × 8); this template allows at most 64";
    assert_eq!(
        request_errors(&template, &request().set("maxWorkers", 9)),
        [error("maxWorkers", message), error("gpusPerWorker", message)]
    );
    render_as_alice(&template, &request().set("maxWorkers", 16).set("gpusPerWorker", 4))
        .expect("16 × 4 = 64 fits");
}

#[test]
fn gpu_limit_counts_head_hosts_and_requests() {
    let template = unchecked_template(
        &EVERY_TYPE
            .replace(
                "limits: { memory: \"{{ memory }}\" }",
                "limits: { memory: \"{{ memory }}\", nvidia.com/gpu: 2 }",
            )
            .replace("maxReplicas: 2", "maxReplicas: 2\n        numOfHosts: 2")
            .replace("limits: { nvidia.com/gpu:", "requests: { nvidia.com/gpu:"),
    );
    // head 2 + 2 replicas × 2 hosts × 4 GPUs (from requests) = 18 > 16
    let errors = request_errors(&template, &request().set("gpus", 4));
    assert_eq!(fields(&errors), ["gpus"]);
    assert_eq!(
        errors[0].message,
        "the cluster could hold 18 GPUs at full scale (head 2 + gpu 2 × 2 hosts × 4); this template allows at most 16"
    );
}

#[test]
fn images_outside_the_list_are_refused() {
    let template = unchecked_template(
        &EVERY_TYPE
            .replace("image: rayproject/ray:2.46.0-gpu", "image: \"{{ image }}\"")
            .replace("parameters:", "parameters:\n    - { name: image, type: string, pattern: \"[a-z0-9./:-]+\", default: rayproject/ray:2.46.0-gpu }"),
    );
    validate_template(&template).expect("valid");
    assert_eq!(
        request_errors(&template, &request().set("image", "evil/miner:latest")),
        [error(
            "image",
            r#"image "evil/miner:latest" is not allowed; this template allows rayproject/ray:2.46.0*"#
        )]
    );
    render_as_alice(&template, &request().set("image", "rayproject/ray:2.46.0-py311"))
        .expect("prefix entry");
}

#[test]
fn worker_bounds_must_hold() {
    let template = shipped_template("gpu-multi-node");
    assert_eq!(
        request_errors(&template, &request().set("minWorkers", 4).set("maxWorkers", 2)),
        [
            error(
                "minWorkers",
                "worker group gpu: minReplicas (4) must not be above maxReplicas (2)"
            ),
            error(
                "maxWorkers",
                "worker group gpu: minReplicas (4) must not be above maxReplicas (2)"
            ),
        ]
    );
    let template = unchecked_template(
        &EVERY_TYPE
            .replace("maxReplicas: 2", "maxReplicas: \"{{ workers }}\"")
            .replace("replicas: \"{{ workers }}\"", "replicas: 3"),
    );
    assert_eq!(
        request_errors(&template, &request().set("workers", 2)),
        [error("workers", "worker group gpu: replicas (3) must not be above maxReplicas (2)")]
    );
}

#[test]
fn owner_comes_from_identity_only() {
    let template = every_type();
    let identity = Identity { user: "Bob Smith@corp".to_owned(), team: String::new() };
    let manifest =
        render(&template, &request().set("note", "raydar.dev/owner: mallory"), &identity, now())
            .expect("renders");
    let labels = &manifest["metadata"]["labels"];
    assert_eq!(
        labels,
        &json!({ LABEL_OWNER: "Bob_Smith_corp", LABEL_TEMPLATE: "every-type" }),
        "no team label without a team"
    );
    assert_eq!(manifest["metadata"]["annotations"][ANNOTATION_OWNER], "Bob Smith@corp");
    assert_eq!(manifest["spec"]["headGroupSpec"]["template"]["metadata"]["labels"], *labels);
    assert_eq!(manifest["spec"]["workerGroupSpecs"][0]["template"]["metadata"]["labels"], *labels);
}

#[test]
fn labels_and_expiry() {
    let manifest = render_as_alice(&every_type(), &request()).expect("renders");
    assert_eq!(manifest["apiVersion"], "ray.io/v1");
    assert_eq!(manifest["kind"], "RayCluster");
    assert_eq!(manifest["metadata"]["name"], "demo");
    assert_eq!(manifest["metadata"]["namespace"], "ml-research");
    assert_eq!(manifest["metadata"]["labels"][LABEL_TEAM], "ml-research");
    assert_eq!(
        manifest["metadata"]["annotations"][ANNOTATION_EXPIRES_AT], "2025-06-01T20:00:00Z",
        "now + 8h"
    );
    let without_lifetime = unchecked_template(&EVERY_TYPE.replace("maxLifetime: 8h", ""));
    let manifest = render_as_alice(&without_lifetime, &request()).expect("renders");
    assert!(manifest["metadata"]["annotations"].get(ANNOTATION_EXPIRES_AT).is_none());
}

#[test]
fn conversions_to_string() {
    let manifest =
        render_as_alice(&every_type(), &request().set("workers", 2).set("idle", "1h30m"))
            .expect("renders");
    let env = &manifest["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env[1]["value"], "2");
    assert_eq!(env[2]["value"], "1h30m");
    assert_eq!(manifest["spec"]["autoscalerOptions"]["idleTimeoutSeconds"], 5400);
}

// --- templates ------------------------------------------------------------------------------

#[test]
fn reference_inside_a_longer_string() {
    assert_eq!(
        template_errors("value: \"{{ note }}\"", "value: \"note: {{ note }}\""),
        [error(
            "spec.rayClusterSpec.headGroupSpec.template.spec.containers[0].env[0].value",
            r#"a parameter reference must be the whole value, exactly "{{ name }}", got "note: {{ note }}""#
        )]
    );
}

#[test]
fn reference_to_unknown_parameter() {
    assert_eq!(
        template_errors("replicas: \"{{ workers }}\"", "replicas: \"{{ wrokers }}\""),
        [error(
            "spec.rayClusterSpec.workerGroupSpecs[0].replicas",
            r#"refers to "wrokers", which is not a parameter of this template"#
        ),]
    );
}

#[test]
fn reference_in_a_key_and_reserved_keys() {
    let errors =
        template_errors("num-cpus: \"0\"", "\"{{ note }}\": \"0\"\n        raydar.dev/owner: me");
    assert_eq!(
        errors,
        [
            error(
                "spec.rayClusterSpec.headGroupSpec.rayStartParams[\"raydar.dev/owner\"]",
                "keys under raydar.dev/ are set by raydar alone"
            ),
            error(
                "spec.rayClusterSpec.headGroupSpec.rayStartParams[\"{{ note }}\"]",
                "a parameter may only stand as a value, not in a key"
            ),
        ]
    );
}

#[test]
fn unknown_conversion() {
    let errors = template_errors("\"{{ workers | string }}\"", "\"{{ workers | upper }}\"");
    assert_eq!(errors[0].message, r#"unknown conversion "upper": only "| string" exists"#);
}

#[test]
fn unused_and_badly_named_parameters() {
    assert_eq!(
        template_errors("\"{{ flavour }}\"", "small"),
        [error("spec.parameters.flavour", "is never used in rayClusterSpec")]
    );
    // Renaming `flavour` also leaves its reference pointing nowhere.
    let dangling = "spec.rayClusterSpec.headGroupSpec.rayStartParams.flavour";
    assert_eq!(
        fields(&template_errors("name: flavour", "name: workers")),
        ["spec.parameters.workers.name", dangling]
    );
    assert_eq!(
        fields(&template_errors("name: flavour", "name: name")),
        ["spec.parameters.name.name", dangling]
    );
    assert_eq!(
        fields(&template_errors("name: flavour", "name: 2flavour")),
        ["spec.parameters[2].name", dangling]
    );
}

#[test]
fn parameter_definitions() {
    let cases = [
        (
            "default: 1, min: 0",
            "default: 20, min: 0",
            "spec.parameters.workers.default",
            "must be an integer from 0 to 16, got 20",
        ),
        (
            "min: 0, max: 16",
            "min: 17, max: 16",
            "spec.parameters.workers.max",
            "must not be below min",
        ),
        (
            "min: 1Gi",
            "min: lots",
            "spec.parameters.memory.min",
            r#""lots" is not a non-negative Kubernetes quantity like 500m, 4 or 8Gi"#,
        ),
        (
            "min: 1Gi",
            "min: \"-1Gi\"",
            "spec.parameters.memory.min",
            r#""-1Gi" is not a non-negative Kubernetes quantity like 500m, 4 or 8Gi"#,
        ),
        (
            "max: 2h",
            "max: 2",
            "spec.parameters.idle.max",
            r#""2" is not a duration like 30m, 2h or 1h30m"#,
        ),
        (
            "pattern: \"(?s).*\", ",
            "",
            "spec.parameters.note.pattern",
            "a string parameter needs a pattern that says what it accepts",
        ),
        (
            "values: [small, large]",
            "values: []",
            "spec.parameters.flavour.values",
            "an enum parameter needs its allowed values",
        ),
        (
            "values: [small, large]",
            "values: [small, small]",
            "spec.parameters.flavour.values",
            r#""small" is listed twice"#,
        ),
        (
            "type: enum,",
            "type: enum, min: 1,",
            "spec.parameters.flavour.min",
            "only integer, quantity and duration parameters have a min",
        ),
        (
            "type: integer, default: 1,",
            "type: integer, pattern: x, default: 1,",
            "spec.parameters.workers.pattern",
            "only string parameters have a pattern",
        ),
    ];
    for (from, to, field, message) in cases {
        assert_eq!(template_errors(from, to), [error(field, message)], "{to}");
    }
    let errors = template_errors("pattern: \"(?s).*\"", "pattern: \"a)|(b\"");
    assert_eq!(fields(&errors), ["spec.parameters.note.pattern"]);
    assert!(errors[0].message.starts_with("not a valid regular expression"));
}

#[test]
fn policy_definitions() {
    assert_eq!(
        template_errors("maxLifetime: 8h", "maxLifetime: forever"),
        [error(
            "spec.policy.maxLifetime",
            r#"must be a duration above zero like 8h or 7d, got "forever""#
        )]
    );
    assert_eq!(
        fields(&template_errors("maxLifetime: 8h", "maxLifetime: \"0\"")),
        ["spec.policy.maxLifetime"]
    );
    assert_eq!(
        fields(&template_errors(
            "allowedImages: [\"rayproject/ray:2.46.0*\"]",
            "allowedImages: [\"*ray*\"]"
        )),
        ["spec.policy.allowedImages[0]"]
    );
    let idle = |policy: &str| {
        EVERY_TYPE.replace("maxLifetime: 8h", &format!("maxLifetime: 8h\n    idle: {policy}"))
    };
    let errors = validate_template(&unchecked_template(&idle("{gpuBelow: 150, after: 1d}")));
    assert_eq!(
        errors.unwrap_err().field_errors(),
        [
            error(
                "spec.policy.idle.gpuBelow",
                "must be a percentage above 0, at most 100, got 150"
            ),
            error(
                "spec.policy.idle.after",
                r#"must be a duration from 1m to 6h like 30m or 2h, got "1d""#
            ),
        ]
    );
    let valid = unchecked_template(&idle("{gpuBelow: 10, after: 2h}"));
    validate_template(&valid).expect("a valid idle policy");
    let manifest = render_as_alice(&valid, &request()).expect("renders");
    let stamped: Value = serde_json::from_str(
        manifest["metadata"]["annotations"][ANNOTATION_IDLE].as_str().expect("stamped"),
    )
    .unwrap();
    assert_eq!(stamped, json!({"gpuBelow": 10.0, "after": "2h", "action": "suspend"}));
    let renamed = unchecked_template(&EVERY_TYPE.replace("name: every-type", "name: Every_Type"));
    let errors = validate_template(&renamed).unwrap_err();
    assert_eq!(fields(errors.field_errors()), ["metadata.name"]);
}

#[test]
fn defaults_must_keep_the_policy() {
    assert_eq!(
        template_errors("maxGpus: 16", "maxGpus: 1"),
        [error(
            "spec.parameters.gpus.default",
            "the cluster could hold 2 GPUs at full scale (gpu 2 × 1); this template allows at most 1"
        )]
    );
    assert_eq!(
        template_errors("image: rayproject/ray:2.46.0-gpu", "image: ubuntu"),
        [error(
            "spec.rayClusterSpec.workerGroupSpecs[0].template.spec.containers[0].image",
            r#"image "ubuntu" is not allowed; this template allows rayproject/ray:2.46.0*"#
        )]
    );
}

#[test]
fn render_refuses_a_broken_template() {
    let template = unchecked_template(&EVERY_TYPE.replace("\"{{ idle }}\"", "\"{{ idel }}\""));
    match render(&template, &request(), &alice(), now()) {
        Err(Error::InvalidTemplate { template, errors }) => {
            assert_eq!(template, "every-type");
            assert_eq!(
                fields(&errors),
                ["spec.rayClusterSpec.autoscalerOptions.idleTimeoutSeconds"]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn parse_checks_kind_and_validates() {
    let error = parse_template(&EVERY_TYPE.replace("kind: RayClusterTemplate", "kind: RayCluster"))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "not a RayClusterTemplate: expected apiVersion raydar.dev/v1alpha1 and kind RayClusterTemplate"
    );
    assert!(matches!(parse_template("{ not yaml"), Err(Error::Parse(_))));
    assert!(matches!(
        parse_template(&EVERY_TYPE.replace("\"{{ flavour }}\"", "small")),
        Err(Error::InvalidTemplate { .. })
    ));
    let error =
        parse_template(&EVERY_TYPE.replace("maxLifetime: 8h", "maxLifetime: 1y")).unwrap_err();
    assert_eq!(error.field_errors().len(), 1);
    assert!(error
        .to_string()
        .starts_with("template every-type is invalid: spec.policy.maxLifetime: must be"));
}

#[test]
fn huge_numbers_do_not_overflow() {
    let template = unchecked_template(
        &EVERY_TYPE
            .replace("default: 1, min: 0, max: 16", "default: 1, min: 0")
            .replace("default: 1, min: 0, max: 8", "default: 1, min: 0")
            .replace(
                "maxReplicas: 2",
                "maxReplicas: \"{{ workers }}\"\n        numOfHosts: \"{{ workers }}\"",
            ),
    );
    validate_template(&template).expect("valid");
    let errors =
        request_errors(&template, &request().set("workers", i64::MAX).set("gpus", i64::MAX));
    assert_eq!(fields(&errors), ["workers", "gpus"]);
    assert!(errors[0]
        .message
        .starts_with("the cluster could hold 340282366920938463463374607431768211455 GPUs"));
}
