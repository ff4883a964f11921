//! The history database: SQLite (a file, WAL) or PostgreSQL (several replicas share one), both
//! through sqlx's Any driver, so one set of migrations (`server/migrations`) and one set of
//! queries serve both. Queries number their parameters (`$1`), which both read.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use platform::history::{
    ArchiveState, ClusterRecord, GpuSample, LogArchive, Outcome, PastCluster, PastJob, PhaseChange,
    Termination,
};
use platform::overview::EventRow;
use serde_json::Value;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row};

use super::record::{Launched, Record};
use crate::metrics::{label, Histograms};

/// Where history is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file, made when missing (its folder too).
    Sqlite(PathBuf),
    /// A PostgreSQL server, by its URL (`postgres://user@host:port/db`).
    Postgres(String),
}

impl Database {
    /// The URL sqlx connects to.
    fn url(&self) -> String {
        match self {
            Database::Sqlite(path) => {
                // The path is the URL's, percent-encoded where a URL would read it otherwise.
                let mut encoded = String::new();
                for c in path.to_string_lossy().chars() {
                    match c {
                        '%' | '?' | '#' | ' ' => encoded.push_str(&format!("%{:02X}", c as u32)),
                        c => encoded.push(c),
                    }
                }
                format!("sqlite://{encoded}?mode=rwc")
            }
            Database::Postgres(url) => url.clone(),
        }
    }

    /// Names it in messages, without a password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => format!("SQLite at {}", path.display()),
            Database::Postgres(url) => match reqwest::Url::parse(url) {
                Ok(mut url) => {
                    let _ = url.set_password(None);
                    format!("PostgreSQL at {url}")
                }
                Err(_) => "PostgreSQL".into(),
            },
        }
    }
}

/// How long one statement (or one batch in a transaction) may take before it counts as failed.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a call waits for a connection: a database that does not take one this soon is away.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The history database: cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// Whether it is PostgreSQL (which indexes the search's words: [`Store::migrate`]).
    postgres: bool,
    /// Names it in messages.
    pub name: String,
    /// How long its statements took, by what they do.
    timings: Histograms,
}

/// A failed database call, in words.
pub type StoreResult<T> = Result<T, String>;

/// Runs `call` within [`STATEMENT_TIMEOUT`], its error in words.
async fn timed<T, E: std::fmt::Display>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(STATEMENT_TIMEOUT, call).await {
        Ok(result) => result.map_err(|e| {
            let e = e.to_string();
            // sqlx says only that the pool timed out; what that means here is the database.
            match e.contains("pool timed out") {
                true => format!(
                    "{what}: no connection within {} s (is it running and reachable?)",
                    CONNECT_TIMEOUT.as_secs()
                ),
                false => format!("{what}: {e}"),
            }
        }),
        Err(_) => Err(format!("{what}: no answer within {} s", STATEMENT_TIMEOUT.as_secs())),
    }
}

/// Filters of the history list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub team: Option<String>,
    pub owner: Option<String>,
    pub template: Option<String>,
    pub namespace: Option<String>,
    pub outcome: Option<Outcome>,
    /// Clusters that lived at some time from this, Unix seconds...
    pub since: Option<i64>,
    /// ...until this.
    pub until: Option<i64>,
    /// Words looked for in the name, owner, team, template, pipeline, run and RayJob.
    pub text: Option<String>,
    /// Clusters made for RayJobs only, or launched on their own only.
    pub kind: Option<Kind>,
}

/// Which clusters a reader of the history list may see: those in some namespaces of any
/// Kubernetes cluster, or, of several, those in each one's namespaces (its RBAC's answer), by the
/// name history gives it (`''` the home one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readable {
    Anywhere(BTreeSet<String>),
    ByContext(Vec<(String, BTreeSet<String>)>),
}

impl From<&BTreeSet<String>> for Readable {
    fn from(namespaces: &BTreeSet<String>) -> Self {
        Readable::Anywhere(namespaces.clone())
    }
}

/// What made a cluster, as the list filters by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Launched on its own (from a template, or by hand).
    Cluster,
    /// Made by KubeRay for a RayJob.
    RayJob,
}

/// Where a page of the history list starts: after this cluster (newest first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub uid: String,
}

impl Cursor {
    /// The text an API answer carries.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at, self.uid)
    }

    /// A cursor from [`Cursor::encode`]'s text.
    pub fn parse(text: &str) -> Option<Cursor> {
        let (created, uid) = text.split_once('.')?;
        // Exactly what the API's pattern allows: ^[0-9]{1,18}\.[0-9a-fA-F-]{1,64}$
        let valid_created =
            (1..=18).contains(&created.len()) && created.bytes().all(|b| b.is_ascii_digit());
        let valid_uid =
            (1..=64).contains(&uid.len()) && uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        if !(valid_created && valid_uid) {
            return None;
        }
        Some(Cursor { created_at: created.parse().ok()?, uid: uid.to_owned() })
    }
}

