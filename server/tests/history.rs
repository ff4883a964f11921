//! History's database on both backends, SQLite (a file) and PostgreSQL (a real server started
//! here): a cluster's record from launch to teardown, what the list finds, a restart, the
//! database going away and coming back, retention.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::postgres::Postgres;
use common::Scratch;
use std::sync::Arc;

use platform::history::{gpu_hours, ArchiveState, GpuSample, Outcome, PastCluster, Termination};
use platform::overview::{EventRow, RayJob};
use platform::{ClusterPhase, ClusterSummary};
use raydar_server::config::HistorySettings;
use raydar_server::history::archive::{unpack, Archive};
use raydar_server::history::record::{Launched, Seen};
use raydar_server::history::store::{Cursor, Kind, ListFilter, Readable};
use raydar_server::history::{Database, History, Record, Store};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// A minute past 2026-12-06 00:00 UTC, in seconds.
const T0: i64 = 1_796_515_260;

fn summary(namespace: &str, name: &str, uid: &str, owner: &str, created: i64) -> ClusterSummary {
    ClusterSummary {
        namespace: namespace.into(),
        name: name.into(),
        uid: uid.into(),
        resource_version: "1".into(),
        phase: ClusterPhase::Provisioning,
        workers_ready: 0,
        workers_desired: 2,
        gpus_desired: 8,
        created_at: created,
        team: "vision".into(),
        owner: owner.into(),
        template: "gpu-small".into(),
        pipeline: String::new(),
        run: String::new(),
        may_delete: false,
        context: String::new(),
    }
}

/// `s` launched, for RayJob `rayjob` (`""`: on its own).
fn launched(s: &ClusterSummary, rayjob: &str) -> Record {
    Record::Launched(Box::new(Launched {
        summary: s.clone(),
        parameters: json!({"workers": 2, "gpus": 8}).to_string(),
        manifest:
            json!({"kind": "RayCluster", "metadata": {"name": s.name}, "spec": {"suspend": false}})
                .to_string(),
        rayjob: rayjob.into(),
        context: String::new(),
    }))
}

fn seen(uid: &str, at_s: i64, phase: &str, reason: &str) -> Record {
    Record::Seen(Seen {
        uid: uid.into(),
        at: at_s * 1000,
        phase: phase.into(),
        reason: reason.into(),
        gpus: 8,
        ready_since: None,
    })
}

fn event(cluster: &str, uid: &str, reason: &str, count: u32, at: i64) -> Record {
    Record::Event {
        cluster: cluster.into(),
        uid: uid.into(),
        row: EventRow {
            kind: "Normal".into(),
            reason: reason.into(),
            message: format!("{reason} happened"),
            object: "RayCluster/alpha".into(),
            count,
            last_seen: at,
        },
        first_seen: T0,
    }
}

fn all(namespaces: &[&str]) -> BTreeSet<String> {
    namespaces.iter().map(|s| s.to_string()).collect()
}

fn names(items: &[PastCluster]) -> Vec<&str> {
    items.iter().map(|c| c.name.as_str()).collect()
}

