//! Live logs against the real local control plane (deploy/local): a Ray job's log from a real Ray
//! head (ray 2.60, started by deploy/local/ray/heads.py at the head pod's IP) through raydar's
//! event stream, and a pod's log that kwok serves from a file this test appends to.
//!
//! Needs `KUBECONFIG` naming that control plane and the Ray venv (`$RAYDAR_LOCAL/ray`, default
//! `<repo>/.local`); `make test` has both. Each test works in a namespace of its own and deletes
//! it, also when it fails.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod common;

use common::{
    eventually, head_only, kube_client, local_dir, ray_clusters, sse_events, start_raydar,
    start_raydar_with, wait_ready, Raydar, TestNamespace, STEP,
};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;
use tokio::sync::watch;

/// A folder removed when dropped, even after a panic.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One event of a log stream, as the test reads it.
#[derive(Debug)]
enum Got {
    Lines(u64, Vec<String>),
    Skipped(u64),
    Problem(String),
    End(String),
}

async fn open(
    http: &reqwest::Client,
    url: &str,
    last_event_id: Option<u64>,
) -> impl Stream<Item = Got> {
    let mut request = http.get(url);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    Box::pin(sse_events(response).map(|(event, data)| {
        match event.as_str() {
            "lines" => Got::Lines(
                data["first"].as_u64().unwrap(),
                data["lines"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l.as_str().unwrap().to_owned())
                    .collect(),
            ),
            "skipped" => Got::Skipped(data["count"].as_u64().unwrap()),
            "problem" => Got::Problem(data["error"].as_str().unwrap().to_owned()),
            "end" => Got::End(data["reason"].as_str().unwrap().to_owned()),
            other => panic!("unexpected event {other}: {data}"),
        }
    }))
}

/// Lines read so far, checked to be numbered without gap or repeat from 1.
#[derive(Default)]
struct Log {
    lines: Vec<String>,
    problems: usize,
}

impl Log {
    /// Takes events until `until` says stop (true) or the stream ends; the end reason, if any.
    async fn read(
        &mut self,
        events: &mut (impl Stream<Item = Got> + Unpin),
        until: impl Fn(&[String]) -> bool,
    ) -> Option<String> {
        self.read_for(STEP, events, |log, _| until(&log.lines)).await
    }

    /// Takes events for at most `limit` until `until` says stop after one (given the log and
    /// the event) or the stream ends; the end reason, if any.
    async fn read_for(
        &mut self,
        limit: Duration,
        events: &mut (impl Stream<Item = Got> + Unpin),
        until: impl Fn(&Log, &Got) -> bool,
    ) -> Option<String> {
        tokio::time::timeout(limit, async {
            while let Some(got) = events.next().await {
                match &got {
                    Got::Lines(first, lines) => {
                        assert_eq!(
                            *first,
                            self.lines.len() as u64 + 1,
                            "lines follow on: no gap, no repeat"
                        );
                        self.lines.extend(lines.iter().cloned());
                    }
                    Got::End(reason) => return Some(reason.clone()),
                    Got::Problem(error) => {
                        eprintln!("problem (the stream stays open): {error}");
                        self.problems += 1;
                    }
                    Got::Skipped(count) => panic!("{count} lines skipped with a buffer of 10,000"),
                }
                if until(self, &got) {
                    return None;
                }
            }
            None
        })
        .await
        .expect("the log stream went on")
    }
}

async fn metric(http: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} in {text}"))
        .parse()
        .unwrap()
}

/// The numbered lines the test job prints, one every 0.1 s.
const JOB_LINES: u64 = 80;

/// A raydar, and a RayCluster of one real Ray head in a namespace of its own.
struct Head {
    raydar: Raydar,
    http: reqwest::Client,
    ns: TestNamespace,
    /// The cluster's URL in raydar's API.
    cluster: String,
    head_ip: String,
}

