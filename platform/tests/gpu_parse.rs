//! dcgm-exporter scrapes in its real text format (tests/fixtures/dcgm): one reading per GPU or
//! MIG instance, blanks as no value, both spellings of the host label, GPUs without pods, and the
//! attribution of each GPU to its RayCluster.

use std::collections::BTreeMap;

use raydar_platform::gpu::{
    attribute, is_blank, parse_dcgm, ClusterKey, GpuId, GpuReading, PodRef,
};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/dcgm/{name}", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
}

fn by_uuid_end<'a>(
    gpus: &'a BTreeMap<GpuId, GpuReading>,
    end: &str,
    mig: Option<&str>,
) -> (&'a GpuId, &'a GpuReading) {
    gpus.iter()
        .find(|(id, _)| id.uuid.ends_with(end) && id.mig.as_ref().map(|(_, i)| i.as_str()) == mig)
        .unwrap_or_else(|| panic!("no GPU …{end} {mig:?} in {:?}", gpus.keys().collect::<Vec<_>>()))
}

#[test]
fn kubernetes_mode_gives_one_reading_per_gpu_with_its_pod() {
    let gpus = parse_dcgm(&fixture("kubernetes-mode.txt")).unwrap();
    assert_eq!(gpus.len(), 2);
    let (id, held) = by_uuid_end(&gpus, "5a60", None);
    assert_eq!((id.host.as_str(), id.index), ("gpu-node-1", 0));
    assert_eq!(held.model, "NVIDIA A100-SXM4-40GB");
    assert_eq!(
        held.pod,
        Some(PodRef {
            namespace: "team-a".into(),
            pod: "train-gpu-workers-worker-x7k2p".into(),
            container: "ray-worker".into()
        })
    );
    assert_eq!(held.util, Some(87.0));
    assert_eq!(held.mem_used_mib, Some(31122.0));
    assert_eq!(held.mem_total_mib(), Some(40336.0));
    assert_eq!(held.power_w, Some(287.512));
    assert_eq!(held.temp_c, Some(61.0));
    // The second GPU has no pod labels: nobody holds it.
    let (id, free) = by_uuid_end(&gpus, "5a61", None);
    assert_eq!(id.index, 1);
    assert_eq!(free.pod, None);
    assert_eq!(free.util, Some(0.0));
}

#[test]
fn mig_instances_are_separate_gpus_and_the_blank_sentinel_is_no_value() {
    let gpus = parse_dcgm(&fixture("mig.txt")).unwrap();
    assert_eq!(gpus.len(), 2, "two MIG instances of one GPU");
    let (id, held) = by_uuid_end(&gpus, "d8e9", Some("1"));
    // The newer exporter's lower-case `hostname`.
    assert_eq!(id.host, "gpu-node-2");
    assert_eq!(id.mig, Some(("1g.5gb".to_owned(), "1".to_owned())));
    assert_eq!(held.pod.as_ref().map(|p| p.namespace.as_str()), Some("team-b"));
    // GPU_UTIL is 9223372036854775794 (not supported on MIG): utilization comes from the
    // graphics engine's active ratio instead, as a percentage; power is blank and stays unknown.
    assert!((held.util.unwrap() - 73.4).abs() < 1e-9, "{:?}", held.util);
    assert_eq!(held.power_w, None);
    assert_eq!(held.mem_total_mib(), Some(4864.0));
    let (_, free) = by_uuid_end(&gpus, "d8e9", Some("2"));
    assert_eq!((free.pod.as_ref(), free.util), (None, Some(0.0)));
}

#[test]
fn sentinels_are_blank_and_real_values_are_not() {
    for blank in [
        9223372036854775794.0,
        9223372036854775792.0,
        2147483632.0,
        2147483635.0,
        140737488355328.0,
        f64::NAN,
        -1.0,
    ] {
        assert!(is_blank(blank), "{blank}");
    }
    for real in [0.0, 100.0, 81920.0, 700.5, 2147483631.0] {
        assert!(!is_blank(real), "{real}");
    }
}

#[test]
fn a_gpu_sample_without_its_gpu_label_is_skipped_and_other_metrics_are_ignored() {
    let text = "# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n\
        DCGM_FI_DEV_GPU_UTIL{UUID=\"GPU-x\",Hostname=\"n\"} 50\n\
        DCGM_FI_DEV_GPU_UTIL{gpu=\"3\",Hostname=\"n\"} 12\n\
        # TYPE process_cpu_seconds_total counter\n\
        process_cpu_seconds_total 4.2\n";
    let gpus = parse_dcgm(text).unwrap();
    assert_eq!(gpus.len(), 1);
    let (id, reading) = gpus.iter().next().unwrap();
    // Without a UUID the index names the GPU on its node.
    assert_eq!((id.uuid.as_str(), id.index, reading.util), ("3", 3, Some(12.0)));
}

#[test]
fn each_gpu_goes_to_the_cluster_of_its_pod_or_to_other_or_free() {
    let mut text = fixture("kubernetes-mode.txt");
    text.push_str(&fixture("mig.txt"));
    let gpus = parse_dcgm(&text).unwrap();
    assert_eq!(gpus.len(), 4);
    // As the server knows pods: team-a's pod is a worker of RayCluster `train`; team-b's pod is
    // not a Ray pod.
    let cluster_of = |pod: &PodRef| -> Option<ClusterKey> {
        (pod.pod.starts_with("train-")).then(|| (pod.namespace.clone(), "train".to_owned()))
    };
    let placed = attribute(&gpus, cluster_of);
    let train = &placed.clusters[&("team-a".to_owned(), "train".to_owned())];
    assert_eq!(train.len(), 1);
    assert!(train[0].uuid.ends_with("5a60"));
    assert_eq!(placed.clusters.len(), 1);
    assert_eq!(placed.other.len(), 1, "team-b's pod is no RayCluster's");
    assert_eq!(placed.other[0].mig.as_ref().map(|m| m.1.as_str()), Some("1"));
    assert_eq!(placed.free.len(), 2, "a whole GPU and a MIG instance no pod holds");
}

#[test]
fn text_that_is_not_the_format_is_an_error_or_nothing() {
    // The parser is lenient about lines it does not know; what matters is no GPU appears and
    // nothing panics.
    match parse_dcgm("<html>502 Bad Gateway</html>") {
        Ok(gpus) => assert!(gpus.is_empty()),
        Err(e) => assert!(e.to_string().contains("Prometheus"), "{e}"),
    }
}
