//! GPU metrics as pages and the API read them: a bounded history of every GPU's readings, each
//! attributed to the RayCluster whose pod holds it, and what is made of it: a cluster's GPUs now
//! and its charts, the fleet's requested, busy and idle GPUs.
//!
//! Two sources fill the history, whichever `--prometheus` picks: dcgm-exporter scraped
//! (`crate::sources::exporters`) or a Prometheus server asked (`crate::sources::prometheus`);
//! both hand [`GpuMetrics::record`] readings already parsed, with the errors of that round, or
//! tell [`GpuMetrics::unreadable`] that a round read nothing at all (Prometheus down): then the
//! last readings stay shown, marked stale with their age and why, never emptied.
//! Ray's own metrics (its head's metrics port) are read by [`crate::ray`].
//!
//! # Layout
//! - [`GpuMetrics`] (here): the history, the idle rule, the last round's errors; its readers
//!   [`GpuMetrics::cluster`], [`GpuMetrics::chart`] and [`GpuMetrics::fleet`].
//! - [`charts`]: a cluster's charts, drawn with plotters as SVG.

pub mod charts;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use platform::gpu::history::{History, Holder, Retention, Series};
use platform::gpu::{ClusterKey, GpuId, GpuReading, PodRef};
use platform::utilization::{Chart, ClusterGpus, Fleet, FleetCluster, GpuNow, Window};
use platform::{ClusterSummary, Stale};
use tokio::sync::watch;

use crate::config::GpuSettings;
use crate::unix_now;
use charts::{ChartData, Line};

/// Scrapes a GPU may miss and still count as held (an exporter restarting, one timeout).
const MISSED_SCRAPES: u32 = 3;

/// What counts as idle, and how often readings come.
#[derive(Clone, Debug)]
struct IdleRule {
    interval_s: u32,
    idle_below: f64,
    idle_after_s: u32,
}

/// The GPU history and what pages make of it: cheap to clone.
#[derive(Clone)]
pub struct GpuMetrics {
    inner: Arc<Inner>,
}

struct Inner {
    rule: IdleRule,
    /// Locks are held to record a round or read a page's worth, never across an await.
    history: RwLock<History>,
    /// What the last round could not read.
    round: Mutex<Round>,
    /// The time of the last round recorded, for followers of GPU pages.
    recorded: watch::Sender<u32>,
}

/// What the last round could not read.
#[derive(Default)]
struct Round {
    /// Exporters (or series) not read, in words.
    errors: Vec<String>,
    /// Set while rounds read nothing at all: since the first such round, and why.
    stale: Option<Stale>,
}

/// What a cluster's GPUs did over a while ([`GpuMetrics::use_between`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GpuUse {
    /// GPUs it held at some time in it.
    pub gpus: u32,
    /// Their mean utilization, percent, when any was read.
    pub util: Option<f64>,
    /// GPU-seconds at or above the idle threshold (busy) and below it (idle).
    pub busy_s: u64,
    pub idle_s: u64,
}

/// Which RayCluster each Ray pod belongs to: `(namespace, pod)` to the cluster's name.
pub type PodClusters = HashMap<(String, String), String>;

impl GpuMetrics {
    /// An empty history under `settings`' idle rule.
    pub fn new(settings: &GpuSettings) -> Self {
        let rule = IdleRule {
            interval_s: settings.interval_s,
            idle_below: settings.idle_below,
            idle_after_s: settings.idle_after_s,
        };
        let history = History::new(Retention::default(), settings.idle_below);
        let inner = Inner {
            rule,
            history: RwLock::new(history),
            round: Mutex::default(),
            recorded: watch::channel(0).0,
        };
        GpuMetrics { inner: Arc::new(inner) }
    }

    /// Records one round of readings taken at `t`, each GPU attributed through `pods`, and what
    /// could not be read (replacing the last round's errors). Tens of milliseconds for a large
    /// fleet: sources call it off the async workers.
    pub fn record(
        &self,
        t: u32,
        readings: &BTreeMap<GpuId, GpuReading>,
        pods: &PodClusters,
        mut errors: Vec<String>,
    ) {
        errors.sort();
        self.write().record(t, readings, |pod| cluster_of(pods, pod));
        *self.round() = Round { errors, stale: None };
        self.inner.recorded.send_replace(t);
    }

    /// Notes that the round at `t` read nothing, for `why` (the source is unreachable): the
    /// history is left as it is, so pages keep the last readings, marked stale since the first
    /// such round, and no GPU counts as released or idle because its readings stopped.
    pub fn unreadable(&self, t: u32, why: String) {
        let mut round = self.round();
        let since = round.stale.as_ref().map_or(i64::from(t), |s| s.since);
        *round = Round { errors: Vec::new(), stale: Some(Stale { since, reason: why }) };
        drop(round);
        self.inner.recorded.send_replace(t);
    }

