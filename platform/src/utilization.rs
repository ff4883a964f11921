//! GPU use as pages show it: a cluster's GPUs now ([`ClusterGpus`]), the chart windows
//! ([`Window`]), and the fleet's requested, held, busy and idle GPUs by cluster and team
//! ([`Fleet`]).
//!
//! These are the wire types between raydar-server and the browser; the server fills them from
//! its scrapes of dcgm-exporter ([`crate::gpu`]) and Ray's metrics.

use serde::{Deserialize, Serialize};

use crate::status::Stale;

/// How far back a chart reaches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Window {
    /// The last 15 minutes.
    #[default]
    #[serde(rename = "15m")]
    Minutes15,
    /// The last hour.
    #[serde(rename = "1h")]
    Hour1,
    /// The last 6 hours.
    #[serde(rename = "6h")]
    Hours6,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 3] = [Window::Minutes15, Window::Hour1, Window::Hours6];

    /// As in URLs and on buttons: `15m`, `1h`, `6h`.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Minutes15 => "15m",
            Window::Hour1 => "1h",
            Window::Hours6 => "6h",
        }
    }

    /// Its length in seconds.
    pub fn seconds(self) -> u32 {
        match self {
            Window::Minutes15 => 15 * 60,
            Window::Hour1 => 3600,
            Window::Hours6 => 6 * 3600,
        }
    }

    /// Reads `15m`, `1h` or `6h`; otherwise says what is allowed.
    pub fn parse(text: &str) -> Result<Window, String> {
        Window::ALL
            .into_iter()
            .find(|w| w.as_str() == text)
            .ok_or_else(|| format!("window: {text:?} is not one of 15m, 1h, 6h"))
    }
}

/// Which chart of a cluster's GPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Chart {
    /// Utilization per GPU and the cluster's average, percent.
    #[serde(rename = "util")]
    Utilization,
    /// Memory used per GPU, GiB.
    #[serde(rename = "memory")]
    Memory,
    /// Power draw per GPU, watts.
    #[serde(rename = "power")]
    Power,
}

impl Chart {
    /// Every chart, in page order.
    pub const ALL: [Chart; 3] = [Chart::Utilization, Chart::Memory, Chart::Power];

    /// As in URLs: `util`, `memory`, `power`.
    pub fn as_str(self) -> &'static str {
        match self {
            Chart::Utilization => "util",
            Chart::Memory => "memory",
            Chart::Power => "power",
        }
    }

    /// Its title on the page.
    pub fn title(self) -> &'static str {
        match self {
            Chart::Utilization => "GPU utilization",
            Chart::Memory => "GPU memory used",
            Chart::Power => "GPU power",
        }
    }

    /// Reads `util`, `memory` or `power`; otherwise says what is allowed.
    pub fn parse(text: &str) -> Result<Chart, String> {
        Chart::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| format!("chart: {text:?} is not one of util, memory, power"))
    }
}

/// One GPU (or MIG instance) of a cluster, as last scraped. A value the exporter did not give is
/// `None`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GpuNow {
    /// Its node.
    pub node: String,
    /// Its index on the node.
    pub index: u32,
    /// The MIG instance (`1g.10gb/3`), when it is one.
    pub mig: Option<String>,
    /// The GPU model, as DCGM names it.
    pub model: String,
    /// The pod holding it.
    pub pod: String,
    /// Utilization, percent.
    pub util: Option<f64>,
    /// Memory used and in all, MiB.
    pub mem_used_mib: Option<f64>,
    pub mem_total_mib: Option<f64>,
    /// Power draw, watts.
    pub power_w: Option<f64>,
    /// Temperature, °C.
    pub temp_c: Option<f64>,
    /// Since when (seconds since the Unix epoch) it has stayed below the idle threshold.
    pub below_since: Option<i64>,
}

impl GpuNow {
    /// How charts and tables name it: `GPU 3`, `kwok-gpu-1 GPU 3` when the cluster's GPUs are on
    /// more than one node, with the MIG instance after.
    pub fn label(&self, with_node: bool) -> String {
        let mut label = if with_node {
            format!("{} GPU {}", self.node, self.index)
        } else {
            format!("GPU {}", self.index)
        };
        if let Some(mig) = &self.mig {
            label.push_str(" MIG ");
            label.push_str(mig);
        }
        label
    }
}

