//! Live logs: a Ray job's log and a Ray pod's log, each followed once and shared by every viewer.
//!
//! A log is followed from one upstream stream per source (Ray's WebSocket tail of a job; the
//! Kubernetes log of a pod's container, `follow=true`), however many pages show it. The source
//! keeps its most recent lines in a bounded ring, numbered from 1 in log order; each viewer is only
//! a cursor into that ring. So a slow browser costs its cursor and nothing else: nothing queues for
//! it, and when the ring has moved past its cursor it is told how many lines it missed (`skipped`)
//! and carries on from the oldest line still kept.
//!
//! Line numbers are the contract with the browser: the server-sent events carry the number of the
//! last line as their id, so an `EventSource` that reconnects (`Last-Event-ID`, or `?after=N`)
//! gets exactly the lines after it: none twice, none lost, or an explicit `skipped`. Numbers are
//! the same for every viewer and across upstream reconnects: Ray replays a job's log from its
//! start on every connect, and the pod log is resumed by timestamp, and both skip what is in hand.
//!
//! The limits: at most `--log-streams` sources at once (a new one beyond is refused with 503,
//! viewers of followed ones still join), `--log-buffer-lines` lines kept per source (and at most
//! [`MAX_BUFFER_BYTES`]), lines cut at [`MAX_LINE`] bytes. A source nobody watches is stopped after
//! [`LINGER`], so a page reload finds it still there; the slot is freed then.
//!
//! # Layout
//! - [`LogStreams`]: the shared sources, the stream cap, the counters for `/metrics`.
//! - `Source` and `Ring`: one followed log: its recent lines, its trouble, its end.
//! - [`Feed`]: what an upstream follower writes into its source with.
//! - [`Viewer`]: one page's cursor into a source, read as [`Step`]s, sent as server-sent events.
//! - [`Lines`] and [`text`]: bytes to lines: CR-LF, lossy UTF-8, over-long lines cut.
//! - `follow_job` and `follow_pod`: the two upstreams, reconnecting with backoff.
//! - Handlers: [`job_log_stream`], [`pod_log_stream`] (events) and [`job_log`], [`pod_log`]
//!   (the whole log so far, as a download).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::{AsyncBufReadExt, FutureExt, SinkExt, Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::Api;
use platform::template::value::{cluster_name_problem, is_dns_label_body, namespace_problem};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::ray::{DashboardError, Dashboards, Read, Tail};
use crate::web::AppState;

/// Longest line kept, in bytes of its text; the rest is replaced by [`CUT_MARKER`].
pub const MAX_LINE: usize = 16 * 1024;
/// What ends a line that was cut at [`MAX_LINE`].
pub const CUT_MARKER: &str = "… [line cut at 16 KiB]";
/// Bytes of a line held while it is read: [`MAX_LINE`] plus room for a pod log's timestamp.
const MAX_RAW: usize = MAX_LINE + 64;
/// Most bytes of text a source keeps, whatever `--log-buffer-lines` says: with lines of up to
/// 16 KiB, 10,000 lines could otherwise hold 160 MB per log.
pub const MAX_BUFFER_BYTES: usize = 16 << 20;
/// Most lines in one `lines` event.
pub const BATCH_LINES: usize = 500;
/// Most bytes of text in one `lines` event (a single longer line still goes alone).
pub const BATCH_BYTES: usize = 256 * 1024;
/// How long a source nobody watches is kept (upstream open, slot taken), so that a reload of the
/// page joins it again instead of starting over.
pub const LINGER: Duration = Duration::from_secs(10);
/// A comment on every event stream this often, so proxies keep it open and a closed page is
/// noticed.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Opening a pod log, reading a pod, downloading a log: each ends within this.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// A download of a pod log ends within this.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Most bytes of a pod log downloaded (the kubelet keeps 10 MiB per log file by default).
const DOWNLOAD_LIMIT: i64 = 64 << 20;
/// Ray's tail is pinged this often while quiet. Ray never answers (aiohttp answers pings only
/// inside `receive()`, which Ray's tail handler never calls), but a ping keeps proxies from
/// closing a quiet connection and makes a connection that is gone fail on write.
const TAIL_PING: Duration = Duration::from_secs(15);
/// A tail quiet this long is checked by reading the job's status: a dashboard that answers with
/// a running job means a quiet log; anything else means the tail is lost and is reopened.
const TAIL_QUIET: Duration = Duration::from_secs(30);
/// A followed pod log quiet this long is checked by reading its pod: a pod that is gone or a
/// container that stopped ends the log even when the log connection does not close (kwok keeps
/// it open after the pod is deleted; a connection can also die without a word).
const POD_QUIET: Duration = Duration::from_secs(30);
/// A followed pod log quiet this long is reopened, which replays nothing: a chunked HTTP stream
/// has no ping, so this is how a connection that died silently is noticed.
const POD_IDLE: Duration = Duration::from_secs(300);
/// Waits between reconnects of an upstream: doubling from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(5));

/// Every followed log, shared by its viewers: cheap to clone.
#[derive(Clone)]
pub struct LogStreams {
    hub: Arc<Hub>,
}

struct Hub {
    max_streams: usize,
    buffer_lines: usize,
    linger: Duration,
    /// Sources by key (`job/{ns}/{name}/{id}`, `pod/{ns}/{name}/{pod}/{container}`). Viewers join
    /// under this lock, and a source leaves under it only with no viewer, so none joins a source
    /// that is going away. A std mutex: it is never held across an await.
    sources: Mutex<HashMap<String, Arc<Source>>>,
    viewers: AtomicUsize,
    refused: AtomicU64,
    skipped: AtomicU64,
    upstream_errors: AtomicU64,
}

/// The counters `/metrics` reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogMetrics {
    /// Logs followed now (each one upstream stream, or a finished log kept for its linger).
    pub streams: usize,
    /// Open event streams of viewers.
    pub viewers: usize,
    /// New logs refused because `--log-streams` were followed.
    pub refused: u64,
    /// Lines viewers never got because they fell behind the ring (or resumed before it).
    pub skipped: u64,
    /// Upstream failures (unreachable, broken, silent), each retried.
    pub upstream_errors: u64,
}

/// A new log refused: `--log-streams` logs are followed already.
#[derive(Debug, thiserror::Error)]
#[error("raydar follows at most {0} logs at once (--log-streams); this one can start when another log is closed")]
pub struct AtCapacity(pub usize);

impl IntoResponse for AtCapacity {
    fn into_response(self) -> Response {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": self.to_string() })))
            .into_response()
    }
}