/// Five clusters' lives, written as the sources would, then read back every way the API asks.
async fn keeps_clusters_from_launch_to_the_end(database: Database) {
    let store = Store::open(&database).unwrap();
    store.migrate().await.unwrap();
    let alpha = summary("ml", "alpha", "a-1", "alice", T0);
    let beta = summary("ml", "beta", "b-2", "bob", T0 + 60);
    let gamma = summary("ml", "gamma", "c-3", "alice", T0 + 120);
    let delta = summary("nlp", "delta", "d-4", "carol", T0 + 180);
    let omega = summary("secret", "omega", "e-5", "alice", T0 + 240);
    let batch = vec![
        launched(&alpha, ""),
        seen("a-1", T0, "Provisioning", ""),
        seen("a-1", T0 + 42, "Ready", ""),
        // The same phase again (a restart of raydar sees it anew): no new step.
        seen("a-1", T0 + 50, "Ready", ""),
        event("a-1", "ev-1", "CreatedHeadPod", 1, T0 + 1),
        event("a-1", "ev-2", "CreatedWorkerPod", 1, T0 + 2),
        // The same Event, repeated: counted, not doubled.
        event("a-1", "ev-2", "CreatedWorkerPod", 3, T0 + 9),
        // An Event of a cluster history does not hold is not kept.
        event("zz-9", "ev-3", "Stray", 1, T0),
        launched(&beta, ""),
        seen("b-2", T0 + 60, "Failed", "HeadPodFailed"),
        launched(&gamma, "nightly-eval"),
        seen("c-3", T0 + 120, "Ready", ""),
        launched(&delta, ""),
        seen("d-4", T0 + 180, "Ready", ""),
        launched(&omega, ""),
        Record::Ending {
            uid: "a-1".into(),
            outcome: Outcome::TornDown,
            by: "alice".into(),
            why: "torn down by alice through raydar".into(),
        },
        Record::Deleted { uid: "a-1".into(), at: (T0 + 600) * 1000, by_rayjob: false },
        Record::Deleted { uid: "b-2".into(), at: (T0 + 700) * 1000, by_rayjob: false },
        Record::Deleted { uid: "c-3".into(), at: (T0 + 800) * 1000, by_rayjob: true },
    ];
    store.write(&batch).await.unwrap();
    // alpha ran a Ray job that printed 30,000 lines; its log archived as it streamed, in
    // chunks, then marked complete.
    let job = RayJob {
        id: "raysubmit_1".into(),
        submission_id: Some("raysubmit_1".into()),
        status: "SUCCEEDED".into(),
        entrypoint: "python train.py".into(),
        message: Some("Job finished successfully.".into()),
        start_time: Some((T0 + 50) * 1000),
        end_time: Some((T0 + 500) * 1000),
        ..RayJob::default()
    };
    let mut archive = Archive::new("a-1", "raysubmit_1", 64 << 20);
    let printed: Vec<Arc<str>> =
        (1..=30_000).map(|n| Arc::from(format!("step {n} <b>loss</b> 0.{n}"))).collect();
    let mut records = vec![Record::Job { cluster: "a-1".into(), job: job.clone() }];
    records.extend(archive.take(1, &printed[..10_000]));
    records.extend(archive.flush());
    records.extend(archive.take(10_001, &printed[10_000..]));
    records.extend(archive.flush());
    records.push(Record::JobLogState {
        cluster: "a-1".into(),
        job: "raysubmit_1".into(),
        log: archive.state(true, ""),
    });
    // Its head's container was OOMKilled once: recorded at once, its last lines when read, and
    // seen again (the pod changed) without them.
    let oom = Termination {
        pod: "alpha-head".into(),
        container: "ray-head".into(),
        finished_at: T0 + 300,
        reason: "OOMKilled".into(),
        exit_code: 137,
        restarts: 0,
        last_lines: String::new(),
    };
    let with_lines = Termination { last_lines: "allocating 80 GiB\nKilled".into(), ..oom.clone() };
    for termination in [oom.clone(), with_lines.clone(), oom.clone()] {
        records.push(Record::Terminated { cluster: "a-1".into(), termination });
    }
    // Its 8 GPUs, two 5-minute steps: busy, then idle (the second written twice: kept once).
    let step = |at: i64, util: f64, busy_s: u64, idle_s: u64| GpuSample {
        at,
        seconds: 300,
        gpus: 8,
        util: Some(util),
        busy_s,
        idle_s,
    };
    let gpu_use = [step(T0 + 300, 87.5, 2400, 0), step(T0 + 600, 1.25, 0, 2400)];
    for sample in [&gpu_use[1], &gpu_use[0], &gpu_use[1]] {
        records.push(Record::GpuUse { cluster: "a-1".into(), sample: sample.clone() });
    }
    store.write(&records).await.unwrap();
    // sigma lives on another Kubernetes cluster (--contexts) that raydar also serves.
    let sigma = summary("west", "sigma", "s-6", "dave", T0 + 30);
    let Record::Launched(mut on_west) = launched(&sigma, "") else { unreachable!() };
    on_west.context = "west".into();
    store.write(&[Record::Launched(on_west)]).await.unwrap();
    // raydar restarts and lists again: omega went while it was not watching; sigma is not the
    // home cluster's to end.
    let relisted = |context: &str, live: &[&str]| Record::Relisted {
        context: context.into(),
        live: live.iter().map(|uid| uid.to_string()).collect(),
        at: (T0 + 900) * 1000,
    };
    store.write(&[relisted("", &["d-4"])]).await.unwrap();
    drop(store);

    // A new process on the same database finds it all.
    let store = Store::open(&database).unwrap();
    store.migrate().await.unwrap();
    let everything = all(&["ml", "nlp", "secret"]);
    let (items, next) = store.list(&ListFilter::default(), &everything, None, 10).await.unwrap();
    assert_eq!(names(&items), ["omega", "delta", "gamma", "beta", "alpha"], "newest first");
    assert_eq!(next, None);
    let outcome = |name: &str| items.iter().find(|c| c.name == name).unwrap().outcome;
    assert_eq!(outcome("alpha"), Outcome::TornDown);
    assert_eq!(outcome("beta"), Outcome::Failed);
    assert_eq!(outcome("gamma"), Outcome::Finished);
    assert_eq!(items.iter().find(|c| c.name == "gamma").unwrap().rayjob, "nightly-eval");
    assert_eq!(outcome("delta"), Outcome::Live);
    assert_eq!(outcome("omega"), Outcome::Deleted);
    let west = all(&["west"]);
    let sigma_now =
        || async { store.list(&ListFilter::default(), &west, None, 1).await.unwrap().0[0].outcome };
    assert_eq!(sigma_now().await, Outcome::Live, "another Kubernetes cluster's");
    // Each Kubernetes cluster's clusters, as its own RBAC lets the reader see them.
    let by = |each: &[(&str, &[&str])]| {
        Readable::ByContext(each.iter().map(|(c, ns)| ((*c).to_owned(), all(ns))).collect())
    };
    let list = |readable: Readable| {
        let store = &store;
        async move { store.list(&ListFilter::default(), readable, None, 10).await.unwrap().0 }
    };
    let home = list(by(&[("", &["ml", "nlp", "secret", "west"])])).await;
    assert_eq!(names(&home), ["omega", "delta", "gamma", "beta", "alpha"], "not sigma");
    let on_west = list(by(&[("west", &["ml", "nlp", "secret", "west"])])).await;
    assert_eq!(names(&on_west), ["sigma"]);
    assert_eq!(on_west[0].context, "west", "a row names its Kubernetes cluster");
    assert!(home.iter().all(|c| c.context.is_empty()), "the home one's rows say ''");
    let both = list(by(&[("", &["ml", "nlp", "secret"]), ("west", &["west"])])).await;
    assert_eq!(both.len(), 6);
    assert!(list(by(&[("west", &["ml"])])).await.is_empty(), "west's RBAC there, not home's");
    assert!(list(by(&[("", &[]), ("west", &[])])).await.is_empty(), "nothing readable");
    // Its own watch lists again without it: then it went.
    store.write(&[relisted("west", &[])]).await.unwrap();
    assert_eq!(sigma_now().await, Outcome::Deleted);

    let record = store.record("a-1", 100).await.unwrap().expect("alpha's record");
    let steps: Vec<&str> = record.phases.iter().map(|p| p.phase.as_str()).collect();
    assert_eq!(steps, ["Provisioning", "Ready", "Deleted"]);
    assert_eq!(record.cluster.time_to_ready(), Some(42.0));
    assert_eq!(record.cluster.ended_by, "alice");
    assert_eq!(record.cluster.deleted_at, Some((T0 + 600) * 1000));
    assert_eq!(record.parameters, json!({"workers": 2, "gpus": 8}));
    assert_eq!(record.manifest["metadata"]["name"], "alpha");
    let events: Vec<(&str, u32)> =
        record.events.iter().map(|e| (e.reason.as_str(), e.count)).collect();
    assert_eq!(events, [("CreatedWorkerPod", 3), ("CreatedHeadPod", 1)], "newest first, counted");
    let known = all(&["ml", "nlp", "secret", "west"]);
    assert_eq!(store.namespaces().await.unwrap(), known, "the namespaces history knows");

    // The job and its whole log, after the cluster is gone.
    let jobs: Vec<(&str, &str, ArchiveState, u64)> = record
        .jobs
        .iter()
        .map(|j| (j.id.as_str(), j.status.as_str(), j.log.state, j.log.lines))
        .collect();
    assert_eq!(jobs, [("raysubmit_1", "SUCCEEDED", ArchiveState::Complete, 30_000)]);
    assert_eq!(record.jobs[0].started_at, Some((T0 + 50) * 1000));
    let mut text = String::new();
    let mut from = 1;
    loop {
        let chunks = store.log_chunks("a-1", "raysubmit_1", from, 2).await.unwrap();
        let Some(last) = chunks.last() else { break };
        from = last.first_line + last.lines;
        for chunk in &chunks {
            text.push_str(&unpack(&chunk.data).unwrap());
        }
    }
    let expected: String = printed.iter().map(|l| format!("{l}\n")).collect();
    assert!(
        text == expected,
        "every line once, in order ({} of {} bytes)",
        text.len(),
        expected.len()
    );
    // From a line in the middle: the chunk that holds it first.
    let middle = store.log_chunks("a-1", "raysubmit_1", 15_000, 1).await.unwrap();
    assert!(middle[0].first_line <= 15_000 && middle[0].first_line + middle[0].lines > 15_000);
    assert!(store.job("a-1", "raysubmit_2").await.unwrap().is_none());
    assert_eq!(record.terminations, [with_lines], "once, with its last lines");
    assert_eq!(record.gpu_use, gpu_use, "oldest first, once each");
    assert_eq!(gpu_hours(&record.gpu_use), (16.0 / 12.0, 8.0 / 12.0, 8.0 / 12.0));

    let omega = store.record("e-5", 100).await.unwrap().unwrap();
    assert_eq!(omega.cluster.ended_why, "deleted while raydar was not watching");
    assert!(store.record("zz-9", 100).await.unwrap().is_none(), "no record of a stray Event");

    // Filters, as the history page offers them.
    let list = |filter: ListFilter| {
        let store = store.clone();
        let everything = everything.clone();
        async move { names(&store.list(&filter, &everything, None, 10).await.unwrap().0).join(",") }
    };
    let alice = ListFilter { owner: Some("alice".into()), ..ListFilter::default() };
    assert_eq!(list(alice).await, "omega,gamma,alpha");
    let failed = ListFilter { outcome: Some(Outcome::Failed), ..ListFilter::default() };
    assert_eq!(list(failed).await, "beta");
    let nlp = ListFilter { namespace: Some("nlp".into()), ..ListFilter::default() };
    assert_eq!(list(nlp).await, "delta");
    let words = ListFilter { text: Some("ALP".into()), ..ListFilter::default() };
    assert_eq!(list(words).await, "alpha", "case does not matter");
    let rayjobs = ListFilter { kind: Some(Kind::RayJob), ..ListFilter::default() };
    assert_eq!(list(rayjobs).await, "gamma", "made for a RayJob");
    let clusters = ListFilter { kind: Some(Kind::Cluster), ..ListFilter::default() };
    assert_eq!(list(clusters).await, "omega,delta,beta,alpha");
    let by_job = ListFilter { text: Some("nightly".into()), ..ListFilter::default() };
    assert_eq!(list(by_job).await, "gamma", "found by its RayJob's name");
    let wildcard = ListFilter { text: Some("%".into()), ..ListFilter::default() };
    assert_eq!(list(wildcard).await, "", "% is a character, not a wildcard");
    // Made by T0+130 s and still there at T0+650 s: not alpha (deleted at T0+600 s), not delta
    // (made at T0+180 s).
    let window =
        ListFilter { since: Some(T0 + 650), until: Some(T0 + 130), ..ListFilter::default() };
    assert_eq!(list(window).await, "gamma,beta");

    // What a user may not read is never listed.
    let (items, _) = store.list(&ListFilter::default(), &all(&["ml"]), None, 10).await.unwrap();
    assert_eq!(names(&items), ["gamma", "beta", "alpha"]);

    // Pages follow each other without a repeat or a gap.
    let (first, next) = store.list(&ListFilter::default(), &everything, None, 2).await.unwrap();
    let next = next.expect("more than one page");
    let cursor = Cursor::parse(&next.encode()).unwrap();
    let (second, _) =
        store.list(&ListFilter::default(), &everything, Some(&cursor), 10).await.unwrap();
    assert_eq!(names(&first), ["omega", "delta"]);
    assert_eq!(names(&second), ["gamma", "beta", "alpha"]);
}

