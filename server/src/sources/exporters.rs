//! The dcgm-exporter source: a watch of the exporter pods (`--dcgm-selector` in
//! `--dcgm-namespace`; NVIDIA's GPU Operator runs them as `app=nvidia-dcgm-exporter` in
//! `gpu-operator`), scraped every `--gpu-interval` through the apiserver's pod proxy or straight
//! at the pod IP (`--dcgm-reach`), a few at a time, each within a timeout, so one that hangs
//! costs only its own GPUs' sample. Each round is parsed off the async workers and recorded into
//! [`GpuMetrics`], GPUs attributed through the Ray pod watch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::{Api, Client};
use platform::gpu::{parse_dcgm, GpuId, GpuReading};
use tokio_util::sync::CancellationToken;

use super::watch::{Projected, Watch, Watched};
use super::RayPods;
use crate::config::{ExporterReach, GpuSettings};
use crate::gpus::GpuMetrics;
use crate::unix_now;

/// Exporters scraped at once.
const SCRAPES_AT_ONCE: usize = 8;
/// Largest scrape taken from one exporter: a node's worth of GPUs is tens of KB.
const MAX_SCRAPE_BYTES: usize = 8 << 20;

const WATCHED: Watched = Watched { kind: "dcgm-exporter Pod", resource: "pods", install: "" };

/// The exporter source: cheap to clone; [`Exporters::run`] runs it.
#[derive(Clone)]
pub struct Exporters {
    inner: Arc<Shared>,
}

struct Shared {
    settings: GpuSettings,
    kube: Client,
    apiserver: String,
    http: reqwest::Client,
    /// The exporter pods that can be scraped now (`None`: not running).
    exporters: Projected<Option<Exporter>>,
    pods: RayPods,
    gpus: GpuMetrics,
}

impl Exporters {
    /// Scrapes as `settings` say into `gpus`, attributing GPUs through `pods`.
    pub fn new(
        settings: GpuSettings,
        kube: Client,
        apiserver: String,
        pods: RayPods,
        gpus: GpuMetrics,
    ) -> Self {
        let timeout = scrape_timeout(&settings);
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let shared =
            Shared { settings, kube, apiserver, http, exporters: Projected::default(), pods, gpus };
        Exporters { inner: Arc::new(shared) }
    }

    /// The source: the exporter watch and the scrape clock, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), String> {
        let shared = &self.inner;
        let settings = &shared.settings;
        let api = Api::<Pod>::namespaced(shared.kube.clone(), &settings.namespace);
        let config = watcher::Config::default().labels(&settings.selector).any_semantic();
        let watch = Watch::all(api, config, WATCHED);
        let watch = shared.exporters.watch(
            watch,
            &shared.apiserver,
            Exporter::of,
            |_| {},
            shutdown.cancelled(),
        );
        let scrapes = async {
            let mut tick =
                tokio::time::interval(Duration::from_secs(u64::from(settings.interval_s)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.round().await;
            }
        };
        tokio::select! {
            _ = watch => Ok(()),
            () = scrapes => Ok(()),
            _ = shutdown.cancelled() => Ok(()),
        }
    }

    /// Scrapes every exporter once and records what they said.
    async fn round(&self) {
        let shared = self.inner.clone();
        let exporters: Vec<Exporter> =
            shared.exporters.read().values().flatten().cloned().collect();
        let texts = scrape_all(&shared, exporters).await;
        let t = unix_now() as u32;
        // Tens of milliseconds of parsing for a large fleet: off the async workers.
        let parsed = tokio::task::spawn_blocking(move || {
            let mut readings: BTreeMap<GpuId, GpuReading> = BTreeMap::new();
            let mut errors: Vec<String> =
                shared.exporters.health.last_error().into_iter().collect();
            let (asked, mut answered) = (texts.len(), 0);
            for (exporter, text) in texts {
                match text.and_then(|text| parse_dcgm(&text).map_err(|e| e.to_string())) {
                    Ok(gpus) => {
                        answered += 1;
                        readings.extend(gpus);
                    }
                    Err(why) => {
                        let error = format!("dcgm-exporter {exporter}: {why}");
                        tracing::warn!("{error}");
                        errors.push(error);
                    }
                }
            }
            // No exporter answered (the apiserver's proxy down, say): the last readings stay,
            // stale, rather than every GPU counting as gone.
            if asked > 0 && answered == 0 {
                shared.gpus.unreadable(t, errors.join("; "));
            } else {
                let pods =
                    shared.pods.clusters_of(readings.values().filter_map(|r| r.pod.as_ref()));
                shared.gpus.record(t, &readings, &pods, errors);
            }
        })
        .await;
        super::rethrow(parsed);
    }
}

/// One scrape ends within the interval, at most 10 s.
fn scrape_timeout(settings: &GpuSettings) -> Duration {
    Duration::from_secs(u64::from(settings.interval_s).clamp(1, 10))
}

/// One dcgm-exporter pod that can be scraped.
#[derive(Clone)]
struct Exporter {
    pod: String,
    node: String,
    ip: String,
}

impl Exporter {
    fn of(pod: &Pod) -> Option<Exporter> {
        let status = pod.status.as_ref()?;
        if pod.metadata.deletion_timestamp.is_some() || status.phase.as_deref() != Some("Running") {
            return None;
        }
        Some(Exporter {
            pod: pod.metadata.name.clone()?,
            node: pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default(),
            ip: status.pod_ip.clone()?,
        })
    }

    fn name(&self) -> String {
        if self.node.is_empty() {
            self.pod.clone()
        } else {
            format!("{} on {}", self.pod, self.node)
        }
    }
}

/// Scrapes every exporter, a few at a time: each one's text or why there is none.
async fn scrape_all(
    inner: &Shared,
    exporters: Vec<Exporter>,
) -> Vec<(String, Result<String, String>)> {
    futures::stream::iter(exporters)
        .map(|exporter| async move {
            let text = scrape(inner, &exporter).await;
            (exporter.name(), text)
        })
        .buffer_unordered(SCRAPES_AT_ONCE)
        .collect()
        .await
}

async fn scrape(inner: &Shared, exporter: &Exporter) -> Result<String, String> {
    let settings = &inner.settings;
    let timeout = scrape_timeout(settings);
    let call = async {
        match settings.reach {
            ExporterReach::ApiserverProxy => {
                let uri = format!(
                    "/api/v1/namespaces/{}/pods/{}:{}/proxy/metrics",
                    settings.namespace, exporter.pod, settings.port
                );
                let request =
                    axum::http::Request::get(uri).body(Vec::new()).map_err(|e| e.to_string())?;
                inner.kube.request_text(request).await.map_err(|e| e.to_string())
            }
            ExporterReach::PodIp => {
                let ip = exporter
                    .ip
                    .parse::<std::net::IpAddr>()
                    .map_err(|_| format!("{:?} is not an IP address", exporter.ip))?;
                let url =
                    format!("http://{}/metrics", std::net::SocketAddr::new(ip, settings.port));
                let response =
                    inner.http.get(url).send().await.map_err(|e| e.without_url().to_string())?;
                if !response.status().is_success() {
                    return Err(format!("HTTP {}", response.status()));
                }
                super::read_capped(response, MAX_SCRAPE_BYTES).await
            }
        }
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(answer) => answer,
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
    }
}
