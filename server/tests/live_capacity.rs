//! Capacity before launch on the real plane: a pool of kwok nodes of this test's own (tainted, so
//! nothing else lands there), a template whose pods go only there, and the launch preview's
//! verdicts: a launch that fits partly says how many workers wait, one that fits no node names
//! the largest, running pods take room from the next launch, and a namespace's ResourceQuota the
//! launch would pass is flagged. Once launched, the cluster's stages: the worker that waits is
//! named unschedulable in the scheduler's words, and a cluster that becomes Ready shows how long
//! each stage took.

mod common;

use common::{eventually, kube_client, start_raydar, wait_ready, Raydar, TestNamespace};
use k8s_openapi::api::core::v1::{Node, Pod, ResourceQuota};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Client;
use serde_json::{json, Value};

const POOL_LABEL: &str = "test.raydar.local/pool";

/// Two kwok nodes of 32 CPUs, 256Gi and 4 GPUs each, labelled and tainted for one pool; deleted
/// when dropped.
struct Pool {
    id: String,
    nodes: Vec<String>,
}

impl Pool {
    async fn create(client: &Client, id: &str) -> Pool {
        let api: Api<Node> = Api::all(client.clone());
        let mut nodes = Vec::new();
        for i in 1..=2 {
            let name = format!("{id}-{i}");
            let node: Node = serde_json::from_value(json!({
                "metadata": {
                    "name": name,
                    "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {"type": "kwok", "kubernetes.io/hostname": name, POOL_LABEL: id}
                },
                "spec": {"taints": [{"key": POOL_LABEL, "value": id, "effect": "NoSchedule"}]}
            }))
            .unwrap();
            api.create(&PostParams::default(), &node).await.expect("a pool node is created");
            nodes.push(name.clone());
            let room =
                json!({"cpu": "32", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": "4"});
            let status = json!({
                "apiVersion": "v1", "kind": "Node",
                "status": {"allocatable": room, "capacity": room}
            });
            let params = PatchParams::apply("raydar-capacity-test").force();
            api.patch_status(&name, &params, &Patch::Apply(&status)).await.expect("room set");
        }
        Pool { id: id.to_owned(), nodes }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let kubectl = common::local_dir().join("bin/kubectl");
        let _ = std::process::Command::new(kubectl)
            .args(["delete", "node", "--wait=false", "--ignore-not-found"])
            .args(&self.nodes)
            .stdout(std::process::Stdio::null())
            .status();
    }
}

fn templates(client: &Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("raydar.dev", "v1alpha1", "RayClusterTemplate");
    Api::all_with(client.clone(), &ApiResource::from_gvk(&gvk))
}

/// gpu-single-node made for the pool: up to 16 GPUs a worker, 3 workers, head and workers on
/// the pool only (up to 48 GPUs in all). Deleted when dropped.
struct PoolTemplate(String);

impl PoolTemplate {
    async fn create(client: &Client, pool: &Pool) -> PoolTemplate {
        let api = templates(client);
        let mut template = api.get("gpu-single-node").await.expect("gpu-single-node is installed");
        let name = format!("capacity-{}", pool.id);
        template.metadata =
            kube::api::ObjectMeta { name: Some(name.clone()), ..Default::default() };
        let spec = &mut template.data["spec"];
        for parameter in spec["parameters"].as_array_mut().unwrap() {
            if parameter["name"] == "gpus" {
                parameter["max"] = json!(16);
            }
        }
        spec["policy"]["maxGpus"] = json!(48);
        let selector = json!({POOL_LABEL: pool.id});
        let toleration = json!({"key": POOL_LABEL, "operator": "Exists", "effect": "NoSchedule"});
        let cluster = &mut spec["rayClusterSpec"];
        let head = &mut cluster["headGroupSpec"]["template"]["spec"];
        head["nodeSelector"] = selector.clone();
        head["tolerations"] = json!([toleration]);
        let workers = &mut cluster["workerGroupSpecs"][0];
        for field in ["replicas", "minReplicas", "maxReplicas"] {
            workers[field] = json!(3);
        }
        let pod = &mut workers["template"]["spec"];
        pod["nodeSelector"] = selector;
        pod["tolerations"].as_array_mut().unwrap().push(toleration);
        api.create(&PostParams::default(), &template)
            .await
            .expect("the pool's template is created");
        PoolTemplate(name)
    }
}

impl Drop for PoolTemplate {
    fn drop(&mut self) {
        let kubectl = common::local_dir().join("bin/kubectl");
        let _ = std::process::Command::new(kubectl)
            .args(["delete", "rayclustertemplates.raydar.dev", &self.0, "--ignore-not-found"])
            .stdout(std::process::Stdio::null())
            .status();
    }
}

/// A launch of the pool's template: head 4 CPUs; each of 3 workers 8 CPUs, 64Gi and `gpus` GPUs.
fn request(template: &str, namespace: &str, name: &str, gpus: u32) -> Value {
    json!({"template": template, "namespace": namespace, "name": name,
           "parameters": {"gpus": gpus, "cpus": 8, "memory": "64Gi"}})
}

/// A raydar of this test's own, ready, and a namespace of its own.
async fn setup(prefix: &str) -> (Client, Raydar, TestNamespace) {
    let client = kube_client().await;
    let raydar = start_raydar(client.clone(), "local control plane").await;
    wait_ready(&raydar.http, &raydar.base).await;
    let namespace = TestNamespace::create(&client, prefix).await;
    (client, raydar, namespace)
}

/// Launches `body` through raydar's API.
async fn launch(raydar: &Raydar, body: Value) {
    let url = format!("{}/api/v1/clusters", raydar.base);
    let launched = raydar.http.post(url).json(&body).send().await.unwrap();
    assert_eq!(launched.status(), 201, "{}", launched.text().await.unwrap());
}

/// The capacity of a dry-run of `body`.
async fn preview(raydar: &Raydar, body: Value) -> Value {
    let url = format!("{}/api/v1/clusters?dryRun=true", raydar.base);
    let answer = raydar.http.post(url).json(&body).send().await.unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    let body: Value = answer.json().await.unwrap();
    body["capacity"].clone()
}

/// The preview's capacity once `done` holds (raydar's watches may take a moment to see a change).
async fn preview_until(
    raydar: &Raydar,
    body: Value,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    eventually(what, || {
        let body = body.clone();
        let done = &done;
        async move {
            let capacity = preview(raydar, body).await;
            done(&capacity).then_some(capacity)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn the_preview_says_what_fits_what_waits_and_what_never_will() {
    let (client, raydar, namespace) = setup("capacity").await;
    let ns = namespace.0.as_str();
    let pool = Pool::create(&client, &common::unique_name("cap")).await;
    let template = PoolTemplate::create(&client, &pool).await;
    let template = template.0.as_str();
    eventually("raydar to see the template", || async {
        raydar.state.templates.get(template).map(|_| ())
    })
    .await;

    // 4 GPUs a worker: the head and one worker on one node, one worker on the other, the third
    // waits. (Until kwok has made both new nodes Ready, they are tainted not-ready.)
    let partly = preview_until(&raydar, request(template, ns, "fits-partly", 4), "the pool", |c| {
        c["groups"][1]["nodes"] == 2
    })
    .await;
    assert_eq!(partly["verdict"], "partly", "{partly}");
    assert_eq!(
        partly["summary"],
        "3 of 4 pods can start now; 1 will wait for capacity (1 of workers gpu)"
    );
    let workers = &partly["groups"][1];
    assert_eq!((workers["group"].as_str(), workers["pods"].as_u64()), (Some("gpu"), Some(3)));
    assert_eq!(workers["fitNow"], 2);
    assert_eq!(
        workers["verdict"],
        "2 of 3 can start now; 1 will wait for capacity (2 nodes can hold one)"
    );
    assert_eq!(partly["groups"][0]["verdict"], "can start now (2 nodes can hold one)");

    // 16 GPUs a worker: no node of the pool has that many, ever.
    let never = preview(&raydar, request(template, ns, "fits-never", 16)).await;
    assert_eq!(never["verdict"], "never", "{never}");
    assert_eq!(
        never["summary"],
        "workers gpu cannot start: no node has 16 nvidia.com/gpu; the largest has 4"
    );

    // Launched, its pods take the pool's GPUs: the same launch again now fits only its head.
    launch(&raydar, request(template, ns, "holds-the-pool", 4)).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    eventually("two workers bound to the pool", || async {
        let listed =
            pods.list(&ListParams::default().labels("ray.io/node-type=worker")).await.ok()?;
        let bound = listed
            .items
            .iter()
            .filter(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_some()))
            .count();
        (bound == 2).then_some(())
    })
    .await;
    let full = preview_until(&raydar, request(template, ns, "after-it", 4), "the pool full", |c| {
        c["groups"][1]["fitNow"] == 0
    })
    .await;
    assert_eq!(
        full["summary"], "1 of 4 pods can start now; 3 will wait for capacity (3 of workers gpu)",
        "{full}"
    );
    assert_eq!(
        full["groups"][1]["verdict"],
        "none of 3 can start now: the 2 nodes can hold one, and they are full; they will wait for capacity"
    );

    // The launched cluster's third worker waits, and its page says why, in the scheduler's words.
    let url = format!("{}/api/v1/clusters/{ns}/holds-the-pool", raydar.base);
    let waiting = eventually("the wait named", || async {
        let cluster = common::get_json(&raydar.http, &url).await;
        let waiting = cluster["waiting"].clone();
        (waiting["reason"]["kind"] == "unschedulable").then_some(waiting)
    })
    .await;
    assert_eq!(waiting["current"], "scheduled", "{waiting:#}");
    let scheduled = &waiting["stages"][1];
    assert_eq!(
        (&scheduled["state"], &scheduled["progress"]),
        (&json!("now"), &json!("3 of 4 pods"))
    );
    let reason = &waiting["reason"];
    assert_eq!(reason["pods"].as_array().map(Vec::len), Some(1), "{reason}");
    let message = reason["message"].as_str().unwrap();
    assert!(
        message.contains("cannot be placed on any node; the scheduler says: 0/")
            && message.contains("Insufficient nvidia.com/gpu"),
        "{message}"
    );
    // The fleet's starts group it with the others the scheduler cannot place.
    let starts = common::get_json(&raydar.http, format!("{}/api/v1/starts", raydar.base)).await;
    let unschedulable = starts["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "unschedulable")
        .unwrap_or_else(|| panic!("no unschedulable group: {starts:#}"));
    assert_eq!(unschedulable["label"], "Unschedulable");
    let row = unschedulable["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["namespace"] == ns && c["name"] == "holds-the-pool")
        .unwrap_or_else(|| panic!("not listed: {starts:#}"));
    assert_eq!((&row["stage"], &row["template"]), (&json!("Pods scheduled"), &json!(template)));
    assert!(row["message"].as_str().unwrap().contains("Insufficient nvidia.com/gpu"), "{row}");
    let clusters = common::ray_clusters(&client, ns);
    clusters.delete("holds-the-pool", &DeleteParams::foreground()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn a_cluster_that_becomes_ready_shows_how_long_each_stage_took() {
    let (_, raydar, namespace) = setup("stages").await;
    let ns = namespace.0.as_str();
    let cpu_small = json!({"template": "cpu-small", "namespace": ns, "name": "staged",
                           "parameters": {"workers": 1}});
    launch(&raydar, cpu_small).await;
    let url = format!("{}/api/v1/clusters/{ns}/staged", raydar.base);
    let waiting = eventually("Ready, every worker joined", || async {
        let cluster = common::get_json(&raydar.http, &url).await;
        let waiting = cluster["waiting"].clone();
        (waiting.is_object() && waiting["current"].is_null()).then_some(waiting)
    })
    .await;
    let stages: Vec<(&str, &str)> = waiting["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        stages,
        [
            ("created", "done"),
            ("scheduled", "done"),
            ("running", "done"),
            ("head", "done"),
            ("workers", "done"),
            ("ready", "done")
        ],
        "{waiting:#}"
    );
    // Each stage took from the end of the one before; together, creation to Ready.
    let took: i64 =
        waiting["stages"].as_array().unwrap().iter().map(|s| s["tookS"].as_i64().unwrap()).sum();
    let to_ready = waiting["timeToReadyS"].as_i64().expect("time to Ready");
    assert_eq!(took, to_ready, "{waiting:#}");
    assert!(waiting["stages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["tookS"].as_i64().unwrap() >= 0));
    assert!((0..120).contains(&to_ready), "Ready in {to_ready} s");
    assert!(waiting["reason"].is_null());

    // History counts it in its template's time to Ready.
    let starts_url = format!("{}/api/v1/starts", raydar.base);
    let cpu_small = eventually("time to Ready of cpu-small", || async {
        let starts = common::get_json(&raydar.http, &starts_url).await;
        let templates = starts["templates"].as_array()?.clone();
        templates.into_iter().find(|t| t["template"] == "cpu-small")
    })
    .await;
    assert_eq!(cpu_small["clusters"], 1, "{cpu_small}");
    let (p50, p95) = (cpu_small["p50S"].as_f64().unwrap(), cpu_small["p95S"].as_f64().unwrap());
    assert!(p50 == p95 && (0.0..120.0).contains(&p50), "{cpu_small}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn a_launch_past_the_namespaces_quota_is_flagged() {
    let (client, raydar, namespace) = setup("quota").await;
    let ns = namespace.0.as_str();
    let pool = Pool::create(&client, &common::unique_name("quota")).await;
    let template = PoolTemplate::create(&client, &pool).await;
    let template = template.0.as_str();
    eventually("raydar to see the template", || async {
        raydar.state.templates.get(template).map(|_| ())
    })
    .await;
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "gpus"},
        "spec": {"hard": {"requests.nvidia.com/gpu": "8", "pods": "20"}}
    }))
    .unwrap();
    Api::<ResourceQuota>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &quota)
        .await
        .expect("the quota is created");

    // 3 workers of 2 GPUs: within it.
    let within = preview_until(&raydar, request(template, ns, "within", 2), "pool, quota", |c| {
        c["quotas"].as_array().is_some_and(|q| q.len() == 2) && c["groups"][1]["nodes"] == 2
    })
    .await;
    let limits: Vec<(&str, bool, &str)> = within["quotas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["resource"].as_str().unwrap(),
                q["exceeds"].as_bool().unwrap(),
                q["verdict"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        limits,
        [
            ("pods", false, "pods (quota gpus): this launch 4, used 0 of 20: 16 left after it"),
            (
                "requests.nvidia.com/gpu",
                false,
                "requests.nvidia.com/gpu (quota gpus): this launch 6, used 0 of 8: 2 left after it"
            ),
        ],
        "{within}"
    );

    // 3 workers of 4 GPUs: 12 of 8.
    let over = preview(&raydar, request(template, ns, "over", 4)).await;
    assert_eq!(over["verdict"], "over-quota", "{over}");
    assert_eq!(
        over["summary"],
        "over quota: requests.nvidia.com/gpu (quota gpus): this launch 12, used 0 of 8: 4 over, \
         pods past it will be refused"
    );

    // Launched all the same (Kubernetes decides): the worker past the quota is refused, and the
    // cluster's wait says so in KubeRay's and the quota's words.
    launch(&raydar, request(template, ns, "over", 4)).await;
    let url = format!("{}/api/v1/clusters/{ns}/over", raydar.base);
    let waiting = eventually("the quota named", || async {
        let cluster = common::get_json(&raydar.http, &url).await;
        (cluster["waiting"]["reason"]["kind"] == "quota").then(|| cluster["waiting"].clone())
    })
    .await;
    assert_eq!(waiting["current"], "scheduled", "{waiting:#}");
    let message = waiting["reason"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("KubeRay could not create a pod (")
            && message.contains("exceeded quota: gpus"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn a_crash_looping_head_is_named_with_its_last_lines() {
    let (client, raydar, namespace) = setup("crash").await;
    let ns = namespace.0.as_str();
    // kwok reports a head annotated so as crash-looping (deploy/local/kwok-stages.yaml), as the
    // kubelet would.
    let mut cluster = common::head_only("crashing");
    cluster.data["spec"]["headGroupSpec"]["template"]["metadata"] =
        json!({"annotations": {"test.raydar.local/stage": "crash-loop"}});
    common::ray_clusters(&client, ns).create(&PostParams::default(), &cluster).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let head = eventually("the head pod", || async {
        let listed =
            pods.list(&ListParams::default().labels("ray.io/node-type=head")).await.ok()?;
        listed.items.first().and_then(|p| p.metadata.name.clone())
    })
    .await;
    // Its previous run's log, as kwok serves it.
    let dir = common::Scratch::new("crash-log");
    let previous = dir.0.join("previous.log");
    let lines = [
        "2026-01-01T00:00:01.000000000Z stderr F Traceback (most recent call last):",
        "2026-01-01T00:00:02.000000000Z stderr F ValueError: no GCS at 10.0.0.1:6379",
    ];
    std::fs::write(&previous, lines.join("\n") + "\n").unwrap();
    let logs_gvk = GroupVersionKind::gvk("kwok.x-k8s.io", "v1alpha1", "Logs");
    let logs: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(&logs_gvk, "logs"),
    );
    let spec = json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
        "metadata": {"name": head},
        "spec": {"logs": [{"containers": ["ray-head"], "logsFile": previous, "previousLogsFile": previous}]}
    });
    logs.create(&PostParams::default(), &serde_json::from_value(spec).unwrap()).await.unwrap();

    let url = format!("{}/api/v1/clusters/{ns}/crashing", raydar.base);
    let waiting = eventually("the crash loop named", || async {
        let cluster = common::get_json(&raydar.http, &url).await;
        let waiting = cluster["waiting"].clone();
        let lines = waiting["reason"]["lastLines"].as_str().unwrap_or_default();
        (waiting["reason"]["kind"] == "crash-loop" && lines.contains("ValueError"))
            .then_some(waiting)
    })
    .await;
    assert_eq!(waiting["current"], "running", "{waiting:#}");
    assert_eq!(
        waiting["reason"]["message"],
        format!(
            "container ray-head of {head} keeps crashing: restarted 4 times (CrashLoopBackOff): \
             back-off 1m20s restarting failed container"
        )
    );
    assert_eq!(waiting["reason"]["pods"], json!([head]));
    assert!(
        waiting["reason"]["lastLines"]
            .as_str()
            .unwrap()
            .contains("ValueError: no GCS at 10.0.0.1:6379"),
        "{waiting:#}"
    );
}
