//! raydar's front door, without a Kubernetes behind it (what is checked here is decided before
//! any Kubernetes call): no identity, no answer but health; identity headers count only from the
//! trusted proxy; writes need the page's origin and CSRF token; bodies and actions are limited;
//! every answer carries the security headers, and pages a script policy with their nonce.
//! What users may see and do in Kubernetes is tests/live_security.rs.

mod common;

use std::time::Duration;

use common::{as_user, start_raydar_with, Raydar};
use raydar_server::Config;
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

/// Several replicas behind one address: a page's CSRF token, got from one, is good on another
/// when they share `--session-secret`, and only then (each process's own key otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_tokens_from_a_shared_secret_are_good_on_every_replica() {
    let secret = "0123456789abcdef0123456789abcdef-shared";
    let shared = ["--session-secret", secret];
    for (flags, good_elsewhere) in [(&shared[..], true), (&[][..], false)] {
        let (a, b) = (behind_proxy(flags).await, behind_proxy(flags).await);
        let token_of = |base: String| async move {
            let session =
                as_user(&base, "alice", "team-a").await.get(format!("{base}/api/v1/session"));
            let session: serde_json::Value = session.send().await.unwrap().json().await.unwrap();
            session["csrfToken"].as_str().unwrap().to_owned()
        };
        let from_a = token_of(a.base.clone()).await;
        assert_eq!(from_a == token_of(b.base.clone()).await, good_elsewhere);
        let write = plain()
            .delete(format!("{}/api/v1/clusters/team-a/demo", b.base))
            .header("x-forwarded-user", "alice")
            .header("x-forwarded-groups", "team-a")
            .header("origin", &b.base)
            .header("x-csrf-token", &from_a)
            .send()
            .await
            .unwrap();
        let status = write.status();
        let body = write.text().await.unwrap();
        // Past the CSRF check, the teardown finds no apiserver to ask.
        assert_eq!(body.contains("CSRF"), !good_elsewhere, "{status} {body}");
        assert_eq!(status == 403, !good_elsewhere, "{status} {body}");
    }
    let short = Config::from_args(["--session-secret", "too short"].map(String::from));
    let refused = short.unwrap_err();
    assert!(refused.contains("--session-secret") && refused.contains("32 or more"), "{refused}");
}

/// `--metrics-addr`: Prometheus and the kubelet reach health, readiness and metrics there
/// without identity; nothing else is answered there, and the main port still asks for identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_port_answers_health_and_metrics_only() {
    let raydar = behind_proxy(&["--metrics-addr", "127.0.0.1:0"]).await;
    let ops = raydar.ops_base.clone().expect("--metrics-addr serves");
    let http = plain();
    let get = |base: &str, path: &str| http.get(format!("{base}{path}")).send();
    let metrics = get(&ops, "/metrics").await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.text().await.unwrap().contains("raydar_rayclusters "));
    assert_eq!(get(&ops, "/healthz").await.unwrap().status(), 200);
    // No apiserver behind it: not ready, and it says why.
    let ready = get(&ops, "/readyz").await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("127.0.0.1:1"));
    for path in
        ["/", "/api/v1/clusters", "/api/v1/session", "/api/v1/openapi.json", "/pkg/raydar.js"]
    {
        assert_eq!(get(&ops, path).await.unwrap().status(), 404, "{path} on the metrics port");
    }
    assert_eq!(get(&raydar.base, "/metrics").await.unwrap().status(), 401);
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