/// A cluster that has held its GPUs below the idle threshold for longer than the idle time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Idle {
    /// Since when every one of its GPUs has been below the threshold (Unix seconds).
    pub since: i64,
    /// GPU-hours held idle: each GPU's time below the threshold, added up.
    pub gpu_hours: f64,
}

/// What Ray itself reports of a cluster's resources (the head's metrics port, `ray_node_*`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RayUsage {
    /// Ray nodes reporting.
    pub nodes: u32,
    /// CPU utilization averaged over the nodes, percent.
    pub cpu_util: Option<f64>,
    /// Memory used and in all, bytes, over the nodes.
    pub mem_used_bytes: Option<f64>,
    pub mem_total_bytes: Option<f64>,
    /// GPUs Ray's nodes report having.
    pub gpus: Option<f64>,
    /// GPU utilization averaged over Ray's GPUs, percent (only where Ray can read the GPUs).
    pub gpu_util: Option<f64>,
    /// GPU memory used, MiB (Ray reports it in MB despite the metric's name).
    pub gram_used_mib: Option<f64>,
}

/// A cluster's GPUs for its page (`GET /api/v1/clusters/{namespace}/{name}/gpus`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClusterGpus {
    /// The server's clock, Unix seconds.
    pub now: i64,
    /// When the GPUs were last scraped, Unix seconds; `None` before the first scrape.
    pub scraped_at: Option<i64>,
    /// Seconds between scrapes.
    pub interval_s: u32,
    /// GPUs its spec asks for.
    pub requested: u64,
    /// Its GPUs, by node and index.
    pub gpus: Vec<GpuNow>,
    /// Average utilization over its GPUs now, percent.
    pub avg_util: Option<f64>,
    /// Set when the cluster counts as idle.
    pub idle: Option<Idle>,
    /// The idle rule: below `idle_below` percent for `idle_after_s` seconds.
    pub idle_below: f64,
    pub idle_after_s: u64,
    /// What Ray's own metrics say, when its head answered.
    pub ray: Option<RayUsage>,
    /// Why Ray's metrics are missing, when they are.
    pub ray_error: Option<String>,
    /// Exporters that did not answer the last scrape, in words.
    pub errors: Vec<String>,
    /// Set while the GPU readings cannot be read at all (Prometheus down): what is shown is the
    /// last round read, as of `scrapedAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<Stale>,
    /// Set while the cluster is idle by its template's policy long enough to be warned: when
    /// it is reclaimed, and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaim: Option<Reclaimable>,
}

/// One cluster's row on the fleet page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FleetCluster {
    pub namespace: String,
    pub name: String,
    /// Its `raydar.dev/team` label, or `""`.
    pub team: String,
    /// Its `raydar.dev/owner` label, or `""`.
    pub owner: String,
    /// GPUs its spec asks for.
    pub requested: u64,
    /// GPUs its pods hold now (the exporters' view).
    pub held: u32,
    /// Of those, at or above the idle threshold now.
    pub busy: u32,
    /// Average utilization of the held GPUs now, percent.
    pub avg_util: Option<f64>,
    /// Set when it counts as idle.
    pub idle: Option<Idle>,
}

/// A team's GPUs: its clusters' rows added up.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FleetTeam {
    /// The `raydar.dev/team` label; `""` for clusters without one.
    pub team: String,
    pub clusters: u32,
    pub requested: u64,
    pub held: u32,
    pub busy: u32,
    /// Clusters flagged idle.
    pub idle_clusters: u32,
    /// GPU-hours held idle by its idle clusters.
    pub idle_gpu_hours: f64,
}