/// Locks, going on after a panic elsewhere: every critical section leaves the data consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl LogStreams {
    /// At most `max_streams` logs followed at once, `buffer_lines` lines kept of each, a log
    /// nobody watches kept for `linger`.
    pub fn new(max_streams: usize, buffer_lines: usize, linger: Duration) -> Self {
        let hub = Hub {
            max_streams: max_streams.max(1),
            buffer_lines: buffer_lines.max(1),
            linger,
            sources: Mutex::default(),
            viewers: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            upstream_errors: AtomicU64::new(0),
        };
        LogStreams { hub: Arc::new(hub) }
    }

    /// Whether the log `key` is followed now (its viewers join without another check upstream).
    pub fn is_followed(&self, key: &str) -> bool {
        lock(&self.hub.sources).contains_key(key)
    }

    /// A viewer of log `key` from after line `after`. The first viewer of a log starts following
    /// it: `upstream` is called with the [`Feed`] to write into, and its future runs until the log
    /// ends or nobody watched it for the linger. Refused when the stream cap is reached.
    pub fn follow<U, F>(&self, key: &str, after: u64, upstream: U) -> Result<Viewer, AtCapacity>
    where
        U: FnOnce(Feed) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        let hub = &self.hub;
        let mut sources = lock(&hub.sources);
        if let Some(source) = sources.get(key) {
            return Ok(Viewer::new(hub.clone(), source.clone(), after));
        }
        if sources.len() >= hub.max_streams {
            hub.refused.fetch_add(1, Ordering::Relaxed);
            return Err(AtCapacity(hub.max_streams));
        }
        let source = Arc::new(Source::new(hub.buffer_lines));
        sources.insert(key.to_owned(), source.clone());
        // Joined before the source's task starts, so its linger cannot begin before this viewer.
        let viewer = Viewer::new(hub.clone(), source.clone(), after);
        drop(sources);
        let follow = upstream(Feed { hub: hub.clone(), source: source.clone() });
        tokio::spawn(run(hub.clone(), key.to_owned(), source, follow));
        Ok(viewer)
    }

    /// The counters for `/metrics`.
    pub fn metrics(&self) -> LogMetrics {
        let hub = &self.hub;
        LogMetrics {
            streams: lock(&hub.sources).len(),
            viewers: hub.viewers.load(Ordering::Relaxed),
            refused: hub.refused.load(Ordering::Relaxed),
            skipped: hub.skipped.load(Ordering::Relaxed),
            upstream_errors: hub.upstream_errors.load(Ordering::Relaxed),
        }
    }
}

/// A source's life: its upstream runs until the log ends; the source stays (finished or not)
/// until nobody watched it for the linger, then leaves the hub, which frees its slot and, by
/// dropping the upstream future, closes the upstream connection.
async fn run(hub: Arc<Hub>, key: String, source: Arc<Source>, follow: impl Future<Output = ()>) {
    // A follower that panics ends its log instead of taking this task, and the slot, with it.
    let follow = std::panic::AssertUnwindSafe(follow).catch_unwind();
    tokio::pin!(follow);
    let mut following = true;
    loop {
        tokio::select! {
            stopped = &mut follow, if following => {
                following = false;
                if stopped.is_err() {
                    tracing::error!(log = %key, "the log follower panicked");
                }
                // An upstream that stops without saying why still ends the log for its viewers.
                source.end("the log stream stopped");
            }
            () = unwatched_for(&source.viewers, hub.linger) => {
                let mut sources = lock(&hub.sources);
                if *source.viewers.borrow() == 0 {
                    if sources.get(&key).is_some_and(|s| Arc::ptr_eq(s, &source)) {
                        sources.remove(&key);
                    }
                    return;
                }
            }
        }
    }
}

/// Completes once `viewers` has stayed 0 for `linger`.
async fn unwatched_for(viewers: &watch::Sender<usize>, linger: Duration) {
    let mut count = viewers.subscribe();
    loop {
        // The sender lives in the source, which outlives this: these waits cannot fail.
        let _ = count.wait_for(|n| *n == 0).await;
        if tokio::time::timeout(linger, count.wait_for(|n| *n > 0)).await.is_err() {
            return;
        }
    }
}

/// One followed log.
struct Source {
    /// A std mutex: held only to copy lines in or out, never across an await.
    ring: Mutex<Ring>,
    /// Bumped on every change of the ring: viewers wait on it.
    changed: watch::Sender<()>,
    /// Viewers now.
    viewers: watch::Sender<usize>,
}

/// A log's recent lines and state. Lines are numbered from 1; `lines[0]` is line `first`.
struct Ring {
    lines: VecDeque<Arc<str>>,
    first: u64,
    bytes: usize,
    capacity: usize,
    /// The upstream's current trouble, with a serial number so each is sent once per viewer.
    problem: Option<(u64, String)>,
    problems: u64,
    /// Why the log is complete, once it is.
    end: Option<String>,
}

impl Ring {
    /// Number of the newest line; 0 before the first.
    fn last(&self) -> u64 {
        self.first + self.lines.len() as u64 - 1
    }

    fn push(&mut self, line: Arc<str>) {
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.lines.len() > self.capacity
            || (self.bytes > MAX_BUFFER_BYTES && self.lines.len() > 1)
        {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.len();
                self.first += 1;
            }
        }
    }
}

impl Source {
    fn new(capacity: usize) -> Self {
        let ring = Ring {
            lines: VecDeque::new(),
            first: 1,
            bytes: 0,
            capacity,
            problem: None,
            problems: 0,
            end: None,
        };
        Source {
            ring: Mutex::new(ring),
            changed: watch::Sender::new(()),
            viewers: watch::Sender::new(0),
        }
    }

    /// Changes the ring and wakes the viewers if `change` says it changed anything. The lock is
    /// released before waking them, and never held across an await.
    fn change(&self, change: impl FnOnce(&mut Ring) -> bool) {
        let changed = change(&mut lock(&self.ring));
        if changed {
            self.changed.send_modify(|_| ());
        }
    }

    fn end(&self, reason: &str) {
        self.change(|ring| {
            let open = ring.end.is_none();
            if open {
                ring.end = Some(reason.to_owned());
            }
            open
        });
    }
}

/// What an upstream follower writes its log into.
pub struct Feed {
    hub: Arc<Hub>,
    source: Arc<Source>,
}

impl Feed {
    /// Number of the last line in hand; 0 before the first.
    pub fn last(&self) -> u64 {
        lock(&self.source.ring).last()
    }

    /// Appends lines, in log order.
    pub fn push(&self, lines: Vec<Arc<str>>) {
        if lines.is_empty() {
            return;
        }
        self.source.change(|ring| {
            for line in lines {
                ring.push(line);
            }
            true
        });
    }

    /// Says the upstream is in trouble (the feed keeps trying); viewers get it once each, and
    /// the same trouble again on a retry only once.
    pub fn problem(&self, message: String) {
        tracing::debug!(%message, "log upstream");
        self.hub.upstream_errors.fetch_add(1, Ordering::Relaxed);
        self.source.change(|ring| {
            if ring.problem.as_ref().is_some_and(|(_, current)| *current == message) {
                return false;
            }
            ring.problems += 1;
            ring.problem = Some((ring.problems, message));
            true
        });
    }

    /// The upstream answers again.
    pub fn recovered(&self) {
        lock(&self.source.ring).problem = None;
    }

    /// The log is complete; viewers get the rest of it, then `end` with `reason`.
    pub fn end(&self, reason: &str) {
        self.source.end(reason);
    }
}

/// One page's cursor into a log. Dropping it leaves the log.
pub struct Viewer {
    hub: Arc<Hub>,
    source: Arc<Source>,
    changed: watch::Receiver<()>,
    /// The last line this viewer has had (or was told it skipped).
    after: u64,
    /// Where it asked to start, to say why lines are skipped.
    resumed: Option<u64>,
    problem_seen: u64,
    done: bool,
}