/// `GET path` with these headers, as the raw client an attacker would use: status and body.
async fn raw(base: &str, path: &str, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let mut request = plain().get(format!("{base}{path}"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let answer = request.send().await.unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_answers_only_under_loopback_names() {
    // A page on evil.example that rebinds its name to 127.0.0.1 talks to raydar "same-origin":
    // Host and Origin both name evil.example. Dev mode, where everyone is the developer, must
    // not answer it, or that page could read the CSRF token and launch as the developer.
    let unreachable =
        kube::Client::try_from(kube::Config::new("https://127.0.0.1:1".parse().unwrap())).unwrap();
    let raydar = start_raydar_with(unreachable, "https://127.0.0.1:1", &[]).await;
    let port = raydar.base.rsplit(':').next().unwrap().to_owned();
    let rebound = format!("evil.example:{port}");
    let origin = format!("http://{rebound}");
    let (status, body) =
        raw(&raydar.base, "/api/v1/session", &[("host", &rebound), ("origin", &origin)]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not served as"), "{body}");
    assert!(body.get("csrfToken").is_none());
    let launch = plain()
        .post(format!("{}/api/v1/clusters?dryRun=true", raydar.base))
        .header("host", &rebound)
        .header("origin", &origin)
        .json(&json!({"template": "cpu-small", "namespace": "team-a", "name": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(launch.status(), 403);
    let (status, _) = raw(&raydar.base, "/", &[("host", &rebound)]).await;
    assert_eq!(status, 403, "pages too");
    // A loopback name with another site's Origin: refused as well.
    let loopback = format!("localhost:{port}");
    let (status, _) =
        raw(&raydar.base, "/api/v1/session", &[("host", &loopback), ("origin", &origin)]).await;
    assert_eq!(status, 403);
    // Under its own loopback names, the developer is served; probes answer whatever the Host.
    for host in [loopback.as_str(), &format!("127.0.0.1:{port}")] {
        let (status, body) = raw(&raydar.base, "/api/v1/session", &[("host", host)]).await;
        assert_eq!((status, body["user"].as_str()), (200, Some(common::DEV_USER)), "{host}");
    }
    assert_ne!(raw(&raydar.base, "/healthz", &[("host", &rebound)]).await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_public_url_only_its_host_and_origin_are_served() {
    let raydar = behind_proxy(&["--public-url", "https://raydar.example.com"]).await;
    let alice = [("x-forwarded-user", "alice"), ("x-forwarded-groups", "team-a")];
    let with = |host: &'static str, origin: Option<&'static str>| {
        let mut headers = alice.to_vec();
        headers.push(("host", host));
        headers.extend(origin.map(|o| ("origin", o)));
        headers
    };
    let own = with("raydar.example.com", Some("https://raydar.example.com"));
    assert_eq!(raw(&raydar.base, "/api/v1/session", &own).await.0, 200);
    for (host, origin) in [
        ("evil.example", Some("https://evil.example")),
        ("raydar.example.com", Some("http://raydar.example.com")),
        ("127.0.0.1", None),
    ] {
        let (status, body) = raw(&raydar.base, "/api/v1/session", &with(host, origin)).await;
        assert_eq!(status, 403, "{host} {origin:?}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_cannot_name_kubernetes_own_users_or_groups() {
    let raydar = behind_proxy(&["--proxy-groups-prefix", "oidc:"]).await;
    // Groups go to Kubernetes behind the prefix; the team label is the group as sent.
    let alice = as_user(&raydar.base, "alice", "team-a, ml").await;
    let session = common::get_json(&alice, format!("{}/api/v1/session", raydar.base)).await;
    assert_eq!(session["groups"], json!(["oidc:team-a", "oidc:ml"]));
    assert_eq!(session["team"], "team-a");
    // system:masters would see and delete everything: refused before Kubernetes is asked.
    for (user, groups) in [
        ("mallory", "team-a,system:masters"),
        ("system:admin", ""),
        ("system:serviceaccount:kube-system:default", "team-a"),
    ] {
        for (method, path) in [("GET", "/api/v1/clusters"), ("DELETE", "/api/v1/clusters/a/b")] {
            let answer = plain()
                .request(method.parse().unwrap(), format!("{}{path}", raydar.base))
                .header("x-forwarded-user", user)
                .header("x-forwarded-groups", groups)
                .header("origin", &raydar.base)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 403, "{user} {groups} {method} {path}");
            let body: serde_json::Value = answer.json().await.unwrap();
            assert!(body["error"].as_str().unwrap().contains("system:"), "{body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_in_paths_are_checked_before_kubernetes_is_asked() {
    // The apiserver is unreachable: an answer that is not the 400 below went looking for it.
    let raydar = behind_proxy(&[]).await;
    let alice = as_user(&raydar.base, "alice", "team-a").await;
    let cases = [
        ("GET", "/api/v1/clusters/Team_A/demo", "namespace"),
        ("GET", "/api/v1/clusters/team-a/de%20mo/overview", "name"),
        ("DELETE", "/api/v1/clusters/team-a/x.y", "name"),
        ("PATCH", "/api/v1/clusters/team-a/x%3Fwatch=1", "name"),
        ("GET", "/api/v1/clusters/a%2Fb/demo/gpus", "namespace"),
        ("GET", "/api/v1/clusters/team-a/demo/pods/..%2F..%2Fsecrets/logs", "pod"),
        ("GET", "/api/v1/clusters/team-a/demo/pods/Head/logs/stream", "pod"),
        ("GET", "/api/v1/clusters/team-a/-demo/jobs/raysubmit_1/logs", "name"),
        ("GET", "/api/v1/clusters/%E2%9C%93/demo/ray/api/version", "namespace"),
    ];
    for (method, path, field) in cases {
        let answer = alice
            .request(method.parse().unwrap(), format!("{}{path}", raydar.base))
            .json(&json!({"suspend": true}))
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(status, 400, "{method} {path}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.starts_with(field), "{method} {path}: {error}");
    }
}

/// Slowloris: clients that send a request's first lines and then nothing. Each is closed once
/// `--header-timeout` is up, and while they wait nobody else does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_trickle_their_headers_are_closed_and_hold_up_no_one() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let raydar = behind_proxy(&["--header-timeout", "2s"]).await;
    let address = raydar.base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..500 {
        let mut connection = tokio::net::TcpStream::connect(&address).await.unwrap();
        connection.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
        slow.push(connection);
    }
    let health = plain().get(format!("{}/healthz", raydar.base)).send().await.unwrap();
    assert_eq!(health.status(), 200, "answered while 500 connections trickle their headers");
    let page = as_user(&raydar.base, "alice", "").await.get(&raydar.base).send().await.unwrap();
    assert_eq!(page.status(), 200, "the page too");
    for mut connection in slow {
        let mut answer = Vec::new();
        let closed = tokio::time::timeout(STEP_CLOSE, connection.read_to_end(&mut answer)).await;
        assert!(closed.is_ok(), "a connection that never finished its headers was left open");
    }
}

/// Far longer than the 2 s allowed for headers; without the limit they are never closed.
const STEP_CLOSE: Duration = Duration::from_secs(20);

/// Live pages' event streams, at most so many per person and in all; a closed page frees its
/// place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_are_limited_per_person_and_in_all() {
    let raydar = behind_proxy(&["--event-streams-per-person", "2", "--event-streams", "3"]).await;
    let events = format!("{}/api/v1/clusters/events", raydar.base);
    let (alice, bob, carol) = (
        as_user(&raydar.base, "alice", "").await,
        as_user(&raydar.base, "bob", "").await,
        as_user(&raydar.base, "carol", "").await,
    );
    let first = alice.get(&events).send().await.unwrap();
    let second = alice.get(&events).send().await.unwrap();
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    let third = alice.get(&events).send().await.unwrap();
    assert_eq!(third.status(), 429, "a person's third stream");
    let said: serde_json::Value = third.json().await.unwrap();
    assert!(said["error"].as_str().unwrap().contains("alice has 2 live pages open"), "{said}");
    let bobs = bob.get(&events).send().await.unwrap();
    assert_eq!(bobs.status(), 200);
    assert_eq!(carol.get(&events).send().await.unwrap().status(), 503, "everyone's at the limit");
    // Plain requests are not streams: not counted, not refused.
    assert_eq!(
        alice.get(format!("{}/api/v1/session", raydar.base)).send().await.unwrap().status(),
        200
    );
    drop(first);
    let freed = tokio::time::timeout(STEP_CLOSE, async {
        loop {
            let tried = carol.get(&events).send().await.unwrap();
            if tried.status() == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    assert!(freed.await.is_ok(), "a closed page's stream frees its place");
    drop((second, bobs));
}
