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
//! viewers of followed ones still join), `--log-buffer-lines` lines kept per source, one budget of
//! `--log-buffer-mib` for the text of all sources together (each source an equal share of it, and
//! at most [`MAX_BUFFER_BYTES`]: a new source takes its share from the others at once), lines cut
//! at [`MAX_LINE`] bytes. A source nobody watches is stopped after
//! [`LINGER`], so a page reload finds it still there; the slot is freed then.
//!
//! # Layout
//! - [`LogStreams`] (here): the shared sources, the stream cap, the counters for `/metrics`.
//! - [`ring`]: one followed log's recent lines, its trouble, its end; the [`Feed`] an upstream
//!   writes with and the [`Viewer`] each page reads with, sent as server-sent events.
//! - [`lines`]: bytes to lines: CR-LF, lossy UTF-8, over-long lines cut.
//! - [`job`] and [`pod`]: the two upstreams, reconnecting with backoff.
//! - The routes are in `crate::api::logs`.

pub mod job;
pub mod lines;
pub mod pod;
pub mod ring;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::watch;

pub use lines::{text, Lines, CUT_MARKER, MAX_LINE};
use ring::Source;
pub use ring::{events, Feed, Step, Viewer};

use crate::error::ApiError;

/// Most bytes of text a source keeps, whatever `--log-buffer-lines` and its share of
/// `--log-buffer-mib` say: with lines of up to 16 KiB, 10,000 lines could otherwise hold 160 MB.
pub const MAX_BUFFER_BYTES: usize = 16 << 20;
/// Most lines in one `lines` event.
pub const BATCH_LINES: usize = 500;
/// Most bytes of text in one `lines` event (a single longer line still goes alone).
pub const BATCH_BYTES: usize = 256 * 1024;
/// How long a source nobody watches is kept (upstream open, slot taken), so that a reload of the
/// page joins it again instead of starting over.
pub const LINGER: Duration = Duration::from_secs(10);
/// Opening a pod log, reading a pod, pinging a tail: each ends within this.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
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
    /// Bytes of text all sources keep together.
    buffer_bytes: usize,
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
    /// Bytes of log text kept by all followed logs.
    pub buffered: usize,
}

/// A new log refused: `--log-streams` logs are followed already.
#[derive(Debug, thiserror::Error)]
#[error("raydar follows at most {0} logs at once (--log-streams); this one can start when another log is closed")]
pub struct AtCapacity(pub usize);

impl From<AtCapacity> for ApiError {
    fn from(full: AtCapacity) -> ApiError {
        ApiError::unavailable(full.to_string())
    }
}

/// Locks, going on after a panic elsewhere: every critical section leaves the data consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl LogStreams {
    /// At most `max_streams` logs followed at once, `buffer_lines` lines kept of each and
    /// `buffer_bytes` of text kept of all together, a log nobody watches kept for `linger`.
    pub fn new(
        max_streams: usize,
        buffer_lines: usize,
        buffer_bytes: usize,
        linger: Duration,
    ) -> Self {
        let hub = Hub {
            max_streams: max_streams.max(1),
            buffer_lines: buffer_lines.max(1),
            buffer_bytes,
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
        self.join(key, after, upstream, true)
    }

    /// A reader inside raydar (history's archive) of log `key` from its first line: like a
    /// viewer it keeps the log followed (and starts it, under the same cap), but it is no page's
    /// event stream, so `/metrics` does not count it among the viewers, nor its skips.
    pub fn read<U, F>(&self, key: &str, upstream: U) -> Result<Viewer, AtCapacity>
    where
        U: FnOnce(Feed) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        self.join(key, 0, upstream, false)
    }

    fn join<U, F>(
        &self,
        key: &str,
        after: u64,
        upstream: U,
        counted: bool,
    ) -> Result<Viewer, AtCapacity>
    where
        U: FnOnce(Feed) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        let hub = &self.hub;
        let mut sources = lock(&hub.sources);
        if let Some(source) = sources.get(key) {
            return Ok(Viewer::new(hub.clone(), source.clone(), after, counted));
        }
        if sources.len() >= hub.max_streams {
            hub.refused.fetch_add(1, Ordering::Relaxed);
            return Err(AtCapacity(hub.max_streams));
        }
        let source = Arc::new(Source::new(hub.buffer_lines));
        sources.insert(key.to_owned(), source.clone());
        hub.share(&sources);
        // Joined before the source's task starts, so its linger cannot begin before this viewer.
        let viewer = Viewer::new(hub.clone(), source.clone(), after, counted);
        drop(sources);
        let follow = upstream(Feed { hub: hub.clone(), source: source.clone() });
        tokio::spawn(run(hub.clone(), key.to_owned(), source, follow));
        Ok(viewer)
    }

    /// The counters for `/metrics`.
    pub fn metrics(&self) -> LogMetrics {
        let hub = &self.hub;
        let sources = lock(&hub.sources);
        LogMetrics {
            streams: sources.len(),
            buffered: sources.values().map(|s| s.bytes()).sum(),
            viewers: hub.viewers.load(Ordering::Relaxed),
            refused: hub.refused.load(Ordering::Relaxed),
            skipped: hub.skipped.load(Ordering::Relaxed),
            upstream_errors: hub.upstream_errors.load(Ordering::Relaxed),
        }
    }
}

