//! Shared by the server's black-box tests: raydar-server started in-process on 127.0.0.1:0.
#![allow(dead_code)]

pub mod postgres;
pub mod scratch;

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Client;
use raydar_server::{AppState, Config, Supervisor};
pub use scratch::Scratch;
use serde_json::{json, Value};

/// How long one step of a test may take.
pub const STEP: Duration = Duration::from_secs(90);

/// A running raydar-server; stops when dropped. Tests run it on a multi-thread runtime, as
/// `main` does: Leptos renders pages on spawned tasks.
pub struct Raydar {
    pub base: String,
    /// Where health, readiness and metrics are served alone, with `--metrics-addr`.
    pub ops_base: Option<String>,
    /// Talks to raydar as its pages do: same Origin, the signed-in user's CSRF token.
    pub http: reqwest::Client,
    /// Its handles, as handlers see them.
    pub state: AppState,
    _stop: tokio_util::sync::DropGuard,
    _data: Scratch,
}

/// The dev user test servers act as: the local control plane's `developer`
/// (deploy/local/dev-rbac.yaml), whom raydar impersonates.
pub const DEV_USER: &str = "developer";

/// A kubeconfig whose apiserver is never there.
pub fn unreachable_kubeconfig(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\ncurrent-context: none\n\
         clusters: [{name: none, cluster: {server: \"https://127.0.0.1:1\"}}]\n\
         users: [{name: none, user: {token: none}}]\n\
         contexts: [{name: none, context: {cluster: none, user: none}}]\n",
    )
    .unwrap();
    path
}

/// Starts raydar-server in this process on 127.0.0.1:0 in dev mode as [`DEV_USER`], watching
/// the cluster `client` talks to (`apiserver` names it in messages).
pub async fn start_raydar(client: Client, apiserver: &str) -> Raydar {
    start_raydar_with(client, apiserver, &[]).await
}

/// Starts raydar-server with these command-line flags (and `--addr 127.0.0.1:0`), in dev mode
/// as [`DEV_USER`] unless they say `--auth`. In proxy mode [`Raydar::http`] carries no identity:
/// make clients with [`as_user`].
pub async fn start_raydar_with(client: Client, apiserver: &str, flags: &[&str]) -> Raydar {
    start_raydar_and(client, apiserver, flags, |_| {}).await
}

/// [`start_raydar_with`], after `more` has added its own sources to the supervisor.
pub async fn start_raydar_and(
    client: Client,
    apiserver: &str,
    flags: &[&str],
    more: impl FnOnce(&mut Supervisor),
) -> Raydar {
    let dev: &[&str] =
        if flags.contains(&"--auth") { &[] } else { &["--auth", "dev", "--dev-user", DEV_USER] };
    // Each server keeps its history apart, unless the test says where.
    let scratch = Scratch::new("data");
    let data_dir = scratch.0.to_string_lossy().into_owned();
    let own_data: &[&str] = if flags.contains(&"--data-dir") || flags.contains(&"--database") {
        &[]
    } else {
        &["--data-dir", &data_dir]
    };
    let args = ["--addr", "127.0.0.1:0"]
        .iter()
        .chain(dev)
        .chain(own_data)
        .chain(flags)
        .map(|s| s.to_string());
    let config = Config::from_args(args).unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (state, mut supervisor) =
        raydar_server::start(&config, client, apiserver, shutdown.clone()).unwrap();
    more(&mut supervisor);
    let listener = tokio::net::TcpListener::bind(config.addr).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(raydar_server::run(listener, state.clone(), supervisor, shutdown.clone()));
    let mut ops_base = None;
    if let Some(addr) = config.metrics_addr {
        let ops = tokio::net::TcpListener::bind(addr).await.unwrap();
        ops_base = Some(format!("http://{}", ops.local_addr().unwrap()));
        tokio::spawn(raydar_server::run_ops(ops, state.clone(), shutdown.clone()));
    }
    let http = page_client(&base, &[]).await;
    Raydar { base, ops_base, http, state, _stop: shutdown.drop_guard(), _data: scratch }
}

/// A client that talks to raydar at `base` as its pages do, with `identity` headers (what an
/// authenticating proxy would add; none in dev mode): same Origin, and the CSRF token of the
/// user raydar takes it to be (when it takes it to be anyone).
pub async fn page_client(base: &str, identity: &[(&str, &str)]) -> reqwest::Client {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    let mut headers = HeaderMap::new();
    for (name, value) in identity {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    headers.insert("origin", HeaderValue::from_str(base).unwrap());
    let plain = reqwest::Client::builder()
        .default_headers(headers.clone())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    if let Ok(session) = plain.get(format!("{base}/api/v1/session")).send().await {
        if let Ok(session) = session.json::<Value>().await {
            if let Some(token) = session["csrfToken"].as_str() {
                headers.insert("x-csrf-token", HeaderValue::from_str(token).unwrap());
            }
        }
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// [`page_client`] for a user behind the proxy (oauth2-proxy's default headers).
pub async fn as_user(base: &str, user: &str, groups: &str) -> reqwest::Client {
    page_client(base, &[("x-forwarded-user", user), ("x-forwarded-groups", groups)]).await
}

/// `GET url` as JSON, whatever the status.
pub async fn get_json(http: &reqwest::Client, url: impl reqwest::IntoUrl) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// The row of cluster `name` in an event of the list's push stream, if it shows it: a row
/// changed in place (`upsert`), or in a page sent anew (`snapshot`: how a cluster comes onto it).
#[allow(dead_code)] // not every test binary follows the list
pub fn cluster_row(event: &str, data: &Value, name: &str) -> Option<Value> {
    match event {
        "upsert" => (data["name"] == name).then(|| data.clone()),
        "snapshot" => data["clusters"].as_array()?.iter().find(|c| c["name"] == name).cloned(),
        _ => None,
    }
}

/// Reads server-sent events as (event, data) pairs.
pub fn sse_events(response: reqwest::Response) -> impl futures::Stream<Item = (String, Value)> {
    let mut buffer = String::new();
    response.bytes_stream().flat_map(move |chunk| {
        buffer.push_str(&String::from_utf8_lossy(&chunk.expect("event stream stays open")));
        let mut events = Vec::new();
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().into();
                }
                if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if !name.is_empty() {
                events.push((name, serde_json::from_str(&data).expect("event data is JSON")));
            }
        }
        futures::stream::iter(events)
    })
}

pub async fn wait_ready(http: &reqwest::Client, base: &str) {
    answered(http, &format!("{base}/readyz"), "raydar (RayCluster watch synced)").await;
}

/// Waits (up to [`STEP`]) until `url` answers with a success; `what` names it if it never does.
pub async fn answered(http: &reqwest::Client, url: &str, what: &str) {
    let answers = async {
        while !http.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    if tokio::time::timeout(STEP, answers).await.is_err() {
        panic!("{what} did not answer at {url}");
    }
}

/// The raydar-server binary, to run on 127.0.0.1:`port` in dev mode against an apiserver that is
/// never there (a kubeconfig written into `dir`), its history in `dir/data`, its output
/// discarded: add flags and spawn.
pub fn server_binary(port: u16, dir: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_raydar-server"));
    command
        .args(["--addr", &format!("127.0.0.1:{port}"), "--auth", "dev"])
        .args(["--data-dir", &dir.join("data").to_string_lossy()])
        .env("KUBECONFIG", unreachable_kubeconfig(dir))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command
}

/// A free port on loopback, for a process a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A client of the local control plane the live tests run against (KUBECONFIG).
pub async fn kube_client() -> Client {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "KUBECONFIG must name the local control plane (deploy/local/up.sh prints it); `make test` sets it"
    );
    Client::try_default().await.expect("kubeconfig loads")
}

/// RayClusters (ray.io/v1) of `namespace`, as dynamic objects.
pub fn ray_clusters(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("ray.io", "v1", "RayCluster");
    Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(&gvk))
}

/// Creates namespace `name` unless it exists.
pub async fn ensure_namespace(client: &Client, name: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    match api.create(&kube::api::PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating namespace {name}: {e}"),
    }
}

/// A name no other run uses.
pub fn unique_name(prefix: &str) -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 100_000)
}

