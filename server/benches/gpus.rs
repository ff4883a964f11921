//! `make bench`: what GPU metrics cost raydar-server.
//!
//! 1. One scrape-parse-attribute cycle for 1,000 GPUs (125 nodes of 8, in dcgm-exporter's real
//!    Kubernetes-mode format): parse each node's text, attribute every GPU to its RayCluster and
//!    add it to the history. Baseline, same run, same text: prometheus-parse alone, the floor any
//!    reader built on the crate pays. Target (DESIGN.md): at most 50 ms of CPU.
//!    The same cycle from a Prometheus server (`--prometheus`): its instant answer for the six
//!    read fields of the 1,000 GPUs, read and added to the history. Baseline: serde_json reading
//!    the same answer into a generic `Value`.
//! 2. One chart: 8 GPUs over 6 hours at 15 s (1,440 points a line) plus the average, as SVG.
//!    Baseline: the same points as JSON (serde_json), what sending the data for the browser to draw
//!    would cost the server.
//! 3. Memory per GPU-hour of history, counted by this binary's allocator: 1,000 GPUs filled for
//!    30 hours (6 at full resolution, 24 averaged). Baseline: the bare samples (16 bytes each).
//!
//! Single-threaded work, so wall time is CPU time here; each figure is the median of several runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use platform::gpu::history::{History, Retention};
use platform::gpu::{parse_dcgm, prometheus, ClusterKey, GpuId, GpuReading, PodRef};
use platform::utilization::{Chart, Window};
use raydar_server::gpus::charts::{self, ChartData, Line, Theme};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const NODES: usize = 125;
const GPUS_PER_NODE: usize = 8;

/// One node's scrape as dcgm-exporter writes it in Kubernetes mode: the default fields, each GPU
/// held by a Ray worker pod of one of 100 clusters.
fn node_text(node: usize, tick: u32) -> String {
    let fields: [(&str, &str, &str); 12] = [
        ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."),
        ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz)."),
        ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C)."),
        ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
        ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
        (
            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
            "counter",
            "Total energy consumption since boot (in mJ).",
        ),
        ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries."),
        ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
        ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %)."),
        ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
        ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
        ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active."),
    ];
    let mut text = String::with_capacity(40_000);
    for (f, (name, kind, help)) in fields.iter().enumerate() {
        text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for gpu in 0..GPUS_PER_NODE {
            let global = node * GPUS_PER_NODE + gpu;
            let cluster = global / 10;
            let value = (global as u32 * 7 + f as u32 * 13 + tick) % 100;
            text.push_str(&format!(
                "{name}{{gpu=\"{gpu}\",UUID=\"GPU-{global:08x}-0c1f-4b8e-9a51-1c2d3e4f5a60\",pci_bus_id=\"00000000:{:02X}:00.0\",\
                 device=\"nvidia{gpu}\",modelName=\"NVIDIA A100-SXM4-80GB\",Hostname=\"gpu-node-{node}\",\
                 DCGM_FI_DRIVER_VERSION=\"535.104.12\",container=\"ray-worker\",namespace=\"team-{}\",\
                 pod=\"c{cluster}-gpu-worker-{global}\"}} {value}\n",
                gpu + 7,
                cluster % 10,
            ));
        }
    }
    text
}

/// The answer a Prometheus scraping those exporters (with `honor_labels`) gives to an instant
/// query of [`prometheus::SELECTOR`]: the six read fields of every GPU, with the target's labels.
fn prometheus_answer(tick: u32) -> String {
    let fields = [
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_FB_FREE",
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_GPU_TEMP",
    ];
    let mut series = Vec::new();
    for node in 0..NODES {
        for gpu in 0..GPUS_PER_NODE {
            let global = node * GPUS_PER_NODE + gpu;
            let cluster = global / 10;
            for (f, name) in fields.iter().enumerate() {
                let value = (global as u32 * 7 + f as u32 * 13 + tick) % 100;
                series.push(format!(
                    "{{\"metric\":{{\"__name__\":\"{name}\",\"DCGM_FI_DRIVER_VERSION\":\"535.104.12\",\"Hostname\":\"gpu-node-{node}\",\
                     \"UUID\":\"GPU-{global:08x}-0c1f-4b8e-9a51-1c2d3e4f5a60\",\"container\":\"ray-worker\",\"device\":\"nvidia{gpu}\",\
                     \"gpu\":\"{gpu}\",\"instance\":\"10.1.{node}.2:9400\",\"job\":\"gpu-metrics\",\"modelName\":\"NVIDIA A100-SXM4-80GB\",\
                     \"namespace\":\"team-{}\",\"pci_bus_id\":\"00000000:{:02X}:00.0\",\"pod\":\"c{cluster}-gpu-worker-{global}\"}},\
                     \"value\":[1800000000.123,\"{value}\"]}}",
                    cluster % 10,
                    gpu + 7,
                ));
            }
        }
    }
    format!(
        "{{\"status\":\"success\",\"data\":{{\"resultType\":\"vector\",\"result\":[{}]}}}}",
        series.join(",")
    )
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                black_box(f());
                start.elapsed().as_secs_f64() * 1000.0
            })
            .collect(),
    )
}