/// What a viewer is sent next.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Lines numbered from `first`.
    Lines { first: u64, lines: Vec<Arc<str>> },
    /// Lines this viewer will never get, and why; it continues after `through`.
    Skipped { count: u64, through: u64, reason: String },
    /// The upstream is in trouble (the stream stays open).
    Problem(String),
    /// The log is complete.
    End(String),
}

impl Viewer {
    fn new(hub: Arc<Hub>, source: Arc<Source>, after: u64) -> Self {
        source.viewers.send_modify(|n| *n += 1);
        hub.viewers.fetch_add(1, Ordering::Relaxed);
        let changed = source.changed.subscribe();
        Viewer {
            hub,
            source,
            changed,
            after,
            resumed: (after > 0).then_some(after),
            problem_seen: 0,
            done: false,
        }
    }

    /// The next thing to send; waits until there is one. `None` after the end.
    pub async fn next(&mut self) -> Option<Step> {
        while !self.done {
            // Marked seen before reading the ring: a change after this read wakes the wait below.
            self.changed.borrow_and_update();
            if let Some(step) = self.step() {
                self.done = matches!(step, Step::End(_));
                return Some(step);
            }
            if self.changed.changed().await.is_err() {
                return None;
            }
        }
        None
    }

    /// The next step from the ring as it is now, if any.
    fn step(&mut self) -> Option<Step> {
        let ring = lock(&self.source.ring);
        if self.after.saturating_add(1) < ring.first {
            let count = ring.first - 1 - self.after;
            let kept = format!(
                "raydar keeps the last {} lines of a log (--log-buffer-lines); the download has all of it",
                ring.capacity
            );
            let reason = match self.resumed.take() {
                Some(after) => format!(
                    "resumed after line {after}, but the oldest line kept is {}: {kept}",
                    ring.first
                ),
                None if self.after == 0 => {
                    format!("lines before {} are no longer kept: {kept}", ring.first)
                }
                None => format!("this viewer fell behind the log: {kept}"),
            };
            self.after = ring.first - 1;
            self.hub.skipped.fetch_add(count, Ordering::Relaxed);
            return Some(Step::Skipped { count, through: self.after, reason });
        }
        if self.after < ring.last() {
            self.resumed = None;
            let first = self.after + 1;
            let mut bytes = 0;
            let lines: Vec<Arc<str>> = ring
                .lines
                .range((first - ring.first) as usize..)
                .take(BATCH_LINES)
                .take_while(|line| {
                    // The first line always goes, however long.
                    let fits = bytes == 0 || bytes + line.len() <= BATCH_BYTES;
                    bytes += line.len().max(1);
                    fits
                })
                .cloned()
                .collect();
            self.after += lines.len() as u64;
            return Some(Step::Lines { first, lines });
        }
        if let Some((serial, message)) = &ring.problem {
            if *serial != self.problem_seen {
                self.problem_seen = *serial;
                return Some(Step::Problem(message.clone()));
            }
        }
        ring.end.clone().map(Step::End)
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.source.viewers.send_modify(|n| *n -= 1);
        self.hub.viewers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Step {
    /// The server-sent event: its data is always one JSON object, so no log text can break the
    /// framing; its id is the last line accounted for, which is where a reconnect resumes.
    pub fn event(&self) -> Event {
        let (name, id, data) = match self {
            Step::Lines { first, lines } => {
                let last = first + lines.len() as u64 - 1;
                // Written straight from the shared lines: through a `json!` value every line of a
                // flood would be copied once more.
                let batch =
                    LinesData { first: *first, lines: lines.iter().map(|l| &**l).collect() };
                ("lines", Some(last), serde_json::to_string(&batch).unwrap_or_default())
            }
            Step::Skipped { count, through, reason } => {
                ("skipped", Some(*through), json!({ "count": count, "reason": reason }).to_string())
            }
            Step::Problem(error) => ("problem", None, json!({ "error": error }).to_string()),
            Step::End(reason) => ("end", None, json!({ "reason": reason }).to_string()),
        };
        let event = Event::default().event(name).data(data);
        match id {
            Some(id) => event.id(id.to_string()),
            None => event,
        }
    }
}

/// A `lines` event's data: `{"first": N, "lines": [...]}`.
#[derive(serde::Serialize)]
struct LinesData<'a> {
    first: u64,
    lines: Vec<&'a str>,
}

/// A viewer's events, ending after `end`.
pub fn events(viewer: Viewer) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(viewer, |mut viewer| async move {
        let step = viewer.next().await?;
        Some((Ok(step.event()), viewer))
    })
}

/// Splits a stream of bytes into lines, holding at most [`MAX_RAW`] bytes of an unfinished one.
#[derive(Default)]
pub struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// Calls `each` with every line completed by `bytes`, without its `\n`, at most [`MAX_RAW`]
    /// bytes of it (a longer line is cut by [`text`]).
    pub fn split(&mut self, mut bytes: &[u8], mut each: impl FnMut(&[u8])) {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            let line = &bytes[..end];
            if self.partial.is_empty() {
                each(&line[..line.len().min(MAX_RAW)]);
            } else {
                self.keep(line);
                each(&self.partial);
                self.partial.clear();
            }
            bytes = &bytes[end + 1..];
        }
        self.keep(bytes);
    }

    /// The unfinished last line, as a line: for when the log is complete.
    pub fn finish(&mut self, each: impl FnOnce(&[u8])) {
        if !self.partial.is_empty() {
            each(&self.partial);
            self.partial.clear();
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = MAX_RAW.saturating_sub(self.partial.len());
        self.partial.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// A line as it is sent: without a trailing CR, invalid UTF-8 replaced, cut after [`MAX_LINE`]
/// bytes (at a character boundary) with [`CUT_MARKER`].
pub fn text(raw: &[u8]) -> Arc<str> {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    if raw.len() <= MAX_LINE {
        return Arc::from(String::from_utf8_lossy(raw));
    }
    // Back off to the start of a character cut in two (UTF-8 continuation bytes are 10xxxxxx).
    let mut end = MAX_LINE;
    while end > MAX_LINE - 3 && raw[end] & 0xC0 == 0x80 {
        end -= 1;
    }
    let mut line = String::from_utf8_lossy(&raw[..end]).into_owned();
    line.push_str(CUT_MARKER);
    Arc::from(line)
}

/// Waits between reconnects, doubling up to the last of [`BACKOFF`].
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(BACKOFF.0)
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(BACKOFF.1);
    }

    fn reset(&mut self) {
        self.0 = BACKOFF.0;
    }
}

