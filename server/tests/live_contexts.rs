//! One raydar serving two Kubernetes clusters (`--contexts`): the local control plane and a
//! second one started here (deploy/local/second-plane.sh), each reached as raydar's own identity
//! there. A request names its cluster with `?context=`; each cluster's list, launch and teardown
//! are its own, and with the second plane stopped its list says it is stale while the first's
//! stays live and launchable.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{Scratch, TestNamespace};
use futures::StreamExt;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use serde_json::{json, Value};

/// The second local control plane, stopped and removed when dropped.
struct SecondPlane(PathBuf);

impl SecondPlane {
    fn up() -> Self {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/second-plane.sh");
        let out = Command::new(&script).arg("up").output().expect("second-plane.sh runs");
        assert!(
            out.status.success(),
            "second-plane.sh up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SecondPlane(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    }

    fn down(&self) {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/second-plane.sh");
        let _ = Command::new(script).arg("down").status();
    }

    /// Freezes its apiserver until the answer is dropped: it takes connections and answers
    /// nothing, as behind a network that drops packets, and its watches still look live.
    fn freeze(&self) -> Frozen {
        let pid = std::fs::read_to_string(self.0.join("state/pids/kube-apiserver.pid")).unwrap();
        let pid = pid.trim().to_owned();
        assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
        Frozen(pid)
    }

    async fn admin(&self) -> Client {
        let kubeconfig = Kubeconfig::read_from(self.0.join("kubeconfig")).unwrap();
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .unwrap();
        Client::try_from(config).unwrap()
    }
}

impl Drop for SecondPlane {
    fn drop(&mut self) {
        self.down();
    }
}

/// A frozen apiserver, thawed when dropped.
struct Frozen(String);

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.0]).status();
    }
}

/// A RayCluster KubeRay leaves alone (another controller manages it): a row, no pods.
fn left_alone(name: &str) -> kube::api::DynamicObject {
    let mut cluster = common::head_only(name);
    cluster.data["spec"]["managedBy"] = json!("kueue.x-k8s.io/multikueue");
    cluster
}

/// Pages of a list's push stream as they come, until one whose rows (`CONTEXT/NAME`) `done` is
/// happy with: those rows, and the Kubernetes clusters the page says are served.
async fn page_until(
    stream: &mut (impl futures::Stream<Item = (String, Value)> + Unpin),
    done: fn(&[String]) -> bool,
) -> (Vec<String>, Value) {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(20), stream.next()).await;
        let (event, page) = next.expect("a page within 20 s").expect("the stream goes on");
        assert_eq!(event, "snapshot", "only pages: {page}");
        let rows: Vec<String> = page["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| format!("{}/{}", c["context"].as_str().unwrap(), c["name"].as_str().unwrap()))
            .collect();
        if done(&rows) {
            return (rows, page["contexts"].clone());
        }
    }
}

/// The rows of a list answer of every Kubernetes cluster: (context, name).
fn named_rows(list: &Value) -> Vec<(String, String)> {
    let text = |v: &Value| v.as_str().unwrap().to_owned();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (text(&c["context"]), text(&c["name"])))
        .collect()
}