/// `$RAYDAR_LOCAL`, default `<repo>/.local`.
pub fn local_dir() -> PathBuf {
    std::env::var_os("RAYDAR_LOCAL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.local"))
}

/// A namespace no other run uses, deleted when dropped (without waiting), even after a panic.
pub struct TestNamespace(pub String);

impl TestNamespace {
    pub async fn create(client: &Client, prefix: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("{prefix}-{}-{}", std::process::id(), nanos % 100_000);
        let namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .expect("namespace created");
        TestNamespace(name)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let kubectl = local_dir().join("bin/kubectl");
        let _ = std::process::Command::new(kubectl)
            .args(["delete", "namespace", &self.0, "--wait=false", "--ignore-not-found"])
            .stdout(std::process::Stdio::null())
            .status();
    }
}

/// A RayCluster of a head only: one real Ray head, nothing more.
pub fn head_only(name: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": name},
        "spec": {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [{
            "name": "ray-head", "image": "rayproject/ray:2.46.0",
            "resources": {"requests": {"cpu": 1, "memory": "2Gi"}, "limits": {"cpu": 1, "memory": "2Gi"}},
            "ports": [{"containerPort": 8265, "name": "dashboard"}]
        }]}}}}
    }))
    .unwrap()
}

/// Polls until `probe` gives something, for at most [`STEP`].
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    tokio::time::timeout(STEP, async {
        loop {
            if let Some(found) = probe().await {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