/// A statement with numbered parameters, written as it is built.
#[derive(Default)]
struct Sql {
    text: String,
    args: Vec<Arg>,
}

enum Arg {
    Text(String),
    Int(i64),
}

impl Sql {
    /// Adds a parameter; its placeholder, to write into the text.
    fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    /// A clause: the cluster's namespace is one of `namespaces` (not empty). `|| ''` keeps the
    /// planner off the namespace index: reading a whole namespace to sort it costs far more
    /// than walking the listing index newest first (SQLite, without statistics, would choose the
    /// former: 170 ms at 100,000 clusters).
    fn namespaces(&mut self, namespaces: &BTreeSet<String>) -> String {
        let listed: Vec<String> =
            namespaces.iter().map(|ns| self.arg(Arg::Text(ns.clone()))).collect();
        format!("namespace || '' IN ({})", listed.join(", "))
    }

    fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
        let mut query = sqlx::query(AssertSqlSafe(self.text.clone()));
        for arg in &self.args {
            query = match arg {
                Arg::Text(text) => query.bind(text.clone()),
                Arg::Int(n) => query.bind(*n),
            };
        }
        query
    }
}

const CLUSTER_COLUMNS: &str = "uid, namespace, name, team, owner, template, pipeline, run, \
    created_at, ready_at, deleted_at, phase, phase_reason, outcome, ended_by, ended_why, gpus, \
    rayjob, context";

fn past_cluster(row: &AnyRow) -> Result<PastCluster, sqlx::Error> {
    let outcome: String = row.try_get("outcome")?;
    Ok(PastCluster {
        uid: row.try_get("uid")?,
        namespace: row.try_get("namespace")?,
        name: row.try_get("name")?,
        team: row.try_get("team")?,
        owner: row.try_get("owner")?,
        template: row.try_get("template")?,
        pipeline: row.try_get("pipeline")?,
        run: row.try_get("run")?,
        created_at: row.try_get("created_at")?,
        ready_at: row.try_get("ready_at")?,
        deleted_at: row.try_get("deleted_at")?,
        phase: row.try_get("phase")?,
        phase_reason: row.try_get("phase_reason")?,
        outcome: Outcome::parse(&outcome).unwrap_or(Outcome::Deleted),
        ended_by: row.try_get("ended_by")?,
        ended_why: row.try_get("ended_why")?,
        gpus: row.try_get::<i64, _>("gpus")?.max(0) as u64,
        rayjob: row.try_get("rayjob")?,
        // As stored: `''` the home Kubernetes cluster (the API names it).
        context: row.try_get("context")?,
    })
}

/// Consecutive lines of an archived log, as stored: gzip-compressed text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogChunk {
    /// The number of its first line, from 1, and how many.
    pub first_line: u64,
    pub lines: u64,
    pub data: Vec<u8>,
}

