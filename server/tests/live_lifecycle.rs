//! Lifecycle on the real plane: a template with a 2-minute lifetime, its cluster warned and then
//! torn down by raydar (as the reclaimer), recorded with the reason; a protected one left alone;
//! an extension past the template's maximum refused; and with two raydars on one PostgreSQL,
//! one acts (the Lease), the other takes over when it goes.

mod common;

use std::time::{Duration, Instant};

use common::postgres::Postgres;
use common::{ensure_namespace, kube_client, start_raydar_with, unique_name, wait_ready, Raydar};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Client;
use serde_json::{json, Value};

const NAMESPACE: &str = "raydar-lifecycle-test";
const TEMPLATE: &str = "lifecycle-test-2m";

/// Waits until this raydar holds the Lease (another test's may hold it until it lapses).
async fn leading(raydar: &Raydar) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !raydar.state.leadership.leading() {
        assert!(Instant::now() < deadline, "never elected within 60 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// cpu-small with a 2-minute lifetime, installed as [`TEMPLATE`].
async fn short_lived_template(client: &Client) {
    let gvk = GroupVersionKind::gvk("raydar.dev", "v1alpha1", "RayClusterTemplate");
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ApiResource::from_gvk(&gvk));
    let mut template = api.get("cpu-small").await.expect("the cpu-small template is installed");
    template.metadata = kube::api::ObjectMeta { name: Some(TEMPLATE.into()), ..Default::default() };
    template.data["spec"]["policy"]["maxLifetime"] = json!("2m");
    match api.create(&PostParams::default(), &template).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating template {TEMPLATE}: {e}"),
    }
}

