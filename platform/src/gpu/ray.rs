//! Ray's own view of a cluster's resources: the `ray_node_*` gauges each Ray node exports on its
//! metrics port (KubeRay's head service names it `metrics`, port 8080), summed over the nodes.
//!
//! Ray writes GPU memory (`ray_node_gram_used`) in MB although the metric's description says
//! bytes; it is read as MiB-sized MB here, as Ray's own dashboard does.

use std::collections::BTreeMap;

use super::{not_text, ParseError};
use crate::utilization::RayUsage;

/// Reads one scrape of Ray's metrics port into the cluster's [`RayUsage`]: CPU and GPU
/// utilization averaged over the nodes (and GPUs) that report them, memory and GPUs added up.
pub fn parse_ray(text: &str) -> Result<RayUsage, ParseError> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).map_err(not_text)?;
    // Per node (its `ip` label), the values of each gauge; GPU gauges per node and GPU index.
    let mut cpu: BTreeMap<String, f64> = BTreeMap::new();
    let (mut mem_used, mut mem_total, mut gpus, mut gram) =
        (None::<f64>, None::<f64>, None::<f64>, None::<f64>);
    let mut gpu_util: Vec<f64> = Vec::new();
    for sample in &scrape.samples {
        let value = match sample.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v)
            | prometheus_parse::Value::Counter(v) => v,
            _ => continue,
        };
        if !value.is_finite() {
            continue;
        }
        let add = |total: &mut Option<f64>| *total = Some(total.unwrap_or(0.0) + value);
        let node = sample.labels.get("ip").unwrap_or_default().to_owned();
        match sample.metric.as_str() {
            "ray_node_cpu_utilization" => {
                cpu.insert(node, value);
            }
            "ray_node_mem_used" => add(&mut mem_used),
            "ray_node_mem_total" => add(&mut mem_total),
            "ray_node_gpus_available" => add(&mut gpus),
            "ray_node_gpus_utilization" => gpu_util.push(value),
            "ray_node_gram_used" => add(&mut gram),
            _ => {}
        }
    }
    let average = |values: &[f64]| {
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let cpu_values: Vec<f64> = cpu.values().copied().collect();
    Ok(RayUsage {
        nodes: cpu.len() as u32,
        cpu_util: average(&cpu_values),
        mem_used_bytes: mem_used,
        mem_total_bytes: mem_total,
        gpus,
        gpu_util: average(&gpu_util),
        gram_used_mib: gram,
    })
}
