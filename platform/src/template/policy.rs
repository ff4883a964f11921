//! The platform's rules, applied to every rendered cluster whatever its template says: who owns
//! it, valid names, the GPU limit, allowed images, sane worker group bounds.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::quantity::Quantity;
use super::reference::{get, get_mut, Path, Reference, Segment};
pub(super) use super::value::{cluster_name_problem, is_dns_label_body, namespace_problem};
use crate::kuberay::GPU_RESOURCE;

/// Label naming who launched the cluster (from the authenticated identity, never from input).
pub const LABEL_OWNER: &str = "raydar.dev/owner";
/// Label naming the launcher's team.
pub const LABEL_TEAM: &str = "raydar.dev/team";
/// Label naming the template the cluster came from.
pub const LABEL_TEMPLATE: &str = "raydar.dev/template";
/// Label naming the pipeline (a Dagster job, say) that launched the cluster, as it said.
pub const LABEL_PIPELINE: &str = "raydar.dev/pipeline";
/// Label naming the pipeline's run that launched the cluster, as it said.
pub const LABEL_RUN: &str = "raydar.dev/run";
/// Annotation holding the owner exactly: label values cannot hold every user name (`@`).
pub const ANNOTATION_OWNER: &str = "raydar.dev/owner";
/// Annotation holding when the cluster's lifetime ends (RFC 3339).
pub const ANNOTATION_EXPIRES_AT: &str = "raydar.dev/expires-at";
/// Annotation saying what happens at expiry: `suspend`, or (absent, or `teardown`) deletion.
pub const ANNOTATION_AT_EXPIRY: &str = "raydar.dev/at-expiry";
/// Annotation holding the template's idle policy as the cluster was launched under it, a JSON
/// object (`{"gpuBelow": 10, "after": "2h", "action": "suspend"}`): raydar reclaims the cluster
/// when it sits idle that long.
pub const ANNOTATION_IDLE: &str = "raydar.dev/idle";
/// Annotation that exempts a cluster from every reclaim (expiry, idleness, leases) when `"true"`;
/// only those allowed to patch the cluster can set it (templates cannot: `raydar.dev/` is
/// reserved).
pub const ANNOTATION_PROTECT: &str = "raydar.dev/protect";
/// Annotation holding when a pipeline last renewed the cluster's lease (RFC 3339): a cluster
/// launched with a lease is reclaimed once it goes unrenewed for raydar's `--lease-timeout`, so a
/// pipeline that dies leaves nothing behind.
pub const ANNOTATION_LEASE: &str = "raydar.dev/lease-renewed-at";
/// Annotation holding the template's parameters as the launch chose them, a JSON object: how the
/// cluster was launched, for its history.
pub const ANNOTATION_PARAMETERS: &str = "raydar.dev/parameters";
/// Field manager of every server-side apply raydar makes, from the server and the CLI alike, so
/// Kubernetes sees one owner of the fields a launch sets.
pub const FIELD_MANAGER: &str = "raydar";

/// Longest label value and DNS label.
const MAX_LABEL: usize = 63;

/// The label value raydar writes for a user or team (`raydar.dev/owner`, `raydar.dev/team`): the
/// name itself where it is a valid label value, otherwise with each disallowed character replaced
/// by `_` and cut to 63 characters.
pub fn label_value(name: &str) -> String {
    let replaced: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .take(MAX_LABEL)
        .collect();
    replaced.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_owned()
}

/// The pod templates of a RayCluster spec: the head's, then each worker group's, with their paths.
fn pod_template_paths(spec: &Value) -> Vec<Path> {
    let key = |k: &str| Segment::Key(k.to_owned());
    let mut paths = vec![vec![key("headGroupSpec"), key("template")]];
    let groups = spec.get("workerGroupSpecs").and_then(Value::as_array).map_or(0, Vec::len);
    paths.extend(
        (0..groups).map(|i| vec![key("workerGroupSpecs"), Segment::Index(i), key("template")]),
    );
    paths
}

/// Puts `labels` on every pod template, over whatever the template wrote, so per-pod metrics and
/// `kubectl get pods -l` find the owner too.
pub(super) fn label_pods(spec: &mut Value, labels: &BTreeMap<String, String>) {
    for path in pod_template_paths(spec) {
        let Some(Value::Object(template)) = get_mut(spec, &path) else { continue };
        let Some(metadata) = object_entry(template, "metadata") else { continue };
        let Some(pod_labels) = object_entry(metadata, "labels") else { continue };
        for (key, value) in labels {
            pod_labels.insert(key.clone(), Value::from(value.as_str()));
        }
    }
}

