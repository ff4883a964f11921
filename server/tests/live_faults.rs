//! Faults of a real control plane as raydar lives through them: its apiserver killed and started
//! again with etcd compacted meanwhile. raydar must keep showing the last known clusters, marked
//! stale with the reason, say so on `/readyz` and to open pages, and be right and live again
//! within seconds of the apiserver's return.
//!
//! The apiserver killed is a second kube-apiserver of the local control plane (the same binary
//! and flags, on the same etcd, on a port of its own): killing the plane's own would take the
//! KubeRay operator, the controller-manager and every other test down with it. Needs `KUBECONFIG`
//! and `RAYDAR_LOCAL` naming that control plane; `make test` starts it and runs these.

use std::path::PathBuf;
use std::time::{Duration, Instant};

mod common;

use common::{ensure_namespace, kube_client, ray_clusters, sse_events, start_raydar, STEP};
use futures::{Stream, StreamExt};
use kube::api::{DeleteParams, DynamicObject, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use serde_json::{json, Value};

/// Namespace of these tests.
const NAMESPACE: &str = "raydar-faults";

/// A kube-apiserver of the local control plane's own, started and killed by the test.
struct SpareApiserver {
    /// The plane's apiserver's command line, on another port.
    command: Vec<String>,
    url: String,
    log: PathBuf,
    process: Option<std::process::Child>,
}

impl SpareApiserver {
    /// The plane's apiserver's binary and flags (read from the running process), on a free port.
    fn like_the_planes() -> Self {
        let local =
            PathBuf::from(std::env::var("RAYDAR_LOCAL").expect("RAYDAR_LOCAL names the plane"));
        let state = local.join("state");
        let pid = std::fs::read_to_string(state.join("pids/kube-apiserver.pid"))
            .expect("the local control plane's apiserver runs");
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).unwrap();
        let mut command: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert!(command[0].ends_with("kube-apiserver"), "not an apiserver: {command:?}");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        for arg in &mut command {
            if arg.starts_with("--secure-port=") {
                *arg = format!("--secure-port={port}");
            }
        }
        SpareApiserver {
            command,
            url: format!("https://127.0.0.1:{port}"),
            log: state.join("logs/spare-kube-apiserver.log"),
            process: None,
        }
    }

    /// The etcd it stores in.
    fn etcd(&self) -> String {
        let arg = self.command.iter().find_map(|a| a.strip_prefix("--etcd-servers="));
        arg.expect("--etcd-servers").split(',').next().unwrap().to_owned()
    }

    /// Starts it and waits until it serves RayClusters; when, as the test saw it.
    async fn start(&mut self, admin: &Client) -> Instant {
        let log = std::fs::File::options().create(true).append(true).open(&self.log).unwrap();
        let process = std::process::Command::new(&self.command[0])
            .args(&self.command[1..])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the spare apiserver starts");
        self.process = Some(process);
        let ready = tokio::time::timeout(STEP, async {
            loop {
                // Ready, and serving RayClusters from its cache as raydar lists them: a
                // restarted apiserver says ready seconds before that cache is filled.
                let probe = axum::http::Request::get("/readyz").body(Vec::new()).unwrap();
                let clusters = ray_clusters(admin, NAMESPACE);
                if admin.request_text(probe).await.is_ok_and(|r| r.trim() == "ok")
                    && clusters.list(&ListParams::default().match_any().limit(1)).await.is_ok()
                {
                    return Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        ready
            .await
            .unwrap_or_else(|_| panic!("spare apiserver ready (log: {})", self.log.display()))
    }

    /// SIGKILL, as a crashed or OOM-killed apiserver goes.
    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().unwrap();
            process.wait().unwrap();
        }
    }

    /// A client of this apiserver with the plane's admin credentials.
    async fn client(&self) -> Client {
        let path = std::env::var("KUBECONFIG").expect("KUBECONFIG names the plane");
        let kubeconfig = Kubeconfig::read_from(path).unwrap();
        let mut config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .unwrap();
        config.cluster_url = self.url.parse().unwrap();
        Client::try_from(config).unwrap()
    }
}

impl Drop for SpareApiserver {
    /// A failed test stops it too.
    fn drop(&mut self) {
        self.kill();
    }
}

/// Compacts etcd's history up to now, as etcd does on its own every few minutes: a watch that
/// resumes from before this point gets 410 Gone. Through etcd's JSON gateway.
async fn compact(etcd: &str) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    // Any read answers with the store's current revision.
    let read: Value = http
        .post(format!("{etcd}/v3/kv/range"))
        .json(&json!({"key": "Lw==", "limit": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let revision = read["header"]["revision"].as_str().expect("etcd's revision").to_owned();
    let compacted = http
        .post(format!("{etcd}/v3/kv/compaction"))
        .json(&json!({"revision": revision, "physical": true}))
        .send()
        .await
        .unwrap();
    assert!(
        compacted.status().is_success(),
        "etcd compaction: {}",
        compacted.text().await.unwrap()
    );
}

/// A suspended cluster: KubeRay makes no pods for it, and raydar lists it all the same.
fn suspended_cluster(name: &str) -> DynamicObject {
    let container = json!({"name": "ray-head", "image": "rayproject/ray:2.46.0"});
    serde_json::from_value(json!({
        "apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"suspend": true,
            "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [container]}}}}
    }))
    .unwrap()
}

/// The names in a list of clusters (`items` of the API, `clusters` of a snapshot) in
/// [`NAMESPACE`].
fn names(clusters: &Value) -> Vec<String> {
    let mut names: Vec<String> = clusters
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["namespace"] == NAMESPACE)
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// The next event of `events` that `wanted` accepts.
async fn next_event(
    events: &mut (impl Stream<Item = (String, Value)> + Unpin),
    what: &str,
    wanted: impl Fn(&str, &Value) -> bool,
) -> Value {
    let found = tokio::time::timeout(STEP, async {
        while let Some((name, data)) = events.next().await {
            if wanted(&name, &data) {
                return data;
            }
        }
        panic!("the event stream ended before {what}");
    });
    found.await.unwrap_or_else(|_| panic!("no {what} within {STEP:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn an_apiserver_restart_with_etcd_compacted_leaves_the_list_stale_then_right_and_live() {
    let admin = kube_client().await;
    ensure_namespace(&admin, NAMESPACE).await;
    let api = ray_clusters(&admin, NAMESPACE);
    // What a failed run left behind.
    api.delete_collection(&DeleteParams::default(), &Default::default()).await.unwrap();
    let run = std::process::id();
    let [kept, doomed, born, late] =
        ["kept", "doomed", "born", "late"].map(|n| format!("{n}-{run}"));
    let mut spare = SpareApiserver::like_the_planes();
    let spare_client = spare.client().await;
    spare.start(&spare_client).await;

    let raydar = start_raydar(spare_client.clone(), "spare apiserver").await;
    let (http, base) = (raydar.http.clone(), raydar.base.clone());
    common::wait_ready(&http, &base).await;
    for name in [&kept, &doomed] {
        api.create(&PostParams::default(), &suspended_cluster(name)).await.unwrap();
    }
    let list_url = format!("{base}/api/v1/clusters?namespace={NAMESPACE}");
    tokio::time::timeout(STEP, async {
        while names(&common::get_json(&http, &list_url).await["items"])
            != [doomed.clone(), kept.clone()]
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("raydar lists both clusters");
    // The cluster's page was open too (so raydar knows this user may read it).
    let overview_url = format!("{base}/api/v1/clusters/{NAMESPACE}/{kept}/overview");
    let overview = common::get_json(&http, &overview_url).await;
    assert!(overview["pods"].is_array() && overview.get("stale").is_none(), "{overview}");
    let stream = http
        .get(format!("{base}/api/v1/clusters/events?namespace={NAMESPACE}"))
        .send()
        .await
        .unwrap();
    let mut events = Box::pin(sse_events(stream));
    let (first, _) = events.next().await.unwrap();
    assert_eq!(first, "snapshot");

    // The apiserver dies: the page is told, the list stays, marked stale with the reason.
    spare.kill();
    let stale = next_event(&mut events, "a stale snapshot", |e, d| {
        e == "snapshot" && d.get("staleReason").is_some()
    })
    .await;
    let reason = stale["staleReason"].as_str().unwrap().to_owned();
    assert!(reason.contains("cannot reach") && reason.contains("spare apiserver"), "{stale}");
    assert_eq!(
        names(&stale["clusters"]),
        [doomed.clone(), kept.clone()],
        "the list stays: {stale}"
    );
    let list: Value = http.get(&list_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        names(&list["items"]),
        [doomed.clone(), kept.clone()],
        "the last known list stays: {list}"
    );
    // The same outage (the reason may say more by now: the watch keeps trying).
    let outage = |v: &Value| {
        v["since"] == stale["staleSince"]
            && v["reason"].as_str().is_some_and(|r| r.contains("cannot reach"))
    };
    assert!(outage(&list["stale"]), "the API marks it stale as the page was told: {list}");
    // `/readyz` names each watch that is down, the Ray pod watch too once it has noticed.
    let said = tokio::time::timeout(STEP, async {
        loop {
            let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
            assert_eq!(ready.status(), 503);
            let said = ready.text().await.unwrap();
            assert!(
                said.contains("RayCluster watch not answered for") && said.contains("cannot reach"),
                "{said}"
            );
            if said.contains("Ray pod watch not answered for") {
                break said;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("/readyz names the Ray pod watch");
    println!("faults: /readyz said: {}", said.trim());
    // The page as a browser first gets it: the rows, the note, no "No Ray clusters yet".
    let page = http.get(&base).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains(&format!("data-cluster=\"{NAMESPACE}/{kept}\"")),
        "rows stay on the page"
    );
    assert!(page.contains("Not updated for") && !page.contains("No Ray clusters yet"));
    assert!(page.contains("data-stream=\"stale\""), "the page says stale, not live");
    let overview = common::get_json(&http, &overview_url).await;
    assert!(outage(&overview["stale"]), "the cluster's page too: {overview}");

    // Meanwhile one cluster goes, another comes, and etcd forgets the history in between.
    api.delete(&doomed, &DeleteParams::default()).await.unwrap();
    api.create(&PostParams::default(), &suspended_cluster(&born)).await.unwrap();
    tokio::time::timeout(STEP, async {
        while api.get_opt(&doomed).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the doomed cluster is deleted");
    compact(&spare.etcd()).await;

    // The apiserver is back: the list is right and live again within 5 s.
    let started = Instant::now();
    let (back, (fresh, live)) = tokio::join!(spare.start(&spare_client), async {
        let fresh = next_event(&mut events, "a fresh snapshot", |e, d| {
            e == "snapshot" && d.get("staleSince").is_none()
        })
        .await;
        (fresh, Instant::now())
    });
    let recovered = live.saturating_duration_since(back);
    assert_eq!(
        names(&fresh["clusters"]),
        [born.clone(), kept.clone()],
        "deleted and created in the gap: {fresh}"
    );
    assert!(recovered < Duration::from_secs(5), "live again {recovered:?} after the apiserver");
    let list: Value = http.get(&list_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (names(&list["items"]), list.get("stale")),
        (vec![born.clone(), kept.clone()], None)
    );
    common::wait_ready(&http, &base).await;

    // And it follows again: a cluster made now shows as it comes.
    let made = Instant::now();
    api.create(&PostParams::default(), &suspended_cluster(&late)).await.unwrap();
    next_event(&mut events, "the new cluster", |e, d| common::cluster_row(e, d, &late).is_some())
        .await;
    let shown = made.elapsed();
    assert!(shown < Duration::from_secs(5), "a cluster made after the restart showed in {shown:?}");
    println!(
        "faults: apiserver serving RayClusters {:?} after its start, raydar live {recovered:?} \
         after that (at most 5 s); \
         a cluster made after the restart shown in {shown:?}",
        back - started,
    );

    for name in [&kept, &born, &late] {
        let _ = api.delete(name, &DeleteParams::default()).await;
    }
    spare.kill();
}