#[tokio::test]
async fn sqlite_keeps_clusters_from_launch_to_the_end() {
    let scratch = Scratch::new("history");
    keeps_clusters_from_launch_to_the_end(Database::Sqlite(scratch.0.join("raydar.db"))).await;
}

#[tokio::test]
async fn postgres_keeps_clusters_from_launch_to_the_end() {
    let postgres = Postgres::start();
    keeps_clusters_from_launch_to_the_end(Database::Postgres(postgres.url())).await;
}

/// Waits (up to 60 s) until `check` holds.
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn count(store: &Store) -> usize {
    match store.list(&ListFilter::default(), &all(&["ml"]), None, 500).await {
        Ok((items, _)) => items.len(),
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_away_loses_nothing_the_buffer_holds_and_counts_what_it_could_not() {
    let postgres = Postgres::start();
    let settings = HistorySettings {
        database: Database::Postgres(postgres.url()),
        buffer: 100,
        keep: Duration::from_secs(86_400),
        max_bytes: 1 << 30,
        job_log_bytes: 64 << 20,
        gpu_step: 300,
    };
    let history = History::open(&settings).unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(history.clone().run(shutdown.clone()));
    let sink = &history.sink;
    let launch =
        |i: i64| launched(&summary("ml", &format!("c{i}"), &format!("u-{i}"), "alice", T0 + i), "");
    for i in 0..10 {
        sink.send(launch(i));
    }
    until("the first ten written", async || count(&history.store).await == 10).await;

    postgres.stop();
    for i in 10..60 {
        sink.send(launch(i));
    }
    until("history says it is not written", async || sink.stale().is_some()).await;
    let reason = sink.stale().unwrap().reason;
    assert!(
        reason.contains("PostgreSQL at postgres://raydar@127.0.0.1"),
        "names the database: {reason}"
    );
    postgres.start_again();
    until("the fifty written meanwhile", async || count(&history.store).await == 60).await;
    until("history current again", async || sink.stale().is_none()).await;
    assert_eq!(sink.lost(), 0, "the buffer held them all");

    // Away again, and sent more than the buffer holds: what does not fit is counted, and what
    // is kept and what is counted are every record sent.
    postgres.stop();
    for i in 60..400 {
        sink.send(launch(i));
    }
    assert!(sink.lost() > 0, "a full buffer loses records");
    until("history says it is not written", async || sink.stale().is_some()).await;
    postgres.start_again();
    // Every record sent is kept or counted lost, once the buffer is written.
    let lost = sink.lost();
    until("what the buffer held written", async || {
        count(&history.store).await as u64 + lost == 400 && sink.stale().is_none()
    })
    .await;
    assert_eq!(sink.lost(), lost, "nothing lost once the database answers");
    shutdown.cancel();
}

#[tokio::test]
async fn retention_removes_the_oldest_gone_clusters_first_and_never_a_live_one() {
    let scratch = Scratch::new("history");
    let store = Store::open(&Database::Sqlite(scratch.0.join("raydar.db"))).unwrap();
    store.migrate().await.unwrap();
    let mut batch = Vec::new();
    for i in 0..6 {
        let s = summary("ml", &format!("c{i}"), &format!("u-{i}"), "alice", T0 + i);
        batch.push(launched(&s, ""));
        batch.push(event(&s.uid, &format!("ev-{i}"), "Created", 1, T0 + i));
        let job =
            RayJob { id: format!("job-{i}"), status: "SUCCEEDED".into(), ..RayJob::default() };
        batch.push(Record::Job { cluster: s.uid.clone(), job });
        let mut archive = Archive::new(&s.uid, &format!("job-{i}"), 1 << 20);
        archive.take(1, &[Arc::from("hello")]);
        batch.extend(archive.flush());
        if i < 5 {
            // c0 went first, c4 last; c5 lives.
            batch.push(Record::Deleted {
                uid: s.uid.clone(),
                at: (T0 + 1000 + i) * 1000,
                by_rayjob: false,
            });
        }
    }
    store.write(&batch).await.unwrap();
    let listed = async || {
        let (items, _) = store.list(&ListFilter::default(), &all(&["ml"]), None, 50).await.unwrap();
        let mut names: Vec<String> = items.into_iter().map(|c| c.name).collect();
        names.sort();
        names.join(",")
    };
    // By age: what was deleted before T0+1002 s goes.
    assert_eq!(store.trim((T0 + 1002) * 1000, u64::MAX).await.unwrap(), 2);
    assert_eq!(listed().await, "c2,c3,c4,c5");
    assert!(store.record("u-0", 10).await.unwrap().is_none(), "its events and phases went too");
    assert!(store.job("u-0", "job-0").await.unwrap().is_none(), "and its jobs");
    assert!(store.log_chunks("u-0", "job-0", 1, 10).await.unwrap().is_empty(), "and their logs");
    assert_eq!(store.log_chunks("u-2", "job-2", 1, 10).await.unwrap().len(), 1);
    // By size: room for about two clusters; the oldest deleted go, the live one stays.
    let one = store.record("u-5", 10).await.unwrap().unwrap();
    assert_eq!(one.events.len(), 1);
    assert_eq!(store.trim(0, 1).await.unwrap(), 3);
    assert_eq!(listed().await, "c5", "a live cluster is never trimmed");
}
