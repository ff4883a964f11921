//! Who sees and does what, decided by the real apiserver's RBAC: three people in two teams —
//! alice may launch and tear down in team A's namespace, bob may only read there, mallory (team B)
//! may do nothing in it — through raydar's API, with raydar running as its own ServiceAccount
//! (deploy/kustomize/rbac/cluster-wide: read and impersonate only) behind a proxy on loopback (this test).
//! And a pipeline, which is its ServiceAccount: it sends that account's token, the apiserver says
//! whose it is, and RBAC decides as for a person.
//!
//! Needs the local control plane (`make test` starts it and runs these).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{
    as_user, kube_client, ray_clusters, sse_events, start_raydar_with, wait_ready, Raydar, STEP,
};
use futures::StreamExt;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Event, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::Client;
use serde_json::{json, Value};

/// raydar-server's own identity on the local control plane (deploy/local/up.sh writes it).
async fn raydar_client() -> Client {
    let local =
        std::env::var_os("RAYDAR_LOCAL").map(PathBuf::from).expect("RAYDAR_LOCAL is set by make");
    let kubeconfig = kube::config::Kubeconfig::read_from(local.join("kubeconfig-raydar"))
        .expect("kubeconfig-raydar");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("its config");
    Client::try_from(config).unwrap()
}

/// Two namespaces, RBAC for alice and bob in the first, a cluster in each; all deleted on drop.
struct Teams {
    admin: Client,
    a: String,
    b: String,
}

impl Teams {
    async fn create(admin: &Client) -> Teams {
        // One pair per test: a namespace being deleted by the last test cannot be made again yet.
        static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let made = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}-{made}", std::process::id());
        let teams =
            Teams { admin: admin.clone(), a: format!("sec-a-{id}"), b: format!("sec-b-{id}") };
        let namespaces: Api<Namespace> = Api::all(admin.clone());
        for ns in [&teams.a, &teams.b] {
            namespaces
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
                )
                .await
                .unwrap();
        }
        let roles: Api<Role> = Api::namespaced(admin.clone(), &teams.a);
        let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), &teams.a);
        let read = ["get", "list", "watch"];
        let role = |name: &str, cluster_verbs: &[&str]| {
            json!({
                "metadata": {"name": name},
                "rules": [
                    {"apiGroups": ["ray.io"], "resources": ["rayclusters"], "verbs": cluster_verbs},
                    {"apiGroups": [""], "resources": ["pods", "events"], "verbs": read},
                    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}
                ]
            })
        };
        let all = ["get", "list", "watch", "create", "patch", "update", "delete"];
        for (name, verbs, user) in [("editor", &all[..], "alice"), ("viewer", &read[..], "bob")] {
            roles
                .create(&PostParams::default(), &serde_json::from_value(role(name, verbs)).unwrap())
                .await
                .unwrap();
            let binding = json!({
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
            });
            bindings
                .create(&PostParams::default(), &serde_json::from_value(binding).unwrap())
                .await
                .unwrap();
        }
        for ns in [&teams.a, &teams.b] {
            let cluster = json!({
                "apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "demo"},
                "spec": {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [
                    {"name": "ray-head", "image": "rayproject/ray:2.46.0"}]}}}}
            });
            ray_clusters(admin, ns)
                .create(&PostParams::default(), &serde_json::from_value(cluster).unwrap())
                .await
                .unwrap();
        }
        teams
    }
}

impl Drop for Teams {
    fn drop(&mut self) {
        let (admin, names) = (self.admin.clone(), [self.a.clone(), self.b.clone()]);
        // Deleting a namespace deletes what is in it; the test does not wait for it to finish.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async move {
                let namespaces: Api<Namespace> = Api::all(admin);
                for ns in names {
                    let _ = namespaces.delete(&ns, &DeleteParams::background()).await;
                }
            })
        })
        .join();
    }
}

