//! raydar-server against the real local control plane (deploy/local: apiserver, KubeRay operator,
//! kwok): a RayCluster created in Kubernetes is reported provisioning, then ready, then gone.
//!
//! Needs `KUBECONFIG` naming that control plane; `make test` starts it and runs these.

use std::time::Duration;

mod common;

use common::{
    ensure_namespace, kube_client, ray_clusters, sse_events, start_raydar, unique_name, wait_ready,
    STEP,
};
use futures::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::Client;
use serde_json::{json, Value};

/// A small CPU cluster: a head and one worker, images that kwok never needs to pull.
fn small_cluster(name: &str) -> DynamicObject {
    let container = |name: &str| {
        json!({
            "name": name, "image": "rayproject/ray:2.46.0",
            // cpu as a number: KubeRay's CRD allows it, and the watch must read it.
            "resources": {"requests": {"cpu": 1, "memory": "2Gi"}, "limits": {"cpu": 1, "memory": "2Gi"}}
        })
    };
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn a_raycluster_is_reported_provisioning_then_ready_then_gone() {
    let client = kube_client().await;
    let raydar = start_raydar(client.clone(), "local control plane").await;
    let http = raydar.http.clone();
    wait_ready(&http, &raydar.base).await;

    let namespace = "raydar-it";
    let name = format!("it-{}", std::process::id());
    ensure_namespace(&client, namespace).await;

    // Follow the push stream from before the cluster exists, so every phase it passes is seen.
    let stream = reqwest::Client::new()
        .get(format!("{}/api/v1/clusters/events?namespace={namespace}", raydar.base))
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
            // It comes onto the page in a page sent anew, then changes in place.
            if let Some(data) = common::cluster_row(&event, &data, &name) {
                let phase = data["phase"].as_str().unwrap().to_string();
                if phases.last() != Some(&phase) {
                    phases.push(phase.clone());
                }
                // KubeRay may write Ready a status update before it counts the ready worker.
                if phase == "Ready" && data["workersReady"] == 1 {
                    return;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!("cluster did not become Ready with its worker; phases seen: {phases:?}")
    });
    assert_eq!(phases.first().map(String::as_str), Some("Provisioning"), "phases seen: {phases:?}");
    assert_eq!(phases.last().map(String::as_str), Some("Ready"));

    let row: Value =
        common::get_json(&http, format!("{}/api/v1/clusters/{namespace}/{name}", raydar.base))
            .await;
    assert_eq!(row["phase"], "Ready");
    assert_eq!(row["workersDesired"], 1);
    let list: Value =
        common::get_json(&http, format!("{}/api/v1/clusters?namespace={namespace}", raydar.base))
            .await;
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == name.as_str() && c["phase"] == "Ready"));

    api.delete(&name, &DeleteParams::default()).await.expect("RayCluster deleted");
    tokio::time::timeout(STEP, async {
        while let Some((event, data)) = events.next().await {
            if event == "snapshot" && common::cluster_row(&event, &data, &name).is_none() {
                return;
            }
        }
    })
    .await
    .expect("a page without the deleted cluster reached the stream");
    let gone = http
        .get(format!("{}/api/v1/clusters/{namespace}/{name}", raydar.base))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let list: Value =
        common::get_json(&http, format!("{}/api/v1/clusters?namespace={namespace}", raydar.base))
            .await;
    assert!(list["items"].as_array().unwrap().iter().all(|c| c["name"] != name.as_str()));
}

/// A RayCluster of `team` that another controller runs (MultiKueue's name in `spec.managedBy`,
/// which KubeRay leaves alone): the test writes its status itself.
fn managed_elsewhere(name: &str, team: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": name, "labels": {"raydar.dev/team": team, "raydar.dev/owner": "alice"}},
        "spec": {"managedBy": "kueue.x-k8s.io/multikueue",
            "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [
                {"name": "ray-head", "image": "rayproject/ray:2.46.0"}]}}}}
    }))
    .unwrap()
}