/// The fleet page (`GET /api/v1/gpus`): every GPU the exporters report, and the clusters the
/// requester may see.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Fleet {
    /// The server's clock, Unix seconds.
    pub now: i64,
    /// When the GPUs were last scraped.
    pub scraped_at: Option<i64>,
    /// The idle rule.
    pub idle_below: f64,
    pub idle_after_s: u64,
    /// GPUs reported in all, held by no pod, and held by pods of no RayCluster.
    pub total: u32,
    pub free: u32,
    pub other: u32,
    /// Clusters, idle ones first, then by GPUs held.
    pub clusters: Vec<FleetCluster>,
    /// Teams, most GPUs held first.
    pub teams: Vec<FleetTeam>,
    /// Exporters that did not answer the last scrape.
    pub errors: Vec<String>,
    /// Set while the GPU readings cannot be read at all: the numbers are the last round read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<Stale>,
    /// Idle reclaim: clusters idle by their template's policy.
    #[serde(default)]
    pub reclaims: Reclaims,
    /// The Kubernetes cluster these GPUs are on, when raydar serves several (else empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context: String,
    /// When raydar serves several Kubernetes clusters, each one's totals (this one's included),
    /// in the order they are served; empty when it serves one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contexts: Vec<FleetContext>,
}

/// One Kubernetes cluster's GPUs added up, for the fleet page's totals per cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FleetContext {
    /// The context's name, as `?context=` takes it.
    pub name: String,
    /// Every GPU its exporters report, held by no pod, and held by pods of no RayCluster (the
    /// whole cluster's, whoever asks).
    pub total: u32,
    pub free: u32,
    pub other: u32,
    /// Of the Ray clusters the requester may see there: how many use GPUs, and their GPUs
    /// requested, held and busy; how many are idle.
    pub clusters: u32,
    pub requested: u64,
    pub held: u32,
    pub busy: u32,
    pub idle_clusters: u32,
    /// When its GPUs were last read.
    pub scraped_at: Option<i64>,
    /// Set while its GPU readings cannot be read: the numbers are the last ones read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<Stale>,
    /// Its exporters that did not answer the last scrape, and its sources that are down.
    #[serde(default)]
    pub errors: Vec<String>,
}

impl FleetContext {
    /// `fleet` (one Kubernetes cluster's, called `name`) added up.
    pub fn of(name: &str, fleet: &Fleet) -> FleetContext {
        let mut totals = FleetContext {
            name: name.to_owned(),
            total: fleet.total,
            free: fleet.free,
            other: fleet.other,
            scraped_at: fleet.scraped_at,
            stale: fleet.stale.clone(),
            errors: fleet.errors.clone(),
            ..FleetContext::default()
        };
        for c in &fleet.clusters {
            totals.clusters += 1;
            totals.requested = totals.requested.saturating_add(c.requested);
            totals.held += c.held;
            totals.busy += c.busy;
            totals.idle_clusters += u32::from(c.idle.is_some());
        }
        totals
    }

    /// GPUs held by Ray clusters, whoever may see them.
    pub fn ray(&self) -> u32 {
        self.total.saturating_sub(self.free + self.other)
    }
}

/// Idle reclaim as the fleet page shows it: what raydar does (`--idle-reclaim`), and each
/// cluster idle by its template's policy (`policy.idle`) long enough to be warned or reclaimed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Reclaims {
    /// `on` (warned, then reclaimed), `dry-run` (only shown) or `off`.
    pub mode: String,
    /// Most overdue first.
    pub clusters: Vec<Reclaimable>,
    /// Clusters this raydar has reclaimed for sitting idle since it started.
    pub reclaimed: u64,
}

/// A cluster idle by its template's policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Reclaimable {
    pub namespace: String,
    pub name: String,
    /// Its `raydar.dev/team` label, or `""`.
    pub team: String,
    /// Its `raydar.dev/owner` label, or `""`.
    pub owner: String,
    /// GPUs it holds.
    pub gpus: u32,
    /// Its policy: below this utilization, percent, for `after_s` seconds…
    pub gpu_below: f64,
    pub after_s: i64,
    /// …and then `suspend` or `teardown`.
    pub action: String,
    /// Since when, Unix seconds, every GPU it holds has been below the threshold with no Ray job
    /// pending or running.
    pub idle_since: i64,
    /// When the policy reclaims it: `idle_since` plus the window.
    pub due_at: i64,
    /// GPU-hours it has held since `due_at`: what reclaiming saves (with `dry-run`, would have
    /// saved by now).
    pub gpu_hours_saved: f64,
}

