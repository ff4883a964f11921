//! Ray jobs into history, as a source of its own: every Ready cluster's jobs read from its
//! dashboard every [`EVERY`], a job written when its status changes; and every running
//! submitted job's driver log archived as it streams.
//!
//! A running job's log is followed through the same shared stream ([`LogStreams`]) as its
//! viewers: the archive is one more in-process viewer, so archiving costs no second connection
//! to Ray and its viewers nothing but the archive's copy of each line. Being in-process it keeps
//! up, and should it ever fall behind the stream's ring (or start after lines were dropped
//! from it), the gap is seen and the whole log is read again from Ray when the job ends. A job
//! found already finished (raydar was not running) is read whole once.
//!
//! Bounded: at most [`MAX_ARCHIVING`] logs archived at once (a job beyond waits for a slot; if
//! it ends meanwhile it is read whole), [`READS_AT_ONCE`] dashboards read at once, a dashboard
//! that does not answer read less and less often after a few tries (up to [`MAX_BACKOFF`]
//! apart), and what is remembered here is only of clusters that exist.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use platform::history::{ArchiveState, LogArchive};
use platform::overview::RayJob;
use platform::{ClusterPhase, ClusterSummary};
use tokio_util::sync::CancellationToken;

use super::archive::Archive;
use super::{Record, Sink, Store};
use crate::lifecycle::JobActivity;
use crate::logs::job::follow_job;
use crate::logs::{LogStreams, Step};
use crate::ray::{Dashboards, Read};
use crate::sources::Clusters;

