//! GPU metrics as dcgm-exporter serves them, read into one reading per GPU and attributed to the
//! pod, and so the RayCluster, that holds it.
//!
//! dcgm-exporter (NVIDIA's Prometheus exporter for DCGM, `:9400/metrics`) writes one sample per
//! field per GPU, in the Prometheus text format, labelled with the GPU (`gpu`, `UUID`, `device`,
//! `modelName`, MIG's `GPU_I_PROFILE`/`GPU_I_ID`), the node (`Hostname`, spelled `hostname` in
//! newer releases) and, in Kubernetes mode, the pod holding the GPU (`pod`, `namespace`,
//! `container`). A GPU no pod holds has no pod labels. A field DCGM has no value for is written
//! as a blank sentinel (9223372036854775794 and its neighbours), which is "no value", not a huge
//! number.
//!
//! The text format itself is parsed by the `prometheus-parse` crate; this module picks the fields
//! raydar charts and groups them by GPU. The same series read back from a Prometheus server that
//! scrapes the exporters are read by [`prometheus`].
//!
//! # Layout
//! - [`parse_dcgm`]: one scrape into a [`GpuReading`] per [`GpuId`]; [`is_blank`] tells DCGM's
//!   "no value" sentinels from values.
//! - [`prometheus`]: the same readings from a Prometheus server's query answers, now and over a
//!   past window.
//! - [`attribute`]: which RayCluster, other pod or nobody holds each GPU.
//! - [`history`]: each GPU's readings over time, bounded, and the idle rule.
//! - [`ray`]: Ray's own resource metrics (`ray_node_*`) from a head's metrics port.

use std::collections::BTreeMap;

pub mod history;
pub mod prometheus;
pub mod ray;

use serde::{Deserialize, Serialize};

/// The dcgm-exporter fields raydar reads (their DCGM names).
pub mod field {
    /// GPU utilization, percent.
    pub const GPU_UTIL: &str = "DCGM_FI_DEV_GPU_UTIL";
    /// Framebuffer memory used, MiB.
    pub const FB_USED: &str = "DCGM_FI_DEV_FB_USED";
    /// Framebuffer memory free, MiB.
    pub const FB_FREE: &str = "DCGM_FI_DEV_FB_FREE";
    /// Power draw, watts.
    pub const POWER_USAGE: &str = "DCGM_FI_DEV_POWER_USAGE";
    /// GPU temperature, degrees Celsius.
    pub const GPU_TEMP: &str = "DCGM_FI_DEV_GPU_TEMP";
    /// Graphics engine active ratio (0–1), the profiling field MIG instances report instead of
    /// GPU_UTIL.
    pub const GR_ENGINE_ACTIVE: &str = "DCGM_FI_PROF_GR_ENGINE_ACTIVE";
}

/// Which GPU (or MIG instance) a reading is of: unique on its node by UUID and MIG instance.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GpuId {
    /// The node's host name (`Hostname` or `hostname`); empty when the exporter sent neither.
    pub host: String,
    /// The GPU's UUID (`GPU-…`), or, when absent, its index on the node.
    pub uuid: String,
    /// The GPU's index on the node (`gpu`).
    pub index: u32,
    /// The MIG instance, when the reading is of one: its profile (`1g.5gb`) and instance id.
    pub mig: Option<(String, String)>,
}

/// The pod a GPU is assigned to, from dcgm-exporter's Kubernetes-mode labels.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PodRef {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

/// One scrape's values for one GPU. A field the exporter left blank, or did not send, is `None`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuReading {
    pub model: String,
    /// The pod holding the GPU; `None` when no pod does (the GPU is free).
    pub pod: Option<PodRef>,
    /// Utilization, percent (0–100).
    pub util: Option<f64>,
    /// Memory used and free, MiB.
    pub mem_used_mib: Option<f64>,
    pub mem_free_mib: Option<f64>,
    /// Power draw, watts.
    pub power_w: Option<f64>,
    /// Temperature, °C.
    pub temp_c: Option<f64>,
}

impl GpuReading {
    /// The GPU's memory, MiB: used plus free (dcgm-exporter sends no total), when both are known.
    pub fn mem_total_mib(&self) -> Option<f64> {
        Some(self.mem_used_mib? + self.mem_free_mib?)
    }
}

/// Why a scrape could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// Whether `value` is one of DCGM's blank sentinels rather than a measurement.
///
/// DCGM marks missing values with the top of each type's range: int64 fields with
/// 9223372036854775792..=9223372036854775795 (blank, not found, not supported, no permission;
/// 9223372036854775794 is what dcgm-exporter prints for an unsupported field), int32 fields with
/// 2147483632..=2147483635, doubles with 140737488355328.0 and up. As an f64 the int64 ones all
/// read as about 9.22e18, so everything from there up is blank. Only the fields read here are
/// checked, none of which can reach these values when real (a temperature, a percentage, MiB,
/// watts).
pub fn is_blank(value: f64) -> bool {
    !value.is_finite()
        || value >= 140_737_488_355_328.0
        || (2_147_483_632.0..=2_147_483_635.0).contains(&value)
        || value < 0.0
}

