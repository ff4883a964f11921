//! raydar-server when Kubernetes is not there (yet): it serves, says why it is not ready, and keeps
//! retrying. Needs no control plane.

mod common;

use std::time::Duration;

use common::start_raydar;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
    assert!(
        body.contains("cannot reach the Kubernetes apiserver at https://127.0.0.1:1"),
        "{body}"
    );

    // Pages and the API still answer, with nothing in them, saying why rather than that there
    // are no clusters.
    let list: Value = common::get_json(&http, format!("{}/api/v1/clusters", raydar.base)).await;
    assert_eq!(list["items"], serde_json::json!([]));
    assert!(list["stale"]["reason"].as_str().unwrap().contains("cannot reach"), "{list}");
    let page = http.get(&raydar.base).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(!page.contains("No Ray clusters yet."));
    assert!(page.contains("cannot reach the Kubernetes apiserver at https://127.0.0.1:1"));
    let metrics =
        http.get(format!("{}/metrics", raydar.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("raydar_raycluster_watch_synced 0"), "{metrics}");
}

/// Every operation the OpenAPI document describes is served: none falls through to the page
/// router's 404 or is refused as a method the route does not have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_served() {
    let config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
    let raydar = start_raydar(kube::Client::try_from(config).unwrap(), "https://127.0.0.1:1").await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
    let doc: Value = common::get_json(&http, format!("{}/api/v1/openapi.json", raydar.base)).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for route in [
        "/api/v1/clusters",
        "/api/v1/clusters/{namespace}/{name}",
        "/api/v1/clusters/events",
        "/api/v1/templates",
    ] {
        assert!(paths.contains_key(route), "{route} is documented");
    }
    let mut checked = 0;
    for (path, item) in paths {
        let url = format!(
            "{}{}",
            raydar.base,
            path.replace("{namespace}", "team-a").replace("{name}", "demo")
        );
        for method in ["get", "post", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let request = match method {
                "get" => http.get(&url),
                "post" => http.post(&url).json(&serde_json::json!({"template": "cpu-small", "namespace": "team-a", "name": "demo"})),
                "patch" => http.patch(&url).json(&serde_json::json!({"suspend": true})),
                _ => http.delete(&url),
            };
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let is_json = response
                .headers()
                .get("content-type")
                .is_some_and(|v| v.to_str().unwrap().contains("json"));
            assert_ne!(status, 405, "{method} {path} is routed");
            assert!(
                status != 404 || is_json,
                "{method} {path}: 404 from the page router, not the API"
            );
            checked += 1;
        }
    }
    assert!(checked >= 11, "checked {checked} operations");
}