fn cluster_map() -> HashMap<(String, String), String> {
    (0..NODES * GPUS_PER_NODE)
        .map(|g| {
            (
                (format!("team-{}", (g / 10) % 10), format!("c{}-gpu-worker-{g}", g / 10)),
                format!("c{}", g / 10),
            )
        })
        .collect()
}

fn scrape_cycle() {
    let texts: Vec<String> = (0..NODES).map(|n| node_text(n, 0)).collect();
    let pods = cluster_map();
    let cluster_of = |pod: &PodRef| {
        pods.get(&(pod.namespace.clone(), pod.pod.clone()))
            .map(|c| (pod.namespace.clone(), c.clone()))
    };
    let mut history = History::new(Retention::default(), 10.0);
    let mut t = 1_800_000_000u32;
    let cycle = |history: &mut History, t: u32| {
        let mut readings: BTreeMap<GpuId, GpuReading> = BTreeMap::new();
        for text in &texts {
            readings.extend(parse_dcgm(text).expect("parses"));
        }
        assert_eq!(readings.len(), NODES * GPUS_PER_NODE);
        history.record(t, &readings, cluster_of);
    };
    let raydar = time(21, || {
        t += 15;
        cycle(&mut history, t)
    });
    let parse_only = time(21, || {
        texts.iter().map(|text| parse_dcgm(text).expect("parses").len()).sum::<usize>()
    });
    let floor = time(21, || {
        texts
            .iter()
            .map(|text| {
                prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
                    .unwrap()
                    .samples
                    .len()
            })
            .sum::<usize>()
    });
    let held = history.held_by(&("team-0".into(), "c0".into()), t).len();
    let bytes: usize = texts.iter().map(String::len).sum();
    println!("\nGPU metrics: one scrape-parse-attribute cycle, {} GPUs on {NODES} nodes ({} KB of exporter text)", NODES * GPUS_PER_NODE, bytes / 1024);
    println!("  {:<52} {:>9.1} ms", "raydar: parse, attribute, add to history", raydar);
    println!("  {:<52} {:>9.1} ms", "  of which parse_dcgm (the read fields' lines)", parse_only);
    println!("  {:<52} {:>9.1} ms", "baseline: prometheus-parse alone, same text", floor);
    println!("  {:<52} {:>9.2}", "ratio raydar/baseline", raydar / floor);
    println!("  {:<52} {:>9}", "target (DESIGN.md)", "50 ms");

    let answer = prometheus_answer(0);
    let mut history = History::new(Retention::default(), 10.0);
    let raydar = time(21, || {
        t += 15;
        let readings = prometheus::read_now(&answer, "gpu-operator").expect("reads");
        assert_eq!(readings.len(), NODES * GPUS_PER_NODE);
        history.record(t, &readings, cluster_of);
    });
    let floor =
        time(21, || serde_json::from_str::<serde_json::Value>(&answer).unwrap().is_object());
    println!("\nThe same cycle from Prometheus (--prometheus): its instant answer for the six read fields ({} KB of JSON)", answer.len() / 1024);
    println!("  {:<52} {:>9.1} ms", "raydar: read the answer, attribute, add to history", raydar);
    println!("  {:<52} {:>9.1} ms", "baseline: serde_json into a Value, same answer", floor);
    println!("  {:<52} {:>9.2}", "ratio raydar/baseline", raydar / floor);
    assert_eq!(held, 10, "cluster c0 holds its 10 GPUs");
}