/// The names in a list answer.
fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane (make controlplane) and starts a second one"]
async fn one_raydar_serves_two_kubernetes_clusters_and_one_away_leaves_the_other_live() {
    let second = SecondPlane::up();
    let first_admin = common::kube_client().await;
    let second_admin = second.admin().await;
    // The same namespace name on both: only the context tells their clusters apart.
    let ns = TestNamespace::create(&first_admin, "contexts").await;
    let namespace: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": ns.0}})).unwrap();
    kube::Api::all(second_admin.clone()).create(&PostParams::default(), &namespace).await.unwrap();
    for (admin, name) in [(&first_admin, "on-first"), (&second_admin, "on-second")] {
        common::ray_clusters(admin, &ns.0)
            .create(&PostParams::default(), &left_alone(name))
            .await
            .unwrap();
    }

    let scratch = Scratch::new("contexts");
    let file = scratch.0.join("contexts.yaml");
    let local = common::local_dir();
    std::fs::write(
        &file,
        format!(
            "contexts:\n  - name: first\n    kubeconfig: {}\n  - name: second\n    kubeconfig: {}\n",
            local.join("kubeconfig-raydar").display(),
            second.0.join("kubeconfig-raydar").display()
        ),
    )
    .unwrap();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = common::server_binary(port, &scratch.0)
        .args(["--contexts", &file.to_string_lossy()])
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let plain = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    common::wait_ready(&plain, &base).await;
    let http = common::page_client(&base, &[]).await;
    // The answer of GET `path` under /api/v1.
    let get = |path: String| {
        let (http, url) = (http.clone(), format!("{base}/api/v1/{path}"));
        async move { common::get_json(&http, url).await }
    };
    let list = |context: &str| get(format!("clusters?namespace={}{context}", ns.0));

    // Each cluster's list is its own; without a context, the home (first) one's.
    for context in ["", "&context=first"] {
        let first = common::eventually("the first plane's cluster", || async {
            let answer = list(context).await;
            names(&answer).contains(&"on-first".to_owned()).then_some(answer)
        })
        .await;
        assert_eq!(names(&first), ["on-first"], "{context}");
    }
    let on_second = common::eventually("the second plane's cluster", || async {
        let answer = list("&context=second").await;
        (!names(&answer).is_empty()).then_some(answer)
    })
    .await;
    assert_eq!(names(&on_second), ["on-second"]);
    assert_eq!(on_second["items"][0]["context"], "second", "a row names its Kubernetes cluster");
    // Every one at once: each row names its own, and how each answers is said.
    let all = list("&context=*").await;
    let rows = named_rows(&all);
    assert_eq!(rows, [("first".into(), "on-first".into()), ("second".into(), "on-second".into())]);
    assert_eq!(all["total"], 2);
    // Its push stream too: the merged page, then the page again when either changes.
    let url = format!("{base}/api/v1/clusters/events?namespace={}&context=*", ns.0);
    let stream = common::sse_events(http.get(url).send().await.unwrap());
    tokio::pin!(stream);
    let (rows, served) = page_until(&mut stream, |_| true).await;
    assert_eq!(rows, ["first/on-first", "second/on-second"]);
    assert_eq!(served, "first\nsecond\n");
    let second_clusters = common::ray_clusters(&second_admin, &ns.0);
    second_clusters.create(&PostParams::default(), &left_alone("pushed")).await.unwrap();
    page_until(&mut stream, |rows| rows.contains(&"second/pushed".to_owned())).await;
    second_clusters.delete("pushed", &Default::default()).await.unwrap();
    let (rows, _) = page_until(&mut stream, |rows| rows.len() == 2).await;
    assert_eq!(rows, ["first/on-first", "second/on-second"]);
    drop(stream);
    let contexts = common::get_json(&http, format!("{base}/api/v1/contexts")).await;
    assert_eq!(contexts["items"][0]["name"], "first");
    assert_eq!(contexts["items"][0]["home"], true);
    assert_eq!(contexts["items"][1]["name"], "second");
    assert_eq!(contexts["items"][1]["synced"], true);
    // History keeps both Kubernetes clusters' clusters: each watch's relist ends its own only.
    let history =
        |context: &str| get(format!("history/clusters?namespace={}&outcome=live{context}", ns.0));
    let all = common::eventually("both clusters live in history", || async {
        let all = history("&context=*").await;
        (names(&all).len() == 2).then_some(all)
    })
    .await;
    let rows = named_rows(&all);
    assert!(rows.contains(&("first".into(), "on-first".into())));
    assert!(rows.contains(&("second".into(), "on-second".into())));
    // Each Kubernetes cluster's history is its own, as its list is.
    assert_eq!(names(&history("").await), ["on-first"]);
    assert_eq!(names(&history("&context=second").await), ["on-second"]);
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    for context in ["first", "second"] {
        let synced = format!("raydar_context_synced{{context=\"{context}\"}} 1");
        assert!(metrics.contains(&synced), "{synced} in:\n{metrics}");
    }
    // The fleet adds up each Kubernetes cluster's GPUs, each read there: a cluster asking for
    // GPUs on the second counts on the second's line, and on the second's own fleet alone.
    let mut wants = left_alone("wants-gpus");
    wants.data["spec"]["workerGroupSpecs"] = json!([{
        "groupName": "gpu", "replicas": 2, "minReplicas": 0, "maxReplicas": 2, "rayStartParams": {},
        "template": {"spec": {"containers": [{"name": "ray-worker", "image": "rayproject/ray:2.46.0",
            "resources": {"limits": {"cpu": 1, "memory": "2Gi", "nvidia.com/gpu": 4}}}]}}
    }]);
    second_clusters.create(&PostParams::default(), &wants).await.unwrap();
    let gpus = |context: &str| get(format!("gpus{context}"));
    let line = |fleet: &Value, name: &str| {
        let lines = fleet["contexts"].as_array().cloned().unwrap_or_default();
        lines.into_iter().find(|c| c["name"] == name)
    };
    let fleet = common::eventually("the second's line to count its GPU cluster", || async {
        let fleet = gpus("").await;
        (line(&fleet, "second")?["clusters"] == 1).then_some(fleet)
    })
    .await;
    assert_eq!(fleet["context"], "first", "the home one's fleet, with every one's line: {fleet}");
    let lines: Vec<&str> =
        fleet["contexts"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(lines, ["first", "second"]);
    let on_second = line(&fleet, "second").unwrap();
    assert_eq!((on_second["requested"].as_u64(), on_second["held"].as_u64()), (Some(8), Some(0)));
    let wants_gpus = |fleet: &Value| {
        fleet["clusters"].as_array().unwrap().iter().any(|c| c["name"] == "wants-gpus")
    };
    assert!(!wants_gpus(&fleet), "not on the first's fleet: {fleet}");
    let own = gpus("?context=second").await;
    assert_eq!(own["context"], "second");
    assert!(wants_gpus(&own), "on the second's own fleet: {own}");
    // Each line's GPUs are its cluster's own readings (the second plane's exporters).
    assert_eq!(line(&own, "second").unwrap()["total"], own["total"], "{own}");
    second_clusters.delete("wants-gpus", &Default::default()).await.unwrap();

    // RayJobs: one Kubernetes cluster's, or every one's (`*`), each row naming its own.
    let rayjob: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "job-on-second"},
        "spec": {"entrypoint": "python -c 'print(1)'", "submissionMode": "HTTPMode",
            "clusterSelector": {"ray.io/cluster": "on-second"}}
    }))
    .unwrap();
    let gvk = kube::api::GroupVersionKind::gvk("ray.io", "v1", "RayJob");
    let resource = kube::api::ApiResource::from_gvk(&gvk);
    let second_rayjobs = kube::Api::<kube::api::DynamicObject>::namespaced_with(
        second_admin.clone(),
        &ns.0,
        &resource,
    );
    second_rayjobs.create(&PostParams::default(), &rayjob).await.unwrap();
    let rayjobs = |context: &str| get(format!("rayjobs?namespace={}{context}", ns.0));
    let all = common::eventually("the second's RayJob in the list of all", || async {
        let all = rayjobs("&context=*").await;
        (!all["items"].as_array()?.is_empty()).then_some(all)
    })
    .await;
    let rows = named_rows(&all);
    assert_eq!(rows, [("second".to_owned(), "job-on-second".to_owned())], "{all}");
    assert_eq!(names(&rayjobs("&context=second").await), ["job-on-second"]);
    assert!(names(&rayjobs("").await).is_empty(), "not the first's");

    let one = format!("{base}/api/v1/clusters/{}/on-first?context=*", ns.0);
    assert_eq!(http.get(one).send().await.unwrap().status(), 400, "a cluster is on one");
    let unknown = http.get(format!("{base}/api/v1/clusters?context=third")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let said: Value = unknown.json().await.unwrap();
    assert_eq!(said["error"], "no Kubernetes cluster is called \"third\" here", "{said}");

    // A launch goes to the cluster it names, with that cluster's templates and RBAC.
    let launch = |context: &str, name: &str| {
        http.post(format!("{base}/api/v1/clusters?context={context}"))
            .json(&json!({"template": "cpu-small", "namespace": ns.0, "name": name, "parameters": {}}))
            .send()
    };
    let launched = launch("second", "launched").await.unwrap();
    assert_eq!(launched.status(), 201, "{}", launched.text().await.unwrap());
    let on = |admin: &Client, name: &str| {
        let api = common::ray_clusters(admin, &ns.0);
        let name = name.to_owned();
        async move { api.get_opt(&name).await.unwrap().is_some() }
    };
    assert!(on(&second_admin, "launched").await, "on the second plane");
    assert!(!on(&first_admin, "launched").await, "not on the first");
    let tear_down = |context: &str, name: &str| {
        let url = format!("{base}/api/v1/clusters/{}/{name}?context={context}", ns.0);
        let http = http.clone();
        async move {
            let torn = http.delete(url).send().await.unwrap();
            assert!(torn.status().is_success(), "{}", torn.text().await.unwrap());
        }
    };
    tear_down("second", "launched").await;

    // The second's apiserver stops answering without going away. What spans every cluster keeps
    // answering from the last RBAC answers there: one question waits out its timeout (10 s) and
    // finds it does not answer, and after that no request waits on it.
    let every = format!("{base}/api/v1/clusters?namespace={}&context=*", ns.0);
    {
        let _frozen = second.freeze();
        // Past the time an answer is reused, so that the list asks again.
        tokio::time::sleep(Duration::from_secs(11)).await;
        let patient = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let both = |all: &Value| {
            let rows = named_rows(all);
            ["first", "second"]
                .map(|c| (c.to_owned(), format!("on-{c}")))
                .iter()
                .all(|r| rows.contains(r))
        };
        let all = common::get_json(&patient, &every).await;
        assert!(both(&all), "both listed: {all}");
        let quick = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        for _ in 0..3 {
            let all = quick.get(&every).send().await.expect("answered without waiting on it");
            let all: Value = all.json().await.unwrap();
            assert!(both(&all), "both listed: {all}");
        }
    }
    // Thawed, its list is live again.
    common::eventually("the second plane's list to be live", || async {
        let answer = list("&context=second").await;
        (answer.get("stale").is_none() && names(&answer) == ["on-second"]).then_some(())
    })
    .await;

    // The second plane goes away: its list says so and keeps its rows; the first's is live and
    // takes launches.
    second.down();
    let stale = common::eventually("the second plane's list to say it is stale", || async {
        let answer = list("&context=second").await;
        answer.get("stale").is_some().then_some(answer)
    })
    .await;
    assert_eq!(names(&stale), ["on-second"], "the last known rows stay");
    let home = list("").await;
    assert!(home.get("stale").is_none(), "the first plane's list is live: {home}");
    let all = list("&context=*").await;
    assert_eq!(all["total"], 2, "both still listed: {all}");
    assert!(all["contexts"][0].get("stale").is_none(), "{all}");
    assert!(
        all["contexts"][1]["stale"]["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "the second says why it is stale: {all}"
    );
    // How long it has been away grows in /metrics; the first's stays 0.
    let metrics = common::eventually("the second's outage in /metrics", || async {
        let text = http.get(format!("{base}/metrics")).send().await.ok()?.text().await.ok()?;
        let away = text
            .lines()
            .find_map(|l| l.strip_prefix("raydar_context_stale_seconds{context=\"second\"} "))?
            .parse::<f64>()
            .ok()?;
        (away > 0.0).then_some(text)
    })
    .await;
    assert!(metrics.contains("raydar_context_stale_seconds{context=\"first\"} 0\n"), "{metrics}");
    let launched = launch("first", "still-launchable").await.unwrap();
    assert_eq!(launched.status(), 201, "{}", launched.text().await.unwrap());
    assert!(on(&first_admin, "still-launchable").await);
    tear_down("first", "still-launchable").await;

    let _ = server.kill();
    let _ = server.wait();
    drop(second);
}
