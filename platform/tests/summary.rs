//! The cluster-list row computed from RayClusters as KubeRay stores them.

use raydar_platform::kuberay::RayCluster;
use raydar_platform::status::format_age;
use raydar_platform::ClusterPhase;

/// A GPU training cluster as the apiserver returns it, status written by KubeRay v1.5.
const GPU_CLUSTER: &str = r#"{
  "apiVersion": "ray.io/v1", "kind": "RayCluster",
  "metadata": {"name": "llm-train", "namespace": "team-a", "uid": "0f6c", "resourceVersion": "812",
               "creationTimestamp": "2026-11-26T07:00:00Z",
               "managedFields": [{"manager": "kubectl"}]},
  "spec": {
    "rayVersion": "2.60.0",
    "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [
      {"name": "ray-head", "image": "rayproject/ray:2.60.0", "resources": {"limits": {"cpu": "4", "memory": "16Gi"}}}]}}},
    "workerGroupSpecs": [
      {"groupName": "a100", "replicas": 3, "minReplicas": 1, "maxReplicas": 4, "rayStartParams": {},
       "template": {"spec": {"containers": [{"name": "ray-worker", "image": "rayproject/ray:2.60.0-gpu",
         "resources": {"limits": {"cpu": "32", "nvidia.com/gpu": "8"}, "requests": {"nvidia.com/gpu": "8"}}}]}}},
      {"groupName": "cpu", "replicas": 10, "minReplicas": 0, "maxReplicas": 2, "rayStartParams": {},
       "template": {"spec": {"containers": [{"name": "ray-worker", "resources": {"requests": {"cpu": "8"}}}]}}}
    ]
  },
  "status": {
    "state": "ready", "readyWorkerReplicas": 2, "desiredWorkerReplicas": 5,
    "desiredGPU": "24", "desiredCPU": "116",
    "conditions": [
      {"type": "RayClusterProvisioned", "status": "False", "reason": "RayClusterPodsProvisioning",
       "message": "", "lastTransitionTime": "2026-11-26T07:00:01Z"},
      {"type": "HeadPodReady", "status": "True", "reason": "HeadPodRunningAndReady",
       "message": "", "lastTransitionTime": "2026-11-26T07:00:05Z"}
    ]
  }
}"#;

#[test]
fn summary_of_a_gpu_training_cluster() {
    let cluster: RayCluster = serde_json::from_str(GPU_CLUSTER).unwrap();
    let row = cluster.summary();
    assert_eq!(row.key(), ("team-a", "llm-train"));
    assert_eq!(row.phase, ClusterPhase::Provisioning);
    assert_eq!((row.workers_ready, row.workers_desired), (2, 5));
    // 3 replicas x 8 GPUs; the CPU group's 10 replicas are clamped to its max of 2 and hold none.
    assert_eq!(row.gpus_desired, 24);
    assert_eq!(row.created_at, 1_795_676_400);
}

#[test]
fn before_kuberay_writes_status_the_spec_says_what_is_wanted() {
    let mut cluster: RayCluster = serde_json::from_str(GPU_CLUSTER).unwrap();
    cluster.status = None;
    let row = cluster.summary();
    assert_eq!(row.phase, ClusterPhase::Provisioning);
    assert_eq!((row.workers_ready, row.workers_desired), (0, 5));
    assert_eq!(row.gpus_desired, 24);
}

#[test]
fn a_suspended_cluster_holds_no_gpus() {
    let mut cluster: RayCluster = serde_json::from_str(GPU_CLUSTER).unwrap();
    cluster.spec.suspend = Some(true);
    cluster.status = None;
    // Its groups still ask for GPUs, but a suspended cluster has no pods: the fleet's total
    // counts none for it.
    assert_eq!(cluster.summary().gpus_desired, 0);
    cluster.spec.suspend = None;
    cluster.spec.worker_group_specs[0].suspend = Some(true);
    assert_eq!(cluster.summary().gpus_desired, 0, "a suspended group holds none either");
}

#[test]
fn worker_counts_past_32_bits_are_counted_not_wrapped() {
    let mut cluster: RayCluster = serde_json::from_str(GPU_CLUSTER).unwrap();
    let mut group = cluster.spec.worker_group_specs[0].clone();
    (group.replicas, group.min_replicas, group.max_replicas) = (Some(i32::MAX), None, None);
    cluster.spec.worker_group_specs = vec![group.clone(), group.clone(), group];
    // KubeRay's own 32-bit sum wraps negative; the row counts the spec.
    cluster.status.as_mut().unwrap().desired_worker_replicas = Some(-3);
    let row = cluster.summary();
    assert_eq!(row.workers_desired, 3 * i32::MAX as u64);
    assert_eq!(row.gpus_desired, 3 * 8 * i32::MAX as u64);
}

#[test]
fn rows_travel_as_json_with_their_phase_and_reason() {
    let mut cluster: RayCluster = serde_json::from_str(GPU_CLUSTER).unwrap();
    let status = cluster.status.as_mut().unwrap();
    status.conditions.push(
        serde_json::from_str(
            r#"{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreateHeadPod"}"#,
        )
        .unwrap(),
    );
    status.conditions.retain(|c| c.type_ != "HeadPodReady");
    let json = serde_json::to_value(cluster.summary()).unwrap();
    assert_eq!(json["phase"], "Failed");
    assert_eq!(json["reason"], "FailedCreateHeadPod");
    assert_eq!(json["workersDesired"], 5);
    let back: raydar_platform::ClusterSummary = serde_json::from_value(json).unwrap();
    assert_eq!(back, cluster.summary());
}

#[test]
fn ages_read_like_kubectl() {
    assert_eq!(format_age(-3), "0s");
    assert_eq!(format_age(59), "59s");
    assert_eq!(format_age(119), "119s");
    assert_eq!(format_age(192), "3m12s");
    assert_eq!(format_age(45 * 60), "45m");
    assert_eq!(format_age(5 * 3600 + 4 * 60), "5h4m");
    assert_eq!(format_age(30 * 3600), "30h");
    assert_eq!(format_age(3 * 86400 + 7200), "3d2h");
    assert_eq!(format_age(12 * 86400), "12d");
}

#[test]
fn quantities_written_as_numbers_are_read() {
    // KubeRay's CRD keeps quantities int-or-string: `nvidia.com/gpu: 8` comes back as a number.
    let json = GPU_CLUSTER
        .replace(r#""nvidia.com/gpu": "8""#, r#""nvidia.com/gpu": 8"#)
        .replace(r#""cpu": "32""#, r#""cpu": 32"#);
    assert!(json.contains(r#""nvidia.com/gpu": 8"#));
    let cluster: RayCluster = serde_json::from_str(&json).expect("numeric quantities deserialize");
    assert_eq!(cluster.summary().gpus_desired, 24);
    assert_eq!(
        cluster.spec.worker_group_specs[0].template.spec.containers[0].resources.limits["cpu"],
        "32"
    );
}
