//! raydar's front door, without a Kubernetes behind it (what is checked here is decided before
//! any Kubernetes call): no identity, no answer but health; identity headers count only from the
//! trusted proxy; writes need the page's origin and CSRF token; bodies and actions are limited;
//! every answer carries the security headers, and pages a script policy with their nonce.
//! What users may see and do in Kubernetes is tests/live_security.rs.

mod common;

use std::time::Duration;

use common::{as_user, start_raydar_with, Raydar};
use serde_json::json;

/// raydar behind a proxy on loopback (this test is the proxy), with no reachable apiserver.
async fn behind_proxy(extra: &[&str]) -> Raydar {
    let unreachable =
        kube::Client::try_from(kube::Config::new("https://127.0.0.1:1".parse().unwrap())).unwrap();
    let flags: Vec<&str> = ["--auth", "proxy", "--trusted-proxies", "127.0.0.1/32"]
        .iter()
        .chain(extra)
        .copied()
        .collect();
    start_raydar_with(unreachable, "https://127.0.0.1:1", &flags).await
}

fn plain() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_identity_only_health_answers() {
    let raydar = behind_proxy(&[]).await;
    let http = plain();
    for path in ["/healthz", "/readyz"] {
        let status =
            http.get(format!("{}{path}", raydar.base)).send().await.unwrap().status().as_u16();
        assert_ne!(status, 401, "{path} is for probes");
    }
    let routes = [
        ("GET", "/"),
        ("GET", "/launch"),
        ("GET", "/clusters/team-a/demo"),
        ("GET", "/clusters/team-a/demo/jobs/raysubmit_1"),
        ("GET", "/api/v1/clusters"),
        ("POST", "/api/v1/clusters"),
        ("GET", "/api/v1/clusters/events"),
        ("GET", "/api/v1/clusters/team-a/demo"),
        ("DELETE", "/api/v1/clusters/team-a/demo"),
        ("PATCH", "/api/v1/clusters/team-a/demo"),
        ("GET", "/api/v1/clusters/team-a/demo/overview"),
        ("GET", "/api/v1/clusters/team-a/demo/ray/api/version"),
        ("GET", "/api/v1/clusters/team-a/demo/jobs/raysubmit_1/logs/stream"),
        ("GET", "/api/v1/clusters/team-a/demo/pods/demo-head/logs"),
        ("GET", "/api/v1/templates"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/api/v1/session"),
        ("GET", "/metrics"),
        ("GET", "/pkg/raydar.js"),
        ("POST", "/_sfn/cluster"),
        ("GET", "/favicon.svg"),
    ];
    for (method, path) in routes {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let answer =
            http.request(method.clone(), format!("{}{path}", raydar.base)).send().await.unwrap();
        assert_eq!(answer.status(), 401, "{method} {path}");
    }
    // A browser is told, in a page, to sign in.
    let page =
        http.get(format!("{}/", raydar.base)).header("accept", "text/html").send().await.unwrap();
    assert_eq!(page.status(), 401);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("Sign-in required"));
    // Scripts get JSON that says why.
    let api = http.get(format!("{}/api/v1/clusters", raydar.base)).send().await.unwrap();
    let body: serde_json::Value = api.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("sign-in required"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_count_only_from_the_trusted_proxy() {
    let elsewhere = {
        let unreachable =
            kube::Client::try_from(kube::Config::new("https://127.0.0.1:1".parse().unwrap()))
                .unwrap();
        start_raydar_with(
            unreachable,
            "https://127.0.0.1:1",
            &["--auth", "proxy", "--trusted-proxies", "10.0.0.0/8"],
        )
        .await
    };
    let forged = plain()
        .get(format!("{}/api/v1/session", elsewhere.base))
        .header("x-forwarded-user", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401, "loopback is not the trusted proxy");

    let raydar = behind_proxy(&[]).await;
    let alice = as_user(&raydar.base, "alice", "team-a, ml").await;
    let session: serde_json::Value =
        common::get_json(&alice, format!("{}/api/v1/session", raydar.base)).await;
    assert_eq!(session["user"], "alice");
    assert_eq!(session["groups"], json!(["team-a", "ml"]));
    assert_eq!(session["team"], "team-a");
    // The page says who is signed in, and carries the token its writes send.
    let page = alice
        .get(format!("{}/", raydar.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"<meta name="raydar-user" content="alice""#), "{page}");
    assert!(page.contains(&format!(
        r#"<meta name="csrf-token" content="{}""#,
        session["csrfToken"].as_str().unwrap()
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_this_origin_and_the_users_csrf_token() {
    let raydar = behind_proxy(&[]).await;
    let url = format!("{}/api/v1/clusters", raydar.base);
    let body = json!({"template": "cpu-small", "namespace": "team-a", "name": "demo"});
    let who = [("x-forwarded-user", "alice"), ("x-forwarded-groups", "team-a")];
    let alice = as_user(&raydar.base, "alice", "team-a").await;
    let bob = as_user(&raydar.base, "bob", "team-a").await;
    let bob_token = bob
        .get(format!("{}/api/v1/session", raydar.base))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["csrfToken"]
        .as_str()
        .unwrap()
        .to_owned();

    let refused = |answer: reqwest::Response, what: &'static str| async move {
        assert_eq!(answer.status(), 403, "{what}");
        let body: serde_json::Value = answer.json().await.unwrap();
        body["error"].as_str().unwrap().to_owned()
    };
    let cross =
        alice.post(&url).header("origin", "https://evil.example").json(&body).send().await.unwrap();
    assert!(refused(cross, "another origin").await.contains("cross-origin"));
    let mut no_origin = plain().post(&url).json(&body);
    for (k, v) in who {
        no_origin = no_origin.header(k, v);
    }
    assert!(refused(no_origin.send().await.unwrap(), "no Origin").await.contains("Origin"));
    let mut no_token = plain().post(&url).header("origin", &raydar.base).json(&body);
    for (k, v) in who {
        no_token = no_token.header(k, v);
    }
    assert!(refused(no_token.send().await.unwrap(), "no token").await.contains("CSRF"));
    let stolen =
        alice.post(&url).header("x-csrf-token", &bob_token).json(&body).send().await.unwrap();
    assert!(refused(stolen, "bob's token").await.contains("CSRF"));
    // Reads from another origin are refused as well: a page elsewhere cannot follow the stream.
    let stream = alice
        .get(format!("{}/api/v1/clusters/events", raydar.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 403);
    // With both, the request gets through to the launch (which then fails on the missing apiserver).
    let through = alice.post(&url).json(&body).send().await.unwrap();
    assert!(![401, 403].contains(&through.status().as_u16()), "{}", through.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_and_actions_are_limited() {
    let raydar = behind_proxy(&["--action-rate", "2"]).await;
    let alice = as_user(&raydar.base, "alice", "team-a").await;
    let huge = format!(r#"{{"template": "{}"}}"#, "x".repeat(200 * 1024));
    // Its own client: raydar answers 413 without reading the body and closes that connection,
    // which a pooled client could otherwise pick for the next request (a broken pipe).
    let flooder = as_user(&raydar.base, "alice", "team-a").await;
    let answer = flooder
        .post(format!("{}/api/v1/clusters", raydar.base))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 413);
    // Two teardowns a minute: the third is refused before Kubernetes is asked.
    let url = format!("{}/api/v1/clusters/team-a/gone", raydar.base);
    for _ in 0..2 {
        assert_ne!(alice.delete(&url).send().await.unwrap().status(), 429);
    }
    let third = alice.delete(&url).send().await.unwrap();
    assert_eq!(third.status(), 429);
    assert!(third.headers().contains_key("retry-after"));
    // Another person's allowance is their own.
    let bob = as_user(&raydar.base, "bob", "team-a").await;
    assert_ne!(bob.delete(&url).send().await.unwrap().status(), 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_security_headers_and_pages_a_nonce_policy() {
    let raydar = behind_proxy(&[]).await;
    let health = plain().get(format!("{}/healthz", raydar.base)).send().await.unwrap();
    for header in
        ["x-content-type-options", "referrer-policy", "content-security-policy", "x-frame-options"]
    {
        assert!(health.headers().contains_key(header), "{header} on /healthz");
    }
    assert_eq!(
        health.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    let alice = as_user(&raydar.base, "alice", "team-a").await;
    let page =
        alice.get(format!("{}/", raydar.base)).header("accept", "text/html").send().await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(
        policy.contains("frame-ancestors 'none'") && policy.contains("'wasm-unsafe-eval'"),
        "{policy}"
    );
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a script nonce");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!(r#"nonce="{nonce}""#)),
        "the hydration script carries the policy's nonce"
    );
    // Each page its own nonce.
    let again = alice.get(format!("{}/", raydar.base)).send().await.unwrap();
    assert!(!again.headers()["content-security-policy"].to_str().unwrap().contains(nonce));
}