impl Fleet {
    /// Adds up `clusters` by team and orders both lists as the page shows them.
    pub fn group(mut self) -> Fleet {
        let mut teams: std::collections::BTreeMap<String, FleetTeam> = Default::default();
        for c in &self.clusters {
            let team = teams
                .entry(c.team.clone())
                .or_insert_with(|| FleetTeam { team: c.team.clone(), ..FleetTeam::default() });
            team.clusters += 1;
            team.requested = team.requested.saturating_add(c.requested);
            team.held += c.held;
            team.busy += c.busy;
            if let Some(idle) = c.idle {
                team.idle_clusters += 1;
                team.idle_gpu_hours += idle.gpu_hours;
            }
        }
        self.teams = teams.into_values().collect();
        self.teams.sort_by(|a, b| b.held.cmp(&a.held).then_with(|| a.team.cmp(&b.team)));
        self.clusters.sort_by(|a, b| {
            (b.idle.is_some(), b.held, &a.namespace, &a.name).cmp(&(
                a.idle.is_some(),
                a.held,
                &b.namespace,
                &b.name,
            ))
        });
        self
    }
}

/// A percentage as the page writes it: `73 %`.
pub fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.0} %"))
}

/// MiB as GiB: `61.2 GiB`.
pub fn gib(mib: Option<f64>) -> String {
    mib.map_or_else(|| "–".into(), |v| format!("{:.1} GiB", v / 1024.0))
}

/// Watts: `312 W`.
pub fn watts(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.0} W"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_charts_read_back_what_they_write() {
        for w in Window::ALL {
            assert_eq!(Window::parse(w.as_str()), Ok(w));
        }
        for c in Chart::ALL {
            assert_eq!(Chart::parse(c.as_str()), Ok(c));
        }
        assert_eq!(Window::parse("2h").unwrap_err(), "window: \"2h\" is not one of 15m, 1h, 6h");
        assert!(Chart::parse("temp").unwrap_err().contains("util, memory, power"));
    }

    #[test]
    fn the_fleet_adds_up_by_team_and_puts_idle_clusters_first() {
        let row = |name: &str, team: &str, held: u32, busy, idle: Option<f64>| FleetCluster {
            namespace: "ml".into(),
            name: name.into(),
            team: team.into(),
            owner: String::new(),
            requested: u64::from(held),
            held,
            busy,
            avg_util: None,
            idle: idle.map(|gpu_hours| Idle { since: 0, gpu_hours }),
        };
        let fleet = Fleet {
            clusters: vec![
                row("a", "vision", 8, 8, None),
                row("b", "vision", 4, 0, Some(2.5)),
                row("c", "nlp", 16, 16, None),
            ],
            ..Fleet::default()
        }
        .group();
        let names: Vec<&str> = fleet.clusters.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["b", "c", "a"]);
        assert_eq!(fleet.teams[0].team, "nlp");
        let vision = &fleet.teams[1];
        assert_eq!(
            (
                vision.clusters,
                vision.held,
                vision.busy,
                vision.idle_clusters,
                vision.idle_gpu_hours
            ),
            (2, 12, 8, 1, 2.5)
        );
        // A Kubernetes cluster's totals: its GPUs as reported, its clusters' added up.
        let fleet = Fleet { total: 40, free: 6, other: 4, errors: vec!["node-3".into()], ..fleet };
        let totals = FleetContext::of("east", &fleet);
        assert_eq!(totals.name, "east");
        assert_eq!(
            (totals.clusters, totals.requested, totals.held, totals.busy, totals.idle_clusters),
            (3, 28, 28, 24, 1)
        );
        assert_eq!((totals.total, totals.free, totals.other, totals.ray()), (40, 6, 4, 30));
        assert_eq!(totals.errors, ["node-3"]);
    }
}