/// The object under `key`, created when missing or null; `None` if something else is there.
fn object_entry<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let entry = map.entry(key).or_insert(Value::Null);
    if entry.is_null() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut()
}

/// A policy violation before it is given a field: the places in the spec that caused it.
pub(super) struct Violation {
    /// Paths in the RayCluster spec whose values together break the rule.
    pub paths: Vec<Path>,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// Who a violation is reported against.
#[derive(Debug, PartialEq)]
pub(super) enum Culprit {
    /// A parameter whose value sits at one of the violation's paths.
    Parameter(String),
    /// The template, at this path of the spec, when no parameter is involved.
    Template(Path),
}

/// The culprits of a violation: the parameters whose values sit at its paths, or, when the
/// template alone is at fault, its first path.
pub(super) fn culprits(violation: &Violation, references: &[(Path, Reference)]) -> Vec<Culprit> {
    let mut found: Vec<Culprit> = Vec::new();
    for (path, reference) in references {
        let culprit = Culprit::Parameter(reference.name.clone());
        if violation.paths.contains(path) && !found.contains(&culprit) {
            found.push(culprit);
        }
    }
    if found.is_empty() {
        found.extend(violation.paths.first().cloned().map(Culprit::Template));
    }
    found
}

/// Checks the GPU total, the images and the worker group bounds of a rendered spec.
pub(super) fn check_spec(
    spec: &Value,
    max_gpus: Option<u32>,
    allowed_images: &[String],
) -> Vec<Violation> {
    let mut violations = worker_bounds(spec);
    if let Some(max) = max_gpus {
        violations.extend(gpu_total(spec, max));
    }
    if !allowed_images.is_empty() {
        violations.extend(images(spec, allowed_images));
    }
    violations
}

/// A whole non-negative number at `path`: a JSON integer or a quantity text such as `"8"`.
fn whole_number(spec: &Value, path: &[Segment]) -> Result<Option<u64>, Violation> {
    let value = get(spec, path);
    let invalid = || Violation {
        paths: vec![path.to_vec()],
        message: format!(
            "must be a whole non-negative number, got {}",
            super::check::quoted(&value.map(Value::to_string).unwrap_or_default())
        ),
    };
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(invalid),
        Some(Value::String(text)) => Quantity::parse(text)
            .ok()
            .and_then(Quantity::whole_units)
            .and_then(|n| u64::try_from(n).ok())
            .map(Some)
            .ok_or_else(invalid),
        Some(_) => Err(invalid()),
    }
}

/// GPUs one pod holds, and the paths of the values counted: limits win over requests, as the
/// scheduler counts extended resources by limit.
fn pod_gpus(spec: &Value, template: &Path) -> Result<(u64, Vec<Path>), Violation> {
    let mut total = 0u64;
    let mut paths = Vec::new();
    let containers = get(spec, &[template.clone(), keys(&["spec", "containers"])].concat())
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    for index in 0..containers {
        let container =
            [template.clone(), keys(&["spec", "containers"]), vec![Segment::Index(index)]].concat();
        for side in ["limits", "requests"] {
            let path = [container.clone(), keys(&["resources", side, GPU_RESOURCE])].concat();
            if let Some(gpus) = whole_number(spec, &path)? {
                total = total.saturating_add(gpus);
                paths.push(path);
                break;
            }
        }
    }
    Ok((total, paths))
}

fn keys(names: &[&str]) -> Path {
    names.iter().map(|k| Segment::Key((*k).to_owned())).collect()
}

