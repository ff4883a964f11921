//! A launch as one trace, read back from a real OTLP receiver: raydar-server (the binary, as it
//! runs) with `OTEL_EXPORTER_OTLP_ENDPOINT` pointed at Jaeger v2 (deploy/local/jaeger.yaml, built
//! by deploy/local/build.sh) launches a RayCluster on the local control plane for a caller that
//! sends a `traceparent`; Jaeger then holds the request's span as that caller's child, and the
//! launch's render, read, dry-run and apply as the request's children.
//!
//! Needs the local control plane (`make test` starts it and runs this).

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    answered, ensure_namespace, free_port, kube_client, local_dir, ray_clusters, unique_name, STEP,
};
use serde_json::{json, Value};

const NAMESPACE: &str = "raydar-tracing";

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane; `make test` runs it"]
async fn a_launch_is_one_trace_under_its_callers_span() {
    let admin = kube_client().await;
    ensure_namespace(&admin, NAMESPACE).await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let (otlp, query, query_grpc, port) = (free_port(), free_port(), free_port(), free_port());
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/local/jaeger.yaml");
    let _jaeger = Running(
        Command::new(local_dir().join("bin/jaeger"))
            .args(["--config", config])
            .env("JAEGER_OTLP_PORT", otlp.to_string())
            .env("JAEGER_QUERY_PORT", query.to_string())
            .env("JAEGER_QUERY_GRPC_PORT", query_grpc.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("jaeger (deploy/local/build.sh jaeger builds it)"),
    );
    let jaeger = format!("http://127.0.0.1:{query}");
    answered(&http, &format!("{jaeger}/api/services"), "Jaeger").await;

    let data = std::env::temp_dir().join(format!("raydar-tracing-{}", std::process::id()));
    let service = format!("raydar-tracing-{}", std::process::id());
    let _raydar = Running(
        Command::new(env!("CARGO_BIN_EXE_raydar-server"))
            .args(["--addr", &format!("127.0.0.1:{port}"), "--auth", "dev"])
            .args(["--dev-user", "developer", "--data-dir", &data.to_string_lossy()])
            .args(["--idle-reclaim", "off"])
            .env("KUBECONFIG", local_dir().join("kubeconfig-raydar"))
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{otlp}"))
            .env("OTEL_SERVICE_NAME", &service)
            // Spans leave within 200 ms rather than the SDK's 5 s.
            .env("OTEL_BSP_SCHEDULE_DELAY", "200")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    answered(&http, &format!("{base}/readyz"), "raydar-server").await;

    // The caller: a pipeline's span, sent as W3C Trace Context.
    let (trace, caller) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let session: Value =
        http.get(format!("{base}/api/v1/session")).send().await.unwrap().json().await.unwrap();
    let name = unique_name("traced");
    let launched = http
        .post(format!("{base}/api/v1/clusters"))
        .header("origin", &base)
        .header("x-csrf-token", session["csrfToken"].as_str().unwrap())
        .header("traceparent", format!("00-{trace}-{caller}-01"))
        .json(&json!({"template": "cpu-small", "namespace": NAMESPACE, "name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(launched.status(), 201, "{}", launched.text().await.unwrap());

    // Jaeger has the trace once the spans are flushed.
    let started = Instant::now();
    let spans = loop {
        let got: Value = http
            .get(format!("{jaeger}/api/traces/{trace}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_default();
        let spans = got["data"][0]["spans"].as_array().cloned().unwrap_or_default();
        if spans.iter().any(|s| s["operationName"] == "apply") {
            break spans;
        }
        assert!(started.elapsed() < STEP, "no launch trace in Jaeger: {got}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let parent = |span: &Value| {
        span["references"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["refType"] == "CHILD_OF"))
            .map(|r| r["spanID"].as_str().unwrap().to_owned())
    };
    let by_name: HashMap<&str, &Value> =
        spans.iter().map(|s| (s["operationName"].as_str().unwrap(), s)).collect();
    let request = by_name.get("POST /api/v1/clusters").unwrap_or_else(|| panic!("{spans:?}"));
    assert_eq!(parent(request).as_deref(), Some(caller), "the caller's span is its parent");
    let request_id = request["spanID"].as_str().unwrap();
    for child in ["render", "read existing", "dry-run", "apply"] {
        let span = by_name.get(child).unwrap_or_else(|| panic!("no {child} span: {spans:?}"));
        assert_eq!(parent(span).as_deref(), Some(request_id), "{child} is the request's child");
    }
    let got: Value =
        http.get(format!("{jaeger}/api/services")).send().await.unwrap().json().await.unwrap();
    assert!(got["data"].as_array().unwrap().iter().any(|s| s == &json!(service)), "{got}");

    let _ = ray_clusters(&admin, NAMESPACE).delete(&name, &Default::default()).await;
    let _ = std::fs::remove_dir_all(&data);
}
