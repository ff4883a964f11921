//! A launch's capacity as the launch preview, the dry-run API and the CLI tell it: a verdict,
//! one line of words, each group's fit and each quota limit the launch touches.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{fit, quota_use, shapes, GroupFit, Node, Quota};

/// The verdict on a whole launch, worst first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// A group fits no node as the nodes are: its pods will wait until nodes change.
    Never,
    /// The launch would pass a limit of the namespace's quota: pods past it are refused.
    OverQuota,
    /// Some pods fit a node but not beside what runs now: they wait for capacity.
    Partly,
    /// Every pod can start now.
    Now,
    /// The nodes could not be read.
    Unknown,
}

/// What a launch would use of one limit of a quota.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct QuotaLimit {
    /// The ResourceQuota's name.
    pub quota: String,
    /// The limit: `requests.nvidia.com/gpu`, `pods`.
    pub resource: String,
    /// Whether the launch would pass it.
    pub exceeds: bool,
    /// In words: "requests.nvidia.com/gpu (quota gpus): this launch 16, used 4 of 16: 4 over,
    /// pods past it will be refused".
    pub verdict: String,
}

/// A launch's capacity: informs, never blocks (Kubernetes stays the judge).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Capacity {
    pub verdict: Verdict,
    /// The verdict in one line: "3 of 5 pods can start now; 2 will wait for capacity".
    pub summary: String,
    /// The head, then each worker group.
    pub groups: Vec<GroupFit>,
    /// The namespace's quota limits the launch uses.
    pub quotas: Vec<QuotaLimit>,
    /// What could not be read, in words ("raydar may not list ResourceQuotas: ..."): the
    /// verdict leaves it out.
    pub unknown: Vec<String>,
}

/// The capacity of a launch of RayCluster `spec` on `nodes` (with what their pods request),
/// under the namespace's `quotas`; either may be unreadable, said why.
pub fn judge(
    spec: &Value,
    nodes: Result<&[Node], String>,
    quotas: Result<&[Quota], String>,
) -> Capacity {
    let shapes = shapes(spec);
    let mut unknown = Vec::new();
    let groups = match nodes {
        Ok(nodes) => fit(&shapes, nodes),
        Err(why) => {
            unknown.push(why);
            Vec::new()
        }
    };
    let quotas: Vec<QuotaLimit> = match quotas {
        Ok(quotas) => quota_use(&shapes, quotas)
            .into_iter()
            .map(|u| QuotaLimit {
                quota: u.quota.clone(),
                resource: u.resource.clone(),
                exceeds: u.exceeds(),
                verdict: u.verdict(),
            })
            .collect(),
        Err(why) => {
            unknown.push(why);
            Vec::new()
        }
    };
    let (verdict, summary) = sum_up(&groups, &quotas, unknown.first());
    Capacity { verdict, summary, groups, quotas, unknown }
}

fn sum_up(
    groups: &[GroupFit],
    quotas: &[QuotaLimit],
    unknown: Option<&String>,
) -> (Verdict, String) {
    let named = |g: &GroupFit| match g.group.as_str() {
        "head" => "the head".to_owned(),
        name => format!("workers {name}"),
    };
    if let Some(never) = groups.iter().find(|g| g.never() && g.pods > 0) {
        return (Verdict::Never, format!("{} cannot start: {}", named(never), never.verdict));
    }
    if let Some(over) = quotas.iter().find(|q| q.exceeds) {
        return (Verdict::OverQuota, format!("over quota: {}", over.verdict));
    }
    if groups.is_empty() {
        let why = unknown.map_or("the nodes were not read", String::as_str);
        return (Verdict::Unknown, format!("capacity not judged: {why}"));
    }
    let pods: u32 = groups.iter().map(|g| g.pods).sum();
    let now: u32 = groups.iter().map(|g| g.fit_now).sum();
    if now < pods {
        let waiting: Vec<String> = groups
            .iter()
            .filter(|g| g.fit_now < g.pods)
            .map(|g| format!("{} of {}", g.pods - g.fit_now, named(g)))
            .collect();
        let summary = format!(
            "{now} of {pods} pods can start now; {} will wait for capacity ({})",
            pods - now,
            waiting.join(", ")
        );
        return (Verdict::Partly, summary);
    }
    let all = match pods {
        1 => "its pod".to_owned(),
        2 => "both pods".to_owned(),
        n => format!("all {n} pods"),
    };
    (Verdict::Now, format!("{all} can start now"))
}
