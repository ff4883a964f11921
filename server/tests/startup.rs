//! raydar-server when Kubernetes is not there (yet): it serves, says why it is not ready, and keeps
//! retrying. Needs no control plane.

mod common;

use std::time::Duration;

use common::start_raydar;
use serde_json::Value;

#[tokio::test]
async fn an_unreachable_apiserver_is_named_and_readiness_waits() {
    // Nothing listens on port 1 of loopback: every connection is refused at once.
    let config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
    let raydar = start_raydar(kube::Client::try_from(config).unwrap(), "https://127.0.0.1:1").await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();

    let health = http.get(format!("{}/healthz", raydar.base)).send().await.unwrap();
    assert_eq!(health.status(), 200, "the process itself is healthy");

    // The first list attempt fails within moments; readiness then says why.
    let mut body = String::new();
    for _ in 0..50 {
        let ready = http.get(format!("{}/readyz", raydar.base)).send().await.unwrap();
        assert_eq!(ready.status(), 503, "not ready without a synced watch");
        body = ready.text().await.unwrap();
        if body.contains("cannot reach") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(body.contains("cannot reach the Kubernetes apiserver at https://127.0.0.1:1"), "{body}");

    // Pages and the API still answer, with nothing in them.
    let list: Value = http.get(format!("{}/api/v1/clusters", raydar.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["items"], serde_json::json!([]));
    let page = http.get(&raydar.base).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("No Ray clusters yet."));
    let metrics = http.get(format!("{}/metrics", raydar.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("raydar_raycluster_watch_synced 0"), "{metrics}");
}
