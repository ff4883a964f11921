//! raydar-server against the real local control plane (deploy/local: apiserver, KubeRay operator,
//! kwok): a RayCluster created in Kubernetes is reported provisioning, then ready, then gone.
//!
//! Needs `KUBECONFIG` naming that control plane; `make test` starts it and runs these.

use std::time::Duration;

mod common;

use common::{sse_events, start_raydar, wait_ready, STEP};
use futures::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Client;
use serde_json::{json, Value};

async fn kube_client() -> Client {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "KUBECONFIG must name the local control plane (deploy/local/up.sh prints it); `make test` sets it"
    );
    Client::try_default().await.expect("kubeconfig loads")
}

fn ray_clusters(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("ray.io", "v1", "RayCluster");
    Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(&gvk))
}

/// A small CPU cluster: a head and one worker, images that kwok never needs to pull.
fn small_cluster(name: &str) -> DynamicObject {
    let container = |name: &str| json!({
        "name": name, "image": "rayproject/ray:2.46.0",
        // cpu as a number: KubeRay's CRD allows it, and the watch must read it.
        "resources": {"requests": {"cpu": 1, "memory": "2Gi"}, "limits": {"cpu": 1, "memory": "2Gi"}}
    });
    serde_json::from_value(json!({
        "apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": name},
        "spec": {
            "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [container("ray-head")]}}},
            "workerGroupSpecs": [{"groupName": "cpu", "replicas": 1, "minReplicas": 0, "maxReplicas": 3,
                "rayStartParams": {}, "template": {"spec": {"containers": [container("ray-worker")]}}}]
        }
    }))
    .unwrap()
}

async fn ensure_namespace(client: &Client, name: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating namespace {name}: {e}"),
    }
}

#[tokio::test]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn a_raycluster_is_reported_provisioning_then_ready_then_gone() {
    let client = kube_client().await;
    let raydar = start_raydar(client.clone(), "local control plane").await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    wait_ready(&http, &raydar.base).await;

    let namespace = "raydar-it";
    let name = format!("it-{}", std::process::id());
    ensure_namespace(&client, namespace).await;

    // Follow the push stream from before the cluster exists, so every phase it passes is seen.
    let stream = reqwest::Client::new()
        .get(format!("{}/api/v1/clusters/events", raydar.base))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut events = Box::pin(sse_events(stream));
    let (first, snapshot) = events.next().await.unwrap();
    assert_eq!(first, "snapshot");
    assert!(snapshot["clusters"].as_array().unwrap().iter().all(|c| c["name"] != name.as_str()));

    let api = ray_clusters(&client, namespace);
    api.create(&PostParams::default(), &small_cluster(&name)).await.expect("RayCluster created");

    let mut phases: Vec<String> = Vec::new();
    tokio::time::timeout(STEP, async {
        while let Some((event, data)) = events.next().await {
            if event == "upsert" && data["name"] == name.as_str() && data["namespace"] == namespace {
                let phase = data["phase"].as_str().unwrap().to_string();
                if phases.last() != Some(&phase) {
                    phases.push(phase.clone());
                }
                if phase == "Ready" {
                    assert_eq!(data["workersReady"], 1, "ready with its worker: {data}");
                    return;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("cluster did not become Ready; phases seen: {phases:?}"));
    assert_eq!(phases.first().map(String::as_str), Some("Provisioning"), "phases seen: {phases:?}");
    assert_eq!(phases.last().map(String::as_str), Some("Ready"));

    let row: Value = http
        .get(format!("{}/api/v1/clusters/{namespace}/{name}", raydar.base))
        .send().await.unwrap().json().await.unwrap();
    assert_eq!(row["phase"], "Ready");
    assert_eq!(row["workersDesired"], 1);
    let list: Value = http.get(format!("{}/api/v1/clusters", raydar.base)).send().await.unwrap().json().await.unwrap();
    assert!(list["items"].as_array().unwrap().iter().any(|c| c["name"] == name.as_str() && c["phase"] == "Ready"));

    api.delete(&name, &DeleteParams::default()).await.expect("RayCluster deleted");
    tokio::time::timeout(STEP, async {
        while let Some((event, data)) = events.next().await {
            if event == "delete" && data["name"] == name.as_str() {
                return;
            }
        }
    })
    .await
    .expect("a delete event reached the page stream");
    let gone = http.get(format!("{}/api/v1/clusters/{namespace}/{name}", raydar.base)).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    let list: Value = http.get(format!("{}/api/v1/clusters", raydar.base)).send().await.unwrap().json().await.unwrap();
    assert!(list["items"].as_array().unwrap().iter().all(|c| c["name"] != name.as_str()));
}

#[tokio::test]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn a_cross_origin_page_cannot_follow_the_stream() {
    let raydar = start_raydar(kube_client().await, "local control plane").await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let refused = http
        .get(format!("{}/api/v1/clusters/events", raydar.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
}