/// The rows `sql` gives for a cluster, `$1` its uid and `$2` the most rows, each made by `each`.
async fn of_cluster<T>(
    pool: &AnyPool,
    sql: &'static str,
    (uid, limit): (&str, usize),
    each: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Vec<T>, sqlx::Error> {
    let rows = sqlx::query(sql).bind(uid.to_owned()).bind(limit as i64).fetch_all(pool).await?;
    rows.iter().map(each).collect()
}

/// GPU steps a cluster's record carries: 35 days of 5-minute steps.
const MAX_GPU_STEPS: usize = 10_080;

/// Phases a cluster's record lists (a cluster changes phase a handful of times).
const MAX_PHASES: usize = 10_000;

/// Jobs (and pod terminations) a cluster's record lists, newest first.
const MAX_JOBS: usize = 500;

fn past_job(row: &AnyRow) -> Result<PastJob, sqlx::Error> {
    let count = |column: &str| -> Result<u64, sqlx::Error> {
        Ok(row.try_get::<i64, _>(column)?.max(0) as u64)
    };
    let state: String = row.try_get("log_state")?;
    Ok(PastJob {
        id: row.try_get("id")?,
        status: row.try_get("status")?,
        entrypoint: row.try_get("entrypoint")?,
        message: row.try_get("message")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        log: LogArchive {
            state: ArchiveState::parse(&state),
            note: row.try_get("log_note")?,
            lines: count("log_lines")?,
            bytes: count("log_bytes")?,
        },
    })
}

impl Store {
    /// A pool for `database` that connects when first used: opening never waits for the
    /// database, so raydar starts (and serves its live pages) while it is away.
    pub fn open(database: &Database) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        if let Database::Sqlite(path) = database {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
            }
        }
        let sqlite = matches!(database, Database::Sqlite(_));
        let pool = AnyPoolOptions::new()
            // SQLite writes one at a time whatever the pool; readers share the rest (WAL).
            .max_connections(if sqlite { 4 } else { 8 })
            .acquire_timeout(CONNECT_TIMEOUT)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // WAL: readers never wait for the writer; NORMAL is durable at each
                        // checkpoint, and a crash loses at most the last transactions.
                        sqlx::raw_sql("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                            PRAGMA busy_timeout = 5000;")
                            .execute(conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_lazy(&database.url())
            .map_err(|e| format!("{}: {e}", database.describe()))?;
        let timings = Histograms::default();
        Ok(Store { pool, postgres: !sqlite, name: database.describe(), timings })
    }

    /// How long its statements took, by what they do (`raydar_history_db_seconds`).
    pub fn timings(&self) -> &Histograms {
        &self.timings
    }

    /// Runs `call`, `what` it does (reading history, ...), as [`timed`] does, and times it.
    async fn measured<T, E: std::fmt::Display>(
        &self,
        what: &'static str,
        call: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, String> {
        self.timings.time(label("op", what), timed(&self.doing(what), call)).await
    }

    /// `what` (reading history, ...) and the database it is done to, for messages.
    fn doing(&self, what: &str) -> String {
        format!("{what} ({})", self.name)
    }

    /// Brings the schema up to date (every replica may: the migrator locks).
    pub async fn migrate(&self) -> StoreResult<()> {
        self.measured(
            "migrating the history database",
            sqlx::migrate!("./migrations").run(&self.pool),
        )
        .await?;
        if self.postgres {
            // PostgreSQL finds the search's words by trigram index (pg_trgm, in PostgreSQL's
            // contrib and trusted: a database's owner may add it): a word in 100,000 clusters
            // in under a millisecond, not a 25 ms scan. Not a migration, as SQLite has no such
            // thing (its scan of the listing index is 15 ms); without it searches are slower,
            // not wrong.
            let indexed = self
                .measured(
                    "indexing the history search",
                    sqlx::raw_sql(
                        "CREATE EXTENSION IF NOT EXISTS pg_trgm; \
                     CREATE INDEX IF NOT EXISTS clusters_search ON clusters \
                     USING gin (search gin_trgm_ops);",
                    )
                    .execute(&self.pool),
                )
                .await;
            if let Err(e) = indexed {
                tracing::warn!("history search runs without its index: {e}");
            }
        }
        Ok(())
    }

    /// Writes `batch` in one transaction: all of it or, on an error, none.
    pub async fn write(&self, batch: &[Record]) -> StoreResult<()> {
        self.measured("writing history", async {
            let mut tx = self.pool.begin().await?;
            let mut sizes: HashMap<&str, i64> = HashMap::new();
            for record in batch {
                write_one(&mut tx, record).await?;
                let uid = match record {
                    Record::Launched(l) => &l.summary.uid,
                    Record::Seen(s) => &s.uid,
                    Record::Ending { uid, .. } | Record::Deleted { uid, .. } => uid,
                    Record::Event { cluster, .. } | Record::Job { cluster, .. } => cluster,
                    Record::JobLog(chunk) => &chunk.cluster,
                    Record::JobLogState { cluster, .. }
                    | Record::Terminated { cluster, .. }
                    | Record::GpuUse { cluster, .. } => cluster,
                    Record::Relisted { .. } => continue,
                };
                *sizes.entry(uid).or_default() += record.size() as i64;
            }
            for (uid, bytes) in sizes {
                sqlx::query("UPDATE clusters SET bytes = bytes + $2 WHERE uid = $1")
                    .bind(uid.to_owned())
                    .bind(bytes)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })
        .await
    }

    /// One page of the clusters `readable` lets the reader see that `filter` asks for, newest
    /// first, at most `limit`, after `cursor`; and the cursor of the next page.
    pub async fn list(
        &self,
        filter: &ListFilter,
        readable: impl Into<Readable>,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<(Vec<PastCluster>, Option<Cursor>)> {
        let mut sql = Sql::default();
        let mut clauses = Vec::new();
        let mut seen = Vec::new();
        match readable.into() {
            Readable::Anywhere(namespaces) if namespaces.is_empty() => {}
            Readable::Anywhere(namespaces) => seen.push(sql.namespaces(&namespaces)),
            Readable::ByContext(each) => {
                for (context, namespaces) in each.iter().filter(|(_, n)| !n.is_empty()) {
                    let context = sql.arg(Arg::Text(context.clone()));
                    seen.push(format!("(context = {context} AND {})", sql.namespaces(namespaces)));
                }
            }
        }
        if seen.is_empty() {
            return Ok((Vec::new(), None));
        }
        clauses.push(format!("({})", seen.join(" OR ")));
        for (column, value) in [
            ("team", &filter.team),
            ("owner", &filter.owner),
            ("template", &filter.template),
            ("namespace", &filter.namespace),
        ] {
            if let Some(value) = value {
                clauses.push(format!("{column} = {}", sql.arg(Arg::Text(value.clone()))));
            }
        }
        if let Some(outcome) = filter.outcome {
            clauses.push(format!("outcome = {}", sql.arg(Arg::Text(outcome.as_str().into()))));
        }
        match filter.kind {
            Some(Kind::Cluster) => clauses.push("rayjob = ''".into()),
            Some(Kind::RayJob) => clauses.push("rayjob <> ''".into()),
            None => {}
        }
        if let Some(since) = filter.since {
            let since = sql.arg(Arg::Int(since * 1000));
            clauses.push(format!("(deleted_at IS NULL OR deleted_at >= {since})"));
        }
        if let Some(until) = filter.until {
            clauses.push(format!("created_at <= {}", sql.arg(Arg::Int(until))));
        }
        if let Some(text) = filter.text.as_deref() {
            for word in text.split_whitespace().take(8) {
                let escaped: String = word
                    .to_lowercase()
                    .chars()
                    .flat_map(|c| match c {
                        '%' | '_' | '\\' => vec!['\\', c],
                        c => vec![c],
                    })
                    .collect();
                let pattern = sql.arg(Arg::Text(format!("%{escaped}%")));
                clauses.push(format!("search LIKE {pattern} ESCAPE '\\'"));
            }
        }
        if let Some(cursor) = cursor {
            let created = sql.arg(Arg::Int(cursor.created_at));
            let uid = sql.arg(Arg::Text(cursor.uid.clone()));
            clauses.push(format!(
                "(created_at < {created} OR (created_at = {created} AND uid < {uid}))"
            ));
        }
        let limit_arg = sql.arg(Arg::Int(limit as i64 + 1));
        sql.text = format!(
            "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE {} \
             ORDER BY created_at DESC, uid DESC LIMIT {limit_arg}",
            clauses.join(" AND ")
        );
        let rows = self.measured("reading history", sql.query().fetch_all(&self.pool)).await?;
        let mut items = rows
            .iter()
            .map(past_cluster)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("reading history: {e}"))?;
        let next = (items.len() > limit).then(|| {
            items.truncate(limit);
            let last = &items[limit - 1];
            Cursor { created_at: last.created_at, uid: last.uid.clone() }
        });
        Ok((items, next))
    }

    /// Of the clusters launched from a template and created since `since` (Unix seconds) that
    /// became Ready, newest first and at most `limit`: their namespace, template, and the
    /// milliseconds from creation to Ready.
    pub async fn ready_times(
        &self,
        since: i64,
        limit: usize,
    ) -> StoreResult<Vec<(String, String, i64)>> {
        let rows = self
            .measured(
                "reading history",
                sqlx::query(
                    "SELECT namespace, template, ready_at - created_at * 1000 FROM clusters \
                 WHERE created_at >= $1 AND ready_at IS NOT NULL AND template <> '' \
                 ORDER BY created_at DESC LIMIT $2",
                )
                .bind(since)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool),
            )
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| format!("reading history: {e}"))
    }

    /// The namespaces history has clusters of.
    pub async fn namespaces(&self) -> StoreResult<BTreeSet<String>> {
        let rows = self
            .measured(
                "reading history",
                sqlx::query("SELECT name FROM namespaces").fetch_all(&self.pool),
            )
            .await?;
        rows.iter()
            .map(|row| row.try_get::<String, _>(0))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("reading history: {e}"))
    }

    /// Everything kept of the cluster `uid`, with at most `max_events` of its events (newest).
    pub async fn record(&self, uid: &str, max_events: usize) -> StoreResult<Option<ClusterRecord>> {
        self.measured("reading history", async {
            let sql = format!(
                "SELECT {CLUSTER_COLUMNS}, parameters, manifest FROM clusters WHERE uid = $1"
            );
            let Some(row) = sqlx::query(AssertSqlSafe(sql))
                .bind(uid.to_owned())
                .fetch_optional(&self.pool)
                .await?
            else {
                return Ok::<_, sqlx::Error>(None);
            };
            let cluster = past_cluster(&row)?;
            let json = |column: &str| -> Result<Value, sqlx::Error> {
                let text: String = row.try_get(column)?;
                Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
            };
            let (parameters, manifest) = (json("parameters")?, json("manifest")?);
            let pool = &self.pool;
            let phases = of_cluster(
                pool,
                "SELECT at, phase, reason FROM phases WHERE cluster_uid = $1 \
                 ORDER BY at, phase LIMIT $2",
                (uid, MAX_PHASES),
                |row| {
                    Ok(PhaseChange {
                        at: row.try_get("at")?,
                        phase: row.try_get("phase")?,
                        reason: row.try_get("reason")?,
                    })
                },
            )
            .await?;
            let events = of_cluster(
                pool,
                "SELECT kind, reason, message, object, count, last_seen FROM events \
                 WHERE cluster_uid = $1 ORDER BY last_seen DESC, uid LIMIT $2",
                (uid, max_events),
                |row| {
                    Ok(EventRow {
                        kind: row.try_get("kind")?,
                        reason: row.try_get("reason")?,
                        message: row.try_get("message")?,
                        object: row.try_get("object")?,
                        count: row.try_get::<i64, _>("count")?.clamp(0, u32::MAX as i64) as u32,
                        last_seen: row.try_get("last_seen")?,
                    })
                },
            )
            .await?;
            let jobs = of_cluster(
                pool,
                "SELECT id, status, entrypoint, message, started_at, ended_at, log_state, \
                 log_note, log_lines, log_bytes FROM jobs WHERE cluster_uid = $1 \
                 ORDER BY COALESCE(started_at, updated_at) DESC, id LIMIT $2",
                (uid, MAX_JOBS),
                past_job,
            )
            .await?;
            let terminations = of_cluster(
                pool,
                "SELECT pod, container, finished_at, reason, exit_code, restarts, last_lines \
                 FROM terminations WHERE cluster_uid = $1 \
                 ORDER BY finished_at DESC, pod, container LIMIT $2",
                (uid, MAX_JOBS),
                |row| {
                    Ok(Termination {
                        pod: row.try_get("pod")?,
                        container: row.try_get("container")?,
                        finished_at: row.try_get("finished_at")?,
                        reason: row.try_get("reason")?,
                        exit_code: row
                            .try_get::<i64, _>("exit_code")?
                            .clamp(i32::MIN as i64, i32::MAX as i64)
                            as i32,
                        restarts: row.try_get::<i64, _>("restarts")?.clamp(0, u32::MAX as i64)
                            as u32,
                        last_lines: row.try_get("last_lines")?,
                    })
                },
            )
            .await?;
            let gpu_use = of_cluster(
                pool,
                "SELECT at, seconds, gpus, util_milli, busy_s, idle_s FROM gpu_use \
                 WHERE cluster_uid = $1 ORDER BY at LIMIT $2",
                (uid, MAX_GPU_STEPS),
                |row| {
                    let count = |column: &str| -> Result<u64, sqlx::Error> {
                        Ok(row.try_get::<i64, _>(column)?.max(0) as u64)
                    };
                    Ok(GpuSample {
                        at: row.try_get("at")?,
                        seconds: count("seconds")?.min(u64::from(u32::MAX)) as u32,
                        gpus: count("gpus")?.min(u64::from(u32::MAX)) as u32,
                        util: row
                            .try_get::<Option<i64>, _>("util_milli")?
                            .map(|u| u as f64 / 1000.0),
                        busy_s: count("busy_s")?,
                        idle_s: count("idle_s")?,
                    })
                },
            )
            .await?;
            Ok(Some(ClusterRecord {
                cluster,
                parameters,
                manifest,
                phases,
                events,
                jobs,
                terminations,
                gpu_use,
            }))
        })
        .await
    }

    /// The cluster `uid`'s row of the history list.
    pub async fn cluster(&self, uid: &str) -> StoreResult<Option<PastCluster>> {
        let sql = format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE uid = $1");
        let row = self
            .measured(
                "reading history",
                sqlx::query(AssertSqlSafe(sql)).bind(uid.to_owned()).fetch_optional(&self.pool),
            )
            .await?;
        row.as_ref().map(past_cluster).transpose().map_err(|e| format!("reading history: {e}"))
    }

    /// The job `job` of the cluster `uid`, as history keeps it.
    pub async fn job(&self, uid: &str, job: &str) -> StoreResult<Option<PastJob>> {
        let row = self
            .measured(
                "reading history",
                sqlx::query(
                    "SELECT id, status, entrypoint, message, started_at, ended_at, log_state, \
                 log_note, log_lines, log_bytes FROM jobs WHERE cluster_uid = $1 AND id = $2",
                )
                .bind(uid.to_owned())
                .bind(job.to_owned())
                .fetch_optional(&self.pool),
            )
            .await?;
        row.as_ref().map(past_job).transpose().map_err(|e| format!("reading history: {e}"))
    }

    /// At most `max` chunks of the archived log of job `job` of cluster `uid`, in order, from
    /// the one holding line `from` (numbered from 1).
    pub async fn log_chunks(
        &self,
        uid: &str,
        job: &str,
        from: u64,
        max: usize,
    ) -> StoreResult<Vec<LogChunk>> {
        let rows = self.measured("reading history",
            sqlx::query(
                "SELECT first_line, lines, data FROM job_logs WHERE cluster_uid = $1 AND job = $2 \
                 AND first_line + lines > $3 ORDER BY first_line LIMIT $4",
            )
            .bind(uid.to_owned())
            .bind(job.to_owned())
            .bind(from.min(i64::MAX as u64) as i64)
            .bind(max as i64)
            .fetch_all(&self.pool),
        )
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LogChunk {
                    first_line: row.try_get::<i64, _>(0)?.max(0) as u64,
                    lines: row.try_get::<i64, _>(1)?.max(0) as u64,
                    data: row.try_get(2)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| format!("reading history: {e}"))
    }

    /// Removes what retention no longer keeps: clusters deleted before `before` (Unix
    /// milliseconds), then, oldest deletion first, clusters until what is kept is at most
    /// `max_bytes`. Live clusters stay. Returns how many clusters were removed.
    pub async fn trim(&self, before: i64, max_bytes: u64) -> StoreResult<u64> {
        let old = self
            .measured(
                "trimming history",
                sqlx::query(
                    "SELECT uid FROM clusters WHERE deleted_at IS NOT NULL AND deleted_at < $1",
                )
                .bind(before)
                .fetch_all(&self.pool),
            )
            .await?;
        let mut doomed: Vec<String> =
            old.iter().filter_map(|row| row.try_get::<String, _>(0).ok()).collect();
        let total: i64 = self
            .measured(
                "trimming history",
                sqlx::query("SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM clusters")
                    .fetch_one(&self.pool),
            )
            .await?
            .try_get(0)
            .map_err(|e| format!("trimming history: {e}"))?;
        let mut excess = total - max_bytes.min(i64::MAX as u64) as i64;
        if excess > 0 {
            let oldest = self
                .measured(
                    "trimming history",
                    sqlx::query(
                        "SELECT uid, bytes, deleted_at FROM clusters WHERE deleted_at IS NOT NULL \
                     ORDER BY deleted_at, uid",
                    )
                    .fetch_all(&self.pool),
                )
                .await?;
            for row in &oldest {
                let (Ok(uid), Ok(bytes), Ok(deleted)) = (
                    row.try_get::<String, _>(0),
                    row.try_get::<i64, _>(1),
                    row.try_get::<i64, _>(2),
                ) else {
                    continue;
                };
                if excess <= 0 {
                    break;
                }
                if deleted >= before {
                    doomed.push(uid);
                }
                excess -= bytes;
            }
        }
        for chunk in doomed.chunks(200) {
            let mut sql = Sql::default();
            let listed: Vec<String> =
                chunk.iter().map(|uid| sql.arg(Arg::Text(uid.clone()))).collect();
            let listed = listed.join(", ");
            self.measured("trimming history", async {
                let mut tx = self.pool.begin().await?;
                for table in ["events", "phases", "jobs", "job_logs", "terminations", "gpu_use"] {
                    sql.text = format!("DELETE FROM {table} WHERE cluster_uid IN ({listed})");
                    sql.query().execute(&mut *tx).await?;
                }
                sql.text = format!("DELETE FROM clusters WHERE uid IN ({listed})");
                sql.query().execute(&mut *tx).await?;
                tx.commit().await
            })
            .await?;
        }
        Ok(doomed.len() as u64)
    }
}

