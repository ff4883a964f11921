//! raydar-server as operators watch it, the binary as it runs: `--metrics-addr` serves
//! `/metrics` without identity, with request durations by route template (never by the path
//! asked for) and each watch's health and age; `--log-format json` writes one JSON object a
//! line. Needs no control plane.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_by_route_template_and_json_logs() {
    let dir = std::env::temp_dir().join(format!("raydar-observability-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (port, ops_port) = (common::free_port(), common::free_port());
    let (base, ops) = (format!("http://127.0.0.1:{port}"), format!("http://127.0.0.1:{ops_port}"));
    let mut server = common::server_binary(port, &dir)
        .args(["--metrics-addr", &format!("127.0.0.1:{ops_port}"), "--log-format", "json"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    common::answered(&http, &format!("{ops}/healthz"), "raydar-server").await;
    // Three requests for two clusters: one route.
    for path in ["team-a/demo", "team-a/demo", "team-b/other"] {
        http.get(format!("{base}/api/v1/clusters/{path}/overview")).send().await.unwrap();
    }
    let metrics = http.get(format!("{ops}/metrics")).send().await.unwrap().text().await.unwrap();
    let route = r#"route="/api/v1/clusters/{namespace}/{name}/overview""#;
    let count = metrics
        .lines()
        .find(|l| l.starts_with("raydar_http_request_duration_seconds_count{") && l.contains(route))
        .unwrap_or_else(|| panic!("no series for the route template:\n{metrics}"));
    assert!(count.ends_with(" 3"), "{count}");
    assert!(!metrics.contains("team-a"), "a path asked for became a label:\n{metrics}");
    assert!(metrics.contains("# TYPE raydar_http_request_duration_seconds histogram"));
    // The apiserver is not there: the watch has not synced, and says so.
    assert!(metrics.contains("raydar_watch_synced{watch=\"RayCluster\"} 0\n"), "{metrics}");
    assert!(metrics.contains("raydar_watch_stale_seconds{watch=\"RayCluster\"}"), "{metrics}");
    assert!(metrics.contains("# TYPE raydar_history_db_seconds histogram"), "{metrics}");
    assert!(metrics.contains("# TYPE raydar_lifecycle_actions_total counter"), "{metrics}");

    let killed = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let mut logs = String::new();
    server.stdout.take().unwrap().read_to_string(&mut logs).unwrap();
    assert!(server.wait().unwrap().success());
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.iter().all(|l| l["timestamp"].is_string() && l["level"].is_string()), "{logs}");
    let said =
        |text: &str| lines.iter().find(|l| l["message"].as_str().is_some_and(|m| m.contains(text)));
    assert!(said(&format!("listening on {base}")).is_some(), "{logs}");
    let serving = said("serving this Kubernetes cluster");
    assert!(
        serving.is_some_and(|l| l["context"] == "default" && l["apiserver"].is_string()),
        "fields beside it: {logs}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