/// Follows Ray job `job`'s log on the dashboard of `namespace/name` until the job is done.
///
/// Ray's tail replays the log from its first line on every connect, in TEXT frames of up to 10
/// lines or 20,000 characters (a frame may end inside a line), and closes once the job is
/// terminal and its log read to the end. So after a reconnect the first [`Feed::last`] lines are
/// counted and skipped, and an unfinished line is dropped with its connection (the replay brings
/// it again whole). After Ray closes the tail, the job's status says whether the log is complete.
async fn follow_job(
    feed: Feed,
    dashboards: Dashboards,
    namespace: String,
    name: String,
    job: String,
) {
    let (Ok(tail), Ok(status)) = (
        Read::parse(&format!("api/jobs/{job}/logs/tail"), None),
        Read::parse(&format!("api/jobs/{job}"), None),
    ) else {
        return feed.end(&format!("{job:?} is not a Ray job id"));
    };
    let mut backoff = Backoff::new();
    loop {
        let mut ws = match dashboards.tail(&namespace, &name, &tail).await {
            Ok(ws) => ws,
            // Permanent: nothing to retry for.
            Err(
                e @ (DashboardError::NotFound(..)
                | DashboardError::Rejected(..)
                | DashboardError::NotACluster(_)
                | DashboardError::Refused(_)),
            ) => {
                return feed.end(&e.to_string());
            }
            Err(e) => {
                feed.problem(format!("{e}; retrying"));
                backoff.wait().await;
                continue;
            }
        };
        feed.recovered();
        let mut replay = Replay { in_hand: feed.last(), seen: 0 };
        let mut lines = Lines::default();
        let mut take = |raw: &[u8], new: &mut Vec<Arc<str>>| {
            if replay.is_new() {
                new.push(text(raw));
            }
        };
        let closed = loop {
            let read = read_tail(&mut ws, |bytes| {
                let mut new = Vec::new();
                lines.split(bytes, |raw| take(raw, &mut new));
                if !new.is_empty() {
                    backoff.reset();
                }
                feed.push(new);
            });
            match read.await {
                TailEnd::Closed => break Ok(()),
                TailEnd::Broken(why) => break Err(why),
                TailEnd::Quiet => match dashboards
                    .read(&namespace, &name, &status)
                    .await
                    .map(|body| job_status(&body))
                {
                    Ok(Some(state)) if !is_terminal(&state) => continue,
                    // Ray closes the tail within a second or two of a job's end.
                    Ok(_) => {
                        break Err(format!(
                            "still open {} s after the job ended",
                            TAIL_QUIET.as_secs()
                        ))
                    }
                    Err(e) => break Err(format!("quiet for {} s, and {e}", TAIL_QUIET.as_secs())),
                },
            }
        };
        drop(ws);
        if let Err(why) = closed {
            feed.problem(format!("the log tail of job {job} broke: {why}; reconnecting"));
            backoff.wait().await;
            continue;
        }
        match dashboards.read(&namespace, &name, &status).await.map(|body| job_status(&body)) {
            Ok(Some(state)) if is_terminal(&state) => {
                let mut new = Vec::new();
                lines.finish(|raw| take(raw, &mut new));
                feed.push(new);
                return feed.end(&format!("job {state}"));
            }
            Ok(state) => {
                let state = state.as_deref().unwrap_or("in an unknown state");
                feed.problem(format!("Ray closed the log tail of job {job} while it is {state}; reconnecting"));
            }
            Err(e) => feed.problem(format!("Ray closed the log tail of job {job}, and its status is unknown: {e}; reconnecting")),
        }
        backoff.wait().await;
    }
}

/// Counts the lines of a replayed log: the first `in_hand` are the ones already in hand.
struct Replay {
    in_hand: u64,
    seen: u64,
}

impl Replay {
    /// Whether the next line is past those in hand.
    fn is_new(&mut self) -> bool {
        self.seen += 1;
        self.seen > self.in_hand
    }
}

/// Whether a Ray job status is final.
fn is_terminal(status: &str) -> bool {
    ["SUCCEEDED", "FAILED", "STOPPED"].contains(&status)
}

/// The `status` of Ray's answer to `GET /api/jobs/{id}`.
fn job_status(body: &str) -> Option<String> {
    let job: serde_json::Value = serde_json::from_str(body).ok()?;
    job["status"].as_str().map(str::to_owned)
}

/// How a read of a tail stopped.
enum TailEnd {
    /// Ray closed it.
    Closed,
    /// It broke; why.
    Broken(String),
    /// Nothing came for [`TAIL_QUIET`]: the caller finds out whether that is a quiet log.
    Quiet,
}

