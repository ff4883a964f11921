//! Nothing raydar sends to a Ray dashboard changes state: only allowlisted GETs leave raydar.
//! The dashboard here is a loopback listener that counts connections (real Ray heads come with
//! the local control plane's Ray support); a refused request must not open one. And a dashboard
//! that is slow, unreachable or too talkative costs its own cluster and nothing else: the last
//! test puts a real Ray head behind a relay that answers for one cluster only after 30 s. Needs
//! the local control plane, which decides who may read the cluster at all (`make test` runs
//! these).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{
    eventually, head_only, kube_client, ray_clusters, sse_events, start_raydar_with, TestNamespace,
};
use futures::StreamExt;
use kube::api::PostParams;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A listener standing where a dashboard would, on loopback: each connection's request is read
/// (its first 4 KiB: enough for a GET) and `answer` writes the answer.
async fn dashboard<F, A>(answer: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> A + Send + Sync + 'static,
    A: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = [0u8; 4096];
            let _ = socket.read(&mut head).await;
            tokio::spawn(answer(socket));
        }
    });
    url
}

/// A 200 answer's head: JSON of `length` bytes, then the connection closes.
fn json_head(length: usize) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n"
    )
}

/// A dashboard that counts connections and answers each with `{}`.
async fn counting_dashboard() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let url = dashboard(move |mut socket| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move {
            let _ = socket.write_all(format!("{}{{}}", json_head(2)).as_bytes()).await;
        }
    })
    .await;
    (url, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn only_allowlisted_gets_reach_a_dashboard() {
    let (dashboard, hits) = counting_dashboard().await;
    let raydar = start_raydar_with(
        kube_client().await,
        "local control plane",
        &["--ray-dashboard", &dashboard],
    )
    .await;
    // As a page would send them: same origin, with the CSRF token, so only the Ray rules refuse.
    let http = raydar.http.clone();
    let ray = |path: &str| format!("{}/api/v1/clusters/team-a/demo/ray/{path}", raydar.base);

    // Every method but GET, on paths that change state in Ray: submit, stop, delete a job.
    for (method, path) in [
        (reqwest::Method::POST, "api/jobs/"),
        (reqwest::Method::POST, "api/jobs/raysubmit_1/stop"),
        (reqwest::Method::DELETE, "api/jobs/raysubmit_1"),
        (reqwest::Method::PUT, "api/jobs/raysubmit_1"),
        (reqwest::Method::PATCH, "api/version"),
    ] {
        let answer = http
            .request(method.clone(), ray(path))
            .body(r#"{"entrypoint": "rm -rf /"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 405, "{method} /{path}");
    }
    // GETs outside the allowlist: other routes, path tricks, queries.
    for path in [
        "api/jobs/raysubmit_1/stop",
        "api/v0/tasks",
        "api/jobs/..%2F..%2Fapi/v0/logs",
        "nodes?view=details",
        "api/version?x=1",
        "api/jobs/raysubmit_1/logs/tail",
    ] {
        let answer = http.get(ray(path)).send().await.unwrap();
        assert_eq!(answer.status(), 403, "GET /{path}");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("not")
                || body["error"].as_str().unwrap().contains("query"),
            "{body}"
        );
    }
    // A name that cannot be a RayCluster's never becomes part of a URL.
    let bad = http
        .get(format!("{}/api/v1/clusters/team-a/Demo_1/ray/api/version", raydar.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no refused request reached the dashboard");

    // An allowlisted read does reach it: the count above could have moved.
    let version = http.get(ray("api/version")).send().await.unwrap();
    assert_eq!(version.status(), 200);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn an_unreachable_dashboard_is_named_and_answers_within_the_timeout() {
    // Port 1 of loopback refuses connections at once.
    let raydar = start_raydar_with(
        kube_client().await,
        "local control plane",
        &["--ray-dashboard", "http://127.0.0.1:1"],
    )
    .await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
    let answer = http
        .get(format!("{}/api/v1/clusters/team-a/demo/ray/api/jobs/", raydar.base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 502);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("cannot reach the Ray dashboard of team-a/demo"),
        "{body}"
    );
}

/// A dashboard that answers every read with `length` bytes of JSON string, as fast as it may.
async fn long_dashboard(length: usize) -> String {
    dashboard(move |mut socket| async move {
        let _ = socket.write_all(format!("{}\"", json_head(length)).as_bytes()).await;
        let chunk = vec![b'x'; 64 * 1024];
        let mut left = length - 2;
        while left > 0 {
            let n = left.min(chunk.len());
            if socket.write_all(&chunk[..n]).await.is_err() {
                return; // raydar stopped reading: what the cap is for
            }
            left -= n;
        }
        let _ = socket.write_all(b"\"").await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn a_dashboard_answer_past_the_cap_is_refused_not_held() {
    let limit = raydar_server::ray::MAX_ANSWER;
    for (length, status) in [(limit, 200), (limit + 1024 * 1024, 502)] {
        let dashboard = long_dashboard(length).await;
        let raydar = start_raydar_with(
            kube_client().await,
            "local control plane",
            &["--ray-dashboard", &dashboard],
        )
        .await;
        let url = format!("{}/api/v1/clusters/team-a/demo/ray/api/version", raydar.base);
        let answer = raydar.http.get(url).send().await.unwrap();
        assert_eq!(answer.status(), status, "an answer of {length} bytes");
        let body = answer.text().await.unwrap();
        if status == 502 {
            assert!(body.contains("answered more than 16 MiB"), "{body}");
        } else {
            assert_eq!(body.len(), length, "an answer within the cap is passed on whole");
        }
    }
}

/// A dashboard that answers a job's log after `delay`, as a slow or overloaded one does.
async fn slow_dashboard(delay: Duration) -> String {
    dashboard(move |mut socket| async move {
        tokio::time::sleep(delay).await;
        let body = r#"{"logs": "step 1\nstep 2\n"}"#;
        let _ = socket.write_all(format!("{}{body}", json_head(body.len())).as_bytes()).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn log_downloads_are_read_a_few_at_a_time() {
    let dashboard = slow_dashboard(Duration::from_secs(2)).await;
    let raydar = start_raydar_with(
        kube_client().await,
        "local control plane",
        &["--ray-dashboard", &dashboard, "--log-downloads", "1"],
    )
    .await;
    let url = format!("{}/api/v1/clusters/team-a/demo/jobs/raysubmit_1/logs", raydar.base);
    let first = tokio::spawn(raydar.http.get(&url).send());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = raydar.http.get(&url).send().await.unwrap();
    assert_eq!(second.status(), 503, "a second download while the first is read");
    let said: serde_json::Value = second.json().await.unwrap();
    assert!(said["error"].as_str().unwrap().contains("1 logs for download"), "{said}");
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.text().await.unwrap(), "step 1\nstep 2\n");
    let third = raydar.http.get(&url).send().await.unwrap();
    assert_eq!(third.status(), 200, "the slot is free once the first is sent");
}

/// An HTTP relay standing where dashboards are reached (`--ray-dashboard http://relay/{name}`):
/// each request goes to the real Ray dashboard at `head` (host:port) on a connection of its own,
/// but those for cluster `slow` only after `delay`, as an overloaded dashboard answers.
async fn delaying_relay(head: String, slow: &'static str, delay: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let head = head.clone();
            tokio::spawn(async move {
                // raydar's reads are GETs without a body: the request is its head.
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match inbound.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request).into_owned();
                let line = text.lines().next().unwrap_or_default();
                let target = line.split(' ').nth(1).unwrap_or("/");
                // `/{name}/{path}`: the cluster, then what Ray is asked.
                let (cluster, path) =
                    target.trim_start_matches('/').split_once('/').unwrap_or((target, ""));
                if cluster == slow {
                    tokio::time::sleep(delay).await;
                }
                let Ok(mut outbound) = tokio::net::TcpStream::connect(&head).await else {
                    return;
                };
                let asked = format!(
                    "GET /{path} HTTP/1.1\r\nhost: {head}\r\naccept: application/json\r\n\
                     connection: close\r\n\r\n"
                );
                if outbound.write_all(asked.as_bytes()).await.is_ok() {
                    let _ = tokio::io::copy(&mut outbound, &mut inbound).await;
                }
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn a_dashboard_that_answers_in_30_s_slows_its_own_cluster_only() {
    let client = kube_client().await;
    let ns = TestNamespace::create(&client, "raydar-slow-it").await;
    let namespace = ns.0.as_str();
    let clusters = ray_clusters(&client, namespace);
    // `fast` has a real Ray head; `slow` is suspended (no pods): the relay answers for it from
    // fast's head, 30 s late.
    clusters.create(&PostParams::default(), &head_only("fast")).await.expect("created");
    let mut slow = head_only("slow");
    slow.data["spec"]["suspend"] = serde_json::json!(true);
    clusters.create(&PostParams::default(), &slow).await.expect("created");
    let probe = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let head: String = eventually("fast's Ray head to answer", || async {
        let rc = ray_clusters(&client, namespace).get("fast").await.ok()?;
        let ip = rc.data["status"]["head"]["podIP"].as_str()?.to_owned();
        let version = probe.get(format!("http://{ip}:8265/api/version")).send().await.ok()?;
        version.status().is_success().then(|| format!("{ip}:8265"))
    })
    .await;
    let relay = delaying_relay(head, "slow", Duration::from_secs(30)).await;
    let raydar = start_raydar_with(
        client.clone(),
        "local control plane",
        &["--ray-dashboard", &format!("{relay}/{{name}}")],
    )
    .await;
    let base = format!("{}/api/v1/clusters/{namespace}", raydar.base);
    common::wait_ready(&raydar.http, &raydar.base).await;

    // slow's page is open, and more reads of its dashboard than it has call slots are waiting.
    let started = std::time::Instant::now();
    let slow_events = raydar.http.get(format!("{base}/slow/overview/events")).send().await.unwrap();
    let mut slow_events = Box::pin(sse_events(slow_events));
    let waiting: Vec<_> = (0..8)
        .map(|_| tokio::spawn(raydar.http.get(format!("{base}/slow/ray/api/version")).send()))
        .collect();

    // Meanwhile fast's page has Ray's nodes and its reads answer: nothing of fast waits on slow.
    let fast_events = raydar.http.get(format!("{base}/fast/overview/events")).send().await.unwrap();
    let mut fast_events = Box::pin(sse_events(fast_events));
    let fast_ray = tokio::time::timeout(common::STEP, async {
        loop {
            let (event, data) = fast_events.next().await.expect("fast's stream stays open");
            if event == "overview" && data["ray"]["nodes"].as_array().is_some_and(|n| !n.is_empty())
            {
                break data;
            }
        }
    })
    .await
    .expect("fast's page gets Ray's nodes");
    let fast_page = started.elapsed();
    let version = raydar.http.get(format!("{base}/fast/ray/api/version")).send().await.unwrap();
    assert_eq!(version.status(), 200);
    let fast_read = started.elapsed();
    assert!(fast_ray["ray"]["error"].is_null(), "{fast_ray}");
    assert!(
        waiting.iter().all(|w| !w.is_finished()),
        "fast answered while every read of slow still waits ({fast_read:?})"
    );

    // slow's page says why it has nothing, and its reads end within raydar's timeout, not Ray's.
    let said = tokio::time::timeout(common::STEP, async {
        loop {
            let (event, data) = slow_events.next().await.expect("slow's stream stays open");
            if let Some(error) = data["ray"]["error"].as_str().filter(|_| event == "overview") {
                break error.to_owned();
            }
        }
    })
    .await
    .expect("slow's page says what is wrong");
    assert!(said.contains("did not answer within 10 s") || said.contains("busy"), "{said}");
    for read in waiting {
        let answer = read.await.unwrap().unwrap();
        assert!(answer.status() == 504 || answer.status() == 503, "{}", answer.status());
    }
    let slow_done = started.elapsed();
    assert!(slow_done < Duration::from_secs(30), "reads of slow ended in {slow_done:?}");
    println!(
        "slow dashboard: fast's page had Ray after {fast_page:?} and a read answered after \
         {fast_read:?}; slow's reads ended after {slow_done:?} (its dashboard answers in 30 s)"
    );
}