impl Hub {
    /// Gives every source in `sources` an equal share of the text budget (at most
    /// [`MAX_BUFFER_BYTES`]); one over its share drops its oldest lines now. Called whenever a
    /// source comes or goes, under the sources' lock: the rings only ever grow within their share,
    /// so all of them together never hold more than the budget (and a line).
    fn share(&self, sources: &HashMap<String, Arc<Source>>) {
        let share = (self.buffer_bytes / sources.len().max(1)).min(MAX_BUFFER_BYTES);
        for source in sources.values() {
            source.keep_bytes(share);
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
                        hub.share(&sources);
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use axum::response::IntoResponse;
    use serde_json::json;

    use super::*;

    /// The text budget of the tests that do not test it: a source's own cap is the limit.
    const BUDGET: usize = 64 << 20;

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
        let streams = LogStreams::new(64, 100, BUDGET, LINGER);
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
        let streams = LogStreams::new(64, 10, BUDGET, LINGER);
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
        let streams = LogStreams::new(64, 1000, BUDGET, LINGER);
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
        let streams = LogStreams::new(64, 10, BUDGET, LINGER);
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

    #[tokio::test]
    async fn a_reader_inside_raydar_keeps_a_log_followed_but_is_no_viewer() {
        let streams = LogStreams::new(64, 10, BUDGET, LINGER);
        let (mut viewer, feed) = follow(&streams, "job/a/b/1", 0).unwrap();
        let mut reader = streams.read("job/a/b/1", |_| std::future::pending::<()>()).unwrap();
        assert_eq!((streams.metrics().streams, streams.metrics().viewers), (1, 1));
        feed.unwrap().push(numbered(1..=30));
        // The viewer fell behind and is counted; the reader's skip is not.
        assert!(matches!(viewer.next().await, Some(Step::Skipped { count: 20, .. })));
        assert!(matches!(reader.next().await, Some(Step::Skipped { count: 20, .. })));
        assert_eq!(streams.metrics().skipped, 20);
        drop(viewer);
        assert_eq!(streams.metrics().viewers, 0);
        assert!(streams.is_followed("job/a/b/1"), "the reader keeps it followed");
    }

    #[tokio::test]
    async fn lines_go_in_batches() {
        let streams = LogStreams::new(64, 10_000, BUDGET, LINGER);
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
        let streams = LogStreams::new(64, 10, BUDGET, LINGER);
        let viewers: Vec<Viewer> =
            (0..64).map(|i| follow(&streams, &format!("job/a/b/{i}"), 0).unwrap().0).collect();
        let refused = follow(&streams, "job/a/b/64", 0).err().expect("the 65th log is refused");
        let message = refused.to_string();
        assert!(message.contains("at most 64 logs at once (--log-streams)"), "{message}");
        assert_eq!(ApiError::from(refused).status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
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
        let streams = LogStreams::new(1, 10, BUDGET, LINGER);
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
        let streams = LogStreams::new(64, 10, BUDGET, LINGER);
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
        let streams = LogStreams::new(64, 10, BUDGET, LINGER);
        let (viewer, feed) = follow(&streams, "job/a/b/1", 0).unwrap();
        let feed = feed.unwrap();
        feed.push(vec![
            Arc::from("a \"quoted\" <b>line</b>"),
            Arc::from("data: not an event\n\nevent: end"),
        ]);
        feed.end("job FAILED");
        let response = axum::response::sse::Sse::new(events(viewer)).into_response();
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

    #[tokio::test]
    async fn all_logs_share_one_text_budget_and_a_new_one_takes_its_share_at_once() {
        // 1,000 bytes for every log together; lines of 10 bytes.
        let streams = LogStreams::new(64, 10_000, 1000, LINGER);
        let line = |n: u64| -> Arc<str> { Arc::from(format!("line {n:05}")) };
        let (mut first, feed) = follow(&streams, "job/a/b/1", 0).unwrap();
        feed.unwrap().push((1..=300).map(line).collect());
        assert_eq!(streams.metrics().buffered, 1000, "one log: the whole budget");
        // A second log: the first keeps half now, before either writes again.
        let (_second, feed) = follow(&streams, "job/a/b/2", 0).unwrap();
        assert_eq!(streams.metrics().buffered, 500);
        feed.unwrap().push((1..=300).map(line).collect());
        assert_eq!(streams.metrics().buffered, 1000, "two halves");
        // The first log's viewer is told what it missed, then gets the newest 50 lines.
        match first.next().await {
            Some(Step::Skipped { count, through, .. }) => assert_eq!((count, through), (250, 250)),
            other => panic!("expected skipped, got {other:?}"),
        }
        assert_eq!(lines_of(first.next().await).0, 251);
        // 64 logs: none keeps more than its share, and all together not more than the budget.
        let _more: Vec<_> = (3..=64)
            .map(|i| {
                let (viewer, feed) = follow(&streams, &format!("job/a/b/{i}"), 0).unwrap();
                feed.unwrap().push((1..=300).map(line).collect());
                viewer
            })
            .collect();
        let buffered = streams.metrics().buffered;
        assert!((64 * 10..=1000).contains(&buffered), "{buffered} bytes");
    }
}