/// Reads a tail's frames into `each` until Ray closes it, it breaks or it was quiet for
/// [`TAIL_QUIET`]. Pings every [`TAIL_PING`] meanwhile.
async fn read_tail(ws: &mut Tail, mut each: impl FnMut(&[u8])) -> TailEnd {
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + TAIL_PING, TAIL_PING);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = Instant::now();
    loop {
        tokio::select! {
            frame = ws.next() => {
                heard = Instant::now();
                match frame {
                    None | Some(Ok(Message::Close(_))) => return TailEnd::Closed,
                    Some(Ok(Message::Text(text))) => each(text.as_bytes()),
                    Some(Ok(Message::Binary(bytes))) => each(&bytes),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return TailEnd::Broken(e.to_string()),
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() >= TAIL_QUIET {
                    return TailEnd::Quiet;
                }
                match tokio::time::timeout(CALL_TIMEOUT, ws.send(Message::Ping(Default::default()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return TailEnd::Broken(e.to_string()),
                    Err(_) => return TailEnd::Broken("a ping could not be sent".into()),
                }
            }
        }
    }
}

/// The newest timestamp of a pod log in hand, and how many lines carried exactly it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Mark {
    at: Timestamp,
    count: u64,
}

/// Decides which lines of a (re)opened pod log are new, by their kubelet timestamps.
///
/// Why timestamps and not counting: a pod log can be long and rotates (the kubelet serves the
/// current file only), so reopening from its start would both cost the whole log again and
/// number lines differently. Reopening with `sinceTime` replays almost nothing, but `sinceTime`
/// has whole seconds, so the reopened log starts at the second of the last line in hand: lines
/// before that line's timestamp are old, and of the lines with exactly its timestamp the first
/// `count` are. Timestamps have nanoseconds, so that run is short.
#[derive(Debug, Default)]
struct PodResume {
    mark: Option<Mark>,
    /// Whether this connection is still replaying lines in hand.
    replaying: bool,
    /// Lines with the mark's timestamp seen on this connection.
    run: u64,
}

impl PodResume {
    /// `sinceTime` for reopening: the second of the last line in hand.
    fn since(&self) -> Option<Timestamp> {
        self.mark.and_then(|m| Timestamp::from_second(m.at.as_second()).ok())
    }

    /// A connection (re)opened.
    fn reopened(&mut self) {
        self.replaying = self.mark.is_some();
        self.run = 0;
    }

    /// Whether the line stamped `at` is new; remembers it if so.
    fn is_new(&mut self, at: Option<Timestamp>) -> bool {
        let Some(at) = at else { return !self.replaying };
        match self.mark {
            Some(mark) if self.replaying && at < mark.at => return false,
            Some(mark) if self.replaying && at == mark.at => {
                self.run += 1;
                if self.run <= mark.count {
                    return false;
                }
            }
            _ => {}
        }
        self.replaying = false;
        self.mark = match self.mark {
            Some(mark) if at == mark.at => Some(Mark { at, count: mark.count + 1 }),
            Some(mark) if at < mark.at => Some(mark),
            _ => Some(Mark { at, count: 1 }),
        };
        true
    }
}

/// A pod log line with `timestamps=true`: its timestamp (if it parses) and its text.
fn stamped(raw: &[u8]) -> (Option<Timestamp>, &[u8]) {
    let Some(space) = raw.iter().take(48).position(|&b| b == b' ') else {
        return (None, raw);
    };
    match std::str::from_utf8(&raw[..space]).ok().and_then(|t| t.parse::<Timestamp>().ok()) {
        Some(at) => (Some(at), &raw[space + 1..]),
        None => (None, raw),
    }
}

/// Follows container `container` of pod `pod` until the container has stopped or the pod is gone.
async fn follow_pod(feed: Feed, pods: Api<Pod>, pod: String, container: String) {
    let mut resume = PodResume::default();
    let mut backoff = Backoff::new();
    loop {
        let params = LogParams {
            container: Some(container.clone()),
            follow: true,
            timestamps: true,
            since_time: resume.since(),
            ..LogParams::default()
        };
        let reader = match tokio::time::timeout(CALL_TIMEOUT, pods.log_stream(&pod, &params)).await
        {
            Ok(Ok(reader)) => reader,
            Ok(Err(kube::Error::Api(status))) if status.code == 404 => {
                return feed.end(&format!("pod {pod} is gone: {}", status.message));
            }
            Ok(Err(e)) => {
                feed.problem(format!("cannot read the log of pod {pod}: {e}; retrying"));
                backoff.wait().await;
                continue;
            }
            Err(_) => {
                feed.problem(format!(
                    "the apiserver did not open the log of pod {pod} within {} s; retrying",
                    CALL_TIMEOUT.as_secs()
                ));
                backoff.wait().await;
                continue;
            }
        };
        feed.recovered();
        resume.reopened();
        let mut reader = Box::pin(reader);
        let mut lines = Lines::default();
        let mut take = |raw: &[u8], new: &mut Vec<Arc<str>>| {
            let (at, line) = stamped(raw);
            if resume.is_new(at) {
                new.push(text(line));
            }
        };
        let mut quiet = Duration::ZERO;
        let ended = loop {
            match tokio::time::timeout(POD_QUIET, reader.fill_buf()).await {
                Err(_) => {
                    quiet += POD_QUIET;
                    if let Some(end) = pod_ended(&pods, &pod, &container).await {
                        break Some(end);
                    }
                    // Quiet for long: reopened below.
                    if quiet >= POD_IDLE {
                        break None;
                    }
                }
                Ok(Err(e)) => {
                    feed.problem(format!("the log of pod {pod} broke: {e}; reconnecting"));
                    break None;
                }
                // The kubelet ends a followed log when the container stops; any other close is
                // reopened.
                Ok(Ok([])) => break pod_ended(&pods, &pod, &container).await,
                Ok(Ok(bytes)) => {
                    quiet = Duration::ZERO;
                    let mut new = Vec::new();
                    lines.split(bytes, |raw| take(raw, &mut new));
                    let read = bytes.len();
                    reader.consume_unpin(read);
                    if !new.is_empty() {
                        backoff.reset();
                    }
                    feed.push(new);
                }
            }
        };
        drop(reader);
        if let Some(end) = ended {
            let mut new = Vec::new();
            lines.finish(|raw| take(raw, &mut new));
            feed.push(new);
            return feed.end(&end);
        }
        backoff.wait().await;
    }
}

/// Why the log of `container` in `pod` is complete, if it is: the pod is gone or the container
/// stopped. Not when the pod cannot be read: that is not an answer.
async fn pod_ended(pods: &Api<Pod>, pod: &str, container: &str) -> Option<String> {
    match tokio::time::timeout(CALL_TIMEOUT, pods.get_opt(pod)).await {
        Ok(Ok(None)) => Some(format!("pod {pod} is gone")),
        Ok(Ok(Some(found))) => terminated(&found, container),
        _ => None,
    }
}

/// How container `container` of `pod` ended, if it has.
fn terminated(pod: &Pod, container: &str) -> Option<String> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let status = statuses.iter().find(|s| s.name == container)?;
    let done = status.state.as_ref()?.terminated.as_ref()?;
    let reason = done.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
    Some(format!("container {container} exited with code {}{reason}", done.exit_code))
}

/// `?container=` and `?after=` of the log routes.
#[derive(Debug, Default, Deserialize)]
pub struct LogQuery {
    /// A pod's container; default: its first.
    pub container: Option<String>,
    /// Resume after this line (as `Last-Event-ID` does).
    pub after: Option<u64>,
}

fn bad_request(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message.into() }))).into_response()
}

fn not_found(message: impl Into<String>) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": message.into() }))).into_response()
}

/// The line a viewer resumes after: `Last-Event-ID` (an `EventSource` reconnecting), else
/// `?after=`, else 0.
fn resume_after(headers: &HeaderMap, query: &LogQuery) -> Result<u64, Response> {
    match headers.get("last-event-id") {
        Some(id) => id
            .to_str()
            .ok()
            .and_then(|id| id.trim().parse().ok())
            .ok_or_else(|| bad_request("Last-Event-ID must be the number of a line")),
        None => Ok(query.after.unwrap_or(0)),
    }
}

/// The namespace and name as a RayCluster's, or why not.
fn cluster(namespace: &str, name: &str) -> Result<(), Response> {
    if let Some(problem) = namespace_problem(namespace) {
        return Err(bad_request(format!("namespace {problem}")));
    }
    if let Some(problem) = cluster_name_problem(name) {
        return Err(bad_request(format!("name {problem}")));
    }
    Ok(())
}

/// A Kubernetes object name (DNS subdomain), which is what keeps it from leaving its URL path.
fn pod_name_problem(pod: &str) -> Option<String> {
    let valid = !pod.is_empty()
        && pod.len() <= 253
        && pod.split('.').all(|l| l.len() <= 63 && is_dns_label_body(l));
    (!valid).then(|| format!("{pod:?} is not a pod name"))
}

/// The event stream of a viewer, or why it could not join.
fn event_stream(joined: Result<Viewer, AtCapacity>) -> Response {
    match joined {
        Ok(viewer) => Sse::new(events(viewer))
            .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
            .into_response(),
        Err(full) => full.into_response(),
    }
}

fn query(query: Result<Query<LogQuery>, QueryRejection>) -> Result<LogQuery, Response> {
    query.map(|Query(q)| q).map_err(|e| bad_request(e.body_text()))
}

/// `GET /api/v1/clusters/{namespace}/{name}/jobs/{job_id}/logs/stream`: the job's log as
/// server-sent events (`lines`, `skipped`, `problem`, `end`), live until the job is done.
pub async fn job_log_stream(
    State(state): State<AppState>,
    Path((namespace, name, job)): Path<(String, String, String)>,
    q: Result<Query<LogQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let after = match query(q).and_then(|q| resume_after(&headers, &q)) {
        Ok(after) => after,
        Err(response) => return response,
    };
    if let Err(response) = cluster(&namespace, &name) {
        return response;
    }
    let read = match Read::parse(&format!("api/jobs/{job}"), None) {
        Ok(read) => read,
        Err(why) => return bad_request(why),
    };
    let key = format!("job/{namespace}/{name}/{job}");
    // Only a log not followed yet is checked with Ray: viewers of a followed one cost no call.
    // A job Ray does not know is refused; an unreachable dashboard is not: the stream opens and
    // says so, and starts when the dashboard answers.
    if !state.logs.is_followed(&key) {
        match state.dashboards.read(&namespace, &name, &read).await {
            Ok(body) => {
                let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                if let Some(kind) = answer["type"].as_str().filter(|t| *t != "SUBMISSION") {
                    return not_found(format!(
                        "Ray keeps logs of submitted jobs only, and {job} is a {kind} job"
                    ));
                }
            }
            Err(e @ (DashboardError::NotFound(..) | DashboardError::NotACluster(_))) => {
                return e.into_response()
            }
            Err(_) => {}
        }
    }
    let dashboards = state.dashboards.clone();
    event_stream(
        state
            .logs
            .follow(&key, after, move |feed| follow_job(feed, dashboards, namespace, name, job)),
    )
}

