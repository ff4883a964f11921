//! GPU readings from a Prometheus server that scrapes the dcgm-exporters, read from the answers
//! of its HTTP API (`/api/v1/query` and `/api/v1/query_range`), into the same [`GpuReading`]s a
//! scrape of the exporters gives.
//!
//! What a Prometheus in between changes:
//! - Every series also carries the labels of its scrape target (`instance`, `job`, whatever the
//!   scrape config's relabelling adds). They are ignored.
//! - When the scrape config adds its own `pod`/`namespace`/`container` target labels and does not
//!   honour the exporter's (`honor_labels: false`, Prometheus' default), the exporter's own are
//!   kept as `exported_pod`, `exported_namespace`, `exported_container`. Those name the pod that
//!   holds the GPU, so they win.
//! - A GPU no pod holds has no pod labels of the exporter's, so those target labels (when the
//!   scrape adds them, as a prometheus-operator ServiceMonitor does, honouring labels or not) are
//!   all it has: they name the dcgm-exporter pod itself. A series whose pod is in the exporters'
//!   own namespace is therefore of a free GPU.
//! - Values are strings (`"62"`, `"NaN"`), timestamps are float Unix seconds.
//!
//! # Layout
//! - [`SELECTOR`]: the one PromQL selector of the fields read.
//! - [`read_now`]: an instant query's answer, one reading per GPU.
//! - [`read_range`]: a range query's answer, one set of readings per step, oldest first.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{add_sample, GpuId, GpuReading, ParseError};

/// A PromQL selector of every field [`super::parse_dcgm`] reads, in one query (`or` would not
/// do: it matches series on their labels without the metric name, so it keeps one field a GPU).
pub const SELECTOR: &str = concat!(
    r#"{__name__=~"DCGM_FI_DEV_GPU_UTIL|DCGM_FI_PROF_GR_ENGINE_ACTIVE|DCGM_FI_DEV_FB_USED|"#,
    r#"DCGM_FI_DEV_FB_FREE|DCGM_FI_DEV_POWER_USAGE|DCGM_FI_DEV_GPU_TEMP"}"#
);

/// One readings set a step of a range query, keyed by the step's Unix second.
pub type Steps = BTreeMap<u32, BTreeMap<GpuId, GpuReading>>;

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    metric: BTreeMap<String, String>,
    /// An instant vector's one value.
    #[serde(default)]
    value: Option<Point>,
    /// A range matrix's values.
    #[serde(default)]
    values: Vec<Point>,
}

/// `[unix seconds, "value"]`.
#[derive(Deserialize)]
struct Point(f64, String);

/// Reads the answer to an instant query of [`SELECTOR`] into one reading per GPU; `exporters` is
/// the namespace of the dcgm-exporter pods.
pub fn read_now(json: &str, exporters: &str) -> Result<BTreeMap<GpuId, GpuReading>, ParseError> {
    let mut gpus = BTreeMap::new();
    for series in result(json, "vector")? {
        if let Some(Point(_, value)) = &series.value {
            add(&mut gpus, &series.metric, value);
        }
    }
    free_exporters(&mut gpus, exporters);
    Ok(gpus)
}

/// Reads the answer to a range query of [`SELECTOR`] into each step's readings, oldest first;
/// `exporters` is the namespace of the dcgm-exporter pods.
pub fn read_range(json: &str, exporters: &str) -> Result<Steps, ParseError> {
    let mut steps = Steps::new();
    for series in result(json, "matrix")? {
        for Point(t, value) in &series.values {
            if !(0.0..f64::from(u32::MAX)).contains(t) {
                return Err(ParseError(format!(
                    "Prometheus answered a sample at {t}, not a time raydar can keep"
                )));
            }
            add(steps.entry(*t as u32).or_default(), &series.metric, value);
        }
    }
    for gpus in steps.values_mut() {
        free_exporters(gpus, exporters);
    }
    Ok(steps)
}

/// GPUs labelled with a pod of the exporters' namespace: the scrape's target, not a holder.
fn free_exporters(gpus: &mut BTreeMap<GpuId, GpuReading>, exporters: &str) {
    for reading in gpus.values_mut() {
        if reading.pod.as_ref().is_some_and(|pod| pod.namespace == exporters) {
            reading.pod = None;
        }
    }
}

/// The series of a successful answer of `kind` (`vector` or `matrix`), or what Prometheus said
/// went wrong.
fn result(json: &str, kind: &str) -> Result<Vec<Series>, ParseError> {
    let answer: Answer = serde_json::from_str(json)
        .map_err(|e| ParseError(format!("not a Prometheus API answer: {e}")))?;
    if answer.status != "success" {
        let kind = answer.error_type.unwrap_or_else(|| "error".into());
        return Err(ParseError(format!(
            "Prometheus answered {kind}: {}",
            answer.error.unwrap_or_default()
        )));
    }
    let data =
        answer.data.ok_or_else(|| ParseError("Prometheus answered success without data".into()))?;
    if data.result_type != kind {
        return Err(ParseError(format!(
            "Prometheus answered a {}, not a {kind}",
            data.result_type
        )));
    }
    Ok(data.result)
}

fn add(gpus: &mut BTreeMap<GpuId, GpuReading>, metric: &BTreeMap<String, String>, value: &str) {
    let Some(name) = metric.get("__name__") else { return };
    // "NaN", "+Inf" and "-Inf" parse too, and are blank to [`super::is_blank`].
    let Ok(value) = value.parse::<f64>() else { return };
    let label = |name: &str| -> Option<&str> {
        let own = match name {
            "pod" => metric.get("exported_pod"),
            "namespace" => metric.get("exported_namespace"),
            "container" => metric.get("exported_container"),
            _ => None,
        };
        own.or_else(|| metric.get(name)).map(String::as_str)
    };
    // Whole GPUs report GR_ENGINE_ACTIVE too; GPU_UTIL wins whichever of the two comes first.
    add_sample(gpus, name, value, label);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_names_every_field_read() {
        for f in super::super::READ {
            assert!(
                SELECTOR.contains(&format!("{f}|")) || SELECTOR.contains(&format!("{f}\"")),
                "{f}"
            );
        }
    }
}
