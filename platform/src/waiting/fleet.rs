//! The fleet's starts: the clusters waiting now, grouped by what holds them, and how long
//! clusters of each template took to become Ready (p50, p95), from history.

use serde::{Deserialize, Serialize};

use super::Waiting;

/// A cluster not started yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WaitingCluster {
    pub namespace: String,
    pub name: String,
    /// The template it came from; empty when none.
    pub template: String,
    pub owner: String,
    /// The stage it is in, as pages say it ("Pods scheduled").
    pub stage: String,
    /// Since when it waits (its creation), Unix seconds.
    pub since: i64,
    /// What holds it, in words; empty when nothing does (it is merely on its way).
    pub message: String,
}

/// The clusters one reason holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WaitingGroup {
    /// The reason's kind (`unschedulable`, `quota`, ...), or `starting` for clusters nothing
    /// holds yet.
    pub kind: String,
    /// As pages say it: "Unschedulable".
    pub label: String,
    /// Longest waiting first.
    pub clusters: Vec<WaitingCluster>,
}

/// How long clusters of one template took from creation to Ready.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TemplateStarts {
    pub template: String,
    /// Clusters counted.
    pub clusters: u32,
    /// Seconds, by the nearest rank.
    pub p50_s: f64,
    pub p95_s: f64,
}

/// The group label of reason `kind`.
pub fn label(kind: &str) -> &'static str {
    match kind {
        "unschedulable" => "Unschedulable",
        "quota" => "Over quota",
        "operator" => "Refused by KubeRay",
        "image-pull" => "Image not pulled",
        "crash-loop" => "Crash-looping",
        "container" => "Container cannot start",
        "head-not-answering" => "Ray head not answering",
        _ => "On its way",
    }
}

/// `clusters` (each with its stages) grouped by what holds them: the groups holding the most
/// clusters first, clusters nothing holds last; in each, the longest waiting first.
pub fn group(clusters: Vec<(WaitingCluster, Waiting)>) -> Vec<WaitingGroup> {
    let mut groups: Vec<WaitingGroup> = Vec::new();
    for (mut cluster, waiting) in clusters {
        let Some(stage) = waiting.stages.iter().find(|s| s.state == "now") else { continue };
        cluster.stage = stage.label.clone();
        let kind = match waiting.reason {
            Some(reason) => {
                cluster.message = reason.message;
                reason.kind
            }
            None => "starting".to_owned(),
        };
        match groups.iter_mut().find(|g| g.kind == kind) {
            Some(group) => group.clusters.push(cluster),
            None => groups.push(WaitingGroup {
                label: label(&kind).to_owned(),
                kind,
                clusters: vec![cluster],
            }),
        }
    }
    for group in &mut groups {
        group.clusters.sort_by(|a, b| {
            (a.since, &a.namespace, &a.name).cmp(&(b.since, &b.namespace, &b.name))
        });
    }
    groups.sort_by(|a, b| {
        ((a.kind == "starting"), std::cmp::Reverse(a.clusters.len()), &a.kind).cmp(&(
            (b.kind == "starting"),
            std::cmp::Reverse(b.clusters.len()),
            &b.kind,
        ))
    });
    groups
}

/// Per template, from `(template, milliseconds from creation to Ready)` samples: how many, the
/// median and the 95th percentile, by template name.
pub fn template_starts(samples: impl IntoIterator<Item = (String, i64)>) -> Vec<TemplateStarts> {
    let mut by_template: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    for (template, ms) in samples {
        by_template.entry(template).or_default().push(ms.max(0));
    }
    by_template
        .into_iter()
        .map(|(template, mut times)| {
            times.sort_unstable();
            // Nearest rank: the smallest sample with at least p of them at or below it.
            let rank = |p: f64| {
                let i = ((p * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1;
                times[i] as f64 / 1000.0
            };
            TemplateStarts {
                template,
                clusters: times.len() as u32,
                p50_s: rank(0.50),
                p95_s: rank(0.95),
            }
        })
        .collect()
}
