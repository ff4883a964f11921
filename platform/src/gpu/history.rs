//! Each GPU's recent readings, kept in memory within a fixed budget, and the idle rule.
//!
//! One [`Series`] per GPU (or MIG instance). Every scrape adds a [`Sample`] of 16 bytes: the
//! last [`Retention::fine`] (6 hours) at full resolution, older samples averaged into
//! [`Retention::coarse_step`] buckets (5 minutes) kept for [`Retention::coarse`] (24 hours), and
//! nothing older. At a 15-second scrape that is 1,440 + 288 samples, about 28 KB per GPU: 28 MB
//! for 1,000 GPUs (measured by `make bench`).
//!
//! A series belongs to whoever holds the GPU. When the GPU passes to another RayCluster (or is
//! freed), its series starts over, so one cluster's chart never shows another's work. A GPU no
//! exporter reports any more is dropped once its newest sample leaves the fine window.
//!
//! The idle rule: a GPU is below the threshold since the first of an unbroken run of samples
//! under it; a cluster is idle when every GPU it holds has been below for the idle time.

use std::collections::{HashMap, VecDeque};

use super::{ClusterKey, GpuId, GpuReading, PodRef};
use crate::utilization::Idle;

/// One scrape of one GPU: 16 bytes. A value the exporter did not give is NaN.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Unix seconds (good until 2106).
    pub t: u32,
    /// Utilization, percent.
    pub util: f32,
    /// Memory used, MiB.
    pub mem_used_mib: f32,
    /// Power, watts.
    pub power_w: f32,
}

impl Sample {
    fn of(t: u32, reading: &GpuReading) -> Sample {
        let v = |x: Option<f64>| x.map_or(f32::NAN, |x| x as f32);
        Sample {
            t,
            util: v(reading.util),
            mem_used_mib: v(reading.mem_used_mib),
            power_w: v(reading.power_w),
        }
    }
}

/// Who holds a GPU.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Holder {
    /// A RayCluster's pod.
    Cluster(ClusterKey),
    /// A pod of no RayCluster.
    Other,
    /// Nobody.
    Free,
}

/// How long samples are kept.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Full resolution this long, seconds (default 6 hours).
    pub fine: u32,
    /// Then averaged into buckets this long, seconds (default 5 minutes)…
    pub coarse_step: u32,
    /// …kept this long, seconds (default 24 hours).
    pub coarse: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { fine: 6 * 3600, coarse_step: 300, coarse: 24 * 3600 }
    }
}

/// The average of the samples falling into one coarse bucket so far.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    start: u32,
    n: [u16; 3],
    sum: [f32; 3],
}

/// One GPU's readings while one holder has it.
#[derive(Debug)]
pub struct Series {
    pub gpu: GpuId,
    pub holder: Holder,
    pub model: String,
    /// The pod holding it, as of the last sample.
    pub pod: Option<PodRef>,
    /// The newest reading in full (temperature and total memory are shown, not charted).
    pub last: GpuReading,
    /// When the newest sample was taken.
    pub last_t: u32,
    /// Since when it has been below the idle threshold, if it is now.
    pub below_since: Option<u32>,
    fine: VecDeque<Sample>,
    coarse: VecDeque<Sample>,
    bucket: Option<Bucket>,
}

impl Series {
    fn new(gpu: GpuId, holder: Holder, reading: &GpuReading) -> Series {
        Series {
            gpu,
            holder,
            model: reading.model.clone(),
            pod: reading.pod.clone(),
            last: GpuReading::default(),
            last_t: 0,
            below_since: None,
            fine: VecDeque::new(),
            coarse: VecDeque::new(),
            bucket: None,
        }
    }

    /// Since when this GPU's utilization has stayed below `threshold` percent (Unix seconds),
    /// as far back as its full-resolution samples reach; `None` when its latest reading is at or
    /// above it, or it has none. A sample without utilization says nothing either way.
    pub fn below_since_for(&self, threshold: f64) -> Option<u32> {
        let mut since = None;
        for sample in self.fine.iter().rev().filter(|s| !s.util.is_nan()) {
            if f64::from(sample.util) >= threshold {
                break;
            }
            since = Some(sample.t);
        }
        since
    }

    /// Full-resolution samples taken at or after `from`, oldest first.
    pub fn since(&self, from: u32) -> impl Iterator<Item = &Sample> {
        let start = self.fine.partition_point(|s| s.t < from);
        self.fine.range(start..)
    }

    /// Averaged samples older than the full-resolution ones, oldest first.
    pub fn coarse(&self) -> impl Iterator<Item = &Sample> {
        self.coarse.iter()
    }