    /// Records readings from before now (a Prometheus history), without touching the errors.
    pub fn record_past(
        &self,
        steps: &BTreeMap<u32, BTreeMap<GpuId, GpuReading>>,
        pods: &PodClusters,
    ) {
        let mut history = self.write();
        for (t, readings) in steps {
            history.record(*t, readings, |pod| cluster_of(pods, pod));
        }
    }

    /// Follows the time of the last round recorded.
    pub fn rounds(&self) -> watch::Receiver<u32> {
        self.inner.recorded.subscribe()
    }

    /// A cluster's GPUs now, for its page; `requested` is what its spec asks for.
    pub fn cluster(&self, namespace: &str, name: &str, requested: u64) -> ClusterGpus {
        let settings = &self.inner.rule;
        let now = unix_now();
        let (errors, stale) = self.last_round();
        let history = self.read();
        let held = history.held_by(&key(namespace, name), self.seen_since(&history));
        let gpus: Vec<GpuNow> = held.iter().map(|s| gpu_now(s)).collect();
        ClusterGpus {
            now,
            scraped_at: history.last_scrape().map(i64::from),
            interval_s: settings.interval_s,
            requested,
            avg_util: average(gpus.iter().filter_map(|g| g.util)),
            idle: History::idle(&held, as_of(&history, &stale, now), settings.idle_after_s),
            idle_below: settings.idle_below,
            idle_after_s: u64::from(settings.idle_after_s),
            gpus,
            ray: None,
            ray_error: None,
            errors,
            stale,
            reclaim: None,
        }
    }

    /// What one of a cluster's charts shows over `window`.
    pub fn chart(&self, namespace: &str, name: &str, chart: Chart, window: Window) -> ChartData {
        let now = unix_now();
        let from = (now as u32).saturating_sub(window.seconds());
        let history = self.read();
        let held = history.held_by(&key(namespace, name), self.seen_since(&history));
        let nodes: BTreeSet<&str> = held.iter().map(|s| s.gpu.host.as_str()).collect();
        let value = |s: &platform::gpu::history::Sample| -> f32 {
            match chart {
                Chart::Utilization => s.util,
                Chart::Memory => s.mem_used_mib / 1024.0,
                Chart::Power => s.power_w,
            }
        };
        let gpus: Vec<Line> = held
            .iter()
            .map(|series| Line {
                label: gpu_now(series).label(nodes.len() > 1),
                points: series
                    .since(from)
                    .filter(|s| !value(s).is_nan())
                    .map(|s| (f64::from(s.t) - now as f64, f64::from(value(s))))
                    .collect(),
            })
            .collect();
        let average = (chart == Chart::Utilization && !gpus.is_empty()).then(|| {
            let mut at: BTreeMap<i64, (f64, u32)> = BTreeMap::new();
            for (x, y) in gpus.iter().flat_map(|l| l.points.iter()) {
                let slot = at.entry(*x as i64).or_default();
                slot.0 += y;
                slot.1 += 1;
            }
            Line {
                label: "average".into(),
                points: at
                    .into_iter()
                    .map(|(x, (sum, n))| (x as f64, sum / f64::from(n)))
                    .collect(),
            }
        });
        let highest = gpus.iter().flat_map(|l| l.points.iter().map(|p| p.1)).fold(0.0, f64::max);
        let y_max = match chart {
            Chart::Utilization => 100.0,
            Chart::Memory => {
                let total =
                    held.iter().filter_map(|s| s.last.mem_total_mib()).fold(0.0, f64::max) / 1024.0;
                total.max(highest).max(1.0).ceil()
            }
            // Rounded up to the next 50 W above the highest draw, at least 100 W.
            Chart::Power => ((highest * 1.1 / 50.0).ceil() * 50.0).max(100.0),
        };
        ChartData { chart, window, gpus, average, y_max }
    }

