use serde_json::json;

use super::*;

const GPU: &str = "nvidia.com/gpu";
const MIG: &str = "nvidia.com/mig-1g.10gb";

fn units(n: i128) -> i128 {
    n * UNIT
}

fn gib(n: i128) -> i128 {
    n * (1 << 30) * UNIT
}

/// A GPU node of 8 A100s, tainted for GPU pods only, with `used` GPUs requested already.
fn gpu_node(name: &str, used: i128) -> Node {
    Node {
        name: name.into(),
        labels: [
            ("nvidia.com/gpu.present".into(), "true".into()),
            ("nvidia.com/gpu.product".into(), "A100-SXM4-80GB".into()),
            ("nvidia.com/gpu.count".into(), "8".into()),
        ]
        .into(),
        taints: vec![Taint { key: GPU.into(), value: String::new(), effect: "NoSchedule".into() }],
        unschedulable: false,
        allocatable: [
            ("cpu".into(), units(96)),
            ("memory".into(), gib(1024)),
            (GPU.into(), units(8)),
        ]
        .into(),
        requested: [(GPU.into(), units(used))].into(),
    }
}

fn cpu_node(name: &str) -> Node {
    Node {
        name: name.into(),
        allocatable: [("cpu".into(), units(32)), ("memory".into(), gib(128))].into(),
        ..Node::default()
    }
}

/// `count` pods of `gpus` GPUs each, tolerating the GPU taint.
fn gpu_workers(count: u32, gpus: i128) -> PodShape {
    PodShape {
        group: "gpu".into(),
        count,
        requests: [("cpu".into(), units(8)), (GPU.into(), units(gpus))].into(),
        tolerations: vec![Toleration {
            key: GPU.into(),
            operator: "Exists".into(),
            ..Toleration::default()
        }],
        ..PodShape::default()
    }
}

fn head() -> PodShape {
    PodShape {
        group: "head".into(),
        count: 1,
        requests: [("cpu".into(), units(4)), ("memory".into(), gib(16))].into(),
        ..PodShape::default()
    }
}

#[test]
fn a_worker_bigger_than_any_node_is_named_with_the_largest() {
    let nodes = [gpu_node("g1", 0), gpu_node("g2", 0), cpu_node("c1")];
    let verdicts = fit(&[head(), gpu_workers(2, 16)], &nodes);
    assert_eq!(verdicts[0].verdict, "can start now (1 node can hold one)");
    assert!(verdicts[1].never());
    assert_eq!(verdicts[1].verdict, "no node has 16 nvidia.com/gpu; the largest has 8");
}

#[test]
fn some_workers_fit_now_and_the_rest_wait() {
    // g2 has 6 of its 8 GPUs taken: one 8-GPU worker fits on g1, the others wait.
    let nodes = [gpu_node("g1", 0), gpu_node("g2", 6), cpu_node("c1")];
    let [_, workers] = &fit(&[head(), gpu_workers(4, 8)], &nodes)[..] else { panic!() };
    assert_eq!((workers.nodes, workers.fit_now), (2, 1));
    assert_eq!(
        workers.verdict,
        "1 of 4 can start now; 3 will wait for capacity (2 nodes can hold one)"
    );
    // Smaller workers pack: 4 + 4 on g1, 2 on g2.
    let [_, small] = &fit(&[head(), gpu_workers(4, 4)], &nodes)[..] else { panic!() };
    assert_eq!(small.fit_now, 2);
    let all = fit(&[gpu_workers(2, 8)], &[gpu_node("g1", 0), gpu_node("g2", 0)]);
    assert_eq!(all[0].verdict, "all 2 can start now (2 nodes can hold one)");
    let full = fit(&[gpu_workers(1, 4)], &[gpu_node("g1", 6)]);
    assert_eq!(
        full[0].verdict,
        "none of 1 can start now: the 1 node can hold one, and it is full; they will wait for capacity"
    );
}

#[test]
fn groups_share_the_room_in_order() {
    // The head takes 4 of the CPU node's 32 CPUs; then 7 CPU workers of 4 fit, the 8th waits.
    let cpu_workers = PodShape {
        group: "cpu".into(),
        count: 8,
        requests: [("cpu".into(), units(4))].into(),
        ..PodShape::default()
    };
    let verdicts = fit(&[head(), cpu_workers], &[cpu_node("c1")]);
    assert_eq!(verdicts[1].fit_now, 7);
}

