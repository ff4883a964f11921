//! Nothing raydar sends to a Ray dashboard changes state: only allowlisted GETs leave raydar.
//! The dashboard here is a loopback listener that counts connections (real Ray heads come with
//! the local control plane's Ray support); a refused request must not open one. Needs the local
//! control plane, which decides who may read the cluster at all (`make test` runs these).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{kube_client, start_raydar_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A listener standing where a dashboard would: counts connections, answers each with `{}`.
async fn counting_dashboard() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                let _ = socket.read(&mut head).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
                    .await;
            });
        }
    });
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