    /// The fleet page for `clusters`: the requested, held, busy and
    /// idle GPUs of each that asks for or holds any; GPUs in all, free and held by other pods.
    pub fn fleet(&self, clusters: Vec<ClusterSummary>) -> Fleet {
        let settings = &self.inner.rule;
        let now = unix_now();
        let (errors, stale) = self.last_round();
        let history = self.read();
        let seen = self.seen_since(&history);
        let at = as_of(&history, &stale, now);
        let current: Vec<&Series> = history.all().filter(|s| s.last_t >= seen).collect();
        let count = |holder: &Holder| current.iter().filter(|s| &s.holder == holder).count() as u32;
        let rows = clusters
            .into_iter()
            .filter_map(|summary| {
                let held = history.held_by(&key(&summary.namespace, &summary.name), seen);
                // A cluster that neither asks for nor holds a GPU is not part of the GPU fleet.
                if held.is_empty() && summary.gpus_desired == 0 {
                    return None;
                }
                let utils: Vec<f64> = held.iter().filter_map(|s| s.last.util).collect();
                Some(FleetCluster {
                    held: held.len() as u32,
                    busy: utils.iter().filter(|u| **u >= settings.idle_below).count() as u32,
                    avg_util: average(utils.iter().copied()),
                    idle: History::idle(&held, at, settings.idle_after_s),
                    requested: summary.gpus_desired,
                    namespace: summary.namespace,
                    name: summary.name,
                    team: summary.team,
                    owner: summary.owner,
                })
            })
            .collect();
        Fleet {
            now,
            scraped_at: history.last_scrape().map(i64::from),
            idle_below: settings.idle_below,
            idle_after_s: u64::from(settings.idle_after_s),
            total: current.len() as u32,
            free: count(&Holder::Free),
            other: count(&Holder::Other),
            clusters: rows,
            teams: Vec::new(),
            errors,
            stale,
            reclaims: Default::default(),
            context: String::new(),
            contexts: Vec::new(),
        }
        .group()
    }

    /// The last round's errors, and whether the readings are stale.
    fn last_round(&self) -> (Vec<String>, Option<Stale>) {
        let round = self.round();
        (round.errors.clone(), round.stale.clone())
    }

