//! `make bench`: the history list with 100,000 past clusters, on SQLite and on PostgreSQL.
//!
//! For each backend: 100,000 clusters written as the sources write them (a launch, two phases,
//! an Event, a deletion, over 40 namespaces, 200 owners, 20 teams, 3 templates and the outcomes),
//! then pages of the list as the API asks for them (no filter, an owner, an outcome, a word, a
//! namespace, a second page), timed per call, next to the baseline measured in the same run: a
//! plain `SELECT` of the same rows by primary key. Target: p99 ≤ 50 ms.
//!
//! Then the bytes history takes for one cluster-day (8 GPUs, a job printing 1,000 lines a
//! minute), on each backend.

#[path = "../tests/common/postgres.rs"]
#[allow(dead_code)]
mod postgres;
#[path = "../tests/common/scratch.rs"]
mod scratch;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use std::sync::Arc;

use platform::history::{GpuSample, Outcome};
use platform::overview::{EventRow, RayJob};
use platform::{ClusterPhase, ClusterSummary};
use raydar_server::history::archive::Archive;
use raydar_server::history::record::{Launched, Seen};
use raydar_server::history::store::{Cursor, ListFilter};
use raydar_server::history::{Database, Record, Store};
use scratch::Scratch;
use sqlx::Row;

const CLUSTERS: usize = 100_000;
const NAMESPACES: usize = 40;
const CALLS: usize = 200;
const T0: i64 = 1_790_000_000;