#[test]
fn taints_selectors_affinity_and_cordons_say_why_no_node_may_run_a_pod() {
    let nodes = [gpu_node("g1", 0), gpu_node("g2", 0), cpu_node("c1")];
    // Asking for GPUs without tolerating their taint: the CPU node is the only one allowed.
    let untolerating = PodShape { tolerations: Vec::new(), ..gpu_workers(1, 1) };
    let [verdict] = &fit(&[untolerating], &nodes)[..] else { panic!() };
    assert_eq!(
        verdict.verdict,
        "no node it may run on has 1 nvidia.com/gpu; the largest has 0; of those with room, 2 have \
         taint nvidia.com/gpu:NoSchedule, which it does not tolerate"
    );

    let h100 = PodShape {
        node_selector: [("nvidia.com/gpu.product".into(), "H100-SXM5-80GB".into())].into(),
        ..gpu_workers(1, 8)
    };
    let [verdict] = &fit(&[h100], &nodes)[..] else { panic!() };
    assert_eq!(
        verdict.verdict,
        "no node may run it: 3 do not match its nodeSelector nvidia.com/gpu.product=H100-SXM5-80GB"
    );

    let requirement = |key: &str, operator: &str, values: &[&str]| Requirement {
        key: key.into(),
        operator: operator.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    };
    let more_than_8 = PodShape {
        affinity: vec![vec![requirement("nvidia.com/gpu.count", "Gt", &["8"])]],
        ..gpu_workers(1, 1)
    };
    let [verdict] = &fit(&[more_than_8], &nodes)[..] else { panic!() };
    assert_eq!(verdict.verdict, "no node may run it: 3 do not meet its required node affinity");
    let a100_or_h100 = PodShape {
        affinity: vec![
            vec![requirement("nvidia.com/gpu.product", "In", &["H100-SXM5-80GB"])],
            vec![
                requirement("nvidia.com/gpu.product", "In", &["A100-SXM4-80GB"]),
                requirement("example.com/reserved", "DoesNotExist", &[]),
            ],
        ],
        ..gpu_workers(1, 8)
    };
    assert_eq!(fit(&[a100_or_h100], &nodes)[0].fit_now, 1);
    let empty_term = PodShape { affinity: vec![Vec::new()], ..head() };
    assert!(fit(&[empty_term], &nodes)[0].never(), "an empty term matches no node");

    let cordoned = [Node { unschedulable: true, ..cpu_node("c1") }];
    assert_eq!(fit(&[head()], &cordoned)[0].verdict, "no node may run it: 1 are cordoned");
    let tainted = [Node {
        taints: vec![Taint {
            key: "dedicated".into(),
            value: "infra".into(),
            effect: "NoExecute".into(),
        }],
        ..cpu_node("c1")
    }];
    assert_eq!(
        fit(&[head()], &tainted)[0].verdict,
        "no node may run it: 1 have taint dedicated=infra:NoExecute, which it does not tolerate"
    );
    let preferred = [Node {
        taints: vec![Taint {
            key: "spot".into(),
            value: String::new(),
            effect: "PreferNoSchedule".into(),
        }],
        ..cpu_node("c1")
    }];
    assert!(!fit(&[head()], &preferred)[0].never(), "a preference does not keep a pod off");
    assert_eq!(fit(&[head()], &[])[0].verdict, "there are no nodes");
}

#[test]
fn mig_profiles_are_resources_like_any_other() {
    let mut node = gpu_node("g1", 0);
    node.allocatable.insert(MIG.into(), units(7));
    let slices = PodShape { requests: [(MIG.into(), units(2))].into(), ..gpu_workers(4, 0) };
    let [verdict] = &fit(&[slices], &[node])[..] else { panic!() };
    assert_eq!((verdict.fit_now, verdict.pods), (3, 4), "7 slices hold three pods of 2");
    let whole = PodShape { requests: [(MIG.into(), units(8))].into(), ..gpu_workers(1, 0) };
    let [verdict] = &fit(&[whole], &[gpu_node("g1", 0)])[..] else { panic!() };
    assert_eq!(verdict.verdict, "no node has 8 nvidia.com/mig-1g.10gb; the largest has 0");
}