    fn round(&self) -> std::sync::MutexGuard<'_, Round> {
        self.inner.round.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Since when every GPU `namespace/name` holds has stayed below `threshold` percent (Unix
    /// seconds), and how many it holds; `None` when it holds none, one is at or above it, or the
    /// readings are stale (nothing is judged idle on old numbers).
    pub fn idle_since(&self, namespace: &str, name: &str, threshold: f64) -> Option<(i64, u32)> {
        if self.round().stale.is_some() {
            return None;
        }
        let history = self.read();
        let held = history.held_by(&key(namespace, name), self.seen_since(&history));
        let mut since = None::<u32>;
        for series in &held {
            let below = series.below_since_for(threshold)?;
            since = Some(since.map_or(below, |s| s.max(below)));
        }
        Some((i64::from(since?), held.len() as u32))
    }

    /// What each cluster's GPUs did from `from` to `to` (Unix seconds, `to` excluded), for
    /// history: every sample counts for one scrape interval of its GPU's time.
    pub fn use_between(&self, from: u32, to: u32) -> Vec<(ClusterKey, GpuUse)> {
        let rule = &self.inner.rule;
        let interval = u64::from(rule.interval_s.max(1));
        let history = self.read();
        let mut by: BTreeMap<ClusterKey, (GpuUse, f64, u32)> = BTreeMap::new();
        for series in history.all() {
            let Holder::Cluster(cluster) = &series.holder else { continue };
            let mut samples = series.since(from).take_while(|s| s.t < to).peekable();
            if samples.peek().is_none() {
                continue;
            }
            let (usage, sum, n) = by.entry(cluster.clone()).or_default();
            usage.gpus += 1;
            for sample in samples.filter(|s| !s.util.is_nan()) {
                let util = f64::from(sample.util);
                *sum += util;
                *n += 1;
                if util >= rule.idle_below {
                    usage.busy_s += interval;
                } else {
                    usage.idle_s += interval;
                }
            }
        }
        by.into_iter()
            .map(|(cluster, (mut usage, sum, n))| {
                usage.util = (n > 0).then(|| sum / f64::from(n));
                (cluster, usage)
            })
            .collect()
    }

    /// GPUs last reported at or after this still count as present.
    fn seen_since(&self, history: &History) -> u32 {
        let last = history.last_scrape().unwrap_or(0);
        last.saturating_sub(MISSED_SCRAPES * self.inner.rule.interval_s)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, History> {
        self.inner.history.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, History> {
        self.inner.history.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The time idleness is judged at: now, or while the readings are stale, the last round read (a
/// GPU is not idle for longer than anyone has seen it idle).
fn as_of(history: &History, stale: &Option<Stale>, now: i64) -> u32 {
    match (stale, history.last_scrape()) {
        (Some(_), Some(last)) => last,
        _ => now as u32,
    }
}

/// The RayCluster a pod belongs to.
fn cluster_of(pods: &PodClusters, pod: &PodRef) -> Option<ClusterKey> {
    pods.get(&(pod.namespace.clone(), pod.pod.clone()))
        .map(|cluster| (pod.namespace.clone(), cluster.clone()))
}

fn key(namespace: &str, name: &str) -> ClusterKey {
    (namespace.to_owned(), name.to_owned())
}

fn average(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

/// A series' GPU as the page lists it.
fn gpu_now(series: &Series) -> GpuNow {
    let last = &series.last;
    GpuNow {
        node: series.gpu.host.clone(),
        index: series.gpu.index,
        mig: series.gpu.mig.as_ref().map(|(profile, id)| format!("{profile}/{id}")),
        model: series.model.clone(),
        pod: series.pod.as_ref().map(|p| p.pod.clone()).unwrap_or_default(),
        util: last.util,
        mem_used_mib: last.mem_used_mib,
        mem_total_mib: last.mem_total_mib(),
        power_w: last.power_w,
        temp_c: last.temp_c,
        below_since: series.below_since.map(i64::from),
    }
}

/// Two GPUs of `ns/train`'s worker (pod `train-gpu-0`), at `util` percent: readings for tests.
#[cfg(test)]
pub(crate) fn two_gpus(util: f64) -> BTreeMap<GpuId, GpuReading> {
    let pod = PodRef { namespace: "ns".into(), pod: "train-gpu-0".into(), container: "w".into() };
    (0..2)
        .map(|index| {
            let id = GpuId { host: "n1".into(), uuid: format!("GPU-{index}"), index, mig: None };
            let reading = GpuReading {
                model: "H100".into(),
                pod: Some(pod.clone()),
                util: Some(util),
                ..GpuReading::default()
            };
            (id, reading)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use two_gpus as readings;

    #[test]
    fn rounds_that_read_nothing_keep_the_last_readings_marked_stale_and_not_idle() {
        let settings = GpuSettings { interval_s: 5, idle_after_s: 60, ..GpuSettings::default() };
        let metrics = GpuMetrics::new(&settings);
        let pods: PodClusters = [(("ns".into(), "train-gpu-0".into()), "train".into())].into();
        let t0 = unix_now() as u32 - 1000;
        metrics.record(t0, &readings(2.0), &pods, Vec::new());
        // Prometheus goes away for far longer than a GPU may miss scrapes.
        for step in 1..=20 {
            metrics.unreadable(t0 + step * 5, "Prometheus http://p: connection refused".into());
        }
        let panel = metrics.cluster("ns", "train", 2);
        assert_eq!(panel.gpus.len(), 2, "the last readings stay shown");
        assert_eq!(panel.scraped_at, Some(i64::from(t0)), "as of when they were read");
        let stale = panel.stale.expect("marked stale");
        assert_eq!(stale.since, i64::from(t0 + 5), "since the first round that read nothing");
        assert_eq!(stale.reason, "Prometheus http://p: connection refused");
        assert!(panel.idle.is_none(), "below 10 % when last seen, but not seen for 60 s");
        let fleet = metrics.fleet(Vec::new());
        assert_eq!((fleet.total, fleet.stale.is_some()), (2, true));

        // The first round read again is live.
        let t1 = unix_now() as u32;
        metrics.record(t1, &readings(80.0), &pods, Vec::new());
        let panel = metrics.cluster("ns", "train", 2);
        assert_eq!((panel.stale, panel.scraped_at), (None, Some(i64::from(t1))));
        assert_eq!(panel.gpus[0].util, Some(80.0));
    }

    #[test]
    fn a_step_of_gpu_use_counts_busy_and_idle_gpu_seconds() {
        let settings = GpuSettings { interval_s: 15, idle_below: 10.0, ..GpuSettings::default() };
        let metrics = GpuMetrics::new(&settings);
        let pods: PodClusters = [(("ns".into(), "train-gpu-0".into()), "train".into())].into();
        let t0 = (unix_now() as u32 - 3600) / 300 * 300;
        // Two GPUs for a 5-minute step: 12 scrapes busy (80 %), 8 idle (2 %); then the next
        // step begins.
        for i in 0..20 {
            metrics.record(
                t0 + i * 15,
                &readings(if i < 12 { 80.0 } else { 2.0 }),
                &pods,
                Vec::new(),
            );
        }
        metrics.record(t0 + 300, &readings(80.0), &pods, Vec::new());
        let steps = metrics.use_between(t0, t0 + 300);
        assert_eq!(steps.len(), 1);
        let (cluster, usage) = &steps[0];
        assert_eq!(cluster, &("ns".to_owned(), "train".to_owned()));
        assert_eq!((usage.gpus, usage.busy_s, usage.idle_s), (2, 2 * 12 * 15, 2 * 8 * 15));
        let util = usage.util.unwrap();
        assert!((util - (12.0 * 80.0 + 8.0 * 2.0) / 20.0).abs() < 1e-3, "{util}");
        assert!(metrics.use_between(t0 + 600, t0 + 900).is_empty(), "nothing read then");
    }
}