/// The pod `pod` of RayCluster `namespace/name` and the container asked for (default: the
/// first); 404 unless the pod exists there and carries `ray.io/cluster={name}`: raydar shows the
/// logs of Ray pods only.
async fn ray_pod(
    state: &AppState,
    namespace: &str,
    name: &str,
    pod: &str,
    container: Option<String>,
) -> Result<(Api<Pod>, String), Response> {
    cluster(namespace, name)?;
    if let Some(problem) = pod_name_problem(pod) {
        return Err(bad_request(problem));
    }
    if let Some(problem) = container.as_deref().and_then(namespace_problem) {
        return Err(bad_request(format!("container {problem}")));
    }
    let pods: Api<Pod> = Api::namespaced(state.launcher.client.clone(), namespace);
    let found = match tokio::time::timeout(CALL_TIMEOUT, pods.get_opt(pod)).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            return Err((
                StatusCode::BAD_GATEWAY,
                Json(json!({ "error": format!("cannot read pod {namespace}/{pod}: {e}") })),
            )
                .into_response())
        }
        Err(_) => {
            let why = format!(
                "the apiserver did not answer for pod {namespace}/{pod} within {} s",
                CALL_TIMEOUT.as_secs()
            );
            return Err(
                (StatusCode::GATEWAY_TIMEOUT, Json(json!({ "error": why }))).into_response()
            );
        }
    };
    let ray_pod = found.filter(|p| {
        p.metadata.labels.as_ref().and_then(|l| l.get("ray.io/cluster")).is_some_and(|c| c == name)
    });
    let Some(found) = ray_pod else {
        return Err(not_found(format!("RayCluster {namespace}/{name} has no pod {pod}")));
    };
    let names: Vec<&str> =
        found.spec.iter().flat_map(|s| s.containers.iter()).map(|c| c.name.as_str()).collect();
    let container = match container {
        Some(c) if names.contains(&c.as_str()) => c,
        Some(c) => {
            return Err(not_found(format!(
                "pod {pod} has no container {c} (it has {})",
                names.join(", ")
            )))
        }
        None => match names.first() {
            Some(first) => (*first).to_owned(),
            None => return Err(not_found(format!("pod {pod} has no containers"))),
        },
    };
    Ok((pods, container))
}

/// `GET /api/v1/clusters/{namespace}/{name}/pods/{pod}/logs/stream?container=`: a Ray pod's log
/// as server-sent events, live until the container stops.
pub async fn pod_log_stream(
    State(state): State<AppState>,
    Path((namespace, name, pod)): Path<(String, String, String)>,
    q: Result<Query<LogQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let q = match query(q) {
        Ok(q) => q,
        Err(response) => return response,
    };
    let after = match resume_after(&headers, &q) {
        Ok(after) => after,
        Err(response) => return response,
    };
    // Checked for every viewer (one GET): the container may be left to default, and the label
    // check stays with each request.
    let (pods, container) = match ray_pod(&state, &namespace, &name, &pod, q.container).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let key = format!("pod/{namespace}/{name}/{pod}/{container}");
    event_stream(state.logs.follow(&key, after, move |feed| follow_pod(feed, pods, pod, container)))
}

/// A log to download.
fn attachment(file: &str, text: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}.log\"")),
        ],
        text,
    )
        .into_response()
}

/// `GET /api/v1/clusters/{namespace}/{name}/jobs/{job_id}/logs`: the job's log so far, as a
/// download.
pub async fn job_log(
    State(state): State<AppState>,
    Path((namespace, name, job)): Path<(String, String, String)>,
) -> Response {
    let read = match Read::parse(&format!("api/jobs/{job}/logs"), None) {
        Ok(read) => read,
        Err(why) => return bad_request(why),
    };
    let body = match state.dashboards.read(&namespace, &name, &read).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    #[derive(Deserialize)]
    struct JobLogs {
        logs: String,
    }
    match serde_json::from_str::<JobLogs>(&body) {
        // Names and ids were checked: they cannot break out of the quoted file name.
        Ok(answer) => attachment(&format!("{name}-{job}"), answer.logs),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({ "error": format!("Ray's answer is not a job log: {e}") })),
        )
            .into_response(),
    }
}

