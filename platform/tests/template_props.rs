//! Property tests: no parameter value, however it is written, changes any field but its own, and
//! nothing panics.

mod template_support;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use proptest::prelude::*;
use raydar_platform::template::{
    format_duration, manifest_yaml, parse_duration, Error, LaunchRequest, Quantity,
    RayClusterTemplate,
};
use serde_json::{json, Value};
use template_support::{every_type, render_as_alice, request, shipped};

/// Values that broke template engines before: YAML and JSON syntax, references, numbers out of
/// every range, control and bidirectional characters.
const NASTY: &[&str] = &[
    "",
    " ",
    "\n",
    "a: b\nspec:",
    "a: b\n  spec: {}",
    "\"",
    "'",
    "\\",
    "{{ workers }}",
    "{{ note }}",
    "{{",
    "}}",
    "1e100",
    "-1",
    "NaN",
    "inf",
    "-0",
    "0",
    "1",
    "8",
    "16",
    "8Gi",
    "-8Gi",
    "10m",
    "1h30m",
    "9223372036854775807",
    "9223372036854775808",
    "0x10",
    "1_000",
    "--- !!python/object:os.system",
    "&a [*a, *a]",
    "null",
    "~",
    "true",
    "no",
    "@",
    "`",
    "#",
    "- x",
    "? x",
    "|\n  x",
    ">-\n  x",
    "%YAML 1.2",
    "\u{0}",
    "\u{7f}",
    "\u{202e}evil",
    "🚀",
    "é",
    "Ω",
    "\t",
    "\r\n",
    "rayproject/ray:2.46.0-py311",
    "small",
];

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::sample::select(NASTY).prop_map(Value::from),
        2 => any::<String>().prop_map(Value::from),
        1 => (any::<char>(), 1usize..10_240).prop_map(|(c, n)| Value::from(c.to_string().repeat(n))),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(Value::from),
        1 => prop::sample::select(vec![json!(true), json!(null), json!([1]), json!({ "a": 1 }), json!(u64::MAX)]),
    ]
}

/// Every template under test (the shipped ones and one with a parameter of each type), each with
/// its manifest rendered from the defaults; read once, as every case needs them.
fn templates() -> &'static [(RayClusterTemplate, BTreeMap<String, Value>)] {
    static TEMPLATES: LazyLock<Vec<(RayClusterTemplate, BTreeMap<String, Value>)>> =
        LazyLock::new(|| {
            let mut all: Vec<_> = shipped().into_iter().map(|(_, t)| t).collect();
            all.push(every_type());
            all.into_iter()
                .map(|template| {
                    let baseline =
                        leaves(&render_as_alice(&template, &request()).expect("defaults render"));
                    (template, baseline)
                })
                .collect()
        });
    &TEMPLATES
}