async fn launch(raydar: &Raydar, name: &str) -> String {
    let answer = raydar
        .http
        .post(format!("{}/api/v1/clusters", raydar.base))
        .json(&json!({"template": TEMPLATE, "namespace": NAMESPACE, "name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201, "{}", answer.text().await.unwrap());
    let url = format!("{}/api/v1/clusters/{NAMESPACE}/{name}", raydar.base);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let row: Value =
            raydar.http.get(&url).send().await.unwrap().json().await.unwrap_or_default();
        if let Some(uid) = row["uid"].as_str().filter(|u| !u.is_empty()) {
            return uid.to_owned();
        }
        assert!(Instant::now() < deadline, "{name} never listed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn change(raydar: &Raydar, name: &str, body: Value) -> (u16, Value) {
    let url = format!("{}/api/v1/clusters/{NAMESPACE}/{name}", raydar.base);
    let answer = raydar.http.patch(url).json(&body).send().await.unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap_or_default())
}

async fn record(raydar: &Raydar, uid: &str) -> Value {
    let url = format!("{}/api/v1/history/clusters/{uid}", raydar.base);
    raydar.http.get(url).send().await.unwrap().json().await.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn an_expired_cluster_is_warned_then_torn_down_unless_protected() {
    let client = kube_client().await;
    ensure_namespace(&client, NAMESPACE).await;
    short_lived_template(&client).await;
    let raydar = start_raydar_with(client.clone(), "local control plane", &[]).await;
    wait_ready(&raydar.http, &raydar.base).await;
    leading(&raydar).await;
    let launched = Instant::now();
    let (doomed, kept) = (unique_name("expiring"), unique_name("protected"));
    let doomed_uid = launch(&raydar, &doomed).await;
    let kept_uid = launch(&raydar, &kept).await;

    // Protecting takes the right to patch, which the developer has; a resume of an expired
    // cluster and an extension past the template's maximum are refused, naming the field.
    assert_eq!(change(&raydar, &kept, json!({"protect": true})).await.0, 200);
    let (status, refused) = change(&raydar, &doomed, json!({"extend": "1h"})).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["errors"][0]["field"], "extend");
    assert!(
        refused["errors"][0]["message"].as_str().unwrap().contains("maximum lifetime of 2m"),
        "{refused}"
    );
    // Ten seconds in, five more fit within the two minutes from now.
    tokio::time::sleep_until((launched + Duration::from_secs(10)).into()).await;
    let (status, answer) = change(&raydar, &doomed, json!({"extend": "5s"})).await;
    assert_eq!(status, 200, "{answer}");

    // Launched with two minutes to live: the 5-minute warning at once, an Event on the cluster.
    let deadline = Instant::now() + Duration::from_secs(60);
    let warning = loop {
        let events = record(&raydar, &doomed_uid).await["events"].clone();
        let found =
            events.as_array().into_iter().flatten().find(|e| e["reason"] == "ExpiresSoon").cloned();
        if let Some(found) = found {
            break found;
        }
        assert!(Instant::now() < deadline, "no ExpiresSoon warning: {events}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(warning["kind"], "Warning");
    assert!(warning["message"].as_str().unwrap().contains("torn down in"), "{warning}");

    // At expiry (2 minutes and the 5 s extension), torn down as the reclaimer, with the reason.
    let deadline = Instant::now() + Duration::from_secs(200);
    let gone = loop {
        let history = record(&raydar, &doomed_uid).await;
        if history["cluster"]["outcome"] == "expired" {
            break history;
        }
        assert!(Instant::now() < deadline, "not torn down at expiry: {}", history["cluster"]);
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let lived = launched.elapsed();
    assert!(
        lived >= Duration::from_secs(125),
        "torn down before its extended end, after {lived:?}"
    );
    assert_eq!(gone["cluster"]["endedBy"], "raydar (expiry)");
    assert!(
        gone["cluster"]["endedWhy"].as_str().unwrap().contains("lifetime ended"),
        "{}",
        gone["cluster"]
    );
    let rayclusters = common::ray_clusters(&client, NAMESPACE);
    assert!(rayclusters.get_opt(&doomed).await.unwrap().is_none(), "the RayCluster is gone");
    // Operators see it in /metrics, by reason: the warning and the act.
    let metrics = raydar.http.get(format!("{}/metrics", raydar.base)).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    for reason in ["ExpiresSoon", "Expired"] {
        let series = format!("raydar_lifecycle_actions_total{{reason=\"{reason}\"}} ");
        assert!(metrics.lines().any(|l| l.starts_with(&series) && !l.ends_with(" 0")), "{metrics}");
    }

    // The protected one, expired as well, is still there.
    let protected =
        rayclusters.get_opt(&kept).await.unwrap().expect("the protected cluster is kept");
    assert_eq!(protected.metadata.uid.as_deref(), Some(kept_uid.as_str()));
    assert_eq!(record(&raydar, &kept_uid).await["cluster"]["outcome"], "live");
    let deleted = raydar
        .http
        .delete(format!("{}/api/v1/clusters/{NAMESPACE}/{kept}", raydar.base))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn two_raydars_on_one_postgres_elect_one_and_the_other_takes_over() {
    let postgres = Postgres::start();
    let client = kube_client().await;
    let url = postgres.url();
    let flags = ["--database", url.as_str()];
    let first = start_raydar_with(client.clone(), "local control plane", &flags).await;
    let second = start_raydar_with(client.clone(), "local control plane", &flags).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let leaders = || [&first, &second].iter().filter(|r| r.state.leadership.leading()).count();
    while leaders() != 1 {
        assert!(Instant::now() < deadline, "no single leader within 60 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // For several seconds, never two.
    for _ in 0..40 {
        assert_eq!(leaders(), 1, "exactly one raydar acts");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), "raydar");
    let holder = leases.get("raydar-lifecycle").await.unwrap().spec.unwrap().holder_identity;
    assert!(
        holder.is_some_and(|h| h.contains(&std::process::id().to_string())),
        "held by this process"
    );

    let (leader, other) =
        if first.state.leadership.leading() { (first, second) } else { (second, first) };
    drop(leader);
    let deadline = Instant::now() + Duration::from_secs(45);
    while !other.state.leadership.leading() {
        assert!(Instant::now() < deadline, "the other raydar did not take over within 45 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn a_lease_left_unrenewed_is_reclaimed_and_a_renewed_one_lives() {
    let client = kube_client().await;
    ensure_namespace(&client, NAMESPACE).await;
    let raydar =
        start_raydar_with(client.clone(), "local control plane", &["--lease-timeout", "15s"]).await;
    wait_ready(&raydar.http, &raydar.base).await;
    leading(&raydar).await;
    let launch = |name: String, lease: bool| {
        let raydar = &raydar;
        async move {
            let answer = raydar
                .http
                .post(format!("{}/api/v1/clusters", raydar.base))
                .json(&json!({"template": "cpu-small", "namespace": NAMESPACE, "name": name,
                    "lease": lease, "pipeline": {"name": "nightly", "run": "r1"}}))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 201, "{}", answer.text().await.unwrap());
        }
    };
    let (abandoned, renewed, unleased) =
        (unique_name("abandoned"), unique_name("renewed"), unique_name("unleased"));
    launch(abandoned.clone(), true).await;
    launch(renewed.clone(), true).await;
    launch(unleased.clone(), false).await;
    let renew = |name: &str| {
        let url = format!("{}/api/v1/clusters/{NAMESPACE}/{name}/lease", raydar.base);
        let http = raydar.http.clone();
        async move {
            let answer = http.post(url).send().await.unwrap();
            (answer.status().as_u16(), answer.json::<Value>().await.unwrap_or_default())
        }
    };
    let (status, body) = renew(&unleased).await;
    assert_eq!(status, 409, "a cluster without a lease has none to renew: {body}");
    let rayclusters = common::ray_clusters(&client, NAMESPACE);
    let abandoned_uid = rayclusters.get(&abandoned).await.unwrap().metadata.uid.unwrap();

    // Renew one every 5 s for 40 s: the other goes after its 15 s.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(40) {
        let (status, body) = renew(&renewed).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["timeout"], 15);
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    assert!(
        rayclusters.get_opt(&abandoned).await.unwrap().is_none(),
        "the abandoned cluster is reclaimed"
    );
    assert!(rayclusters.get_opt(&renewed).await.unwrap().is_some(), "the renewed cluster lives");
    assert!(
        rayclusters.get_opt(&unleased).await.unwrap().is_some(),
        "a cluster without a lease lives"
    );
    let history = record(&raydar, &abandoned_uid).await;
    assert_eq!(history["cluster"]["outcome"], "reclaimed", "{history}");
    assert_eq!(history["cluster"]["endedBy"], "raydar (lease)");
    assert!(history["cluster"]["endedWhy"].as_str().unwrap().contains("lease was last renewed"));
    for name in [&renewed, &unleased] {
        let url = format!("{}/api/v1/clusters/{NAMESPACE}/{name}", raydar.base);
        assert_eq!(raydar.http.delete(url).send().await.unwrap().status(), 200);
    }
}