/// How often each Ready cluster's jobs are read.
pub const EVERY: Duration = Duration::from_secs(10);
/// Logs archived at once.
pub const MAX_ARCHIVING: usize = 32;
/// Dashboards read at once.
const READS_AT_ONCE: usize = 4;
/// Longest wait between reads of a dashboard that does not answer.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// How often an archived log's gathered lines are written while its job runs: what a crash of
/// raydar, or the cluster's sudden end, can lose of it.
const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// How long after `failures` reads in a row that failed a dashboard is read again: as usual for
/// the first few (a cluster's dashboard often answers a little after the cluster is Ready, and
/// a job that runs meanwhile must still be seen running), then twice as long each time, up to
/// [`MAX_BACKOFF`].
fn backoff(failures: u32) -> Duration {
    const GRACE: u32 = 3;
    let doublings = failures.saturating_sub(GRACE).min(10);
    (EVERY * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

/// Reads clusters' Ray jobs and archives their logs: cheap to clone.
#[derive(Clone)]
pub struct JobArchiver {
    clusters: Clusters,
    dashboards: Dashboards,
    streams: LogStreams,
    sink: Sink,
    store: Store,
    /// Most bytes of text kept of one job's log.
    cap: u64,
    /// Jobs whose logs are being archived now, by (cluster uid, job id).
    archiving: Arc<Mutex<HashSet<(String, String)>>>,
    /// Where each read's jobs are told to the idle rule: whether any runs.
    activity: JobActivity,
}

/// What this source remembers of a cluster between reads.
#[derive(Default)]
struct Known {
    /// Each job's status as last written.
    statuses: HashMap<String, String>,
    /// Jobs whose archive is done (or was found done).
    archived: HashSet<String>,
    /// Reads that failed in a row, and when to read next.
    failures: u32,
    next: Option<Instant>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl JobArchiver {
    /// Reads the jobs of `clusters` through `dashboards` (telling `activity` what it read),
    /// follows logs through `streams`, writes into `sink` (and asks `store` what was archived
    /// before), keeping `cap` bytes per log.
    pub fn new(
        clusters: Clusters,
        dashboards: Dashboards,
        activity: JobActivity,
        streams: LogStreams,
        sink: Sink,
        store: Store,
        cap: u64,
    ) -> JobArchiver {
        let archiving = Arc::default();
        JobArchiver { clusters, dashboards, streams, sink, store, cap, archiving, activity }
    }

    /// Logs archived now.
    pub fn archiving(&self) -> usize {
        lock(&self.archiving).len()
    }

    /// The source: reads every Ready cluster's jobs every [`EVERY`] until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), String> {
        let mut known: HashMap<String, Known> = HashMap::new();
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tick.tick() => {}
            }
            let ready: Vec<ClusterSummary> = self
                .clusters
                .list()
                .into_iter()
                .filter(|c| c.phase == ClusterPhase::Ready)
                .collect();
            let live: HashSet<&str> = ready.iter().map(|c| c.uid.as_str()).collect();
            known.retain(|uid, _| live.contains(uid.as_str()));
            self.activity.retain(|uid| live.contains(uid));
            let now = Instant::now();
            let due: Vec<ClusterSummary> = ready
                .iter()
                .filter(|c| known.get(&c.uid).and_then(|k| k.next).is_none_or(|at| at <= now))
                .cloned()
                .collect();
            let reads = futures::stream::iter(due)
                .map(|cluster| {
                    let dashboards = self.dashboards.clone();
                    async move {
                        let read = dashboards.read(&cluster.namespace, &cluster.name, &Read::Jobs);
                        let jobs = match read.await {
                            Ok(body) => platform::dashboard::jobs(&body),
                            Err(e) => Err(e.to_string()),
                        };
                        (cluster, jobs)
                    }
                })
                .buffer_unordered(READS_AT_ONCE)
                .collect::<Vec<_>>();
            let reads = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                reads = reads => reads,
            };
            for (cluster, jobs) in reads {
                let entry = known.entry(cluster.uid.clone()).or_default();
                match jobs {
                    Ok(jobs) => {
                        entry.failures = 0;
                        entry.next = None;
                        self.activity.saw(&cluster.uid, &jobs, crate::unix_now());
                        for job in jobs {
                            self.saw(&cluster, entry, job, &shutdown).await;
                        }
                    }
                    Err(e) => {
                        entry.failures += 1;
                        let wait = backoff(entry.failures);
                        entry.next = Some(Instant::now() + wait);
                        tracing::debug!(
                            cluster = %format!("{}/{}", cluster.namespace, cluster.name),
                            "history: Ray jobs not read ({e}); next in {} s",
                            wait.as_secs()
                        );
                    }
                }
            }
        }
    }

    /// `job` of `cluster` as just read: its status written if new, its log archived.
    async fn saw(
        &self,
        cluster: &ClusterSummary,
        known: &mut Known,
        job: RayJob,
        shutdown: &CancellationToken,
    ) {
        if known.statuses.get(&job.id) != Some(&job.status) {
            known.statuses.insert(job.id.clone(), job.status.clone());
            self.sink.send(Record::Job { cluster: cluster.uid.clone(), job: job.clone() });
        }
        // Ray keeps the logs of submitted jobs only; a cap of 0 archives none.
        if self.cap == 0 || job.submission_id.is_none() || known.archived.contains(&job.id) {
            return;
        }
        let key = (cluster.uid.clone(), job.id.clone());
        if lock(&self.archiving).contains(&key) {
            return;
        }
        if job.finished() {
            // Archived before raydar restarted, or never: ask history once.
            if let Ok(Some(past)) = self.store.job(&cluster.uid, &job.id).await {
                if !matches!(past.log.state, ArchiveState::None | ArchiveState::Archiving) {
                    known.archived.insert(job.id);
                    return;
                }
            }
        }
        {
            let mut archiving = lock(&self.archiving);
            if archiving.len() >= MAX_ARCHIVING {
                return;
            }
            archiving.insert(key.clone());
        }
        known.archived.insert(job.id.clone());
        let this = self.clone();
        let (cluster, shutdown) = (cluster.clone(), shutdown.clone());
        tokio::spawn(async move {
            if job.finished() {
                this.read_whole(&cluster, &job.id, None).await;
            } else {
                this.follow(&cluster, &job.id, &shutdown).await;
            }
            lock(&this.archiving).remove(&key);
        });
    }

    /// Archives the log of running job `job` as it streams, until it ends (or `shutdown`).
    async fn follow(&self, cluster: &ClusterSummary, job: &str, shutdown: &CancellationToken) {
        let (namespace, name) = (cluster.namespace.clone(), cluster.name.clone());
        let key = crate::logs::job::key(&namespace, &name, job);
        let dashboards = self.dashboards.clone();
        let id = job.to_owned();
        let Ok(mut viewer) =
            self.streams.read(&key, move |feed| follow_job(feed, dashboards, namespace, name, id))
        else {
            // Every log stream is taken: the log is read whole once the job ends.
            return self.after_end(cluster, job, shutdown).await;
        };
        let mut archive = Archive::new(&cluster.uid, job, self.cap);
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ended = loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.sink.extend(archive.flush());
                    self.state(cluster, job, archive.running());
                    return;
                }
                _ = flush.tick() => {
                    if let Some(chunk) = archive.flush() {
                        self.sink.send(chunk);
                        self.state(cluster, job, archive.running());
                    }
                    // A cluster deleted while its job ran takes the job and its log with it;
                    // the stream would otherwise retry its dashboard for ever.
                    if !self.is_live(cluster) {
                        break "the cluster was deleted while the job ran".to_owned();
                    }
                }
                step = viewer.next() => match step {
                    Some(Step::Lines { first, lines }) => self.sink.extend(archive.take(first, &lines)),
                    Some(Step::Skipped { count, through, .. }) => archive.skipped(count, through),
                    Some(Step::Problem(_)) => {}
                    Some(Step::End(reason)) => break reason,
                    None => break "the log stream stopped".to_owned(),
                }
            }
        };
        drop(viewer);
        self.sink.extend(archive.flush());
        // "job SUCCEEDED" (or FAILED, STOPPED): the stream had the log to its end.
        let whole = ended.strip_prefix("job ").is_some_and(platform::dashboard::is_terminal);
        if whole && !archive.has_gaps() {
            self.state(cluster, job, archive.state(true, ""));
            return;
        }
        let fallback = archive.state(whole, &ended);
        self.read_whole(cluster, job, Some(fallback)).await;
    }

    /// Whether `cluster` (that uid) still exists.
    fn is_live(&self, cluster: &ClusterSummary) -> bool {
        self.clusters.uid(&cluster.namespace, &cluster.name).as_deref()
            == Some(cluster.uid.as_str())
    }

    /// Waits for job `job` to end, then archives its log whole (no stream was free to follow
    /// it by).
    async fn after_end(&self, cluster: &ClusterSummary, job: &str, shutdown: &CancellationToken) {
        let Ok(status) = Read::parse(&format!("api/jobs/{job}"), None) else { return };
        while self.is_live(cluster) {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                () = tokio::time::sleep(EVERY) => {}
            }
            let read = self.dashboards.read(&cluster.namespace, &cluster.name, &status).await;
            let state = read.ok().and_then(|body| platform::dashboard::job_status(&body));
            if state.is_some_and(|s| platform::dashboard::is_terminal(&s)) {
                return self.read_whole(cluster, job, None).await;
            }
        }
    }

    /// Archives the log of finished job `job` as Ray has it now, in place of what was archived;
    /// if Ray no longer has it, `otherwise` is what the archive is (or nothing was archived).
    async fn read_whole(&self, cluster: &ClusterSummary, job: &str, otherwise: Option<LogArchive>) {
        let read = match Read::parse(&format!("api/jobs/{job}/logs"), None) {
            Ok(read) => read,
            Err(_) => return,
        };
        let answer = self.dashboards.read(&cluster.namespace, &cluster.name, &read).await;
        #[derive(serde::Deserialize)]
        struct JobLogs {
            logs: String,
        }
        match answer.map_err(|e| e.to_string()).and_then(|body| {
            serde_json::from_str::<JobLogs>(&body).map_err(|e| format!("not a job log: {e}"))
        }) {
            Ok(JobLogs { logs }) => {
                let (chunks, state) = Archive::whole(&cluster.uid, job, self.cap, &logs);
                self.sink.extend(chunks);
                self.state(cluster, job, state);
            }
            Err(e) => {
                let mut state = otherwise.unwrap_or(LogArchive {
                    state: ArchiveState::Partial,
                    ..LogArchive::default()
                });
                let why = format!("Ray's copy of the whole log could not be read: {e}");
                state.note =
                    if state.note.is_empty() { why } else { format!("{}; {why}", state.note) };
                self.state(cluster, job, state);
            }
        }
    }

    fn state(&self, cluster: &ClusterSummary, job: &str, log: LogArchive) {
        self.sink.send(Record::JobLogState {
            cluster: cluster.uid.clone(),
            job: job.to_owned(),
            log,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dashboard_that_does_not_answer_is_read_as_usual_a_few_times_then_less_and_less() {
        let waits: Vec<u64> = (1..=8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [10, 10, 10, 20, 40, 80, 160, 320]);
        assert_eq!(backoff(50), MAX_BACKOFF);
    }
}
