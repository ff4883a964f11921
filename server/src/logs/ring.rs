//! One followed log: its recent lines in a bounded ring, numbered from 1, its trouble and its end;
//! the [`Feed`] its upstream writes with, and the [`Viewer`]s pages read it with, sent as
//! server-sent events.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::response::sse::Event;
use futures::Stream;
use serde_json::json;
use tokio::sync::watch;

use super::{lock, Hub, BATCH_BYTES, BATCH_LINES, MAX_BUFFER_BYTES};

/// One followed log.
pub(super) struct Source {
    /// A std mutex: held only to copy lines in or out, never across an await.
    ring: Mutex<Ring>,
    /// Bumped on every change of the ring: viewers wait on it.
    changed: watch::Sender<()>,
    /// Viewers now.
    pub(super) viewers: watch::Sender<usize>,
}

/// A log's recent lines and state. Lines are numbered from 1; `lines[0]` is line `first`.
struct Ring {
    lines: VecDeque<Arc<str>>,
    first: u64,
    bytes: usize,
    capacity: usize,
    /// Its share of the text budget of all logs.
    byte_capacity: usize,
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
        self.trim();
    }

    /// Drops the oldest lines past the ring's capacity, in lines or bytes (the newest line is
    /// kept whatever its length).
    fn trim(&mut self) {
        while self.lines.len() > self.capacity
            || (self.bytes > self.byte_capacity && self.lines.len() > 1)
        {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.len();
                self.first += 1;
            }
        }
    }
}

impl Source {
    pub(super) fn new(capacity: usize) -> Self {
        let ring = Ring {
            lines: VecDeque::new(),
            first: 1,
            bytes: 0,
            capacity,
            byte_capacity: MAX_BUFFER_BYTES,
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

    /// Keeps at most `bytes` of text from now on, dropping the oldest lines over it now.
    pub(super) fn keep_bytes(&self, bytes: usize) {
        let mut ring = lock(&self.ring);
        ring.byte_capacity = bytes;
        ring.trim();
    }

    /// Bytes of text kept now.
    pub(super) fn bytes(&self) -> usize {
        lock(&self.ring).bytes
    }

    pub(super) fn end(&self, reason: &str) {
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
    pub(super) hub: Arc<Hub>,
    pub(super) source: Arc<Source>,
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
    /// Whether it is a page's (an event stream, counted in `/metrics`) rather than a reader
    /// inside raydar (history's archive), which keeps the log followed but is not a viewer.
    counted: bool,
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
    pub(super) fn new(hub: Arc<Hub>, source: Arc<Source>, after: u64, counted: bool) -> Self {
        source.viewers.send_modify(|n| *n += 1);
        if counted {
            hub.viewers.fetch_add(1, Ordering::Relaxed);
        }
        let changed = source.changed.subscribe();
        Viewer {
            hub,
            source,
            changed,
            after,
            resumed: (after > 0).then_some(after),
            problem_seen: 0,
            done: false,
            counted,
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
    pub(super) fn step(&mut self) -> Option<Step> {
        let ring = lock(&self.source.ring);
        if self.after.saturating_add(1) < ring.first {
            let count = ring.first - 1 - self.after;
            let kept = format!(
                "raydar keeps the last {} lines of a log (--log-buffer-lines) and {} KiB of its text \
                 (its share of --log-buffer-mib); the download has all of it",
                ring.capacity,
                ring.byte_capacity / 1024
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
            if self.counted {
                self.hub.skipped.fetch_add(count, Ordering::Relaxed);
            }
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
        if self.counted {
            self.hub.viewers.fetch_sub(1, Ordering::Relaxed);
        }
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