    /// Samples kept, at both resolutions.
    pub fn len(&self) -> usize {
        self.fine.len() + self.coarse.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(
        &mut self,
        sample: Sample,
        reading: &GpuReading,
        retention: Retention,
        idle_below: f64,
    ) {
        if self.fine.back().is_some_and(|last| last.t >= sample.t) {
            return; // the same scrape twice, or a clock step back: keep the series ordered
        }
        // Once two samples tell the scrape interval, room for the whole fine window is taken at
        // once, exactly: grown by doubling, a deque would hold up to twice what it needs.
        if self.fine.len() == 1 && self.fine.capacity() < 16 {
            let interval = sample.t.saturating_sub(self.fine[0].t).max(1);
            self.fine.reserve_exact((retention.fine / interval) as usize + 2);
        }
        self.fine.push_back(sample);
        self.last = reading.clone();
        self.pod = reading.pod.clone();
        self.last_t = sample.t;
        match reading.util {
            Some(util) if util < idle_below => {
                self.below_since.get_or_insert(sample.t);
            }
            // No utilization reported says nothing either way: the run is neither broken nor extended.
            None => {}
            Some(_) => self.below_since = None,
        }
        let fine_from = sample.t.saturating_sub(retention.fine);
        while self.fine.front().is_some_and(|s| s.t < fine_from) {
            let old = self.fine.pop_front().expect("checked");
            self.fold(old, retention);
        }
        let coarse_from = sample.t.saturating_sub(retention.fine + retention.coarse);
        while self.coarse.front().is_some_and(|s| s.t < coarse_from) {
            self.coarse.pop_front();
        }
    }

    /// Adds a sample leaving the fine window to the coarse bucket it falls in; a finished bucket
    /// becomes one averaged sample.
    fn fold(&mut self, sample: Sample, retention: Retention) {
        let step = retention.coarse_step.max(1);
        let start = sample.t - sample.t % step;
        if let Some(bucket) = self.bucket.filter(|b| b.start != start) {
            let avg = |i: usize| {
                if bucket.n[i] == 0 {
                    f32::NAN
                } else {
                    bucket.sum[i] / f32::from(bucket.n[i])
                }
            };
            if self.coarse.capacity() == 0 {
                self.coarse.reserve_exact((retention.coarse / step) as usize + 2);
            }
            self.coarse.push_back(Sample {
                t: bucket.start,
                util: avg(0),
                mem_used_mib: avg(1),
                power_w: avg(2),
            });
            self.bucket = None;
        }
        let bucket = self.bucket.get_or_insert(Bucket { start, n: [0; 3], sum: [0.0; 3] });
        for (i, v) in [sample.util, sample.mem_used_mib, sample.power_w].into_iter().enumerate() {
            if !v.is_nan() {
                bucket.n[i] = bucket.n[i].saturating_add(1);
                bucket.sum[i] += v;
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        (self.fine.capacity() + self.coarse.capacity()) * std::mem::size_of::<Sample>()
    }
}

/// Every GPU's series: what raydar-server keeps of GPU metrics.
#[derive(Debug)]
pub struct History {
    retention: Retention,
    idle_below: f64,
    series: HashMap<GpuId, Series>,
    last_scrape: Option<u32>,
}

impl History {
    /// An empty history keeping samples as `retention` says; a GPU under `idle_below` percent
    /// counts as idle.
    pub fn new(retention: Retention, idle_below: f64) -> History {
        History { retention, idle_below, series: HashMap::new(), last_scrape: None }
    }

    /// Adds one scrape of every exporter, taken at `t`: each GPU's reading goes to its series,
    /// the series of a GPU whose holder changed starts over, and GPUs unreported for longer than
    /// the fine window are forgotten. `cluster_of` says which RayCluster a pod belongs to.
    pub fn record<'a>(
        &mut self,
        t: u32,
        readings: impl IntoIterator<Item = (&'a GpuId, &'a GpuReading)>,
        cluster_of: impl Fn(&PodRef) -> Option<ClusterKey>,
    ) {
        for (gpu, reading) in readings {
            let holder = match &reading.pod {
                None => Holder::Free,
                Some(pod) => cluster_of(pod).map_or(Holder::Other, Holder::Cluster),
            };
            let series = self
                .series
                .entry(gpu.clone())
                .or_insert_with(|| Series::new(gpu.clone(), holder.clone(), reading));
            if series.holder != holder {
                *series = Series::new(gpu.clone(), holder, reading);
            }
            series.push(Sample::of(t, reading), reading, self.retention, self.idle_below);
        }
        let keep_from = t.saturating_sub(self.retention.fine);
        self.series.retain(|_, s| s.last_t >= keep_from);
        self.last_scrape = Some(t);
    }

    /// When the last scrape was recorded.
    pub fn last_scrape(&self) -> Option<u32> {
        self.last_scrape
    }

    /// The idle threshold, percent.
    pub fn idle_below(&self) -> f64 {
        self.idle_below
    }

    /// Every series.
    pub fn all(&self) -> impl Iterator<Item = &Series> {
        self.series.values()
    }

    /// The GPUs a cluster holds, as reported at or after `seen_since` (a GPU whose exporter
    /// missed a scrape or two is still held), by node and index.
    pub fn held_by(&self, cluster: &ClusterKey, seen_since: u32) -> Vec<&Series> {
        let mut held: Vec<&Series> = self
            .series
            .values()
            .filter(|s| {
                s.last_t >= seen_since && matches!(&s.holder, Holder::Cluster(c) if c == cluster)
            })
            .collect();
        held.sort_by(|a, b| {
            (&a.gpu.host, a.gpu.index, &a.gpu.mig).cmp(&(&b.gpu.host, b.gpu.index, &b.gpu.mig))
        });
        held
    }

    /// Whether GPUs `held` count as idle at `now`: every one below the threshold for at least
    /// `idle_after` seconds; then since when, and the GPU-hours they have spent idle.
    pub fn idle(held: &[&Series], now: u32, idle_after: u32) -> Option<Idle> {
        if held.is_empty() {
            return None;
        }
        let mut since = 0;
        let mut seconds = 0u64;
        for series in held {
            let below = series.below_since?;
            since = since.max(below);
            seconds += u64::from(now.saturating_sub(below));
        }
        (now.saturating_sub(since) >= idle_after)
            .then(|| Idle { since: i64::from(since), gpu_hours: seconds as f64 / 3600.0 })
    }

    /// Bytes the samples take on the heap (the series' fixed parts and names come on top).
    pub fn sample_bytes(&self) -> usize {
        self.series.values().map(Series::heap_bytes).sum()
    }

    /// GPUs with a series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when no GPU has a series.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}
