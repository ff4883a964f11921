//! GPU readings from a Prometheus server's query answers (tests/fixtures/prometheus, in the
//! HTTP API's format): the same readings a scrape of the exporters gives, whatever labels the
//! scrape added, and a range answer as one readings set per step that fills a history.

use std::collections::BTreeMap;

use raydar_platform::gpu::history::{History, Retention};
use raydar_platform::gpu::prometheus::{read_now, read_range};
use raydar_platform::gpu::{GpuId, GpuReading, PodRef};

/// Where the dcgm-exporter pods run (NVIDIA's GPU Operator's namespace).
const EXPORTERS: &str = "gpu-operator";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/prometheus/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn by_uuid_end<'a>(
    gpus: &'a BTreeMap<GpuId, GpuReading>,
    end: &str,
) -> (&'a GpuId, &'a GpuReading) {
    gpus.iter()
        .find(|(id, _)| id.uuid.ends_with(end))
        .unwrap_or_else(|| panic!("no GPU …{end} in {:?}", gpus.keys().collect::<Vec<_>>()))
}

#[test]
fn an_instant_answer_gives_one_reading_per_gpu_as_the_exporter_wrote_it() {
    let gpus = read_now(&fixture("vector.json"), EXPORTERS).unwrap();
    // Five GPUs; `up` is not a GPU field and the series without a `gpu` label names no GPU.
    assert_eq!(gpus.len(), 5, "{:?}", gpus.keys().collect::<Vec<_>>());

    let (id, busy) = by_uuid_end(&gpus, "9a01");
    assert_eq!((id.host.as_str(), id.index, id.mig.as_ref()), ("gpu-node-0", 0, None));
    assert_eq!(busy.model, "NVIDIA A100-SXM4-80GB");
    assert_eq!(
        busy.pod,
        Some(PodRef {
            namespace: "vision".into(),
            pod: "busy-gpu-workers-abc12".into(),
            container: "ray-worker".into()
        })
    );
    // GPU_UTIL wins over the whole GPU's GR_ENGINE_ACTIVE (0.2), though that came later.
    assert_eq!(busy.util, Some(87.0));
    assert_eq!(busy.mem_total_mib(), Some(81917.0));
    assert_eq!(busy.power_w, Some(312.5));
    // DCGM's blank sentinel, passed through by Prometheus as a number: no temperature.
    assert_eq!(busy.temp_c, None);

    // No pod labels (and the newer `hostname`): nobody holds it; Prometheus' "NaN" is no value.
    let (id, free) = by_uuid_end(&gpus, "2b02");
    assert_eq!(id.host, "gpu-node-0");
    assert_eq!((free.pod.as_ref(), free.util, free.power_w), (None, Some(0.0), None));

    // A MIG instance: utilization from its graphics engine, as a percentage.
    let (id, mig) = by_uuid_end(&gpus, "7b03");
    assert_eq!(id.mig, Some(("1g.10gb".to_owned(), "3".to_owned())));
    assert_eq!(
        (mig.util, mig.pod.as_ref().map(|p| p.pod.as_str())),
        (Some(25.0), Some("idle-gpu-workers-xyz99"))
    );
}

#[test]
fn the_exporters_own_pod_labels_win_over_the_scrape_targets_and_name_no_holder() {
    let gpus = read_now(&fixture("vector.json"), EXPORTERS).unwrap();
    // Scraped without honor_labels: `pod` is the exporter's, `exported_pod` the one holding the GPU.
    let (_, held) = by_uuid_end(&gpus, "1e04");
    assert_eq!(
        held.pod,
        Some(PodRef {
            namespace: "speech".into(),
            pod: "trainer-0".into(),
            container: "trainer".into()
        })
    );
    assert_eq!(held.util, Some(41.0));
    // No exporter's pod labels at all: the target's name the exporter pod itself; the GPU is free.
    let (_, free) = by_uuid_end(&gpus, "1e05");
    assert_eq!((free.pod.as_ref(), free.util), (None, Some(0.0)));
}

#[test]
fn a_range_answer_is_one_readings_set_per_step_and_fills_a_history() {
    let steps = read_range(&fixture("matrix.json"), EXPORTERS).unwrap();
    assert_eq!(
        steps.keys().copied().collect::<Vec<_>>(),
        vec![1_795_739_970, 1_795_739_985, 1_795_740_000]
    );
    assert_eq!(steps[&1_795_739_970].len(), 1, "the free GPU has no sample at the first step");
    let (_, last) = by_uuid_end(&steps[&1_795_740_000], "9a01");
    assert_eq!((last.util, last.mem_used_mib), (Some(90.0), Some(62000.0)));

    let mut history = History::new(Retention::default(), 10.0);
    let cluster_of = |pod: &PodRef| Some((pod.namespace.clone(), "busy".to_owned()));
    for (t, readings) in &steps {
        history.record(*t, readings, cluster_of);
    }
    let held = history.held_by(&("vision".into(), "busy".into()), 0);
    assert_eq!(held.len(), 1);
    let utils: Vec<f32> = held[0].since(0).map(|s| s.util).collect();
    assert_eq!(utils, vec![80.0, 85.0, 90.0]);
    assert_eq!(history.last_scrape(), Some(1_795_740_000));
}

#[test]
fn what_prometheus_refuses_or_garbles_is_an_error_that_says_so() {
    let refused = r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:1: parse error"}"#;
    let error = read_now(refused, EXPORTERS).unwrap_err().to_string();
    assert!(error.contains("bad_data") && error.contains("parse error"), "{error}");
    let matrix = fixture("matrix.json");
    assert!(read_now(&matrix, EXPORTERS)
        .unwrap_err()
        .to_string()
        .contains("a matrix, not a vector"));
    assert!(read_range(&fixture("vector.json"), EXPORTERS)
        .unwrap_err()
        .to_string()
        .contains("a vector, not a matrix"));
    let error = read_now("<html>502 Bad Gateway</html>", EXPORTERS).unwrap_err().to_string();
    assert!(error.starts_with("not a Prometheus API answer"), "{error}");
    let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    assert!(read_now(empty, EXPORTERS).unwrap().is_empty());
}