#[test]
fn a_launch_past_its_namespaces_quota_is_flagged_with_what_is_left() {
    let quota = Quota {
        name: "team-gpus".into(),
        hard: [
            ("requests.nvidia.com/gpu".into(), units(16)),
            ("pods".into(), units(10)),
            ("limits.memory".into(), gib(64)),
        ]
        .into(),
        used: [("requests.nvidia.com/gpu".into(), units(4)), ("pods".into(), units(2))].into(),
    };
    let launch = [head(), gpu_workers(2, 8)];
    let uses = quota_use(&launch, &[quota]);
    let gpus = uses.iter().find(|u| u.resource == "requests.nvidia.com/gpu").unwrap();
    assert!(gpus.exceeds());
    assert_eq!(
        gpus.verdict(),
        "requests.nvidia.com/gpu (quota team-gpus): this launch 16, used 4 of 16: 4 over, pods past it will be refused"
    );
    let pods = uses.iter().find(|u| u.resource == "pods").unwrap();
    assert!(!pods.exceeds());
    assert_eq!(
        pods.verdict(),
        "pods (quota team-gpus): this launch 3, used 2 of 10: 5 left after it"
    );
    assert!(
        !uses.iter().any(|u| u.resource == "limits.memory"),
        "the launch sets no memory limits"
    );
}

#[test]
fn a_rendered_spec_is_its_pods() {
    let spec = json!({
        "headGroupSpec": {"template": {"spec": {
            "containers": [{"name": "ray-head", "resources": {"limits": {"cpu": "4", "memory": "16Gi"}}}],
            "initContainers": [{"name": "warm", "resources": {"requests": {"cpu": "8"}}}]
        }}},
        "workerGroupSpecs": [{
            "groupName": "gpu", "replicas": 2, "numOfHosts": 2,
            "template": {"spec": {
                "nodeSelector": {"nvidia.com/gpu.present": "true"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["A100-SXM4-80GB"]}]}]}}},
                "containers": [
                    {"name": "ray-worker", "resources": {"requests": {"cpu": "500m", "nvidia.com/gpu": 8},
                        "limits": {"nvidia.com/gpu": "8", "memory": "480Gi"}}},
                    {"name": "sidecar", "resources": {"requests": {"cpu": "250m"}}}
                ]
            }}
        }, {"groupName": "spare", "minReplicas": 0, "template": {"spec": {"containers": []}}}]
    });
    let shapes = shapes(&spec);
    let groups: Vec<(&str, u32)> = shapes.iter().map(|s| (s.group.as_str(), s.count)).collect();
    assert_eq!(groups, [("head", 1), ("gpu", 4), ("spare", 0)]);
    let head = &shapes[0];
    assert_eq!(head.requests["cpu"], units(8), "its init container asks for more");
    assert_eq!(head.requests["memory"], gib(16), "a limit stands for a missing request");
    let gpu = &shapes[1];
    assert_eq!(gpu.requests["cpu"], units(3) / 4);
    assert_eq!(gpu.requests[GPU], units(8));
    assert_eq!(gpu.limits["memory"], gib(480));
    assert_eq!(gpu.node_selector["nvidia.com/gpu.present"], "true");
    assert_eq!(gpu.tolerations[0].effect, "NoSchedule");
    assert_eq!(gpu.affinity[0][0].values, ["A100-SXM4-80GB"]);
    let nodes = [gpu_node("g1", 0), gpu_node("g2", 0), cpu_node("c1")];
    let verdicts = fit(&shapes, &nodes);
    assert_eq!(
        verdicts[1].verdict,
        "2 of 4 can start now; 2 will wait for capacity (2 nodes can hold one)"
    );
    assert_eq!(amount("memory", gib(480)), "480Gi");
    assert_eq!(amount("cpu", units(3) / 4), "0.75");
}