/// Starts a raydar and creates RayCluster `name` of one Ray head in a new namespace named from
/// `prefix`; returns once that head answers through raydar (the apiserver's service proxy), as
/// soon as heads.py has started it.
async fn head(client: &kube::Client, prefix: &str, name: &str) -> Head {
    let raydar = start_raydar(client.clone(), "local control plane").await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    wait_ready(&http, &raydar.base).await;
    let ns = TestNamespace::create(client, prefix).await;
    let namespace = ns.0.clone();
    ray_clusters(client, &namespace)
        .create(&PostParams::default(), &head_only(name))
        .await
        .expect("RayCluster created");
    let cluster = format!("{}/api/v1/clusters/{namespace}/{name}", raydar.base);
    eventually("the Ray head to answer through raydar", || async {
        let r = http.get(format!("{cluster}/ray/api/version")).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    let head_ip: String = eventually("the head pod's IP in the RayCluster's status", || async {
        let rc = ray_clusters(client, &namespace).get(name).await.ok()?;
        rc.data["status"]["head"]["podIP"].as_str().map(str::to_owned)
    })
    .await;
    Head { raydar, http, ns, cluster, head_ip }
}

/// Submits job `job` with Ray's own CLI to the head at `head_ip`: it prints `n 1` to `n {lines}`,
/// one every 0.1 s.
fn submit_numbered(head_ip: &str, job: &str, lines: u64) {
    let script = format!(
        "import time\nfor i in range(1, {}):\n    print(f'n {{i}}', flush=True)\n    time.sleep(0.1)",
        lines + 1
    );
    let submitted = std::process::Command::new(local_dir().join("ray/bin/ray"))
        .args(["job", "submit", "--address", &format!("http://{head_ip}:8265")])
        .args(["--submission-id", job, "--no-wait", "--", "python", "-c", &script])
        .output()
        .expect("ray job submit runs");
    assert!(
        submitted.status.success(),
        "ray job submit: {}",
        String::from_utf8_lossy(&submitted.stderr)
    );
}

/// A TCP relay to `target`; sending on the returned channel cuts every connection open through
/// it (new ones go through again): a network that drops raydar's connections to Ray.
async fn relay(target: String) -> (String, Arc<watch::Sender<u64>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let cut = Arc::new(watch::Sender::new(0u64));
    let cuts = cut.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let mut cut = cuts.subscribe();
            let target = target.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = cut.changed() => {}
                }
            });
        }
    });
    (url, cut)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn a_ray_job_log_streams_live_in_order_resumes_without_gaps_and_is_shared() {
    let client = kube_client().await;
    let name = "logs";
    let Head { raydar, http, ns, cluster, head_ip } = head(&client, "raydar-logs-it", name).await;
    let namespace = ns.0.as_str();
    let streams = reqwest::Client::new();

    // Unknown jobs are 404, and Ray's tail is not reachable through the generic read route.
    let unknown =
        http.get(format!("{cluster}/jobs/raysubmit_nosuchjob/logs/stream")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let tail = http
        .get(format!("{cluster}/ray/api/jobs/raysubmit_nosuchjob/logs/tail"))
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), 403);

    // A real job, submitted with Ray's own CLI: numbered lines with pauses.
    let job = format!("logs-it-{}", std::process::id());
    submit_numbered(&head_ip, &job, JOB_LINES);

    // Meanwhile a raydar that reaches Ray straight (--ray-dashboard URL: the WebSocket through
    // reqwest, not the apiserver) through a relay that drops its connections at line 10. Ray
    // replays the log from its start on the reconnect; the viewer must see each line once.
    let (relay_url, cut) = relay(format!("{head_ip}:8265")).await;
    let relayed =
        start_raydar_with(client.clone(), "local control plane", &["--ray-dashboard", &relay_url])
            .await;
    let relayed_url =
        format!("{}/api/v1/clusters/{namespace}/{name}/jobs/{job}/logs/stream", relayed.base);
    let mut relayed_events = open(&streams, &relayed_url, None).await;
    let cut_viewer = tokio::spawn(async move {
        let mut log = Log::default();
        assert_eq!(
            log.read(&mut relayed_events, |lines| lines.iter().any(|l| l == "n 10")).await,
            None
        );
        cut.send_modify(|n| *n += 1);
        let end = log.read(&mut relayed_events, |_| false).await;
        (log, end, relayed)
    });

    let url = format!("{cluster}/jobs/{job}/logs/stream");
    let mut whole = Log::default();
    let mut first_events = open(&streams, &url, None).await;
    let mut broken = Log::default();
    let mut second_events = open(&streams, &url, None).await;
    // One viewer reads until line 20 of the job, then drops its connection.
    let at_20 = |lines: &[String]| lines.iter().any(|l| l == "n 20");
    assert_eq!(broken.read(&mut second_events, at_20).await, None);
    assert_eq!(
        metric(&http, &raydar.base, "raydar_log_streams").await,
        1.0,
        "two viewers, one upstream"
    );
    assert_eq!(metric(&http, &raydar.base, "raydar_log_viewers").await, 2.0);
    drop(second_events);
    let last_event_id = broken.lines.len() as u64;
    // The other keeps reading meanwhile, so the job goes on while the first is away.
    let at_40 = |lines: &[String]| lines.iter().any(|l| l == "n 40");
    assert_eq!(whole.read(&mut first_events, at_40).await, None);
    assert_eq!(metric(&http, &raydar.base, "raydar_log_streams").await, 1.0);

    // It comes back as EventSource does, with Last-Event-ID: the lines after, none twice.
    let mut resumed = open(&streams, &url, Some(last_event_id)).await;
    let end = broken.read(&mut resumed, |_| false).await;
    assert_eq!(end.as_deref(), Some("job SUCCEEDED"));
    assert_eq!(whole.read(&mut first_events, |_| false).await.as_deref(), Some("job SUCCEEDED"));
    assert_eq!(broken.lines, whole.lines, "the resumed viewer has the same log");
    let numbered: Vec<&String> = whole.lines.iter().filter(|l| l.starts_with("n ")).collect();
    let expected: Vec<String> = (1..=JOB_LINES).map(|i| format!("n {i}")).collect();
    assert_eq!(numbered, expected.iter().collect::<Vec<_>>(), "every line once, in order");
    assert_eq!(metric(&http, &raydar.base, "raydar_log_streams").await, 1.0);

    let (cut_log, cut_end, relayed) = cut_viewer.await.unwrap();
    assert_eq!(cut_end.as_deref(), Some("job SUCCEEDED"));
    assert!(cut_log.problems >= 1, "the dropped connection was reported");
    assert_eq!(cut_log.lines, whole.lines, "every line once across the reconnect");
    assert!(metric(&http, &relayed.base, "raydar_log_upstream_errors_total").await >= 1.0);

    // The job as a resource: in the cluster's list and by itself, typed, as Ray says.
    let jobs = common::get_json(&http, format!("{cluster}/jobs")).await;
    let listed = jobs["items"].as_array().unwrap().iter().find(|j| j["id"] == job.as_str());
    let listed = listed.unwrap_or_else(|| panic!("{job} in {jobs}"));
    assert_eq!(listed["submissionId"], job.as_str());
    let one = common::get_json(&http, format!("{cluster}/jobs/{job}")).await;
    assert_eq!((&one["status"], &one["submissionId"]), (&"SUCCEEDED".into(), &job.as_str().into()));
    assert!(one["entrypoint"].as_str().unwrap().starts_with("python -c"), "{one}");
    assert!(one["endTime"].as_i64() >= one["startTime"].as_i64(), "{one}");
    let unknown = http.get(format!("{cluster}/jobs/raysubmit_nosuchjob")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);

    // The download is the same log, and so is a stream of the finished job (a fresh upstream:
    // Ray replays it all, then closes).
    let download = http.get(format!("{cluster}/jobs/{job}/logs")).send().await.unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        download.headers()["content-disposition"],
        format!("attachment; filename=\"{name}-{job}.log\"").as_str()
    );
    let text = download.text().await.unwrap();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        whole.lines.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let straight = start_raydar_with(
        client.clone(),
        "local control plane",
        &["--ray-dashboard", &format!("http://{head_ip}:8265")],
    )
    .await;
    let mut replay = Log::default();
    let mut events = open(
        &streams,
        &format!("{}/api/v1/clusters/{namespace}/{name}/jobs/{job}/logs/stream", straight.base),
        None,
    )
    .await;
    assert_eq!(replay.read(&mut events, |_| false).await.as_deref(), Some("job SUCCEEDED"));
    assert_eq!(replay.lines, whole.lines);
}

