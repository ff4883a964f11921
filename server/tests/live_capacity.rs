//! Capacity before launch on the real plane: a pool of kwok nodes of this test's own (tainted, so
//! nothing else lands there), a template whose pods go only there, and the launch preview's
//! verdicts: a launch that fits partly says how many workers wait, one that fits no node names
//! the largest, running pods take room from the next launch, and a namespace's ResourceQuota the
//! launch would pass is flagged.

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
    let client = kube_client().await;
    let raydar = start_raydar(client.clone(), "local control plane").await;
    wait_ready(&raydar.http, &raydar.base).await;
    let namespace = TestNamespace::create(&client, "capacity").await;
    let ns = namespace.0.as_str();
    let pool = Pool::create(&client, &common::unique_name("cap")).await;
    let template = PoolTemplate::create(&client, &pool).await;
    let template = template.0.as_str();

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
    let launched = raydar
        .http
        .post(format!("{}/api/v1/clusters", raydar.base))
        .json(&request(template, ns, "holds-the-pool", 4))
        .send()
        .await
        .unwrap();
    assert_eq!(launched.status(), 201, "{}", launched.text().await.unwrap());
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
    let clusters = common::ray_clusters(&client, ns);
    clusters.delete("holds-the-pool", &DeleteParams::foreground()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn a_launch_past_the_namespaces_quota_is_flagged() {
    let client = kube_client().await;
    let raydar = start_raydar(client.clone(), "local control plane").await;
    wait_ready(&raydar.http, &raydar.base).await;
    let namespace = TestNamespace::create(&client, "quota").await;
    let ns = namespace.0.as_str();
    let pool = Pool::create(&client, &common::unique_name("quota")).await;
    let template = PoolTemplate::create(&client, &pool).await;
    let template = template.0.as_str();
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
}