#[test]
fn nodes_pods_and_quotas_are_read_from_their_objects() {
    let kube_node: k8s_openapi::api::core::v1::Node = serde_json::from_value(json!({
        "metadata": {"name": "gpu-1", "labels": {"nvidia.com/gpu.product": "A100-SXM4-80GB"}},
        "spec": {"unschedulable": true,
                 "taints": [{"key": GPU, "effect": "NoSchedule"}]},
        "status": {"allocatable": {"cpu": "95500m", "memory": "1Ti", GPU: "8", MIG: "7"}}
    }))
    .unwrap();
    let node = objects::node(&kube_node);
    assert_eq!(node.name, "gpu-1");
    assert!(node.unschedulable);
    assert_eq!(
        node.taints,
        [Taint { key: GPU.into(), value: String::new(), effect: "NoSchedule".into() }]
    );
    assert_eq!(node.allocatable["cpu"], 95_500_000_000);
    assert_eq!(node.allocatable[MIG], units(7));

    // Two containers add up; the init container asks for more CPU than both, so that counts.
    let pod = |phase: &str, node: Option<&str>| -> k8s_openapi::api::core::v1::Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ml"},
            "spec": {
                "nodeName": node,
                "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "6"}}}],
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "2", "memory": "4Gi"},
                                                "limits": {GPU: "1"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "1"}}}
                ]
            },
            "status": {"phase": phase}
        }))
        .unwrap()
    };
    let (on, requests) = objects::pod_load(&pod("Running", Some("gpu-1"))).unwrap();
    assert_eq!(on, "gpu-1");
    assert_eq!(
        requests,
        Resources::from([
            ("cpu".into(), units(6)),
            ("memory".into(), gib(4)),
            (GPU.into(), units(1))
        ])
    );
    // Not yet bound, or ended: it holds no room.
    assert_eq!(objects::pod_load(&pod("Pending", None)), None);
    assert_eq!(objects::pod_load(&pod("Succeeded", Some("gpu-1"))), None);

    let mut nodes = vec![node, cpu_node("cpu-1")];
    objects::add_load(
        &mut nodes,
        [("gpu-1", &requests), ("gpu-1", &requests), ("gone", &requests)],
    );
    assert_eq!(nodes[0].requested[GPU], units(2));
    assert!(nodes[1].requested.is_empty());

    let quota = |scoped: bool| -> k8s_openapi::api::core::v1::ResourceQuota {
        let scopes = if scoped { json!(["BestEffort"]) } else { json!(null) };
        serde_json::from_value(json!({
            "metadata": {"name": "gpus", "namespace": "ml"},
            "spec": {"hard": {"requests.nvidia.com/gpu": "16", "pods": "10"}, "scopes": scopes},
            "status": {"used": {"requests.nvidia.com/gpu": "4"}}
        }))
        .unwrap()
    };
    let read = objects::quota(&quota(false)).unwrap();
    assert_eq!(read.hard["requests.nvidia.com/gpu"], units(16));
    assert_eq!(read.used["requests.nvidia.com/gpu"], units(4));
    // A scoped quota counts only the pods its scopes pick: not judged.
    assert_eq!(objects::quota(&quota(true)), None);
}

#[test]
fn a_launch_is_summed_up_by_its_worst_group() {
    let spec = |gpus: u32, replicas: u32| {
        json!({
            "headGroupSpec": {"template": {"spec": {"containers": [
                {"name": "ray-head", "resources": {"requests": {"cpu": "2", "memory": "8Gi"}}}]}}},
            "workerGroupSpecs": [{"groupName": "gpu", "replicas": replicas,
                "template": {"spec": {
                    "tolerations": [{"key": GPU, "operator": "Exists"}],
                    "containers": [{"name": "ray-worker",
                        "resources": {"limits": {"cpu": "8", GPU: gpus.to_string()}}}]}}}]
        })
    };
    let nodes = [cpu_node("cpu-1"), gpu_node("gpu-1", 0), gpu_node("gpu-2", 4)];
    let quotas: [Quota; 0] = [];

    let all = report::judge(&spec(4, 3), Ok(&nodes), Ok(&quotas));
    assert_eq!(all.verdict, Verdict::Now, "{all:?}");
    assert_eq!(all.summary, "all 4 pods can start now");

    let partly = report::judge(&spec(8, 3), Ok(&nodes), Ok(&quotas));
    assert_eq!(partly.verdict, Verdict::Partly);
    assert_eq!(
        partly.summary,
        "2 of 4 pods can start now; 2 will wait for capacity (2 of workers gpu)"
    );
    assert_eq!(partly.groups[1].fit_now, 1);

    let never = report::judge(&spec(16, 1), Ok(&nodes), Ok(&quotas));
    assert_eq!(never.verdict, Verdict::Never);
    assert_eq!(
        never.summary,
        "workers gpu cannot start: no node has 16 nvidia.com/gpu; the largest has 8"
    );

    let quota = Quota {
        name: "team".into(),
        hard: [("requests.nvidia.com/gpu".into(), units(8))].into(),
        used: [("requests.nvidia.com/gpu".into(), units(6))].into(),
    };
    let over = report::judge(&spec(4, 1), Ok(&nodes), Ok(std::slice::from_ref(&quota)));
    assert_eq!(over.verdict, Verdict::OverQuota);
    assert!(over.quotas[0].exceeds);
    assert_eq!(
        over.summary,
        "over quota: requests.nvidia.com/gpu (quota team): this launch 4, used 6 of 8: 2 over, \
         pods past it will be refused"
    );

    // Nodes raydar may not read: the quota is still judged, and the summary says why not.
    let blind = report::judge(&spec(1, 1), Err("raydar may not list Nodes".into()), Ok(&[quota]));
    assert_eq!(blind.verdict, Verdict::Unknown);
    assert_eq!(blind.summary, "capacity not judged: raydar may not list Nodes");
    assert_eq!(blind.quotas.len(), 1);
}
