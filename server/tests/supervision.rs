//! raydar-server's background work and its end: a source that panics is started again and
//! reported meanwhile; SIGTERM ends every open event stream with a `reconnect` event and the
//! process exits within 5 s. Needs no control plane.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

fn unreachable() -> kube::Client {
    // Nothing listens on port 1 of loopback: every connection is refused at once.
    kube::Client::try_from(kube::Config::new("https://127.0.0.1:1".parse().unwrap())).unwrap()
}

async fn text(http: &reqwest::Client, url: String) -> (u16, String) {
    let answer = http.get(url).send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_source_is_started_again_and_reported_meanwhile() {
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let raydar =
        common::start_raydar_and(unreachable(), "https://127.0.0.1:1", &[], |supervisor| {
            supervisor.spawn("flaky", move |shutdown| {
                let run = counted.fetch_add(1, Ordering::SeqCst);
                async move {
                    if run == 0 {
                        panic!("flaky broke on its first run");
                    }
                    shutdown.cancelled().await;
                    Ok(())
                }
            })
        })
        .await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    // While it waits to start again, readiness names it and why, and /metrics counts it.
    let (mut status, mut ready) = text(&http, format!("{}/readyz", raydar.base)).await;
    for _ in 0..50 {
        if ready.contains("flaky") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        (status, ready) = text(&http, format!("{}/readyz", raydar.base)).await;
    }
    assert_eq!(status, 503);
    assert!(ready.contains("flaky: panicked: flaky broke on its first run"), "{ready}");
    let (_, metrics) = text(&http, format!("{}/metrics", raydar.base)).await;
    assert!(metrics.contains("raydar_source_up{source=\"flaky\"} 0"), "{metrics}");
    assert!(metrics.contains("raydar_source_failures_total{source=\"flaky\"} 1"), "{metrics}");
    // The real sources run beside it, unharmed.
    assert!(metrics.contains("raydar_source_up{source=\"clusters\"} 1"), "{metrics}");
    // After the first backoff (1 s) it runs again, and is no longer reported down.
    let started = Instant::now();
    loop {
        let (_, metrics) = text(&http, format!("{}/metrics", raydar.base)).await;
        if metrics.contains("raydar_source_restarts_total{source=\"flaky\"} 1") {
            assert!(metrics.contains("raydar_source_up{source=\"flaky\"} 1"), "{metrics}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "not started again: {metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    let (_, ready) = text(&http, format!("{}/readyz", raydar.base)).await;
    assert!(!ready.contains("flaky"), "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_source_that_is_down_is_said_on_the_gpu_pages() {
    // GPU readings come from a Prometheus that is not there; the exporter source is this test's
    // stand-in, which breaks on every run: the fleet's numbers are then the last ones read, and
    // the page must say why.
    let flags = ["--prometheus", "http://127.0.0.1:1"];
    let raydar = common::start_raydar_and(unreachable(), "https://127.0.0.1:1", &flags, |s| {
        s.spawn("exporters", |_| async { panic!("every scrape broke") })
    })
    .await;
    let started = Instant::now();
    loop {
        let fleet = common::get_json(&raydar.http, format!("{}/api/v1/gpus", raydar.base)).await;
        let errors = fleet["errors"].as_array().unwrap();
        if errors
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("exporters: panicked: every scrape broke"))
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the fleet does not say it: {fleet}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_open_streams_and_the_process_within_5_s() {
    let dir = std::env::temp_dir().join(format!("raydar-sigterm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = common::server_binary(port, &dir).spawn().unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    common::answered(&http, &format!("{base}/healthz"), "raydar-server").await;
    // Two open event streams, each past its first event.
    let mut streams = Vec::new();
    for _ in 0..2 {
        let answer = http.get(format!("{base}/api/v1/clusters/events")).send().await.unwrap();
        let mut events = Box::pin(common::sse_events(answer));
        let (first, _) = events.next().await.unwrap();
        assert_eq!(first, "snapshot");
        streams.push(events);
    }

    let signalled = Instant::now();
    let killed = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(killed.success());
    for events in &mut streams {
        let last = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
        let (name, data) = last.expect("the stream says goodbye at once").expect("an event");
        assert_eq!(name, "reconnect", "{data}");
        let end = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
        assert!(end.expect("the stream ends after its goodbye").is_none());
    }
    let exit = loop {
        if let Some(exit) = server.try_wait().unwrap() {
            break exit;
        }
        if signalled.elapsed() > Duration::from_secs(5) {
            let _ = server.kill();
            panic!("raydar-server still running 5 s after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit:?}");
    println!("raydar-server exited {:?} after SIGTERM", signalled.elapsed());
    assert!(http.get(format!("{base}/healthz")).send().await.is_err(), "nothing listens any more");
    let _ = std::fs::remove_dir_all(&dir);
}

/// SQLite serves one replica: a second raydar-server on the same history waits a moment for the
/// first to let it go, then refuses to start and says why and what to do instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_raydar_on_one_sqlite_history_refuses_to_start() {
    let dir = std::env::temp_dir().join(format!("raydar-sole-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (port, other) = (common::free_port(), common::free_port());
    // Both in `dir`: one history.
    let mut first = common::server_binary(port, &dir).spawn().unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    common::answered(&http, &format!("http://127.0.0.1:{port}/healthz"), "the first").await;
    let second =
        common::server_binary(other, &dir).stderr(std::process::Stdio::piped()).output().unwrap();
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{said}");
    assert!(said.contains(&format!("another raydar-server (pid {}", first.id())), "{said}");
    assert!(said.contains("PostgreSQL"), "{said}");
    let _ = first.kill();
    let _ = first.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