/// A CRI log line as kwok reads it.
fn cri(at: &str, text: &str) -> String {
    format!("{at} stdout F {text}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn a_ray_pod_log_follows_its_file_and_resumes() {
    let client = kube_client().await;
    let raydar = start_raydar(client.clone(), "local control plane").await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let streams = reqwest::Client::new();
    wait_ready(&http, &raydar.base).await;
    let ns = TestNamespace::create(&client, "raydar-podlogs-it").await;
    let namespace = ns.0.as_str();
    let name = "logs";

    // A worker pod as KubeRay labels them (kwok runs it; no Ray head is needed for pod logs),
    // with a sidecar, and a pod of no Ray cluster.
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod = "logs-worker-a";
    let container = |n: &str| json!({"name": n, "image": "rayproject/ray:2.46.0"});
    let ray_pod = json!({
        "metadata": {"name": pod, "labels": {"ray.io/cluster": name, "ray.io/node-type": "worker"}},
        "spec": {"containers": [container("ray-worker"), container("sidecar")]}
    });
    pods.create(&PostParams::default(), &serde_json::from_value(ray_pod).unwrap())
        .await
        .expect("pod created");
    let other =
        json!({"metadata": {"name": "not-ray"}, "spec": {"containers": [container("app")]}});
    pods.create(&PostParams::default(), &serde_json::from_value(other).unwrap())
        .await
        .expect("pod created");

    // kwok serves each container's log from a file.
    let dir =
        TempDir(std::env::temp_dir().join(format!("raydar-podlogs-it-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let worker_log = dir.0.join("ray-worker.log");
    let sidecar_log = dir.0.join("sidecar.log");
    let mut first = String::new();
    for i in 1..=5 {
        first.push_str(&cri(&format!("2026-01-01T00:00:0{i}.000000000Z"), &format!("w {i}")));
    }
    // CR-LF, and two lines with the same timestamp.
    first.push_str(&cri("2026-01-01T00:00:06.000000000Z", "crlf\r"));
    first.push_str(&cri("2026-01-01T00:00:06.000000000Z", "same stamp"));
    std::fs::write(&worker_log, first).unwrap();
    std::fs::write(&sidecar_log, cri("2026-01-01T00:00:01.000000000Z", "sidecar says hi")).unwrap();
    let logs_gvk = GroupVersionKind::gvk("kwok.x-k8s.io", "v1alpha1", "Logs");
    let logs: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::from_gvk_with_plural(&logs_gvk, "logs"),
    );
    let spec = json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
        "metadata": {"name": pod},
        "spec": {"logs": [
            {"containers": ["ray-worker"], "logsFile": worker_log, "follow": true},
            {"containers": ["sidecar"], "logsFile": sidecar_log, "follow": true}
        ]}
    });
    logs.create(&PostParams::default(), &serde_json::from_value(spec).unwrap())
        .await
        .expect("kwok Logs created");

    let base = format!("{}/api/v1/clusters/{namespace}/{name}/pods", raydar.base);
    // Only pods of the cluster: another pod, a missing one, a missing container are 404.
    let status = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(format!("{base}/not-ray/logs/stream")).await, 404);
    assert_eq!(status(format!("{base}/no-such-pod/logs")).await, 404);
    assert_eq!(status(format!("{base}/{pod}/logs/stream?container=nope")).await, 404);
    assert_eq!(
        status(format!("{}/api/v1/clusters/{namespace}/other/pods/{pod}/logs", raydar.base)).await,
        404
    );

    // Wait for kwok to run the pod and serve the log (the Logs object takes a moment).
    let url = format!("{base}/{pod}/logs/stream");
    let mut log = Log::default();
    let mut events = eventually("the pod's log stream to start", || async {
        let mut events = open(&streams, &url, None).await;
        let mut log = Log::default();
        let quick =
            tokio::time::timeout(Duration::from_secs(3), log.read(&mut events, |l| l.len() >= 7))
                .await;
        (quick.is_ok() && log.lines.len() == 7).then_some(events)
    })
    .await;
    log.lines =
        ["w 1", "w 2", "w 3", "w 4", "w 5", "crlf", "same stamp"].map(String::from).to_vec();

    // Appended lines arrive while the stream is open.
    let append = |text: String| {
        let mut file = std::fs::OpenOptions::new().append(true).open(&worker_log).unwrap();
        file.write_all(text.as_bytes()).unwrap();
    };
    append(cri("2026-01-01T00:00:07.000000000Z", "appended 1"));
    append(cri("2026-01-01T00:00:07.500000000Z", &"x".repeat(20_000)));
    assert_eq!(log.read(&mut events, |l| l.len() >= 9).await, None);
    assert_eq!(log.lines[7], "appended 1");
    assert!(
        log.lines[8].starts_with("xxxx") && log.lines[8].ends_with("… [line cut at 16 KiB]"),
        "a long line is cut"
    );
    assert_eq!(log.lines[8].len(), 16 * 1024 + "… [line cut at 16 KiB]".len());

    // Away and back with Last-Event-ID: exactly what was appended meanwhile.
    drop(events);
    append(cri("2026-01-01T00:00:08.000000000Z", "while away"));
    let mut events = open(&streams, &url, Some(log.lines.len() as u64)).await;
    assert_eq!(log.read(&mut events, |l| l.len() >= 10).await, None);
    assert_eq!(log.lines[9], "while away");
    append(cri("2026-01-01T00:00:09.000000000Z", "after return"));
    assert_eq!(log.read(&mut events, |l| l.len() >= 11).await, None);
    assert_eq!(log.lines[10], "after return");

    // The sidecar by name, and the download of the whole log.
    let mut sidecar = Log::default();
    let mut events = open(&streams, &format!("{url}?container=sidecar"), None).await;
    assert_eq!(sidecar.read(&mut events, |l| !l.is_empty()).await, None);
    assert_eq!(sidecar.lines, ["sidecar says hi"]);
    let download =
        http.get(format!("{base}/{pod}/logs?container=ray-worker")).send().await.unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(
        download.headers()["content-disposition"],
        format!("attachment; filename=\"{pod}-ray-worker.log\"").as_str()
    );
    let text = download.text().await.unwrap();
    assert!(
        text.starts_with("w 1\nw 2\n") && text.contains("after return\n"),
        "{}",
        &text[..200.min(text.len())]
    );
    assert_eq!(
        metric(&http, &raydar.base, "raydar_log_streams").await,
        2.0,
        "the worker's and the sidecar's"
    );

    // The pod goes: its log ends (kwok keeps the log connection open, so raydar notices at its
    // next check of a quiet log, within about half a minute).
    let mut events = open(&streams, &url, Some(log.lines.len() as u64)).await;
    pods.delete(pod, &Default::default()).await.expect("pod deleted");
    assert_eq!(
        log.read(&mut events, |_| false).await.as_deref(),
        Some(format!("pod {pod} is gone").as_str())
    );
    assert_eq!(log.lines.len(), 11, "nothing after the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn a_ray_head_killed_under_a_followed_job_log_is_said_and_no_line_is_lost_or_twice() {
    let client = kube_client().await;
    let name = "doomed";
    let Head { raydar: _raydar, ns, cluster, head_ip, .. } =
        head(&client, "raydar-headkill-it", name).await;
    let namespace = ns.0.as_str();

    // A job that prints a numbered line every 0.1 s for five minutes, followed by a viewer.
    let job = format!("headkill-{}", std::process::id());
    submit_numbered(&head_ip, &job, 3000);
    let url = format!("{cluster}/jobs/{job}/logs/stream");
    let mut events = open(&reqwest::Client::new(), &url, None).await;
    let mut log = Log::default();
    let at_10 = |lines: &[String]| lines.iter().any(|l| l == "n 10");
    assert_eq!(log.read(&mut events, at_10).await, None);

    // The head dies as a crashed container does: every process of its pod killed at once (its
    // pod stays Running; heads.py runs one network namespace per head pod).
    let offset = std::env::var("RAYDAR_PORT_OFFSET").unwrap_or_else(|_| "0".into());
    let netns = format!("rdr{offset}-{}", head_ip.replace('.', "-"));
    let pids = std::process::Command::new("ip").args(["netns", "pids", &netns]).output().unwrap();
    let pids: Vec<String> =
        String::from_utf8_lossy(&pids.stdout).split_whitespace().map(str::to_owned).collect();
    assert!(!pids.is_empty(), "no Ray processes in network namespace {netns}");
    let killed = std::process::Command::new("kill").arg("-9").args(&pids).status().unwrap();
    assert!(killed.success());
    let read_before = log.lines.len();

    // The viewer is told, and its stream stays open (the upstream keeps trying).
    let said = log.read_for(STEP, &mut events, |_, got| matches!(got, Got::Problem(_))).await;
    assert_eq!(said, None, "a problem is said, the stream does not end");
    assert!(log.problems >= 1);

    // The head comes back as KubeRay brings it back: a new head pod (kwok runs no container to
    // restart), a new Ray head on it. A Ray job ends with the head that ran it, so the new head
    // does not know it: the viewer is told that, with every line it had, once.
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let heads = kube::api::ListParams::default()
        .labels(&format!("ray.io/cluster={name},ray.io/node-type=head"));
    pods.delete_collection(&Default::default(), &heads).await.expect("head pod deleted");
    let end = log
        .read_for(Duration::from_secs(240), &mut events, |_, got| matches!(got, Got::End(_)))
        .await
        .expect("the stream ends once Ray is back and says what became of the job");
    assert!(
        end.contains("no longer known") && end.contains(&job),
        "the end says the job went with its head: {end}"
    );
    let numbered: Vec<&String> = log.lines.iter().filter(|l| l.starts_with("n ")).collect();
    let expected: Vec<String> = (1..=numbered.len()).map(|i| format!("n {i}")).collect();
    assert_eq!(numbered, expected.iter().collect::<Vec<_>>(), "every line read, once, in order");
    println!(
        "head kill: {read_before} lines read before the kill, {} in all, {} problems said, end: {end}",
        log.lines.len(),
        log.problems
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn a_job_submitted_through_raydar_is_a_rayjob_that_kuberay_runs_on_the_cluster() {
    let client = kube_client().await;
    let name = "runs";
    let Head { raydar, ns, cluster, .. } = head(&client, "raydar-rayjob-it", name).await;
    let namespace = ns.0.as_str();
    let rayjobs = format!("{}/api/v1/rayjobs", raydar.base);
    let submit =
        |body: serde_json::Value| raydar.http.post(format!("{cluster}/jobs")).json(&body).send();

    // Bad submissions are refused field by field, and nothing is made.
    let wrong = submit(json!({"entrypoint": " ", "runtimeEnv": "pip"})).await.unwrap();
    assert_eq!(wrong.status(), 422);
    let said: serde_json::Value = wrong.json().await.unwrap();
    let fields: Vec<&str> =
        said["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["entrypoint", "runtimeEnv"], "{said}");
    let nowhere = raydar
        .http
        .post(format!("{}/api/v1/clusters/{namespace}/nosuch/jobs", raydar.base))
        .json(&json!({"entrypoint": "python -V"}))
        .send()
        .await
        .unwrap();
    assert_eq!(nowhere.status(), 404);
    let listed = common::get_json(&raydar.http, format!("{rayjobs}?namespace={namespace}")).await;
    assert_eq!(listed["items"], json!([]), "{listed}");

    // A real submission: a RayJob made as the developer, which KubeRay posts to the head.
    let code = "import os; print('the answer is', 6 * 7, os.environ['GREETING'])";
    let made = submit(json!({
        "entrypoint": format!("python -c \"{code}\""),
        "runtimeEnv": {"env_vars": {"GREETING": "hello"}}
    }))
    .await
    .unwrap();
    assert_eq!(made.status(), 201);
    let location = made.headers()["location"].to_str().unwrap().to_owned();
    let made: serde_json::Value = made.json().await.unwrap();
    let (job_name, job_id) = (made["name"].as_str().unwrap(), made["jobId"].as_str().unwrap());
    assert_eq!(location, format!("/api/v1/rayjobs/{namespace}/{job_name}"));
    assert_eq!(
        (made["cluster"].as_str(), made["submissionMode"].as_str()),
        (Some(name), Some("HTTPMode"))
    );
    let stored = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::from_gvk(&GroupVersionKind::gvk("ray.io", "v1", "RayJob")),
    )
    .get(job_name)
    .await
    .expect("the RayJob is in Kubernetes");
    assert_eq!(stored.data["spec"]["clusterSelector"]["ray.io/cluster"], name);
    let managers: Vec<_> = stored.metadata.managed_fields.unwrap_or_default();
    assert!(managers.iter().any(|m| m.manager.as_deref() == Some("raydar")), "made by raydar");
    assert_eq!(
        stored.metadata.labels.unwrap_or_default().get("raydar.dev/owner").map(String::as_str),
        Some("developer"),
        "as the requester"
    );

    // raydar's RayJob list follows it to the end, and its log is the job's output.
    let done = eventually("the RayJob to complete", || async {
        let one = common::get_json(&raydar.http, format!("{}{location}", raydar.base)).await;
        (one["deploymentStatus"] == "Complete").then_some(one)
    })
    .await;
    assert_eq!(done["jobStatus"], "SUCCEEDED", "{done}");
    let listed = common::get_json(&raydar.http, format!("{rayjobs}?namespace={namespace}")).await;
    assert_eq!(listed["items"][0]["name"], job_name, "{listed}");
    let mut events =
        open(&reqwest::Client::new(), &format!("{cluster}/jobs/{job_id}/logs/stream"), None).await;
    let mut log = Log::default();
    assert_eq!(log.read(&mut events, |_| false).await.as_deref(), Some("job SUCCEEDED"));
    assert!(log.lines.iter().any(|l| l == "the answer is 42 hello"), "{:?}", log.lines);
    let unknown = raydar.http.get(format!("{rayjobs}/{namespace}/nosuch")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn a_job_run_from_a_template_gets_a_cluster_of_its_own_that_goes_when_it_ends() {
    let client = kube_client().await;
    let raydar = start_raydar(client.clone(), "local control plane").await;
    wait_ready(&raydar.http, &raydar.base).await;
    let ns = TestNamespace::create(&client, "raydar-runjob-it").await;
    let namespace = ns.0.as_str();
    let rayjobs = format!("{}/api/v1/rayjobs", raydar.base);
    let run = |body: serde_json::Value| raydar.http.post(&rayjobs).json(&body).send();

    // Out of the template's bounds, and no command: every field named at once, nothing made.
    let refused = run(json!({"template": "cpu-small", "namespace": namespace, "name": "once",
        "parameters": {"workers": 999}, "entrypoint": "", "ttlSecondsAfterFinished": -1}))
    .await
    .unwrap();
    assert_eq!(refused.status(), 422);
    let said: serde_json::Value = refused.json().await.unwrap();
    let fields: Vec<&str> =
        said["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for field in ["workers", "entrypoint", "ttlSecondsAfterFinished"] {
        assert!(fields.contains(&field), "{field} in {said}");
    }
    // A dry run shows the RayJob, the template's cluster inside it, and makes nothing.
    let entrypoint = "python -c \"print('ephemeral', 6 * 7)\"";
    let job = json!({"template": "cpu-small", "namespace": namespace, "name": "once",
        "parameters": {"workers": 0}, "entrypoint": entrypoint, "ttlSecondsAfterFinished": 30});
    let dry = raydar.http.post(format!("{rayjobs}?dryRun=true")).json(&job).send().await.unwrap();
    assert_eq!(dry.status(), 200);
    let dry: serde_json::Value = dry.json().await.unwrap();
    let manifest = &dry["manifest"];
    assert_eq!(manifest["spec"]["shutdownAfterJobFinishes"], true, "{dry}");
    assert!(manifest["spec"]["rayClusterSpec"]["headGroupSpec"].is_object(), "{dry}");
    assert!(manifest["spec"]["activeDeadlineSeconds"].as_i64().is_some_and(|s| s <= 12 * 3600));
    assert_eq!(manifest["metadata"]["labels"]["raydar.dev/template"], "cpu-small");
    assert!(dry["yaml"].as_str().unwrap().contains("kind: RayJob"), "{dry}");
    let listed = common::get_json(&raydar.http, format!("{rayjobs}?namespace={namespace}")).await;
    assert_eq!(listed["items"], json!([]), "{listed}");

    // The run: KubeRay makes its cluster, posts the job once the head is up, and the job ends.
    let made = run(job).await.unwrap();
    assert_eq!(made.status(), 201);
    let made: serde_json::Value = made.json().await.unwrap();
    assert_eq!(
        (made["ephemeral"].as_bool(), made["owner"].as_str()),
        (Some(true), Some("developer"))
    );
    let job_id = made["jobId"].as_str().unwrap().to_owned();
    let done = tokio::time::timeout(Duration::from_secs(180), async {
        loop {
            let one = common::get_json(&raydar.http, format!("{rayjobs}/{namespace}/once")).await;
            if one["jobStatus"] == "SUCCEEDED" && !one["cluster"].as_str().unwrap_or("").is_empty()
            {
                break one;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
    .expect("the job ran on its own cluster to the end");
    let cluster = done["cluster"].as_str().unwrap().to_owned();
    assert!(cluster.starts_with("once"), "{done}");
    // Its log, while its cluster is kept (30 s).
    let url =
        format!("{}/api/v1/clusters/{namespace}/{cluster}/jobs/{job_id}/logs/stream", raydar.base);
    let mut events = open(&reqwest::Client::new(), &url, None).await;
    let mut log = Log::default();
    assert_eq!(log.read(&mut events, |_| false).await.as_deref(), Some("job SUCCEEDED"));
    assert!(log.lines.iter().any(|l| l == "ephemeral 42"), "{:?}", log.lines);
    // Then the cluster goes, and the RayJob stays with its status.
    let clusters = ray_clusters(&client, namespace);
    eventually("the job's cluster to be deleted", || async {
        clusters.get_opt(&cluster).await.ok()?.is_none().then_some(())
    })
    .await;
    let kept = common::get_json(&raydar.http, format!("{rayjobs}/{namespace}/once")).await;
    assert_eq!(
        (kept["jobStatus"].as_str(), kept["deploymentStatus"].as_str()),
        (Some("SUCCEEDED"), Some("Complete"))
    );
}