/// Leaf values by path ("spec/workerGroupSpecs/0/replicas"); empty containers count as leaves.
fn leaves(value: &Value) -> BTreeMap<String, Value> {
    fn walk(value: &Value, path: String, out: &mut BTreeMap<String, Value>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                map.iter().for_each(|(k, v)| walk(v, format!("{path}/{k}"), out));
            }
            Value::Array(items) if !items.is_empty() => {
                items.iter().enumerate().for_each(|(i, v)| walk(v, format!("{path}/{i}"), out));
            }
            leaf => {
                out.insert(path, leaf.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(value, String::new(), &mut out);
    out
}

/// Where a parameter stands in the manifest, found independently of the engine: the string
/// leaves of the template's spec that are exactly a reference to it.
fn parameter_paths(template: &RayClusterTemplate, name: &str) -> Vec<String> {
    let is_reference = |text: &str| {
        let inner = text.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")).unwrap_or_default();
        let (referenced, conversion) = inner.split_once('|').unwrap_or((inner, "string"));
        referenced.trim() == name && conversion.trim() == "string"
    };
    leaves(&template.spec.ray_cluster_spec)
        .into_iter()
        .filter(|(_, leaf)| leaf.as_str().is_some_and(is_reference))
        .map(|(path, _)| format!("/spec{path}"))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// One parameter set to anything: either it is refused under its own name, or the manifest
    /// differs from the default one only where that parameter stands.
    #[test]
    fn a_value_changes_only_its_own_fields(pick in any::<prop::sample::Index>(), parameter in any::<prop::sample::Index>(), value in any_value()) {
        let (template, baseline) = pick.get(templates());
        let name = &parameter.get(&template.spec.parameters).name;
        let own = parameter_paths(template, name);
        prop_assert!(!own.is_empty());

        match render_as_alice(template, &request().set(name.clone(), value.clone())) {
            Ok(manifest) => {
                let rendered = leaves(&manifest);
                let paths: std::collections::BTreeSet<&String> = baseline.keys().chain(rendered.keys()).collect();
                // The launch's record of its parameters says the value too.
                let recorded = "/metadata/annotations/raydar.dev/parameters";
                let parameters: Value = serde_json::from_str(rendered[recorded].as_str().unwrap()).unwrap();
                prop_assert!(parameters.get(name.as_str()).is_some(), "{} not recorded: {}", name, parameters);
                for path in paths {
                    if !own.contains(path) && path != recorded {
                        prop_assert_eq!(baseline.get(path), rendered.get(path), "{} changed by {}={}", path, name, value);
                    }
                }
                for path in &own {
                    prop_assert!(rendered[path].is_string() || rendered[path].is_number());
                }
            }
            Err(Error::InvalidRequest(errors)) => {
                prop_assert!(errors.iter().any(|e| &e.field == name), "{:?}", errors);
            }
            Err(other) => prop_assert!(false, "unexpected {}", other),
        }
    }

    /// Any values for all parameters at once: a manifest or errors, never a panic.
    #[test]
    fn any_values_together_never_panic(pick in any::<prop::sample::Index>(), values in prop::collection::vec(any_value(), 8)) {
        let (template, _) = pick.get(templates());
        let launch = template.spec.parameters.iter().zip(values).fold(request(), |r, (p, v)| r.set(p.name.clone(), v));
        match render_as_alice(template, &launch) {
            Ok(_) | Err(Error::InvalidRequest(_)) => {}
            Err(other) => prop_assert!(false, "unexpected {}", other),
        }
    }

    /// A string parameter that accepts anything carries the exact value, and the manifest
    /// survives printing as YAML and reading back.
    #[test]
    fn any_text_arrives_intact(value in prop_oneof![
        3 => prop::sample::select(NASTY).prop_map(str::to_owned),
        3 => any::<String>(),
        1 => (any::<char>(), 1usize..10_240).prop_map(|(c, n)| c.to_string().repeat(n)),
    ]) {
        let template = &templates().last().expect("every_type").0;
        let manifest = render_as_alice(template, &request().set("note", value.clone())).expect("any text is allowed");
        let rendered = leaves(&manifest);
        for path in parameter_paths(template, "note") {
            prop_assert_eq!(&rendered[&path], &Value::from(value.as_str()));
        }
        let yaml = manifest_yaml(&manifest);
        let back: Value = serde_saphyr::from_str(&yaml).expect("printed YAML reads back");
        prop_assert_eq!(back, manifest);
    }

    /// Names and namespaces are checked, never trusted, never a panic.
    #[test]
    fn names_are_checked(name in prop_oneof![any::<String>(), "[a-z][a-z0-9-]{0,60}"], namespace in prop_oneof![any::<String>(), "[a-z0-9-]{1,70}"]) {
        let launch = LaunchRequest { name: name.clone(), namespace: namespace.clone(), ..request() };
        match render_as_alice(&templates().last().expect("every_type").0, &launch) {
            Ok(manifest) => {
                prop_assert_eq!(&manifest["metadata"]["name"], &Value::from(name.as_str()));
                prop_assert!(name.len() <= 53 && namespace.len() <= 63 && !name.ends_with('-') && !namespace.ends_with('-'));
            }
            Err(Error::InvalidRequest(errors)) => {
                prop_assert!(errors.iter().all(|e| e.field == "name" || e.field == "namespace"), "{:?}", errors);
            }
            Err(other) => prop_assert!(false, "unexpected {}", other),
        }
    }

    /// The parsers take any text without panicking.
    #[test]
    fn parsers_take_any_text(text in prop_oneof![any::<String>(), "[-+]?[0-9.]{0,30}([eE][-+]?[0-9]{0,4}|[KMGTPE]i|[numkMGTPE])?", "([0-9]{0,25}[dhms]){0,5}"]) {
        let _ = Quantity::parse(&text);
        if let Ok(duration) = parse_duration(&text) {
            prop_assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }
    }

    /// Every duration the parser accepts is written back in a form it reads.
    #[test]
    fn durations_round_trip(seconds in 0u64..(100 * 365 * 86_400)) {
        let duration = std::time::Duration::from_secs(seconds);
        prop_assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
    }
}
