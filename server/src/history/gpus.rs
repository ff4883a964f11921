//! GPU use into history, as a source of its own: every step (`--history-gpu-step`, 5 minutes,
//! on the clock), what each cluster's GPUs did in the step just ended (GPUs held, their mean
//! utilization, busy and idle GPU-seconds), read from raydar's in-memory GPU history and kept
//! by the cluster's uid: a cluster's GPU-hours and its charts outlive it, at that resolution.

use std::time::Duration;

use platform::history::GpuSample;
use tokio_util::sync::CancellationToken;

use super::{Record, Sink};
use crate::gpus::GpuMetrics;
use crate::sources::Clusters;
use crate::unix_now;

/// How long past a step's end its use is read: its last scrape is in by then.
const SETTLE: Duration = Duration::from_secs(5);

/// Writes clusters' GPU use into history: cheap to clone.
#[derive(Clone)]
pub struct GpuRecorder {
    gpus: GpuMetrics,
    clusters: Clusters,
    sink: Sink,
    /// Seconds per step.
    step: u32,
}

impl GpuRecorder {
    /// Reads `gpus` every `step` seconds, each GPU's cluster found in `clusters`, into `sink`.
    pub fn new(gpus: GpuMetrics, clusters: Clusters, sink: Sink, step: u32) -> GpuRecorder {
        GpuRecorder { gpus, clusters, sink, step: step.max(1) }
    }

    /// The source: one step at a time until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), String> {
        loop {
            let now = unix_now().max(0) as u64;
            let step = u64::from(self.step);
            let end = (now / step + 1) * step;
            let wait = Duration::from_secs(end - now) + SETTLE;
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(wait) => {}
            }
            self.record(end as u32);
        }
    }

    /// Writes the use of the step that ended at `end` (Unix seconds).
    pub fn record(&self, end: u32) {
        let start = end.saturating_sub(self.step);
        for ((namespace, name), usage) in self.gpus.use_between(start, end) {
            let Some(uid) = self.clusters.uid(&namespace, &name) else { continue };
            let sample = GpuSample {
                at: i64::from(start),
                seconds: self.step,
                gpus: usage.gpus,
                util: usage.util,
                busy_s: usage.busy_s,
                idle_s: usage.idle_s,
            };
            self.sink.send(Record::GpuUse { cluster: uid, sample });
        }
    }
}