fn records(i: usize) -> Vec<Record> {
    let uid = format!("{i:08x}-0000-4000-8000-{i:012x}");
    let created = T0 + i as i64 * 30;
    let summary = ClusterSummary {
        namespace: format!("team-{}", i % NAMESPACES),
        name: format!("run-{i}"),
        uid: uid.clone(),
        resource_version: "1".into(),
        phase: ClusterPhase::Provisioning,
        workers_ready: 0,
        workers_desired: 4,
        gpus_desired: (i % 3 * 4) as u64,
        created_at: created,
        team: format!("team-{}", i % 20),
        owner: format!("user{}", i % 200),
        template: ["cpu-small", "gpu-single-node", "gpu-multi-node"][i % 3].into(),
        pipeline: if i % 4 == 0 { "nightly".into() } else { String::new() },
        run: if i % 4 == 0 { format!("r{i}") } else { String::new() },
        may_delete: false,
        context: String::new(),
    };
    let manifest = format!(
        r#"{{"kind":"RayCluster","metadata":{{"name":"run-{i}"}},"spec":{{"headGroupSpec":{{"rayStartParams":{{}}}},"workerGroupSpecs":[{{"groupName":"gpu","replicas":4}}]}}}}"#
    );
    let seen = |at: i64, phase: &str, reason: &str| {
        Record::Seen(Seen {
            uid: uid.clone(),
            at,
            phase: phase.into(),
            reason: reason.into(),
            gpus: summary.gpus_desired,
            ready_since: None,
        })
    };
    let failed = i % 10 == 0;
    let mut out = vec![
        Record::Launched(Box::new(Launched {
            summary: summary.clone(),
            parameters: r#"{"workers":4}"#.into(),
            manifest,
            rayjob: String::new(),
            context: String::new(),
        })),
        seen(created * 1000, "Provisioning", ""),
        if failed {
            seen(created * 1000 + 9_000, "Failed", "HeadPodFailed")
        } else {
            seen(created * 1000 + 20_000, "Ready", "")
        },
        Record::Event {
            cluster: uid.clone(),
            uid: format!("ev-{i}"),
            row: EventRow {
                kind: "Normal".into(),
                reason: "CreatedHeadPod".into(),
                message: format!("Created head Pod team-{}/run-{i}-head", i % NAMESPACES),
                object: format!("RayCluster/run-{i}"),
                count: 1,
                last_seen: created + 1,
            },
            first_seen: created + 1,
        },
    ];
    // The newest 1% still live.
    if i < CLUSTERS * 99 / 100 {
        if i % 3 == 1 {
            out.push(Record::Ending {
                uid: uid.clone(),
                outcome: Outcome::TornDown,
                by: summary.owner.clone(),
                why: "torn down through raydar".into(),
            });
        }
        out.push(Record::Deleted { uid, at: (created + 3_600) * 1000, by_rayjob: false });
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn bench(name: &str, database: Database, url: String) {
    let store = Store::open(&database).unwrap();
    store.migrate().await.unwrap();
    let started = Instant::now();
    let mut batch = Vec::with_capacity(5_000);
    for i in 0..CLUSTERS {
        batch.extend(records(i));
        if batch.len() >= 5_000 {
            store.write(&batch).await.unwrap();
            batch.clear();
        }
    }
    store.write(&batch).await.unwrap();
    let written = started.elapsed();
    let everyone: BTreeSet<String> = (0..NAMESPACES).map(|n| format!("team-{n}")).collect();
    // A person who may read a quarter of the namespaces.
    let some: BTreeSet<String> = (0..NAMESPACES / 4).map(|n| format!("team-{n}")).collect();
    let second_page = {
        let (items, _) = store.list(&ListFilter::default(), &everyone, None, 100).await.unwrap();
        let last = items.last().unwrap();
        Cursor { created_at: last.created_at, uid: last.uid.clone() }
    };
    let asks: Vec<(ListFilter, &BTreeSet<String>, Option<&Cursor>)> = vec![
        (ListFilter::default(), &everyone, None),
        (ListFilter::default(), &some, None),
        (ListFilter { owner: Some("user17".into()), ..ListFilter::default() }, &everyone, None),
        (ListFilter { outcome: Some(Outcome::Failed), ..ListFilter::default() }, &everyone, None),
        (ListFilter { text: Some("run-4242".into()), ..ListFilter::default() }, &everyone, None),
        (ListFilter { namespace: Some("team-7".into()), ..ListFilter::default() }, &everyone, None),
        (ListFilter::default(), &everyone, Some(&second_page)),
    ];
    // The baseline: the same rows by primary key, on a pool of its own.
    sqlx::any::install_default_drivers();
    let plain = sqlx::any::AnyPoolOptions::new().max_connections(2).connect(&url).await.unwrap();
    let (mut listed, mut selected) = (Vec::new(), Vec::new());
    for call in 0..CALLS {
        let (filter, namespaces, cursor) = &asks[call % asks.len()];
        // As the API answers: the namespaces history knows (whose access it asks), then the page.
        let at = Instant::now();
        let known = store.namespaces().await.unwrap();
        assert_eq!(known.len(), NAMESPACES);
        let (items, _) = store.list(filter, namespaces, *cursor, 100).await.unwrap();
        listed.push(at.elapsed());
        if items.is_empty() {
            continue;
        }
        let keys: Vec<String> = (1..=items.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT uid, namespace, name, team, owner, template, pipeline, run, created_at, \
             ready_at, deleted_at, phase, phase_reason, outcome, ended_by, ended_why, gpus \
             FROM clusters WHERE uid IN ({})",
            keys.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for item in &items {
            query = query.bind(item.uid.clone());
        }
        let at = Instant::now();
        let rows = query.fetch_all(&plain).await.unwrap();
        selected.push(at.elapsed());
        assert_eq!(rows.len(), items.len());
        let _: String = rows[0].get(0);
    }
    listed.sort();
    selected.sort();
    println!(
        "history list, {name}, {CLUSTERS} clusters (written in {:.1} s): p50 {:.2} ms, p99 {:.2} ms \
         (target ≤ 50 ms) | baseline, the same rows by primary key: p50 {:.2} ms, p99 {:.2} ms",
        written.as_secs_f64(),
        ms(percentile(&listed, 0.5)),
        ms(percentile(&listed, 0.99)),
        ms(percentile(&selected, 0.5)),
        ms(percentile(&selected, 0.99)),
    );
}

/// Bytes the database takes now: SQLite's file (checkpointed) or PostgreSQL's database.
async fn size(database: &Database, url: &str) -> u64 {
    let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(url).await.unwrap();
    match database {
        Database::Sqlite(file) => {
            sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)").execute(&pool).await.unwrap();
            std::fs::metadata(file).unwrap().len()
        }
        Database::Postgres(_) => {
            sqlx::raw_sql("CHECKPOINT").execute(&pool).await.unwrap();
            let row = sqlx::query("SELECT CAST(pg_database_size(current_database()) AS BIGINT)")
                .fetch_one(&pool)
                .await
                .unwrap();
            row.get::<i64, _>(0) as u64
        }
    }
}

/// Bytes history takes for one cluster-day: a cluster of 8 GPUs whose Ray job prints 1,000
/// lines a minute for 24 hours, its log archived as the archiver does (a chunk every 5 s), its
/// GPU use every 5 minutes, its events and phases; measured as the database's growth.
async fn cluster_day(name: &str, database: Database, url: String) {
    let store = Store::open(&database).unwrap();
    store.migrate().await.unwrap();
    let before = size(&database, &url).await;
    let mut launch = records(0);
    launch.truncate(4);
    let uid = format!("{:08x}-0000-4000-8000-{:012x}", 0, 0);
    launch.push(Record::Job {
        cluster: uid.clone(),
        job: RayJob {
            id: "raysubmit_day".into(),
            submission_id: Some("raysubmit_day".into()),
            status: "RUNNING".into(),
            entrypoint: "python train.py --epochs 100".into(),
            ..RayJob::default()
        },
    });
    store.write(&launch).await.unwrap();
    let mut archive = Archive::new(&uid, "raysubmit_day", 1 << 30);
    let mut batch = Vec::new();
    let (mut line, lines_per_flush) = (1u64, 1000 / 12);
    for flush in 0..(24 * 60 * 12) {
        let lines: Vec<Arc<str>> = (0..lines_per_flush)
            .map(|i| {
                let n = line + i;
                Arc::from(format!(
                    "(RayTrainWorker pid=4242, ip=10.0.3.17) step {n}: loss={:.4} lr=3.0e-04 \
                     tokens/s={} grad_norm={:.3}",
                    2.0 / (1.0 + n as f64 / 1e5),
                    120_000 + (n * 7919) % 9000,
                    0.5 + (n % 97) as f64 / 100.0
                ))
            })
            .collect();
        batch.extend(archive.take(line, &lines));
        batch.extend(archive.flush());
        line += lines_per_flush;
        if flush % 60 == 59 {
            // Every 5 minutes: the GPUs' step.
            batch.push(Record::GpuUse {
                cluster: uid.clone(),
                sample: GpuSample {
                    at: T0 + flush as i64 * 5,
                    seconds: 300,
                    gpus: 8,
                    util: Some(85.0),
                    busy_s: 2400,
                    idle_s: 0,
                },
            });
        }
        if batch.len() >= 500 {
            store.write(&batch).await.unwrap();
            batch.clear();
        }
    }
    store.write(&batch).await.unwrap();
    let grown = size(&database, &url).await.saturating_sub(before);
    println!(
        "history per cluster-day, {name}: {:.1} MiB ({} log lines, {:.1} MiB of text; 288 GPU steps \
         of 8 GPUs; events and phases)",
        grown as f64 / (1 << 20) as f64,
        line - 1,
        archive.running().bytes as f64 / (1 << 20) as f64,
    );
}

#[tokio::main]
async fn main() {
    let scratch = Scratch::new("sqlite");
    let file = scratch.0.join("raydar.db");
    let url = format!("sqlite://{}", file.display());
    bench("SQLite", Database::Sqlite(file), url).await;
    let day = scratch.0.join("day.db");
    cluster_day("SQLite", Database::Sqlite(day.clone()), format!("sqlite://{}", day.display()))
        .await;
    let server = postgres::Postgres::start();
    bench("PostgreSQL", Database::Postgres(server.url()), server.url()).await;
    // A database of its own for the day, on the same server.
    let admin = sqlx::any::AnyPoolOptions::new().connect(&server.url()).await.unwrap();
    sqlx::raw_sql("CREATE DATABASE day").execute(&admin).await.unwrap();
    let day = server.url().rsplit_once('/').map(|(base, _)| format!("{base}/day")).unwrap();
    cluster_day("PostgreSQL", Database::Postgres(day.clone()), day).await;
}