/// The most GPUs the cluster can hold: the head plus every worker group at `maxReplicas` (which
/// KubeRay treats as unbounded when absent) times its hosts.
fn gpu_total(spec: &Value, max: u32) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut total: u128 = 0;
    let mut paths = Vec::new();
    let mut parts = Vec::new();
    for template in pod_template_paths(spec) {
        let (gpus, gpu_paths) = match pod_gpus(spec, &template) {
            Ok(found) => found,
            Err(violation) => {
                violations.push(violation);
                continue;
            }
        };
        if gpus == 0 {
            continue;
        }
        paths.extend(gpu_paths);
        let group = &template[..template.len() - 1];
        if group.first() == Some(&Segment::Key("headGroupSpec".to_owned())) {
            total = total.saturating_add(u128::from(gpus));
            parts.push(format!("head {gpus}"));
            continue;
        }
        let max_replicas = [group, &keys(&["maxReplicas"])].concat();
        let hosts = [group, &keys(&["numOfHosts"])].concat();
        let (replicas, hosts_count) =
            match (whole_number(spec, &max_replicas), whole_number(spec, &hosts)) {
                (Ok(replicas), Ok(hosts_count)) => (
                    replicas.unwrap_or(u64::from(i32::MAX.unsigned_abs())),
                    hosts_count.unwrap_or(1),
                ),
                (Err(violation), _) | (_, Err(violation)) => {
                    violations.push(violation);
                    continue;
                }
            };
        // Saturating: every factor can be near u64::MAX when the template leaves a bound open.
        total = total.saturating_add(
            u128::from(gpus)
                .saturating_mul(u128::from(replicas))
                .saturating_mul(u128::from(hosts_count)),
        );
        let name = get(spec, &[group, &keys(&["groupName"])].concat())
            .and_then(Value::as_str)
            .unwrap_or("workers");
        let hosts_text =
            if hosts_count == 1 { String::new() } else { format!(" × {hosts_count} hosts") };
        parts.push(format!("{name} {replicas}{hosts_text} × {gpus}"));
        paths.push(max_replicas);
        paths.push(hosts);
    }
    if total > u128::from(max) {
        violations.push(Violation {
            paths,
            message: format!(
                "the cluster could hold {total} GPUs at full scale ({}); this template allows at most {max}",
                parts.join(" + ")
            ),
        });
    }
    violations
}

/// Every container image (init containers and the autoscaler's included) must be allowed.
fn images(spec: &Value, allowed: &[String]) -> Vec<Violation> {
    let mut image_paths = vec![keys(&["autoscalerOptions", "image"])];
    for template in pod_template_paths(spec) {
        for list in ["initContainers", "containers"] {
            let containers = [template.clone(), keys(&["spec", list])].concat();
            let count = get(spec, &containers).and_then(Value::as_array).map_or(0, Vec::len);
            image_paths.extend(
                (0..count).map(|i| {
                    [containers.clone(), vec![Segment::Index(i)], keys(&["image"])].concat()
                }),
            );
        }
    }
    image_paths
        .into_iter()
        .filter_map(|path| {
            let image = get(spec, &path)?.as_str()?;
            let ok = allowed.iter().any(|entry| match entry.strip_suffix('*') {
                Some(prefix) => image.starts_with(prefix),
                None => image == entry,
            });
            (!ok).then(|| Violation {
                message: format!(
                    "image {} is not allowed; this template allows {}",
                    super::check::quoted(image),
                    allowed.join(", ")
                ),
                paths: vec![path],
            })
        })
        .collect()
}

/// Each worker group's `minReplicas` ≤ `replicas` ≤ `maxReplicas`, where set.
fn worker_bounds(spec: &Value) -> Vec<Violation> {
    let groups = spec.get("workerGroupSpecs").and_then(Value::as_array).map_or(0, Vec::len);
    let mut violations = Vec::new();
    for index in 0..groups {
        let group = vec![Segment::Key("workerGroupSpecs".to_owned()), Segment::Index(index)];
        let field = |name: &str| [group.clone(), keys(&[name])].concat();
        let mut read = |name: &str| match whole_number(spec, &field(name)) {
            Ok(n) => n,
            Err(violation) => {
                violations.push(violation);
                None
            }
        };
        let (min, replicas, max) = (read("minReplicas"), read("replicas"), read("maxReplicas"));
        let name =
            get(spec, &field("groupName")).and_then(Value::as_str).unwrap_or("workers").to_owned();
        // Records a violation when low > high; true if it did.
        let mut require = |low: Option<u64>, low_name: &str, high: Option<u64>, high_name: &str| {
            match (low, high) {
                (Some(low), Some(high)) if low > high => {
                    violations.push(Violation {
                        paths: vec![field(low_name), field(high_name)],
                        message: format!(
                            "worker group {name}: {low_name} ({low}) must not be above {high_name} ({high})"
                        ),
                    });
                    true
                }
                _ => false,
            }
        };
        // Once min and max are at odds, replicas cannot be right either: one message is enough.
        if !require(min, "minReplicas", max, "maxReplicas") {
            require(min, "minReplicas", replicas, "replicas");
            require(replicas, "replicas", max, "maxReplicas");
        }
    }
    violations
}