fn chart_render() {
    let line = |label: String, phase: f64| Line {
        label,
        points: (0..1440)
            .map(|i| {
                (
                    f64::from(i) * 15.0 - 21_585.0,
                    60.0 + 30.0 * ((f64::from(i) + phase) / 40.0).sin(),
                )
            })
            .collect(),
    };
    let gpus: Vec<Line> = (0..8).map(|g| line(format!("GPU {g}"), f64::from(g) * 5.0)).collect();
    let data = ChartData {
        chart: Chart::Utilization,
        window: Window::Hours6,
        average: Some(line("average".into(), 2.0)),
        gpus,
        y_max: 100.0,
    };
    let svg = charts::render(&data, Theme::Dark).expect("draws");
    let raydar = time(15, || charts::render(&data, Theme::Dark).unwrap().len());
    let json = time(15, || {
        let lines: Vec<&Vec<(f64, f64)>> = data.gpus.iter().map(|l| &l.points).collect();
        serde_json::to_string(&lines).unwrap().len()
    });
    println!("\nGPU chart: 8 GPUs and the average over 6 hours at 15 s (1,440 points a line), SVG of {} KB", svg.len() / 1024);
    println!("  {:<52} {:>9.2} ms", "raydar: draw the SVG (plotters)", raydar);
    println!("  {:<52} {:>9.2} ms", "baseline: the same points as JSON", json);
    println!("  {:<52} {:>9.2}", "ratio raydar/baseline", raydar / json);
}

fn memory() {
    const GPUS: usize = 1000;
    let ids: Vec<GpuId> = (0..GPUS)
        .map(|g| GpuId {
            host: format!("gpu-node-{}", g / 8),
            uuid: format!("GPU-{g:08x}"),
            index: (g % 8) as u32,
            mig: None,
        })
        .collect();
    let reading = |g: usize| GpuReading {
        model: "NVIDIA A100-SXM4-80GB".into(),
        pod: Some(PodRef {
            namespace: "ml".into(),
            pod: format!("c{}-worker-{g}", g / 8),
            container: "ray-worker".into(),
        }),
        util: Some((g % 100) as f64),
        mem_used_mib: Some(40_000.0),
        mem_free_mib: Some(41_920.0),
        power_w: Some(300.0),
        temp_c: Some(60.0),
    };
    let readings: BTreeMap<GpuId, GpuReading> =
        ids.iter().cloned().enumerate().map(|(g, id)| (id, reading(g))).collect();
    let cluster_of = |pod: &PodRef| -> Option<ClusterKey> {
        pod.pod.split_once('-').map(|(c, _)| (pod.namespace.clone(), c.to_owned()))
    };
    let before = LIVE.load(Ordering::Relaxed);
    let mut history = History::new(Retention::default(), 10.0);
    let start = 1_800_000_000u32;
    let hours = 30;
    let mut at_6h = 0isize;
    for step in 0..(hours * 3600 / 15) {
        history.record(start + step * 15, &readings, cluster_of);
        if step + 1 == 6 * 3600 / 15 {
            at_6h = LIVE.load(Ordering::Relaxed) - before;
        }
    }
    let full = LIVE.load(Ordering::Relaxed) - before;
    let samples_6h = 6 * 3600 / 15;
    let bare_6h = (GPUS * samples_6h as usize * 16) as f64;
    let per_gpu_hour = at_6h as f64 / (GPUS as f64 * 6.0);
    println!("\nGPU history in memory: {GPUS} GPUs scraped every 15 s (counted by the allocator)");
    println!("  {:<52} {:>9.1} MB", "after 6 hours (all at full resolution)", at_6h as f64 / 1e6);
    println!(
        "  {:<52} {:>9.1} MB",
        "after 30 hours (6 h full, 24 h of 5-minute averages)",
        full as f64 / 1e6
    );
    println!(
        "  {:<52} {:>9.2} KB",
        "raydar: per GPU-hour at full resolution",
        per_gpu_hour / 1000.0
    );
    println!(
        "  {:<52} {:>9.2} KB",
        "baseline: bare samples, 240 x 16 bytes",
        bare_6h / (GPUS as f64 * 6.0) / 1000.0
    );
    println!(
        "  {:<52} {:>9.2}",
        "ratio raydar/baseline",
        per_gpu_hour / (bare_6h / (GPUS as f64 * 6.0))
    );
    println!(
        "  {:<52} {:>9.1} KB",
        "steady state per GPU (30 h kept)",
        full as f64 / GPUS as f64 / 1000.0
    );
    drop(black_box(history));
}

fn main() {
    // `cargo bench` passes --bench; nothing else is taken.
    scrape_cycle();
    chart_render();
    memory();
}