/// What the list's search looks in for a cluster launched as `launched`: its words, lowercased,
/// as the search's are.
fn search_words(launched: &Launched) -> String {
    let s = &launched.summary;
    let words = [&s.name, &s.owner, &s.team, &s.template, &s.pipeline, &s.run, &launched.rayjob];
    words.map(|word| word.to_lowercase()).join(" ").trim_end().to_owned()
}

/// Writes one record within a transaction.
async fn write_one(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    record: &Record,
) -> Result<(), sqlx::Error> {
    let now = crate::unix_now_ms();
    match record {
        Record::Launched(launched) => {
            let s = &launched.summary;
            sqlx::query(
                "INSERT INTO clusters (uid, namespace, name, team, owner, template, pipeline, run, \
                 parameters, manifest, created_at, gpus, updated_at, search, rayjob, context) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                 ON CONFLICT (uid) DO NOTHING",
            )
            .bind(s.uid.clone())
            .bind(s.namespace.clone())
            .bind(s.name.clone())
            .bind(s.team.clone())
            .bind(s.owner.clone())
            .bind(s.template.clone())
            .bind(s.pipeline.clone())
            .bind(s.run.clone())
            .bind(launched.parameters.clone())
            .bind(launched.manifest.clone())
            .bind(s.created_at)
            .bind(s.gpus_desired.min(i64::MAX as u64) as i64)
            .bind(now)
            .bind(search_words(launched))
            .bind(launched.rayjob.clone())
            .bind(launched.context.clone())
            .execute(&mut **tx)
            .await?;
            sqlx::query("INSERT INTO namespaces (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
                .bind(s.namespace.clone())
                .execute(&mut **tx)
                .await?;
        }
        Record::Seen(seen) => {
            let current = sqlx::query("SELECT phase, phase_reason FROM clusters WHERE uid = $1")
                .bind(seen.uid.clone())
                .fetch_optional(&mut **tx)
                .await?;
            let Some(current) = current else { return Ok(()) };
            let (phase, reason): (String, String) = (current.try_get(0)?, current.try_get(1)?);
            if (phase.as_str(), reason.as_str()) != (seen.phase.as_str(), seen.reason.as_str()) {
                sqlx::query(
                    "INSERT INTO phases (cluster_uid, at, phase, reason) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(seen.uid.clone())
                .bind(seen.at)
                .bind(seen.phase.clone())
                .bind(seen.reason.clone())
                .execute(&mut **tx)
                .await?;
            }
            let ready = (seen.phase == "Ready").then_some(seen.at);
            sqlx::query(
                "UPDATE clusters SET phase = $2, phase_reason = $3, \
                 ready_at = COALESCE(ready_at, $4), \
                 gpus = CASE WHEN gpus < $5 THEN $5 ELSE gpus END, updated_at = $6 WHERE uid = $1",
            )
            .bind(seen.uid.clone())
            .bind(seen.phase.clone())
            .bind(seen.reason.clone())
            .bind(seen.ready_since.or(ready))
            .bind(seen.gpus.min(i64::MAX as u64) as i64)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        Record::Ending { uid, outcome, by, why } => {
            // The deletion may have been seen already (the watch can be quicker than the
            // action's own record): then it is the outcome too.
            sqlx::query(
                "UPDATE clusters SET ended_by = $2, ended_why = $3, \
                 outcome = CASE WHEN deleted_at IS NULL THEN outcome ELSE $4 END, \
                 ending = $4, updated_at = $5 WHERE uid = $1",
            )
            .bind(uid.clone())
            .bind(by.clone())
            .bind(why.clone())
            .bind(outcome.as_str().to_owned())
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        Record::Deleted { uid, at, by_rayjob } => deleted(tx, uid, *at, *by_rayjob).await?,
        Record::Relisted { context, live, at } => {
            // Another Kubernetes cluster's rows are not this watch's to end.
            let held =
                sqlx::query("SELECT uid FROM clusters WHERE deleted_at IS NULL AND context = $1")
                    .bind(context.clone())
                    .fetch_all(&mut **tx)
                    .await?;
            let live: std::collections::HashSet<&str> = live.iter().map(String::as_str).collect();
            for row in held {
                let uid: String = row.try_get(0)?;
                if live.contains(uid.as_str()) {
                    continue;
                }
                sqlx::query(
                    "UPDATE clusters SET ended_why = 'deleted while raydar was not watching' \
                     WHERE uid = $1 AND ended_why = ''",
                )
                .bind(uid.clone())
                .execute(&mut **tx)
                .await?;
                deleted(tx, &uid, *at, false).await?;
            }
        }
        Record::Event { cluster, uid, row, first_seen } => {
            sqlx::query(
                "INSERT INTO events (cluster_uid, uid, kind, reason, message, object, count, \
                 first_seen, last_seen) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 \
                 WHERE EXISTS (SELECT 1 FROM clusters WHERE uid = $1) \
                 ON CONFLICT (cluster_uid, uid) DO UPDATE SET message = excluded.message, \
                 count = excluded.count, last_seen = excluded.last_seen",
            )
            .bind(cluster.clone())
            .bind(uid.clone())
            .bind(row.kind.clone())
            .bind(row.reason.clone())
            .bind(row.message.clone())
            .bind(row.object.clone())
            .bind(row.count as i64)
            .bind(*first_seen)
            .bind(row.last_seen)
            .execute(&mut **tx)
            .await?;
        }
        Record::Job { cluster, job } => {
            sqlx::query(
                "INSERT INTO jobs (cluster_uid, id, status, entrypoint, message, started_at, \
                 ended_at, updated_at) SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
                 WHERE EXISTS (SELECT 1 FROM clusters WHERE uid = $1) \
                 ON CONFLICT (cluster_uid, id) DO UPDATE SET status = excluded.status, \
                 message = excluded.message, started_at = excluded.started_at, \
                 ended_at = excluded.ended_at, updated_at = excluded.updated_at",
            )
            .bind(cluster.clone())
            .bind(job.id.clone())
            .bind(job.status.clone())
            .bind(job.entrypoint.clone())
            .bind(job.message.clone().unwrap_or_default())
            .bind(job.start_time.filter(|t| *t > 0))
            .bind(job.end_time.filter(|t| *t > 0))
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        Record::JobLog(chunk) => {
            if chunk.replace {
                sqlx::query("DELETE FROM job_logs WHERE cluster_uid = $1 AND job = $2")
                    .bind(chunk.cluster.clone())
                    .bind(chunk.job.clone())
                    .execute(&mut **tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO job_logs (cluster_uid, job, first_line, lines, data) \
                 SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM jobs \
                 WHERE cluster_uid = $1 AND id = $2) \
                 ON CONFLICT (cluster_uid, job, first_line) DO UPDATE SET lines = excluded.lines, \
                 data = excluded.data",
            )
            .bind(chunk.cluster.clone())
            .bind(chunk.job.clone())
            .bind(chunk.first_line.min(i64::MAX as u64) as i64)
            .bind(chunk.lines.min(i64::MAX as u64) as i64)
            .bind(chunk.data.clone())
            .execute(&mut **tx)
            .await?;
        }
        Record::GpuUse { cluster, sample } => {
            sqlx::query(
                "INSERT INTO gpu_use (cluster_uid, at, seconds, gpus, util_milli, busy_s, idle_s) \
                 SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM clusters \
                 WHERE uid = $1) ON CONFLICT (cluster_uid, at) DO NOTHING",
            )
            .bind(cluster.clone())
            .bind(sample.at)
            .bind(i64::from(sample.seconds))
            .bind(i64::from(sample.gpus))
            .bind(sample.util.map(|u| (u * 1000.0).round() as i64))
            .bind(sample.busy_s.min(i64::MAX as u64) as i64)
            .bind(sample.idle_s.min(i64::MAX as u64) as i64)
            .execute(&mut **tx)
            .await?;
        }
        Record::Terminated { cluster, termination: t } => {
            sqlx::query(
                "INSERT INTO terminations (cluster_uid, pod, container, finished_at, reason, \
                 exit_code, restarts, last_lines) SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
                 WHERE EXISTS (SELECT 1 FROM clusters WHERE uid = $1) \
                 ON CONFLICT (cluster_uid, pod, container, finished_at) DO UPDATE SET \
                 last_lines = CASE WHEN excluded.last_lines = '' THEN terminations.last_lines \
                 ELSE excluded.last_lines END",
            )
            .bind(cluster.clone())
            .bind(t.pod.clone())
            .bind(t.container.clone())
            .bind(t.finished_at)
            .bind(t.reason.clone())
            .bind(i64::from(t.exit_code))
            .bind(i64::from(t.restarts))
            .bind(t.last_lines.clone())
            .execute(&mut **tx)
            .await?;
        }
        Record::JobLogState { cluster, job, log } => {
            sqlx::query(
                "UPDATE jobs SET log_state = $3, log_note = $4, log_lines = $5, log_bytes = $6, \
                 updated_at = $7 WHERE cluster_uid = $1 AND id = $2",
            )
            .bind(cluster.clone())
            .bind(job.clone())
            .bind(log.state.as_str().to_owned())
            .bind(log.note.clone())
            .bind(log.lines.min(i64::MAX as u64) as i64)
            .bind(log.bytes.min(i64::MAX as u64) as i64)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// Records the deletion of `uid` at `at` (Unix milliseconds), its outcome from how raydar ended
/// it, else from what it was: failed, finished (its RayJob's) or deleted.
async fn deleted(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    uid: &str,
    at: i64,
    by_rayjob: bool,
) -> Result<(), sqlx::Error> {
    let otherwise = if by_rayjob { Outcome::Finished } else { Outcome::Deleted };
    let updated = sqlx::query(
        "UPDATE clusters SET deleted_at = $2, updated_at = $3, outcome = CASE \
           WHEN ending <> '' THEN ending \
           WHEN phase = 'Failed' THEN 'failed' \
           ELSE $4 END \
         WHERE uid = $1 AND deleted_at IS NULL",
    )
    .bind(uid.to_owned())
    .bind(at)
    .bind(crate::unix_now_ms())
    .bind(otherwise.as_str().to_owned())
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() > 0 {
        sqlx::query(
            "INSERT INTO phases (cluster_uid, at, phase, reason) \
             SELECT uid, $2, 'Deleted', ended_why FROM clusters WHERE uid = $1 \
             ON CONFLICT DO NOTHING",
        )
        .bind(uid.to_owned())
        .bind(at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