async fn behind_proxy() -> Raydar {
    let raydar = start_raydar_with(
        raydar_client().await,
        "local control plane",
        &["--auth", "proxy", "--trusted-proxies", "127.0.0.1/32"],
    )
    .await;
    wait_ready(&reqwest::Client::new(), &raydar.base).await;
    raydar
}

/// `GET path` as `who`: status and JSON body.
async fn get(who: &reqwest::Client, url: String) -> (u16, Value) {
    let answer = who.get(url).send().await.unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap_or(Value::Null))
}

/// The names (namespace/name) of the clusters `who` is shown, once `want` is among them or the
/// step's time is up (the watch may not have seen the new clusters yet).
async fn listed(who: &reqwest::Client, base: &str, want: &str) -> Vec<(String, bool)> {
    let mut last = Vec::new();
    let _ = tokio::time::timeout(STEP, async {
        loop {
            let (_, body) = get(who, format!("{base}/api/v1/clusters")).await;
            last = body["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|c| {
                            (
                                format!(
                                    "{}/{}",
                                    c["namespace"].as_str().unwrap(),
                                    c["name"].as_str().unwrap()
                                ),
                                c["mayDelete"] == true,
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            if last.iter().any(|(id, _)| id == want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn each_person_sees_and_does_exactly_what_rbac_allows() {
    let admin = kube_client().await;
    let teams = Teams::create(&admin).await;
    let (a, b) = (teams.a.clone(), teams.b.clone());
    let raydar = behind_proxy().await;
    let base = raydar.base.clone();
    let alice = as_user(&base, "alice", "team-a").await;
    let bob = as_user(&base, "bob", "team-a").await;
    let mallory = as_user(&base, "mallory", "team-b").await;

    // The list: alice and bob see team A's cluster (only alice may tear it down); nobody here sees
    // team B's; mallory sees nothing of team A.
    let seen = listed(&alice, &base, &format!("{a}/demo")).await;
    assert!(seen.contains(&(format!("{a}/demo"), true)), "{seen:?}");
    assert!(!seen.iter().any(|(id, _)| id.starts_with(&b)), "{seen:?}");
    let seen = listed(&bob, &base, &format!("{a}/demo")).await;
    assert!(seen.contains(&(format!("{a}/demo"), false)), "{seen:?}");
    let (status, body) = get(&mallory, format!("{base}/api/v1/clusters")).await;
    assert_eq!(status, 200);
    assert!(!body.to_string().contains(&a), "{body}");

    // One cluster and everything under it.
    let cluster = format!("{base}/api/v1/clusters/{a}/demo");
    for path in [
        "",
        "/overview",
        "/pods/demo-head-x/logs",
        "/jobs/raysubmit_1/logs/stream",
        "/ray/api/version",
    ] {
        let (status, body) = get(&mallory, format!("{cluster}{path}")).await;
        assert_eq!(status, 403, "mallory GET {path}: {body}");
        assert!(body["error"].as_str().unwrap().contains("mallory may not read"), "{body}");
    }
    assert_eq!(get(&bob, cluster.clone()).await.0, 200);
    assert_eq!(get(&bob, format!("{cluster}/overview")).await.0, 200);
    assert_eq!(get(&alice, format!("{base}/api/v1/clusters/{b}/demo")).await.0, 403);

    // The push stream: bob's snapshot holds team A's cluster and not team B's.
    let stream = reqwest::Client::new()
        .get(format!("{base}/api/v1/clusters/events"))
        .header("x-forwarded-user", "bob")
        .header("x-forwarded-groups", "team-a")
        .send()
        .await
        .unwrap();
    let mut events = Box::pin(sse_events(stream));
    let (name, snapshot) = tokio::time::timeout(STEP, events.next()).await.unwrap().unwrap();
    assert_eq!(name, "snapshot");
    let ids: Vec<String> = snapshot["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{}/{}", c["namespace"].as_str().unwrap(), c["name"].as_str().unwrap()))
        .collect();
    assert!(
        ids.contains(&format!("{a}/demo")) && !ids.iter().any(|id| id.starts_with(&b)),
        "{ids:?}"
    );

    // bob may not tear it down: Kubernetes says so, in its words, and the cluster stays.
    let refused = bob.delete(&cluster).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let why: Value = refused.json().await.unwrap();
    assert!(
        why["error"]
            .as_str()
            .unwrap()
            .contains(r#"User "bob" cannot delete resource "rayclusters""#),
        "{why}"
    );
    assert!(ray_clusters(&admin, &a).get_opt("demo").await.unwrap().is_some());
    let scale = bob.patch(&cluster).json(&json!({"suspend": true})).send().await.unwrap();
    assert_eq!(scale.status(), 403);

    // mallory may not launch into team A, even naming someone else in Impersonate headers.
    let launch =
        json!({"template": "cpu-small", "namespace": a, "name": "mallorys", "parameters": {}});
    let forged = mallory
        .post(format!("{base}/api/v1/clusters"))
        .header("impersonate-user", "alice")
        .header("impersonate-group", "system:masters")
        .json(&launch)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let why: Value = forged.json().await.unwrap();
    assert!(
        why["error"].as_str().unwrap().contains(r#"User "mallory""#),
        "refused as mallory: {why}"
    );
    assert!(ray_clusters(&admin, &a).get_opt("mallorys").await.unwrap().is_none());

    // raydar's own identity cannot launch either: only as a permitted person.
    let own = ray_clusters(&raydar_client().await, &a)
        .create(&PostParams::default(), &serde_json::from_value(json!({"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "byraydar"}, "spec": {}})).unwrap())
        .await;
    assert!(matches!(own, Err(kube::Error::Api(ref s)) if s.code == 403), "{own:?}");

    // alice launches: the cluster is hers (owner label), made as her, and the Event says so.
    let made = alice
        .post(format!("{base}/api/v1/clusters"))
        .json(&json!({"template": "cpu-small", "namespace": a, "name": "alices", "parameters": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201, "{}", made.text().await.unwrap());
    let stored = ray_clusters(&admin, &a).get("alices").await.unwrap();
    let labels = stored.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("raydar.dev/owner").map(String::as_str), Some("alice"));
    assert_eq!(labels.get("raydar.dev/team").map(String::as_str), Some("team-a"));
    let managed = stored.metadata.managed_fields.clone().unwrap_or_default();
    assert!(
        managed.iter().any(|m| m.manager.as_deref() == Some("raydar")),
        "applied with raydar's field manager"
    );
    let events: Api<Event> = Api::namespaced(admin.clone(), &a);
    let recorded = tokio::time::timeout(STEP, async {
        loop {
            let list = events
                .list(&ListParams::default().fields("involvedObject.name=alices"))
                .await
                .unwrap();
            if let Some(e) =
                list.items.into_iter().find(|e| e.reason.as_deref() == Some("Launched"))
            {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("an audit Event on the cluster");
    assert!(recorded.message.unwrap().starts_with("alice launched it from template cpu-small"));
    assert_eq!(recorded.involved_object.uid, stored.metadata.uid);

    // and tears it down.
    let gone = alice.delete(format!("{base}/api/v1/clusters/{a}/alices")).send().await.unwrap();
    assert_eq!(gone.status(), 200);
    drop(teams);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn proxy_groups_reach_rbac_behind_their_prefix_and_system_masters_reaches_nothing() {
    let admin = kube_client().await;
    let teams = Teams::create(&admin).await;
    let a = teams.a.clone();
    // team A's viewers, as RBAC names the sign-in provider's group: behind the prefix.
    let binding = json!({
        "metadata": {"name": "readers"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "viewer"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "oidc:readers"}]
    });
    Api::<RoleBinding>::namespaced(admin.clone(), &a)
        .create(&PostParams::default(), &serde_json::from_value(binding).unwrap())
        .await
        .unwrap();
    let raydar = start_raydar_with(
        raydar_client().await,
        "local control plane",
        &["--auth", "proxy", "--trusted-proxies", "127.0.0.1/32", "--proxy-groups-prefix", "oidc:"],
    )
    .await;
    wait_ready(&reqwest::Client::new(), &raydar.base).await;
    let base = raydar.base.clone();
    let demo = format!("{a}/demo");

    let carol = as_user(&base, "carol", "readers").await;
    assert!(listed(&carol, &base, &demo).await.contains(&(demo.clone(), false)));
    // Sending the prefixed name does not help: it is prefixed again.
    let dave = reqwest::Client::new();
    let (status, body) = get_as(&dave, &base, "dave", "oidc:readers").await;
    assert_eq!(status, 200);
    assert!(!body.to_string().contains(&a), "{body}");

    // A proxy that names system:masters (which the apiserver would let do anything) gets nothing,
    // and deletes nothing.
    let (status, body) = get_as(&dave, &base, "mallory", "system:masters").await;
    assert_eq!(status, 403, "{body}");
    let delete = dave
        .delete(format!("{base}/api/v1/clusters/{demo}"))
        .header("x-forwarded-user", "mallory")
        .header("x-forwarded-groups", "system:masters")
        .header("origin", &base)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 403);
    assert!(ray_clusters(&admin, &a).get_opt("demo").await.unwrap().is_some());
    drop(teams);
}

/// The cluster list as `user` in `groups`, as the proxy would send them.
async fn get_as(http: &reqwest::Client, base: &str, user: &str, groups: &str) -> (u16, Value) {
    let answer = http
        .get(format!("{base}/api/v1/clusters"))
        .header("x-forwarded-user", user)
        .header("x-forwarded-groups", groups)
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap_or(Value::Null))
}

/// A client that sends `token` as its bearer token, and nothing a browser would (no Origin, no
/// CSRF token, no proxy headers).
/// A token of ServiceAccount `name`, valid 10 minutes (TokenRequest, as a projected token is).
async fn token_of(accounts: &Api<ServiceAccount>, name: &str) -> String {
    let request = TokenRequest {
        spec: TokenRequestSpec { expiration_seconds: Some(600), ..Default::default() },
        ..Default::default()
    };
    let made = accounts.create_token_request(name, &PostParams::default(), &request).await;
    made.unwrap().status.unwrap().token
}

fn with_token(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let bearer = format!("Bearer {token}");
    headers.insert(reqwest::header::AUTHORIZATION, bearer.parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn a_pipeline_is_its_service_account_by_its_token_and_rbac_decides() {
    let admin = kube_client().await;
    let teams = Teams::create(&admin).await;
    let (a, b) = (teams.a.clone(), teams.b.clone());
    // Team A's pipeline: a ServiceAccount bound to team A's editor role, and its token.
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), &a);
    let account = serde_json::from_value(json!({"metadata": {"name": "pipeline"}})).unwrap();
    accounts.create(&PostParams::default(), &account).await.unwrap();
    let binding = json!({
        "metadata": {"name": "pipeline"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "editor"},
        "subjects": [{"kind": "ServiceAccount", "name": "pipeline", "namespace": a}]
    });
    Api::<RoleBinding>::namespaced(admin.clone(), &a)
        .create(&PostParams::default(), &serde_json::from_value(binding).unwrap())
        .await
        .unwrap();
    let token = token_of(&accounts, "pipeline").await;
    let raydar = behind_proxy().await;
    let base = raydar.base.clone();
    let pipeline = with_token(&token);
    let who = format!("system:serviceaccount:{a}:pipeline");

    // It sees what its RBAC lets it read, and is named as the apiserver named it.
    let seen = listed(&pipeline, &base, &format!("{a}/demo")).await;
    assert!(seen.contains(&(format!("{a}/demo"), true)), "{seen:?}");
    assert!(!seen.iter().any(|(id, _)| id.starts_with(&b)), "{seen:?}");
    let (status, session) = get(&pipeline, format!("{base}/api/v1/session")).await;
    assert_eq!((status, session["user"].as_str()), (200, Some(who.as_str())), "{session}");

    // Where it may not launch, Kubernetes says so in its words, naming the ServiceAccount; no
    // CSRF token was needed to get that far, and nothing is made.
    let launch = |ns: &str, name: &str| json!({"template": "cpu-small", "namespace": ns, "name": name, "parameters": {}});
    let refused =
        pipeline.post(format!("{base}/api/v1/clusters")).json(&launch(&b, "nightly")).send();
    let refused = refused.await.unwrap();
    assert_eq!(refused.status(), 403);
    let why: Value = refused.json().await.unwrap();
    assert!(why["error"].as_str().unwrap().contains(&format!(r#"User "{who}""#)), "{why}");
    assert!(ray_clusters(&admin, &b).get_opt("nightly").await.unwrap().is_none());

    // Where it may, it launches as itself (the audit and the owner label name it) and tears down.
    let made = pipeline.post(format!("{base}/api/v1/clusters")).json(&launch(&a, "nightly"));
    let made = made.send().await.unwrap();
    assert_eq!(made.status(), 201, "{}", made.text().await.unwrap());
    let stored = ray_clusters(&admin, &a).get("nightly").await.unwrap();
    let owner = stored.metadata.labels.unwrap_or_default().get("raydar.dev/owner").cloned();
    assert!(owner.is_some_and(|o| o.contains("pipeline")), "owner label from the ServiceAccount");
    let gone = pipeline.delete(format!("{base}/api/v1/clusters/{a}/nightly")).send().await;
    assert_eq!(gone.unwrap().status(), 200);

    // A token the apiserver does not accept reaches nothing: 401, whatever else the request
    // says (here, proxy headers from a peer that is not the proxy would be ignored anyway).
    for garbage in [with_token("not-a-token"), with_token(&format!("{token}x"))] {
        let (status, body) = get(&garbage, format!("{base}/api/v1/clusters")).await;
        assert_eq!(status, 401, "{body}");
        assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
        let write = garbage.post(format!("{base}/api/v1/clusters")).json(&launch(&a, "garbage"));
        assert_eq!(write.send().await.unwrap().status(), 401);
    }
    let malformed = reqwest::Client::new()
        .get(format!("{base}/api/v1/clusters"))
        .header("authorization", "Basic YWxpY2U6c2VjcmV0")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 401);
    drop(teams);
}

/// raydar's own identity as a namespaced install has it (deploy/kustomize/rbac/namespaced): a
/// ServiceAccount with the shipped Role in one namespace and the identity, election and GPU
/// metrics bindings every install has; the bindings outside that namespace removed on drop.
struct NamespacedIdentity {
    admin: Client,
    name: String,
    token: String,
}

impl NamespacedIdentity {
    async fn create(admin: &Client, namespace: &str) -> NamespacedIdentity {
        let name = format!("ns-raydar-{}", std::process::id());
        let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
        let account = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        accounts.create(&PostParams::default(), &account).await.unwrap();
        // The Role exactly as shipped.
        let reads = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/kustomize/rbac/namespaced/team/reads.yaml");
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(&std::fs::read_to_string(reads).unwrap()).unwrap();
        let role = docs.into_iter().find(|d| d["kind"] == "Role").expect("a Role");
        Api::<Role>::namespaced(admin.clone(), namespace)
            .create(&PostParams::default(), &serde_json::from_value(role).unwrap())
            .await
            .unwrap();
        let subject = json!([{"kind": "ServiceAccount", "name": name, "namespace": namespace}]);
        let bind = |kind: &str, role: &str| {
            json!({
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
                "subjects": subject
            })
        };
        for (ns, role) in [
            (namespace, "raydar"),
            ("raydar", "raydar-election"),
            ("gpu-operator", "raydar-gpu-metrics"),
        ] {
            Api::<RoleBinding>::namespaced(admin.clone(), ns)
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(bind("Role", role)).unwrap(),
                )
                .await
                .unwrap();
        }
        Api::<ClusterRoleBinding>::all(admin.clone())
            .create(
                &PostParams::default(),
                &serde_json::from_value(bind("ClusterRole", "raydar-identity")).unwrap(),
            )
            .await
            .unwrap();
        let token = token_of(&accounts, &name).await;
        NamespacedIdentity { admin: admin.clone(), name, token }
    }

    /// A client of the local control plane that is this ServiceAccount.
    async fn client(&self) -> Client {
        let mut config = kube::Config::infer().await.unwrap();
        config.auth_info = serde_json::from_value(json!({"token": self.token})).unwrap();
        Client::try_from(config).unwrap()
    }
}

impl Drop for NamespacedIdentity {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async move {
                let dp = DeleteParams::default();
                let _ = Api::<ClusterRoleBinding>::all(admin.clone()).delete(&name, &dp).await;
                for ns in ["raydar", "gpu-operator"] {
                    let _ =
                        Api::<RoleBinding>::namespaced(admin.clone(), ns).delete(&name, &dp).await;
                }
            })
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn a_namespaced_install_watches_and_launches_only_in_its_namespaces() {
    let admin = kube_client().await;
    let teams = Teams::create(&admin).await;
    let (a, b) = (teams.a.clone(), teams.b.clone());
    let identity = NamespacedIdentity::create(&admin, &a).await;
    let flags = ["--auth", "proxy", "--trusted-proxies", "127.0.0.1/32", "--namespaces", &a];
    let raydar = start_raydar_with(identity.client().await, "local control plane", &flags).await;
    // Ready: every watch it needs was allowed by the namespaced RBAC alone (a list in every
    // namespace would be refused).
    wait_ready(&reqwest::Client::new(), &raydar.base).await;
    let base = raydar.base.clone();
    let developer = as_user(&base, "developer", "dev").await;

    // developer may read every namespace; this raydar shows team A's only.
    let seen = listed(&developer, &base, &format!("{a}/demo")).await;
    assert!(seen.iter().any(|(id, _)| id == &format!("{a}/demo")), "{seen:?}");
    assert!(!seen.iter().any(|(id, _)| id.starts_with(&b)), "{seen:?}");
    let (status, _) = get(&developer, format!("{base}/api/v1/clusters/{b}/demo")).await;
    assert_eq!(status, 404, "a cluster outside its namespaces is not known");

    // A launch elsewhere is refused naming the field and what is allowed; nothing is made.
    let launch = |ns: &str| json!({"template": "cpu-small", "namespace": ns, "name": "scoped", "parameters": {}});
    let refused = developer.post(format!("{base}/api/v1/clusters")).json(&launch(&b)).send();
    let refused = refused.await.unwrap();
    assert_eq!(refused.status(), 422);
    let why: Value = refused.json().await.unwrap();
    let field = &why["errors"][0];
    assert_eq!(field["field"], "namespace", "{why}");
    assert!(
        field["message"].as_str().unwrap().contains(&format!("only the namespaces {a}")),
        "{why}"
    );
    assert!(ray_clusters(&admin, &b).get_opt("scoped").await.unwrap().is_none());

    // In its namespace the preview works; capacity says why it cannot be judged (no Nodes read).
    let preview = developer.post(format!("{base}/api/v1/clusters?dryRun=true")).json(&launch(&a));
    let preview: Value = preview.send().await.unwrap().json().await.unwrap();
    assert_eq!(preview["capacity"]["verdict"], "unknown", "{preview}");
    assert!(preview["capacity"].to_string().contains("--namespaces"), "{preview}");
}
