//! `make bench`: the capacity verdict a launch preview computes on every keystroke, against 1,000
//! nodes (800 CPU nodes; 200 GPU nodes of 8, tainted for GPU pods, half of them A100 and half
//! H100) and 50,000 running pods, for a launch of a head, 4 workers of 8 GPUs (an A100 selector)
//! and 16 CPU workers. Target (issue 18): at most 5 ms.
//!
//! Measured, each the median of 51 runs on one thread:
//! 1. the verdict, from the nodes with their pods' requests added up per node (what the server
//!    keeps current as pods change);
//! 2. the same with those sums made from the 50,000 pods first (a server that kept no sums);
//! 3. baseline, same run, same data: a plain pass that reads every pod's GPU request and every
//!    node's allocatable GPUs once, the floor of looking at the data at all.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use raydar_platform::capacity::{fit, Node, PodShape, Resources, Taint, Toleration};

const NODES: usize = 1_000;
const GPU_NODES: usize = 200;
const PODS: usize = 50_000;
const GPU: &str = "nvidia.com/gpu";
const UNIT: i128 = 1_000_000_000;

/// A running pod: the node it is bound to and its requests.
struct Pod {
    node: usize,
    requests: Resources,
}

fn nodes() -> Vec<Node> {
    (0..NODES)
        .map(|i| {
            let gpu = i < GPU_NODES;
            let mut labels = BTreeMap::from([
                ("kubernetes.io/hostname".to_owned(), format!("node-{i}")),
                ("topology.kubernetes.io/zone".to_owned(), format!("zone-{}", i % 3)),
            ]);
            let mut allocatable = Resources::from([
                ("cpu".to_owned(), 96 * UNIT),
                ("memory".to_owned(), 1024 * (1 << 30) * UNIT),
                ("pods".to_owned(), 110 * UNIT),
            ]);
            let mut taints = Vec::new();
            if gpu {
                let product = if i % 2 == 0 { "A100-SXM4-80GB" } else { "H100-SXM5-80GB" };
                labels.insert("nvidia.com/gpu.product".into(), product.into());
                allocatable.insert(GPU.into(), 8 * UNIT);
                taints.push(Taint {
                    key: GPU.into(),
                    value: String::new(),
                    effect: "NoSchedule".into(),
                });
            }
            Node { name: format!("node-{i}"), labels, taints, allocatable, ..Node::default() }
        })
        .collect()
}

/// 50 pods a node: on GPU nodes, one GPU each for the first 7; 1 CPU and 4 GiB each.
fn pods() -> Vec<Pod> {
    (0..PODS)
        .map(|i| {
            let node = i % NODES;
            let mut requests = Resources::from([
                ("cpu".to_owned(), UNIT),
                ("memory".to_owned(), 4 * (1 << 30) * UNIT),
            ]);
            if node < GPU_NODES && i / NODES < 7 {
                requests.insert(GPU.into(), UNIT);
            }
            Pod { node, requests }
        })
        .collect()
}

/// `count` pods of `cpus` CPUs and `gib` GiB each, for any node without taints.
fn cpu_pods(group: &str, count: u32, cpus: i128, gib: i128) -> PodShape {
    let requests = [("cpu".to_owned(), cpus * UNIT), ("memory".to_owned(), gib * (1 << 30) * UNIT)];
    PodShape { group: group.into(), count, requests: requests.into(), ..PodShape::default() }
}

fn launch() -> Vec<PodShape> {
    let gpu = PodShape {
        group: "gpu".into(),
        count: 4,
        requests: Resources::from([("cpu".to_owned(), 64 * UNIT), (GPU.to_owned(), 8 * UNIT)]),
        node_selector: BTreeMap::from([(
            "nvidia.com/gpu.product".to_owned(),
            "A100-SXM4-80GB".to_owned(),
        )]),
        tolerations: vec![Toleration {
            key: GPU.into(),
            operator: "Exists".into(),
            ..Toleration::default()
        }],
        ..PodShape::default()
    };
    vec![cpu_pods("head", 1, 4, 16), gpu, cpu_pods("cpu", 16, 16, 64)]
}

/// Adds up each node's pods' requests.
fn summed(nodes: &[Node], pods: &[Pod]) -> Vec<Node> {
    let mut nodes = nodes.to_vec();
    for pod in pods {
        let requested = &mut nodes[pod.node].requested;
        for (name, n) in &pod.requests {
            *requested.entry(name.clone()).or_default() += n;
        }
    }
    nodes
}

fn median(mut run: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..51)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let (bare, pods, shapes) = (nodes(), pods(), launch());
    let nodes = summed(&bare, &pods);
    let verdicts = fit(&shapes, &nodes);
    for v in &verdicts {
        println!("  {}: {}", v.group, v.verdict);
    }
    let verdict = median(|| {
        black_box(fit(black_box(&shapes), black_box(&nodes)));
    });
    let from_pods = median(|| {
        let nodes = summed(black_box(&bare), black_box(&pods));
        black_box(fit(black_box(&shapes), &nodes));
    });
    let baseline = median(|| {
        let wanted: i128 = pods.iter().filter_map(|p| p.requests.get(GPU)).sum();
        let held: i128 = bare.iter().filter_map(|n| n.allocatable.get(GPU)).sum();
        black_box((wanted, held));
    });
    println!("capacity verdict, {NODES} nodes, {PODS} pods, a launch of 3 groups (21 pods):");
    println!("  verdict from per-node sums:    {}  (target <= 5 ms)", ms(verdict));
    println!("  verdict, sums made from pods:  {}", ms(from_pods));
    println!("  baseline, one plain pass:      {}", ms(baseline));
}
