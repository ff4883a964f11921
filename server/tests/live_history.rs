//! History on the real plane: a cluster launched through raydar, Ready, torn down, is still
//! there afterwards with who launched it, its parameters, its phases and time-to-Ready, its
//! Events and who tore it down, and all of it is still there after raydar restarts, on SQLite
//! and on PostgreSQL.

mod common;

use std::time::Duration;

use common::postgres::Postgres;
use common::{
    ensure_namespace, kube_client, start_raydar_with, unique_name, wait_ready, Scratch, STEP,
};
use serde_json::{json, Value};

const NAMESPACE: &str = "raydar-history-test";

/// Polls `url` until `done` holds for its JSON answer; the last answer when it never does.
async fn until(
    http: &reqwest::Client,
    url: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    let waited = tokio::time::timeout(STEP, async {
        loop {
            let response = http.get(url).send().await.unwrap();
            last = response.json().await.unwrap_or(Value::Null);
            if done(&last) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "{what}: last answer {last}");
    last
}

/// Launches, waits Ready, tears down through a raydar keeping history where `flags` say; then
/// a new raydar on the same history answers the same.
async fn a_torn_down_cluster_is_remembered_across_a_restart(flags: &[&str]) {
    let client = kube_client().await;
    ensure_namespace(&client, NAMESPACE).await;
    let raydar = start_raydar_with(client.clone(), "local control plane", flags).await;
    let (http, base) = (raydar.http.clone(), raydar.base.clone());
    wait_ready(&http, &base).await;
    let name = unique_name("hist");
    let launched = http
        .post(format!("{base}/api/v1/clusters"))
        .json(&json!({"template": "cpu-small", "namespace": NAMESPACE, "name": name,
            "parameters": {"workers": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(launched.status(), 201, "{}", launched.text().await.unwrap());
    let live = format!("{base}/api/v1/clusters/{NAMESPACE}/{name}");
    let row = until(&http, &live, "the cluster becomes Ready", |c| c["phase"] == "Ready").await;
    let uid = row["uid"].as_str().unwrap().to_owned();
    let record_url = format!("{base}/api/v1/history/clusters/{uid}");
    let record = until(&http, &record_url, "history has it Ready", |r| {
        r["cluster"]["readyAt"].is_i64() && r["events"].as_array().is_some_and(|e| !e.is_empty())
    })
    .await;
    assert_eq!(record["cluster"]["outcome"], "live");
    assert_eq!(record["parameters"]["workers"], 1, "launched with workers=1: {record}");
    assert_eq!(record["manifest"]["metadata"]["labels"]["raydar.dev/template"], "cpu-small");

    let deleted = http.delete(&live).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    let record = until(&http, &record_url, "history has it torn down", |r| {
        r["cluster"]["outcome"] == "torn-down"
    })
    .await;
    let check = |record: &Value| {
        let cluster = &record["cluster"];
        assert_eq!(cluster["owner"], common::DEV_USER);
        assert_eq!(cluster["endedBy"], common::DEV_USER, "{record}");
        assert!(cluster["deletedAt"].is_i64());
        let ready_after =
            cluster["readyAt"].as_i64().unwrap() - cluster["createdAt"].as_i64().unwrap() * 1000;
        assert!((0..120_000).contains(&ready_after), "time to Ready {ready_after} ms");
        let phases: Vec<&str> = record["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["phase"].as_str().unwrap())
            .collect();
        assert_eq!(phases.first(), Some(&"Provisioning"), "{phases:?}");
        assert!(phases.contains(&"Ready") && phases.last() == Some(&"Deleted"), "{phases:?}");
        let reasons: Vec<&str> = record["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["reason"].as_str().unwrap())
            .collect();
        assert!(
            reasons.iter().any(|r| r.starts_with("Created")),
            "KubeRay's events kept: {reasons:?}"
        );
    };
    check(&record);
    // The list has it, gone, under its owner.
    let list = until(&http, &format!("{base}/api/v1/history/clusters?q={name}"), "listed", |l| {
        l["items"].as_array().is_some_and(|i| i.len() == 1)
    })
    .await;
    assert_eq!(list["items"][0]["uid"], uid.as_str());
    assert_eq!(list["lost"], 0);
    drop(raydar);

    // A new raydar on the same history: nothing lost.
    let again = start_raydar_with(client, "local control plane", flags).await;
    wait_ready(&again.http, &again.base).await;
    let answer = again
        .http
        .get(format!("{}/api/v1/history/clusters/{uid}", again.base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let after: Value = answer.json().await.unwrap();
    check(&after);
    assert_eq!(after["phases"], record["phases"], "a restart adds no step");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn sqlite_history_outlives_the_cluster_and_a_restart() {
    let data = Scratch::new("history");
    let dir = data.0.to_string_lossy().into_owned();
    a_torn_down_cluster_is_remembered_across_a_restart(&["--data-dir", &dir]).await;
    assert!(data.0.join("raydar.db").exists(), "SQLite under --data-dir");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn postgres_history_outlives_the_cluster_and_a_restart() {
    let postgres = Postgres::start();
    a_torn_down_cluster_is_remembered_across_a_restart(&["--database", &postgres.url()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn live_pages_answer_while_the_history_database_is_down() {
    let postgres = Postgres::start();
    let client = kube_client().await;
    let url = postgres.url();
    let raydar = start_raydar_with(client, "local control plane", &["--database", &url]).await;
    wait_ready(&raydar.http, &raydar.base).await;
    postgres.stop();
    let history = format!("{}/api/v1/history/clusters", raydar.base);
    let answer = raydar.http.get(&history).send().await.unwrap();
    assert_eq!(answer.status(), 503, "history says it is unavailable");
    let body: Value = answer.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().starts_with("history is unavailable"), "{body}");
    for page in ["/api/v1/clusters", "/", "/readyz"] {
        let started = std::time::Instant::now();
        let answer = raydar.http.get(format!("{}{page}", raydar.base)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{page} with the database down");
        assert!(started.elapsed() < Duration::from_secs(5), "{page} waited for the database");
    }
    postgres.start_again();
    until(&raydar.http, &history, "history answers again", |page| page["items"].is_array()).await;
}