/// The next event of `events` that `wanted` accepts, within [`STEP`].
async fn next_event(
    events: &mut (impl futures::Stream<Item = (String, Value)> + Unpin),
    what: &str,
    wanted: impl Fn(&str, &Value) -> bool,
) -> (String, Value) {
    let found = tokio::time::timeout(STEP, async {
        while let Some((name, data)) = events.next().await {
            if wanted(&name, &data) {
                return (name, data);
            }
        }
        panic!("the event stream ended before {what}");
    });
    found.await.unwrap_or_else(|_| panic!("no {what} within {STEP:?}"))
}

fn page_names(snapshot: &Value) -> Vec<&str> {
    snapshot["clusters"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn an_open_list_page_follows_its_own_rows_and_counts() {
    let client = kube_client().await;
    let raydar = start_raydar(client.clone(), "local control plane").await;
    let http = raydar.http.clone();
    wait_ready(&http, &raydar.base).await;
    let namespace = "raydar-it-page";
    ensure_namespace(&client, namespace).await;
    let api = ray_clusters(&client, namespace);
    for name in ["a0", "a1", "b", "c", "d"] {
        let _ = api.delete(name, &DeleteParams::default()).await;
    }
    for (name, team) in [("a1", "vision"), ("b", "vision"), ("c", "vision"), ("d", "speech")] {
        api.create(&PostParams::default(), &managed_elsewhere(name, team)).await.unwrap();
    }
    let status = |ready: i32, state: &str| {
        let patch = json!({"status": {"readyWorkerReplicas": ready, "state": state}});
        kube::api::Patch::Merge(patch)
    };
    let wait_listed = || async {
        let url = format!("{}/api/v1/clusters?namespace={namespace}", raydar.base);
        for _ in 0..100 {
            if common::get_json(&http, &url).await["total"] == 4 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("raydar did not list the four clusters");
    };
    wait_listed().await;

    // The page of team vision, two at a time: its rows, how many match, where it goes on.
    let url =
        format!("{}/api/v1/clusters/events?namespace={namespace}&team=vision&limit=2", raydar.base);
    let stream = http.get(&url).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let mut events = Box::pin(sse_events(stream));
    let (first, page) = events.next().await.unwrap();
    assert_eq!(first, "snapshot");
    assert_eq!(page_names(&page), ["a1", "b"]);
    assert_eq!(page["counts"]["total"], 3, "d is another team's: {page}");
    assert_eq!(page["counts"]["phases"], json!([3, 0, 0, 0, 0]), "all provisioning: {page}");
    assert_eq!(page["counts"]["next"], "0:raydar-it-page:b");

    // A row on the page changes in place: that row alone, at once.
    let params = kube::api::PatchParams::default();
    api.patch_status("b", &params, &status(1, "")).await.unwrap();
    let (_, row) =
        next_event(&mut events, "b changed", |e, d| e == "upsert" && d["name"] == "b").await;
    assert_eq!(row["workersReady"], 1);

    // A cluster past the page becomes ready: only the counts change.
    api.patch_status("c", &params, &status(0, "ready")).await.unwrap();
    let (_, counts) = next_event(&mut events, "new counts", |e, _| e == "counts").await;
    assert_eq!(counts["phases"], json!([2, 1, 0, 0, 0]), "{counts}");

    // One that sorts first comes onto the page, one on it leaves: the page is sent anew.
    api.create(&PostParams::default(), &managed_elsewhere("a0", "vision")).await.unwrap();
    let (_, page) = next_event(&mut events, "a0 on the page", |e, d| {
        e == "snapshot" && common::cluster_row(e, d, "a0").is_some()
    })
    .await;
    assert_eq!(page_names(&page), ["a0", "a1"]);
    assert_eq!(page["counts"]["total"], 4);
    api.delete("a1", &DeleteParams::default()).await.unwrap();
    let (_, page) = next_event(&mut events, "a1 gone", |e, d| {
        e == "snapshot" && common::cluster_row(e, d, "a1").is_none()
    })
    .await;
    assert_eq!(page_names(&page), ["a0", "b"]);

    // The same view through the list API, by GPUs and filtered by phase and text.
    let list = common::get_json(
        &http,
        format!("{}/api/v1/clusters?namespace={namespace}&phase=Ready&q=C", raydar.base),
    )
    .await;
    assert_eq!((list["total"].clone(), list["items"][0]["name"].clone()), (json!(1), json!("c")));
    assert_eq!(list["items"][0]["team"], "vision");
    assert_eq!(list["items"][0]["owner"], "alice");
    for name in ["a0", "b", "c", "d"] {
        let _ = api.delete(name, &DeleteParams::default()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn a_cross_origin_page_cannot_follow_the_stream() {
    let raydar = start_raydar(kube_client().await, "local control plane").await;
    let http = raydar.http.clone();
    let refused = http
        .get(format!("{}/api/v1/clusters/events", raydar.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
}

/// Namespace of the launch API tests.
const API_NAMESPACE: &str = "raydar-api-it";

/// A kube client, a ready raydar on it, an HTTP client, and `namespace` created.
async fn api_test(namespace: &str) -> (Client, common::Raydar, reqwest::Client) {
    let client = kube_client().await;
    let raydar = start_raydar(client.clone(), "local control plane").await;
    let http = raydar.http.clone();
    wait_ready(&http, &raydar.base).await;
    ensure_namespace(&client, namespace).await;
    (client, raydar, http)
}

/// A launch request for template cpu-small.
fn cpu_small(namespace: &str, name: &str, parameters: Value) -> Value {
    json!({"template": "cpu-small", "namespace": namespace, "name": name, "parameters": parameters})
}

/// `POST /api/v1/clusters{query}` with a JSON body.
async fn launch(http: &reqwest::Client, base: &str, query: &str, body: Value) -> reqwest::Response {
    http.post(format!("{base}/api/v1/clusters{query}")).json(&body).send().await.unwrap()
}

/// Whether the apiserver has a RayCluster of that name.
async fn exists(client: &Client, namespace: &str, name: &str) -> bool {
    ray_clusters(client, namespace).get_opt(name).await.expect("reading the RayCluster").is_some()
}

/// Polls `GET /api/v1/clusters/{ns}/{name}` until `done` says the answer is the one awaited.
async fn poll_cluster(
    http: &reqwest::Client,
    url: &str,
    what: &str,
    done: impl Fn(u16, &Value) -> bool,
) {
    let mut last = (0, Value::Null);
    let waited = tokio::time::timeout(STEP, async {
        loop {
            let response = http.get(url).send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if done(status, &body) {
                return;
            }
            last = (status, body);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "{what}: last answer {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn api_launch_reaches_ready_then_delete_removes_it_and_deleting_again_succeeds() {
    let (client, raydar, http) = api_test(API_NAMESPACE).await;
    let name = unique_name("api");

    let created =
        launch(&http, &raydar.base, "", cpu_small(API_NAMESPACE, &name, json!({"workers": 1})))
            .await;
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/clusters/{API_NAMESPACE}/{name}"));
    let body: Value = created.json().await.unwrap();
    assert_eq!(
        body["manifest"]["metadata"]["labels"]["raydar.dev/owner"],
        common::DEV_USER,
        "{body}"
    );
    assert_eq!(body["manifest"]["metadata"]["labels"]["raydar.dev/template"], "cpu-small");

    let url = format!("{}{location}", raydar.base);
    poll_cluster(&http, &url, "the launched cluster becomes Ready", |status, row| {
        status == 200 && row["phase"] == "Ready"
    })
    .await;

    // The same name again is a conflict, not a silent update.
    let again = launch(&http, &raydar.base, "", cpu_small(API_NAMESPACE, &name, json!({}))).await;
    assert_eq!(again.status(), 409);
    let conflict: Value = again.json().await.unwrap();
    assert!(conflict["error"].as_str().unwrap().contains("already exists"), "{conflict}");

    let deleted = http.delete(&url).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    let deleted: Value = deleted.json().await.unwrap();
    assert_eq!(deleted["deleted"], true, "{deleted}");
    assert_eq!(deleted["alreadyGone"], false);
    poll_cluster(&http, &url, "the deleted cluster leaves the store", |status, _| status == 404)
        .await;
    assert!(!exists(&client, API_NAMESPACE, &name).await);

    let gone = http.delete(&url).send().await.unwrap();
    assert_eq!(gone.status(), 200, "deleting a cluster that is already gone succeeds");
    let gone: Value = gone.json().await.unwrap();
    assert_eq!(gone["deleted"], false, "{gone}");
    assert_eq!(gone["alreadyGone"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn api_dry_run_returns_the_manifest_owned_by_the_dev_user_and_creates_nothing() {
    let (client, raydar, http) = api_test(API_NAMESPACE).await;
    let name = unique_name("dry");

    let request = cpu_small(API_NAMESPACE, &name, json!({"workers": "2"}));
    let response = launch(&http, &raydar.base, "?dryRun=true", request).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let manifest = &body["manifest"];
    assert_eq!(manifest["kind"], "RayCluster", "{body}");
    assert_eq!(manifest["metadata"]["name"], name.as_str());
    assert_eq!(manifest["metadata"]["labels"]["raydar.dev/owner"], common::DEV_USER);
    assert_eq!(manifest["spec"]["workerGroupSpecs"][0]["replicas"], 2);
    // The YAML the launch form previews is the same manifest.
    let yaml: Value =
        serde_saphyr::from_str(body["yaml"].as_str().expect("a dry run answers with YAML"))
            .unwrap();
    assert_eq!(&yaml, manifest);
    assert!(!exists(&client, API_NAMESPACE, &name).await, "a dry run creates nothing");

    // The owner is never taken from the request: a body naming one is refused.
    let mut request = cpu_small(API_NAMESPACE, &name, json!({}));
    request["owner"] = json!("mallory");
    let with_owner = launch(&http, &raydar.base, "?dryRun=true", request).await;
    assert_eq!(with_owner.status(), 400, "an owner in the body is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn api_launch_with_a_bad_parameter_or_unknown_template_is_422_and_creates_nothing() {
    let (client, raydar, http) = api_test(API_NAMESPACE).await;
    let name = unique_name("bad");

    let bad =
        launch(&http, &raydar.base, "", cpu_small(API_NAMESPACE, &name, json!({"workers": 99})))
            .await;
    assert_eq!(bad.status(), 422);
    let body: Value = bad.json().await.unwrap();
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["field"], "workers");
    assert!(errors[0]["message"].as_str().unwrap().contains("from 0 to 4"), "{body}");

    // Every field's error at once, one message per field.
    let request = cpu_small(API_NAMESPACE, "Not_A_Name", json!({"workers": "x", "cpus": 100}));
    let many = launch(&http, &raydar.base, "", request).await;
    assert_eq!(many.status(), 422);
    let body: Value = many.json().await.unwrap();
    let errors = body["errors"].as_array().unwrap();
    let mut fields: Vec<&str> = errors.iter().map(|e| e["field"].as_str().unwrap()).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["cpus", "name", "workers"], "{body}");

    let mut request = cpu_small(API_NAMESPACE, &name, json!({}));
    request["template"] = json!("no-such-template");
    let unknown = launch(&http, &raydar.base, "", request).await;
    assert_eq!(unknown.status(), 422);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "template", "{body}");

    assert!(!exists(&client, API_NAMESPACE, &name).await, "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn api_lists_the_installed_templates_with_their_parameters() {
    let raydar = start_raydar(kube_client().await, "local control plane").await;
    let http = raydar.http.clone();
    let response = http.get(format!("{}/api/v1/templates", raydar.base)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let items = body["items"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|t| t["name"].as_str().unwrap()).collect();
    for shipped in ["cpu-small", "gpu-multi-node", "gpu-single-node"] {
        assert!(names.contains(&shipped), "{shipped} in {names:?}");
    }
    let cpu_small = items.iter().find(|t| t["name"] == "cpu-small").unwrap();
    assert!(!cpu_small["description"].as_str().unwrap().is_empty());
    let workers = cpu_small["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "workers")
        .unwrap();
    assert_eq!(workers["max"], 4, "{workers}");
    assert_eq!(cpu_small["policy"]["maxGpus"], 0, "{cpu_small}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn api_cross_origin_launch_and_delete_are_refused() {
    let client = kube_client().await;
    let raydar = start_raydar(client.clone(), "local control plane").await;
    let http = raydar.http.clone();
    let name = unique_name("xorigin");
    let launch = http
        .post(format!("{}/api/v1/clusters", raydar.base))
        .header("origin", "https://evil.example")
        .json(&json!({"template": "cpu-small", "namespace": API_NAMESPACE, "name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(launch.status(), 403);
    let delete = http
        .delete(format!("{}/api/v1/clusters/{API_NAMESPACE}/{name}", raydar.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 403);
    assert!(!exists(&client, API_NAMESPACE, &name).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn api_launch_refused_by_kubernetes_quota_reaches_the_caller_with_its_status_and_message() {
    let namespace = "raydar-api-quota-it";
    let (client, raydar, http) = api_test(namespace).await;
    let quotas: Api<k8s_openapi::api::core::v1::ResourceQuota> =
        Api::namespaced(client.clone(), namespace);
    let quota = serde_json::from_value(json!({
        "metadata": {"name": "no-rayclusters"},
        "spec": {"hard": {"count/rayclusters.ray.io": "0"}}
    }))
    .unwrap();
    match quotas.create(&PostParams::default(), &quota).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating the quota: {e}"),
    }
    let name = unique_name("quota");
    let refused = launch(&http, &raydar.base, "", cpu_small(namespace, &name, json!({}))).await;
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("exceeded quota"), "{body}");
    assert_eq!(body["reason"], "Forbidden", "{body}");
    assert!(!exists(&client, namespace, &name).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn api_scales_within_bounds_and_suspends_and_resumes() {
    let (_client, raydar, http) = api_test(API_NAMESPACE).await;
    let name = unique_name("day2");
    let created =
        launch(&http, &raydar.base, "", cpu_small(API_NAMESPACE, &name, json!({"workers": 1})))
            .await;
    assert_eq!(created.status(), 201);
    let url = format!("{}/api/v1/clusters/{API_NAMESPACE}/{name}", raydar.base);
    poll_cluster(&http, &url, "the cluster becomes Ready", |s, row| {
        s == 200 && row["phase"] == "Ready"
    })
    .await;

    let change = |body: Value| http.patch(&url).json(&body).send();
    let scaled = change(json!({"scale": {"group": "cpu", "replicas": 3}})).await.unwrap();
    assert_eq!(scaled.status(), 200);
    poll_cluster(&http, &url, "three workers ready", |s, row| {
        s == 200 && row["workersDesired"] == 3 && row["workersReady"] == 3
    })
    .await;

    // cpu-small's worker group allows 0 to 4.
    let too_many = change(json!({"scale": {"group": "cpu", "replicas": 5}})).await.unwrap();
    assert_eq!(too_many.status(), 422);
    let errors: Value = too_many.json().await.unwrap();
    assert_eq!(errors["errors"][0]["field"], "replicas", "{errors}");
    assert!(errors["errors"][0]["message"].as_str().unwrap().contains("from 0 to 4"), "{errors}");
    let unknown = change(json!({"scale": {"group": "gpu", "replicas": 1}})).await.unwrap();
    assert_eq!(unknown.status(), 422);

    let suspended = change(json!({"suspend": true})).await.unwrap();
    assert_eq!(suspended.status(), 200);
    poll_cluster(&http, &url, "the cluster is Suspended", |s, row| {
        s == 200 && row["phase"] == "Suspended"
    })
    .await;
    let resumed = change(json!({"suspend": false})).await.unwrap();
    assert_eq!(resumed.status(), 200);
    poll_cluster(&http, &url, "the cluster is Ready again", |s, row| {
        s == 200 && row["phase"] == "Ready" && row["workersReady"] == 3
    })
    .await;

    let foreign = http
        .patch(&url)
        .header("origin", "https://evil.example")
        .json(&json!({"suspend": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    assert_eq!(http.delete(&url).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn malformed_clusters_neither_break_the_watch_nor_hide_others_nor_show_a_wrapped_number() {
    let namespace = "raydar-it-malformed";
    let client = kube_client().await;
    ensure_namespace(&client, namespace).await;
    let api = ray_clusters(&client, namespace);
    let group = |name: &str, replicas: Value| {
        json!({"groupName": name, "replicas": replicas, "minReplicas": 0, "maxReplicas": replicas,
               "rayStartParams": {}, "template": {"spec": {"containers": [{"name": "w", "image": "x",
               "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}})
    };
    // Left to another controller (KubeRay skips these) and suspended: KubeRay must not try to
    // make six billion pods (it runs out of memory trying).
    let cluster = |name: &str, groups: Vec<Value>| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": name},
            "spec": {"managedBy": "kueue.x-k8s.io/multikueue", "suspend": true,
                "workerGroupSpecs": groups, "headGroupSpec": {"rayStartParams": {},
                "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.46.0"}]}}}}
        }))
        .unwrap()
    };
    let max = json!(i32::MAX);
    // The apiserver's schema takes an integer past 32 bits, which KubeRay's types cannot hold
    // (its own watch fails on it, and relists once it is gone: it is deleted as soon as seen).
    let made = [
        (
            "huge",
            cluster(
                "huge",
                vec![group("a", max.clone()), group("b", max.clone()), group("c", max)],
            ),
        ),
        ("beyond", cluster("beyond", vec![group("a", json!(3_000_000_000u64))])),
    ];
    for (name, object) in &made {
        let _ = api.delete(name, &DeleteParams::default()).await;
        tokio::time::timeout(STEP, async {
            while api.get_opt(name).await.unwrap().is_some() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await
        .unwrap();
        api.create(&PostParams::default(), object).await.unwrap();
    }
    // Listed from the start, and the watch still sees a cluster made afterwards.
    let raydar = start_raydar(client.clone(), "local control plane").await;
    let http = raydar.http.clone();
    wait_ready(&http, &raydar.base).await;
    let fine = unique_name("fine");
    api.create(&PostParams::default(), &small_cluster(&fine)).await.unwrap();
    let url = format!("{}/api/v1/clusters", raydar.base);
    let mut rows = Value::Null;
    let seen = tokio::time::timeout(STEP, async {
        loop {
            rows = common::get_json(&http, &url).await;
            let names: Vec<&str> = rows["items"]
                .as_array()
                .map(|items| items.iter().filter_map(|c| c["name"].as_str()).collect())
                .unwrap_or_default();
            if ["huge", "beyond", fine.as_str()].iter().all(|n| names.contains(n)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    // The list's filters and paging, on these three.
    let only = format!("{url}?namespace={namespace}");
    let failed = common::get_json(&http, format!("{only}&phase=Failed")).await;
    let by_gpus = common::get_json(&http, format!("{only}&sort=gpus&limit=2")).await;
    let rest = common::get_json(
        &http,
        format!("{only}&sort=gpus&limit=2&cursor={}", by_gpus["next"].as_str().unwrap_or("")),
    )
    .await;
    let wrong = http.get(format!("{url}?phase=broken")).send().await.unwrap();
    let wrong = (wrong.status().as_u16(), wrong.json::<Value>().await.unwrap());
    // Gone before anything is asserted: the bad one holds up KubeRay's watch while it exists.
    for name in ["beyond", "huge", fine.as_str()] {
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    let row = |name: &str| {
        rows["items"].as_array().unwrap().iter().find(|c| c["name"] == name).cloned().unwrap()
    };
    assert!(seen.is_ok(), "all three listed: {rows}");
    let huge = row("huge");
    assert_eq!(huge["workersDesired"], json!(3 * i32::MAX as u64), "{huge}");
    assert_eq!(huge["gpusDesired"], 0, "suspended: holds no GPU");
    let beyond = row("beyond");
    assert_eq!(beyond["phase"], "Failed", "{beyond}");
    assert!(beyond["reason"].as_str().unwrap().contains("malformed RayCluster"), "{beyond}");
    assert_eq!(row(&fine)["namespace"], namespace);
    let names = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().into())
            .collect()
    };
    assert_eq!((names(&failed), &failed["total"]), (vec!["beyond".to_owned()], &json!(1)));
    assert_eq!(failed["phases"]["Failed"], 1, "{failed}");
    // A suspended cluster and a malformed one hold no GPU; the one that runs comes first.
    assert_eq!(by_gpus["total"], 3, "{by_gpus}");
    assert_eq!(names(&by_gpus).len() + names(&rest).len(), 3, "{by_gpus} {rest}");
    assert!(rest.get("next").is_none(), "{rest}");
    assert_eq!(wrong.0, 400);
    let why = wrong.1["error"].as_str().unwrap();
    assert!(why.contains("phase") && why.contains("Suspended"), "{why}");
}
