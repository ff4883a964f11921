//! GPU history: samples kept within their budget and downsampled when old, a GPU that changes
//! hands starting over, the idle rule, and Ray's own metrics read from its text format.

use std::collections::BTreeMap;

use raydar_platform::gpu::history::{History, Holder, Retention};
use raydar_platform::gpu::ray::parse_ray;
use raydar_platform::gpu::{ClusterKey, GpuId, GpuReading, PodRef};

fn gpu(index: u32) -> GpuId {
    GpuId { host: "kwok-gpu-1".into(), uuid: format!("GPU-{index}"), index, mig: None }
}

fn reading(pod: Option<&str>, util: f64) -> GpuReading {
    GpuReading {
        model: "NVIDIA A100-SXM4-80GB".into(),
        pod: pod.map(|p| PodRef {
            namespace: "ml".into(),
            pod: p.into(),
            container: "ray-worker".into(),
        }),
        util: Some(util),
        mem_used_mib: Some(1024.0),
        mem_free_mib: Some(80896.0),
        power_w: Some(60.0),
        temp_c: Some(40.0),
    }
}

/// Pods `<cluster>-…` belong to RayCluster `ml/<cluster>`.
fn cluster_of(pod: &PodRef) -> Option<ClusterKey> {
    pod.pod.split_once('-').map(|(cluster, _)| (pod.namespace.clone(), cluster.to_owned()))
}

fn key(name: &str) -> ClusterKey {
    ("ml".into(), name.into())
}

#[test]
fn six_hours_are_kept_in_full_then_five_minute_averages_then_nothing() {
    let retention = Retention::default();
    let mut history = History::new(retention, 10.0);
    let start = 1_800_000_000u32;
    // 30 hours of 15-second scrapes, utilization counting up 0, 1, 2, … 19 every 5 minutes.
    let steps = 30 * 3600 / 15;
    for step in 0..steps {
        let t = start + step * 15;
        let util = f64::from(step % 20);
        history.record(t, &BTreeMap::from([(gpu(0), reading(Some("a-head"), util))]), cluster_of);
    }
    let last = start + (steps - 1) * 15;
    let held = history.held_by(&key("a"), last);
    assert_eq!(held.len(), 1);
    let series = held[0];
    let fine: Vec<_> = series.since(0).collect();
    assert_eq!(fine.len(), 6 * 3600 / 15 + 1, "six hours at full resolution");
    assert_eq!(fine[0].t, last - 6 * 3600);
    let coarse: Vec<_> = series.coarse().collect();
    assert!(
        (287..=289).contains(&coarse.len()),
        "24 hours of 5-minute buckets, got {}",
        coarse.len()
    );
    assert!(coarse.windows(2).all(|w| w[1].t - w[0].t == 300), "one per 5 minutes");
    // Each bucket holds 20 samples counting 0..19: their average is 9.5.
    assert!(coarse.iter().all(|s| (s.util - 9.5).abs() < 1e-3), "{:?}", &coarse[..3]);
    // 16 bytes a sample, and room taken once for each window: nothing grown by doubling.
    let bytes = history.sample_bytes();
    assert!(bytes >= (1441 + 288) * 16 && bytes <= (1443 + 290) * 16, "{bytes} bytes for one GPU");
}

#[test]
fn a_gpu_passed_to_another_cluster_starts_a_new_series() {
    let mut history = History::new(Retention::default(), 10.0);
    let t = 1_800_000_000;
    history.record(t, &BTreeMap::from([(gpu(0), reading(Some("a-worker"), 90.0))]), cluster_of);
    history.record(
        t + 15,
        &BTreeMap::from([(gpu(0), reading(Some("a-worker"), 80.0))]),
        cluster_of,
    );
    history.record(t + 30, &BTreeMap::from([(gpu(0), reading(Some("b-worker"), 5.0))]), cluster_of);
    assert!(history.held_by(&key("a"), t + 30).is_empty(), "a no longer holds it");
    let b = history.held_by(&key("b"), t + 30);
    assert_eq!(b[0].since(0).count(), 1, "b's chart does not show a's work");
    history.record(t + 45, &BTreeMap::from([(gpu(0), reading(None, 0.0))]), cluster_of);
    assert_eq!(history.all().next().unwrap().holder, Holder::Free);
    history
        .record(t + 60, &BTreeMap::from([(gpu(0), reading(Some("job-runner"), 50.0))]), |_| None);
    assert_eq!(history.all().next().unwrap().holder, Holder::Other);
}