/// `GET /api/v1/clusters/{namespace}/{name}/pods/{pod}/logs?container=`: a Ray pod's log so far
/// (at most 64 MiB), as a download.
pub async fn pod_log(
    State(state): State<AppState>,
    Path((namespace, name, pod)): Path<(String, String, String)>,
    q: Result<Query<LogQuery>, QueryRejection>,
) -> Response {
    let q = match query(q) {
        Ok(q) => q,
        Err(response) => return response,
    };
    let (pods, container) = match ray_pod(&state, &namespace, &name, &pod, q.container).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let params = LogParams {
        container: Some(container.clone()),
        limit_bytes: Some(DOWNLOAD_LIMIT),
        ..LogParams::default()
    };
    let read = async {
        let mut reader = Box::pin(pods.log_stream(&pod, &params).await?);
        let mut bytes = Vec::new();
        futures::AsyncReadExt::read_to_end(&mut reader, &mut bytes)
            .await
            .map_err(kube::Error::ReadEvents)?;
        Ok::<_, kube::Error>(bytes)
    };
    match tokio::time::timeout(DOWNLOAD_TIMEOUT, read).await {
        Ok(Ok(bytes)) => {
            attachment(&format!("{pod}-{container}"), String::from_utf8_lossy(&bytes).into_owned())
        }
        Ok(Err(kube::Error::Api(status))) if status.code == 404 => not_found(status.message),
        Ok(Err(e)) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({ "error": format!("cannot read the log of pod {pod}: {e}") })),
        )
            .into_response(),
        Err(_) => {
            let why = format!(
                "the log of pod {pod} did not arrive within {} s",
                DOWNLOAD_TIMEOUT.as_secs()
            );
            (StatusCode::GATEWAY_TIMEOUT, Json(json!({ "error": why }))).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    fn numbered(range: std::ops::RangeInclusive<u64>) -> Vec<Arc<str>> {
        range.map(|n| Arc::from(format!("line {n}"))).collect()
    }

    /// Follows `key` with an upstream that waits forever; the feed, if this viewer started it.
    fn follow(
        streams: &LogStreams,
        key: &str,
        after: u64,
    ) -> Result<(Viewer, Option<Feed>), AtCapacity> {
        let mut handed = None;
        let viewer = streams.follow(key, after, |feed| {
            handed = Some(feed);
            std::future::pending::<()>()
        })?;
        Ok((viewer, handed))
    }

    /// The next step, or `None` if there is none to send now.
    async fn now(viewer: &mut Viewer) -> Option<Step> {
        tokio::time::timeout(Duration::from_millis(10), viewer.next()).await.ok().flatten()
    }

    fn lines_of(step: Option<Step>) -> (u64, Vec<String>) {
        match step {
            Some(Step::Lines { first, lines }) => {
                (first, lines.iter().map(|l| l.to_string()).collect())
            }
            other => panic!("expected lines, got {other:?}"),
        }
    }

    fn texts(range: std::ops::RangeInclusive<u64>) -> Vec<String> {
        range.map(|n| format!("line {n}")).collect()
    }

    #[tokio::test]
    async fn two_viewers_share_one_upstream() {
        let streams = LogStreams::new(64, 100, LINGER);
        let starts = AtomicUsize::new(0);
        let start = |key| {
            streams
                .follow(key, 0, |feed| {
                    starts.fetch_add(1, Ordering::SeqCst);
                    async move {
                        feed.push(numbered(1..=3));
                        std::future::pending::<()>().await
                    }
                })
                .unwrap()
        };
        let mut first = start("job/a/b/1");
        let mut second = start("job/a/b/1");
        assert_eq!(starts.load(Ordering::SeqCst), 1, "one upstream for both");
        assert_eq!(lines_of(first.next().await), (1, texts(1..=3)));
        assert_eq!(lines_of(second.next().await), (1, texts(1..=3)));
        assert_eq!(streams.metrics().streams, 1);
        assert_eq!(streams.metrics().viewers, 2);
        drop(second);
        assert_eq!(streams.metrics().viewers, 1);
        assert_eq!(now(&mut first).await, None);
    }

    #[tokio::test]
    async fn a_slow_viewer_skips_once_then_gets_the_newest_lines() {
        let streams = LogStreams::new(64, 10, LINGER);
        let (mut slow, feed) = follow(&streams, "job/a/b/1", 0).unwrap();
        let feed = feed.unwrap();
        feed.push(numbered(1..=5));
        assert_eq!(lines_of(slow.next().await), (1, texts(1..=5)));
        // 25 more while it is away: the ring keeps 21..=30.
        feed.push(numbered(6..=30));
        match slow.next().await {
            Some(Step::Skipped { count, through, reason }) => {
                assert_eq!((count, through), (15, 20));
                assert!(
                    reason.contains("fell behind") && reason.contains("--log-buffer-lines"),
                    "{reason}"
                );
            }
            other => panic!("expected skipped, got {other:?}"),
        }
        assert_eq!(lines_of(slow.next().await), (21, texts(21..=30)));
        assert_eq!(now(&mut slow).await, None, "exactly one skipped, no more");
        assert_eq!(streams.metrics().skipped, 15);
        feed.push(numbered(31..=31));
        assert_eq!(lines_of(slow.next().await), (31, texts(31..=31)));
    }

    #[tokio::test]
    async fn a_resumed_viewer_gets_every_line_after_its_last_once() {
        let streams = LogStreams::new(64, 1000, LINGER);
        let (mut viewer, feed) = follow(&streams, "job/a/b/1", 0).unwrap();
        let feed = feed.unwrap();
        let mut seen = Vec::new();
        feed.push(numbered(1..=7));
        let (_, got) = lines_of(viewer.next().await);
        seen.extend(got);
        // Disconnected at line 7 (its last event id); lines come on while it is away.
        drop(viewer);
        feed.push(numbered(8..=20));
        let (mut viewer, started) = follow(&streams, "job/a/b/1", 7).unwrap();
        assert!(started.is_none(), "the source was kept for the linger");
        let (first, got) = lines_of(viewer.next().await);
        assert_eq!(first, 8);
        seen.extend(got);
        assert_eq!(seen, texts(1..=20), "no line twice, none lost");
        assert_eq!(now(&mut viewer).await, None);

        // Resuming before the oldest line kept says so, then goes on from it.
        let streams = LogStreams::new(64, 10, LINGER);
        let (_first_viewer, feed) = follow(&streams, "job/a/b/1", 0).unwrap();
        feed.unwrap().push(numbered(1..=30));
        let (mut late, _) = follow(&streams, "job/a/b/1", 5).unwrap();
        match late.next().await {
            Some(Step::Skipped { count, through, reason }) => {
                assert_eq!((count, through), (15, 20));
                assert!(reason.contains("resumed after line 5"), "{reason}");
            }
            other => panic!("expected skipped, got {other:?}"),
        }
        assert_eq!(lines_of(late.next().await), (21, texts(21..=30)));
    }

    #[test]
    fn last_event_id_wins_over_after() {
        let mut headers = HeaderMap::new();
        let query = LogQuery { container: None, after: Some(3) };
        assert_eq!(resume_after(&headers, &query).unwrap(), 3);
        assert_eq!(resume_after(&headers, &LogQuery::default()).unwrap(), 0);
        headers.insert("last-event-id", "7".parse().unwrap());
        assert_eq!(resume_after(&headers, &query).unwrap(), 7);
        headers.insert("last-event-id", "x".parse().unwrap());
        assert_eq!(resume_after(&headers, &query).unwrap_err().status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn lines_go_in_batches() {
        let streams = LogStreams::new(64, 10_000, LINGER);
        let (mut viewer, feed) = follow(&streams, "job/a/b/1", 0).unwrap();
        let feed = feed.unwrap();
        feed.push(numbered(1..=1200));
        let sizes: Vec<(u64, usize)> = [(); 3]
            .iter()
            .map(|_| match viewer.step() {
                Some(Step::Lines { first, lines }) => (first, lines.len()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sizes, [(1, BATCH_LINES), (501, BATCH_LINES), (1001, 200)]);
        // Long lines: about 256 KiB per event.
        let long: Arc<str> = Arc::from("x".repeat(MAX_LINE));
        feed.push(vec![long; 40]);
        let (first, lines) = lines_of(viewer.next().await);
        assert_eq!((first, lines.len()), (1201, BATCH_BYTES / MAX_LINE));
    }

    #[tokio::test]
    async fn the_cap_refuses_a_new_log_but_not_a_new_viewer() {
        let streams = LogStreams::new(64, 10, LINGER);
        let viewers: Vec<Viewer> =
            (0..64).map(|i| follow(&streams, &format!("job/a/b/{i}"), 0).unwrap().0).collect();
        let refused = follow(&streams, "job/a/b/64", 0).err().expect("the 65th log is refused");
        let message = refused.to_string();
        assert!(message.contains("at most 64 logs at once (--log-streams)"), "{message}");
        assert_eq!(refused.into_response().status(), StatusCode::SERVICE_UNAVAILABLE);
        let (_joined, started) =
            follow(&streams, "job/a/b/0", 0).expect("a followed log takes another viewer");
        assert!(started.is_none());
        let metrics = streams.metrics();
        assert_eq!((metrics.streams, metrics.viewers, metrics.refused), (64, 65, 1));
        drop(viewers);
    }

    /// Sets its flag when dropped: the upstream future was stopped.
    struct Stopped(Arc<AtomicBool>);
    impl Drop for Stopped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_log_nobody_watches_is_stopped_after_the_linger_and_frees_its_slot() {
        // Real time (tokio's paused clock needs its test-util feature, which would rebuild
        // tokio and everything on it for the tests): a short linger, generous margins.
        const LINGER: Duration = Duration::from_millis(300);
        let streams = LogStreams::new(1, 10, LINGER);
        let stopped = Arc::new(AtomicBool::new(false));
        let flag = Stopped(stopped.clone());
        let viewer = streams
            .follow("pod/a/b/p/c", 0, move |_feed| async move {
                let _flag = flag;
                std::future::pending::<()>().await
            })
            .unwrap();
        drop(viewer);
        assert!(follow(&streams, "pod/a/b/q/c", 0).is_err(), "the slot is still taken");
        // A reload within the linger joins the same upstream.
        tokio::time::sleep(LINGER / 2).await;
        let (again, started) = follow(&streams, "pod/a/b/p/c", 0).unwrap();
        assert!(started.is_none());
        tokio::time::sleep(LINGER * 2).await;
        assert!(!stopped.load(Ordering::SeqCst), "watched: still followed");
        drop(again);
        tokio::time::sleep(LINGER + Duration::from_secs(1)).await;
        assert!(stopped.load(Ordering::SeqCst), "the upstream was stopped");
        assert_eq!(streams.metrics().streams, 0);
        let (_other, started) = follow(&streams, "pod/a/b/q/c", 0).expect("the slot is free");
        assert!(started.is_some());
    }

    #[tokio::test]
    async fn the_rest_of_a_log_then_its_end_then_nothing() {
        let streams = LogStreams::new(64, 10, LINGER);
        let (mut viewer, feed) = follow(&streams, "job/a/b/1", 0).unwrap();
        let feed = feed.unwrap();
        feed.problem("the Ray dashboard of a/b did not answer within 10 s; retrying".into());
        feed.push(numbered(1..=2));
        assert_eq!(lines_of(viewer.next().await), (1, texts(1..=2)));
        assert!(
            matches!(viewer.next().await, Some(Step::Problem(p)) if p.contains("did not answer"))
        );
        assert_eq!(now(&mut viewer).await, None, "a problem is sent once");
        feed.problem("the Ray dashboard of a/b did not answer within 10 s; retrying".into());
        assert_eq!(now(&mut viewer).await, None, "and the same again on a retry not at all");
        feed.problem("cannot reach the Ray dashboard of a/b".into());
        assert!(
            matches!(viewer.next().await, Some(Step::Problem(p)) if p.contains("cannot reach"))
        );
        feed.push(numbered(3..=3));
        feed.end("job SUCCEEDED");
        assert_eq!(lines_of(viewer.next().await), (3, texts(3..=3)));
        assert_eq!(viewer.next().await, Some(Step::End("job SUCCEEDED".into())));
        assert_eq!(viewer.next().await, None);
        assert_eq!(streams.metrics().upstream_errors, 3, "every failure counts");
    }

    #[tokio::test]
    async fn events_are_json_with_the_last_line_as_id() {
        let streams = LogStreams::new(64, 10, LINGER);
        let (viewer, feed) = follow(&streams, "job/a/b/1", 0).unwrap();
        let feed = feed.unwrap();
        feed.push(vec![
            Arc::from("a \"quoted\" <b>line</b>"),
            Arc::from("data: not an event\n\nevent: end"),
        ]);
        feed.end("job FAILED");
        let response = Sse::new(events(viewer)).into_response();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        let blocks: Vec<&str> = body.split("\n\n").filter(|b| !b.is_empty()).collect();
        assert_eq!(blocks.len(), 2, "{body}");
        assert!(blocks[0].contains("event: lines") && blocks[0].contains("id: 2"), "{body}");
        let data: serde_json::Value =
            serde_json::from_str(blocks[0].lines().find_map(|l| l.strip_prefix("data: ")).unwrap())
                .unwrap();
        assert_eq!(
            data,
            json!({"first": 1, "lines": ["a \"quoted\" <b>line</b>", "data: not an event\n\nevent: end"]})
        );
        assert!(
            blocks[1].contains("event: end")
                && blocks[1].contains(r#"data: {"reason":"job FAILED"}"#),
            "{body}"
        );
    }

    fn split_all(chunks: &[&[u8]]) -> Vec<String> {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        for chunk in chunks {
            lines.split(chunk, |raw| out.push(text(raw).to_string()));
        }
        lines.finish(|raw| out.push(text(raw).to_string()));
        out
    }

    #[test]
    fn lines_are_split_across_chunks_with_crlf_normalized() {
        assert_eq!(
            split_all(&[b"a\r", b"\nb", b"c\n", b"\n\r\n", b"last"]),
            ["a", "bc", "", "", "last"]
        );
        // A lone CR inside a line is the line's own.
        assert_eq!(split_all(&[b"50%\r100%\n"]), ["50%\r100%"]);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(
            split_all(&[b"ok \xff\xfe end\n", "caf\u{e9}\n".as_bytes()]),
            ["ok \u{fffd}\u{fffd} end", "caf\u{e9}"]
        );
        // A character split between chunks is whole again.
        let e = "\u{e9}".as_bytes();
        assert_eq!(split_all(&[&[b'x', e[0]], &[e[1], b'\n']]), ["x\u{e9}"]);
    }

    #[test]
    fn a_long_line_is_cut_at_16_kib_on_a_character_boundary() {
        let exact = "x".repeat(MAX_LINE);
        assert_eq!(
            split_all(&[exact.as_bytes(), b"\r\n"]),
            [exact.clone()],
            "16 KiB exactly is kept whole"
        );
        // 'é' takes bytes MAX_LINE-1 and MAX_LINE: it is dropped whole, not halved.
        let long = format!("{}é{}", "x".repeat(MAX_LINE - 1), "y".repeat(100_000));
        let chunks: Vec<&[u8]> = long.as_bytes().chunks(1000).chain([&b"\nnext\n"[..]]).collect();
        let lines = split_all(&chunks);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], format!("{}{CUT_MARKER}", "x".repeat(MAX_LINE - 1)));
        assert_eq!(lines[1], "next");
    }

    #[test]
    fn a_replay_skips_the_lines_in_hand() {
        let mut replay = Replay { in_hand: 3, seen: 0 };
        let new: Vec<bool> = (0..5).map(|_| replay.is_new()).collect();
        assert_eq!(new, [false, false, false, true, true]);
    }

    fn at(text: &str) -> Option<Timestamp> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn pod_log_lines_carry_their_timestamp() {
        let (stamp, line) = stamped(b"2026-01-01T00:00:01.500000000Z hello world");
        assert_eq!(stamp, at("2026-01-01T00:00:01.5Z"));
        assert_eq!(line, b"hello world");
        assert_eq!(stamped(b"no timestamp here"), (None, &b"no timestamp here"[..]));
    }

    #[test]
    fn a_reopened_pod_log_replays_nothing_in_hand() {
        let mut resume = PodResume::default();
        resume.reopened();
        let t1 = at("2026-01-01T00:00:01.25Z");
        let t2 = at("2026-01-01T00:00:01.75Z");
        // First connection: everything is new, even the same stamp twice.
        assert!([t1, t2, t2].into_iter().all(|t| resume.is_new(t)));
        assert_eq!(
            resume.since(),
            at("2026-01-01T00:00:01Z"),
            "sinceTime is floored to the second"
        );
        // Reopened from 00:00:01: t1 and the two t2 are in hand, a third t2 and later are new.
        resume.reopened();
        let replayed: Vec<bool> = [t1, t2, t2, t2, at("2026-01-01T00:00:02Z")]
            .into_iter()
            .map(|t| resume.is_new(t))
            .collect();
        assert_eq!(replayed, [false, false, false, true, true]);
        // A new container's log starts later: all new.
        resume.reopened();
        assert!(resume.is_new(at("2026-01-01T00:00:03Z")));
    }
}