/// Reads a dcgm-exporter scrape into one reading per GPU (or MIG instance).
///
/// Samples of other metrics are ignored; a GPU sample without a `gpu` or `UUID` label cannot be
/// told apart from the others and is skipped.
pub fn parse_dcgm(text: &str) -> Result<BTreeMap<GpuId, GpuReading>, ParseError> {
    // Only the lines of the fields read here reach the parser: dcgm-exporter sends 18 fields or
    // more per GPU, and the parser's cost is per line (measured by `make bench`).
    let lines = text.lines().filter(|l| is_read(l)).map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).map_err(not_text)?;
    let mut gpus: BTreeMap<GpuId, GpuReading> = BTreeMap::new();
    for sample in scrape.samples {
        let value = match sample.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => continue,
        };
        let labels = &sample.labels;
        add_sample(&mut gpus, &sample.metric, value, |name| labels.get(name));
    }
    Ok(gpus)
}

/// A parse failure of the text format, in words.
fn not_text(e: impl std::fmt::Display) -> ParseError {
    ParseError(format!("not a Prometheus text exposition: {e}"))
}

/// Adds one sample of a read field to the reading of the GPU its labels name (`label` gives a
/// label's value by name); other metrics, and samples that name no GPU, are left out.
fn add_sample<'l>(
    gpus: &mut BTreeMap<GpuId, GpuReading>,
    metric: &str,
    value: f64,
    label: impl Fn(&str) -> Option<&'l str>,
) {
    let set: fn(&mut GpuReading, f64) = match metric {
        field::GPU_UTIL => |r, v| r.util = Some(v),
        // Only where GPU_UTIL is not reported (MIG instances): as a percentage.
        field::GR_ENGINE_ACTIVE => |r, v| {
            r.util.get_or_insert(v * 100.0);
        },
        field::FB_USED => |r, v| r.mem_used_mib = Some(v),
        field::FB_FREE => |r, v| r.mem_free_mib = Some(v),
        field::POWER_USAGE => |r, v| r.power_w = Some(v),
        field::GPU_TEMP => |r, v| r.temp_c = Some(v),
        _ => return,
    };
    let Some(index) = label("gpu").and_then(|g| g.parse::<u32>().ok()) else { return };
    let label = |name: &str| label(name).filter(|v| !v.is_empty()).map(str::to_owned);
    let id = GpuId {
        host: label("Hostname").or_else(|| label("hostname")).unwrap_or_default(),
        uuid: label("UUID").unwrap_or_else(|| index.to_string()),
        index,
        mig: label("GPU_I_ID").map(|id| (label("GPU_I_PROFILE").unwrap_or_default(), id)),
    };
    let reading = gpus.entry(id).or_insert_with(|| GpuReading {
        model: label("modelName").unwrap_or_default(),
        pod: match (label("namespace"), label("pod")) {
            (Some(namespace), Some(pod)) => {
                Some(PodRef { namespace, pod, container: label("container").unwrap_or_default() })
            }
            _ => None,
        },
        ..GpuReading::default()
    });
    if !is_blank(value) {
        set(reading, value);
    }
}

/// The fields [`parse_dcgm`] reads.
const READ: [&str; 6] = [
    field::GPU_UTIL,
    field::GR_ENGINE_ACTIVE,
    field::FB_USED,
    field::FB_FREE,
    field::POWER_USAGE,
    field::GPU_TEMP,
];

/// Whether a line of the exposition is a sample, or the `# TYPE`/`# HELP` line, of a field
/// [`parse_dcgm`] reads (`DCGM_FI_DEV_FB_USED`, not `DCGM_FI_DEV_FB_USED_PERCENT`).
/// GR_ENGINE_ACTIVE stands in for GPU_UTIL only on MIG instances (labelled `GPU_I_ID`), so the
/// samples of whole GPUs, which have GPU_UTIL, are not read.
fn is_read(line: &str) -> bool {
    let name =
        line.strip_prefix("# TYPE ").or_else(|| line.strip_prefix("# HELP ")).unwrap_or(line);
    READ.iter().any(|f| {
        name.strip_prefix(f).is_some_and(|rest| match rest.as_bytes().first() {
            Some(b' ') => true,
            Some(b'{') => *f != field::GR_ENGINE_ACTIVE || rest.contains("GPU_I_ID="),
            _ => false,
        })
    })
}

/// A RayCluster, by namespace and name.
pub type ClusterKey = (String, String);

/// Where each GPU of a scrape goes: to the RayCluster whose pod holds it, to a pod of no
/// RayCluster, or to nobody.
#[derive(Debug, Default, PartialEq)]
pub struct Attribution {
    /// GPUs held by each RayCluster's pods.
    pub clusters: BTreeMap<ClusterKey, Vec<GpuId>>,
    /// GPUs held by pods that belong to no RayCluster (another workload's).
    pub other: Vec<GpuId>,
    /// GPUs no pod holds.
    pub free: Vec<GpuId>,
}

/// Attributes each GPU to a RayCluster through the pod that holds it; `cluster_of` says which
/// RayCluster a pod belongs to (KubeRay labels its pods `ray.io/cluster`).
pub fn attribute<'a>(
    gpus: impl IntoIterator<Item = (&'a GpuId, &'a GpuReading)>,
    cluster_of: impl Fn(&PodRef) -> Option<ClusterKey>,
) -> Attribution {
    let mut out = Attribution::default();
    for (id, reading) in gpus {
        match &reading.pod {
            None => out.free.push(id.clone()),
            Some(pod) => match cluster_of(pod) {
                Some(cluster) => out.clusters.entry(cluster).or_default().push(id.clone()),
                None => out.other.push(id.clone()),
            },
        }
    }
    out
}