#[test]
fn gpus_no_exporter_reports_are_forgotten_after_the_fine_window() {
    let mut history = History::new(Retention::default(), 10.0);
    let t = 1_800_000_000;
    history.record(
        t,
        &BTreeMap::from([(gpu(0), reading(None, 0.0)), (gpu(1), reading(None, 0.0))]),
        cluster_of,
    );
    history.record(t + 3600, &BTreeMap::from([(gpu(0), reading(None, 0.0))]), cluster_of);
    assert_eq!(history.len(), 2, "an hour's silence is a node restarting, not a GPU gone");
    history.record(t + 6 * 3600 + 1, &BTreeMap::from([(gpu(0), reading(None, 0.0))]), cluster_of);
    assert_eq!(history.len(), 1);
}

#[test]
fn a_cluster_is_idle_when_all_its_gpus_stayed_below_the_threshold_long_enough() {
    let mut history = History::new(Retention::default(), 10.0);
    let t = 1_800_000_000;
    // Cluster a: both GPUs at 3 % from t. Cluster b: one GPU at 3 %, one busy at 70 %.
    for step in 0..=40u32 {
        let now = t + step * 15;
        let busy = if step == 20 { 50.0 } else { 3.0 }; // a's GPU 1 wakes once at step 20
        history.record(
            now,
            &BTreeMap::from([
                (gpu(0), reading(Some("a-w1"), 3.0)),
                (gpu(1), reading(Some("a-w2"), busy)),
                (gpu(2), reading(Some("b-w1"), 3.0)),
                (gpu(3), reading(Some("b-w2"), 70.0)),
            ]),
            cluster_of,
        );
    }
    let now = t + 600;
    let a = history.held_by(&key("a"), now);
    // GPU 1 has been below since step 21 (t + 315): 285 s ago.
    assert_eq!(History::idle(&a, now, 300), None, "not yet idle for 5 minutes");
    let idle = History::idle(&a, now, 240).expect("idle for 4 minutes");
    assert_eq!(idle.since, i64::from(t + 315));
    // GPU 0 below for 600 s, GPU 1 for 285 s: 885 GPU-seconds.
    assert!((idle.gpu_hours - 885.0 / 3600.0).abs() < 1e-9, "{}", idle.gpu_hours);
    let b = history.held_by(&key("b"), now);
    assert_eq!(History::idle(&b, now, 60), None, "one busy GPU keeps the cluster busy");
    assert_eq!(
        History::idle(&[], now, 60),
        None,
        "a cluster without GPUs is not an idle GPU holder"
    );
}

#[test]
fn ray_metrics_add_up_nodes_and_read_gpu_memory_in_megabytes() {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/ray/metrics.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let usage = parse_ray(&text).unwrap();
    assert_eq!(usage.nodes, 2);
    assert_eq!(usage.cpu_util, Some(50.0));
    assert_eq!(usage.mem_used_bytes, Some(8_589_934_592.0));
    assert_eq!(usage.mem_total_bytes, Some(42_949_672_960.0));
    assert_eq!(usage.gpus, Some(2.0));
    assert_eq!(usage.gpu_util, Some(80.0));
    assert_eq!(usage.gram_used_mib, Some(102_400.0), "MB as Ray writes them");
    let nothing = parse_ray("ray_node_cpu_utilization{ip=\"1\"} not-a-number\n").unwrap();
    assert_eq!(
        (nothing.nodes, nothing.cpu_util, nothing.gpus),
        (0, None, None),
        "a line that is no sample counts for nothing"
    );
}
