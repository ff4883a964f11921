//! The Prometheus source (`--prometheus`): a Prometheus server that scrapes the dcgm-exporters is
//! asked for the same fields a scrape reads, every `--gpu-interval`, and at start for the last
//! [`Retention::fine`] window, so a restarted raydar draws its charts and flags idle clusters
//! from the first page on. Answers are recorded into [`GpuMetrics`] as if raydar had scraped the
//! exporters then. `--dcgm-namespace` still names the exporters' namespace: series labelled with
//! a pod there are of GPUs no pod holds ([`prometheus`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use platform::gpu::history::Retention;
use platform::gpu::prometheus;
use tokio_util::sync::CancellationToken;

use super::RayPods;
use crate::gpus::GpuMetrics;
use crate::unix_now;

/// Largest answer taken from Prometheus: a slice of history for 1,000 GPUs is about 11 MB.
const MAX_PROMETHEUS_BYTES: usize = 64 << 20;
/// History is asked of Prometheus this much at a time, so no one answer grows with the window.
const HISTORY_SLICE_S: u32 = 15 * 60;
/// Every history query ends within this.
const HISTORY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the history waits at start for the Ray pod watch, which attributes GPUs to clusters.
const PODS_SYNC_WAIT: Duration = Duration::from_secs(30);

/// The Prometheus source: cheap to clone; [`Prometheus::run`] runs it.
#[derive(Clone)]
pub struct Prometheus {
    inner: Arc<Shared>,
}

struct Shared {
    /// The server's base URL, without a trailing slash.
    base: String,
    /// The dcgm-exporters' namespace.
    exporter_namespace: String,
    interval_s: u32,
    http: reqwest::Client,
    pods: RayPods,
    gpus: GpuMetrics,
    /// Whether the history window has been read: a restarted source does not read it again.
    history_read: AtomicBool,
}

impl Prometheus {
    /// Asks the Prometheus at `base` every `interval_s` about the exporters in
    /// `exporter_namespace`, into `gpus`, attributing GPUs through `pods`.
    pub fn new(
        base: String,
        exporter_namespace: String,
        interval_s: u32,
        pods: RayPods,
        gpus: GpuMetrics,
    ) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let shared = Shared {
            base,
            exporter_namespace,
            interval_s,
            http,
            pods,
            gpus,
            history_read: AtomicBool::new(false),
        };
        Prometheus { inner: Arc::new(shared) }
    }

    /// The source: the history window once, then a query every interval, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), String> {
        tokio::select! {
            () = self.work() => Ok(()),
            _ = shutdown.cancelled() => Ok(()),
        }
    }

    async fn work(&self) {
        if !self.inner.history_read.swap(true, Ordering::AcqRel) {
            self.read_history().await;
        }
        let shared = &self.inner;
        let timeout = Duration::from_secs(u64::from(shared.interval_s).clamp(1, 10));
        let mut tick = tokio::time::interval(Duration::from_secs(u64::from(shared.interval_s)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let t = unix_now() as u32;
            let query = [("query", prometheus::SELECTOR.to_owned())];
            let answer = self.ask("query", &query, timeout).await;
            let shared = shared.clone();
            let recorded = tokio::task::spawn_blocking(move || {
                let read = answer.and_then(|json| {
                    prometheus::read_now(&json, &shared.exporter_namespace)
                        .map_err(|e| e.to_string())
                });
                match read {
                    Ok(readings) => {
                        let holders = readings.values().filter_map(|r| r.pod.as_ref());
                        shared.gpus.record(t, &readings, &shared.pods.clusters_of(holders), vec![])
                    }
                    Err(why) => {
                        let error = format!("Prometheus {}: {why}", shared.base);
                        tracing::warn!("{error}");
                        shared.gpus.unreadable(t, error);
                    }
                }
            })
            .await;
            super::rethrow(recorded);
        }
    }

    /// The last fine window of history, oldest slice first.
    async fn read_history(&self) {
        let shared = &self.inner;
        // GPUs are attributed through the Ray pod watch: history read before it has listed
        // would count every cluster's GPUs as another workload's.
        let _ = shared.pods.health().wait_synced(PODS_SYNC_WAIT, "Ray pod").await;
        let now = unix_now() as u32;
        let mut from = now.saturating_sub(Retention::default().fine);
        while from < now {
            let to = (from + HISTORY_SLICE_S).min(now);
            let query = [
                ("query", prometheus::SELECTOR.to_owned()),
                ("start", from.to_string()),
                ("end", to.to_string()),
                ("step", format!("{}s", shared.interval_s)),
            ];
            let answer = self.ask("query_range", &query, HISTORY_TIMEOUT).await;
            let shared = shared.clone();
            let recorded = tokio::task::spawn_blocking(move || {
                let steps = prometheus::read_range(&answer?, &shared.exporter_namespace)
                    .map_err(|e| e.to_string())?;
                let holders =
                    steps.values().flat_map(|r| r.values()).filter_map(|r| r.pod.as_ref());
                shared.gpus.record_past(&steps, &shared.pods.clusters_of(holders));
                Ok::<_, String>(())
            })
            .await;
            if let Ok(Err(why)) = &recorded {
                // Without history the charts start at the first query, which still runs.
                tracing::warn!(
                    "Prometheus {}: no history from {from} to {to}: {why}",
                    self.inner.base
                );
                break;
            }
            super::rethrow(recorded);
            from = to + 1;
        }
    }

    /// One call of Prometheus' HTTP API (`/api/v1/{path}`), its answer's text, all of it read
    /// within `timeout`. Prometheus answers a refused query with a 4xx and a JSON body that says
    /// why, so the body of an error is read too.
    async fn ask(
        &self,
        path: &str,
        query: &[(&str, String)],
        timeout: Duration,
    ) -> Result<String, String> {
        let shared = &self.inner;
        let call = async {
            let request = shared
                .http
                .get(format!("{}/api/v1/{path}", shared.base))
                .query(query)
                .query(&[("timeout", format!("{}s", timeout.as_secs()))]);
            let response = request.send().await.map_err(|e| e.without_url().to_string())?;
            let status = response.status();
            let body = super::read_capped(response, MAX_PROMETHEUS_BYTES).await?;
            if !status.is_success() && !body.trim_start().starts_with('{') {
                return Err(format!("HTTP {status}"));
            }
            Ok(body)
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
        }
    }
}
