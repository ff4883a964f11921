//! The way into history: a bounded buffer that sources put records in without waiting, and the
//! writer that empties it into the database in batches, holding on while the database is away.
//!
//! Nothing live waits for the database: [`Sink::send`] never blocks. While the database does not
//! answer, the writer keeps the batch it holds and retries; records wait in the buffer, and once
//! it is full further ones are lost and counted ([`Sink::lost`]), which pages show.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use platform::Stale;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::record::Record;
use super::store::Store;
use crate::unix_now;

/// Records written in one transaction at most.
const BATCH: usize = 512;
/// Longest wait between attempts while the database does not answer.
const MAX_RETRY: Duration = Duration::from_secs(5);
/// Most bytes the buffer holds, whatever its count of records: job log chunks are far bigger
/// than phase changes.
pub const MAX_BUFFER_BYTES: usize = 64 << 20;
/// Time given to write what is buffered when raydar shuts down.
const FLUSH_AT_SHUTDOWN: Duration = Duration::from_millis(400);

/// Puts records into history without waiting: cheap to clone.
#[derive(Clone)]
pub struct Sink {
    tx: mpsc::Sender<Record>,
    status: Arc<Status>,
}

/// How writing goes, shared by the sink and the writer.
#[derive(Default)]
struct Status {
    /// Records lost because the buffer was full.
    lost: AtomicU64,
    /// Records written.
    written: AtomicU64,
    /// Bytes of the records in the buffer (or in the writer's hands), about.
    bytes: AtomicUsize,
    /// Since when, and why, the database does not take records.
    outage: Mutex<Option<Stale>>,
}

impl Status {
    fn outage(&self) -> std::sync::MutexGuard<'_, Option<Stale>> {
        self.outage.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn failed(&self, reason: String) {
        let mut outage = self.outage();
        match &mut *outage {
            Some(stale) => stale.reason = reason,
            None => {
                tracing::warn!("history is not being written: {reason}");
                *outage = Some(Stale { since: unix_now(), reason });
            }
        }
    }

    fn recovered(&self) {
        if let Some(stale) = self.outage().take() {
            tracing::info!(
                lost = self.lost.load(Ordering::Relaxed),
                "history is written again, after {} s",
                unix_now() - stale.since
            );
        }
    }
}

/// Waits `wait` (doubling it for next time, up to [`MAX_RETRY`]); false if `shutdown` came
/// first.
async fn pause(shutdown: &CancellationToken, wait: &mut Duration) -> bool {
    let slept = tokio::select! {
        _ = shutdown.cancelled() => false,
        () = tokio::time::sleep(*wait) => true,
    };
    *wait = (*wait * 2).min(MAX_RETRY);
    slept
}

/// How long, and how much, history keeps: applied every [`Retention::EVERY`] at most.
pub struct Retention {
    /// How long a deleted cluster is kept.
    pub keep: Duration,
    /// Most bytes kept, about.
    pub max_bytes: u64,
    last: Option<std::time::Instant>,
}

impl Retention {
    /// How often retention runs, at most.
    pub const EVERY: Duration = Duration::from_secs(600);

    /// Keeps clusters for `keep` after their deletion, and `max_bytes` in all.
    pub fn new(keep: Duration, max_bytes: u64) -> Retention {
        Retention { keep, max_bytes, last: None }
    }

    /// Removes what is no longer kept, unless that was done less than [`Retention::EVERY`] ago.
    async fn apply(&mut self, store: &Store) {
        if self.last.is_some_and(|at| at.elapsed() < Self::EVERY) {
            return;
        }
        self.last = Some(std::time::Instant::now());
        let before = crate::unix_now_ms() - self.keep.as_millis() as i64;
        match store.trim(before, self.max_bytes).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(clusters = n, "history: removed what retention no longer keeps")
            }
            Err(e) => tracing::warn!("history retention: {e}"),
        }
    }
}

/// The writer's end of a [`Sink`].
pub struct Writer {
    rx: mpsc::Receiver<Record>,
    status: Arc<Status>,
}

/// A sink holding at most `capacity` records, and its writer.
pub fn sink(capacity: usize) -> (Sink, Writer) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let status = Arc::new(Status::default());
    (Sink { tx, status: status.clone() }, Writer { rx, status })
}

impl Sink {
    /// Puts `record` in the buffer, or counts it lost when the buffer is full.
    pub fn send(&self, record: Record) {
        let size = record.size();
        let held = self.status.bytes.fetch_add(size, Ordering::Relaxed) + size;
        let sent = held <= MAX_BUFFER_BYTES && self.tx.try_send(record).is_ok();
        if !sent {
            self.status.bytes.fetch_sub(size, Ordering::Relaxed);
            if self.status.lost.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    "history's buffer is full ({} records, {} MiB at most): records are lost \
                     until the database answers again",
                    self.tx.max_capacity(),
                    MAX_BUFFER_BYTES >> 20
                );
            }
        }
    }

    /// Puts every record of `records` in the buffer, as [`Sink::send`].
    pub fn extend(&self, records: impl IntoIterator<Item = Record>) {
        for record in records {
            self.send(record);
        }
    }

    /// Records lost since raydar started.
    pub fn lost(&self) -> u64 {
        self.status.lost.load(Ordering::Relaxed)
    }

    /// Records written since raydar started.
    pub fn written(&self) -> u64 {
        self.status.written.load(Ordering::Relaxed)
    }

    /// Records waiting to be written.
    pub fn buffered(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Since when and why history is not being written, while it is not.
    pub fn stale(&self) -> Option<Stale> {
        self.status.outage().clone()
    }
}

impl Writer {
    /// Writes what the sink is given into `store` until `shutdown`, after bringing its schema up
    /// to date; a failure is retried (with backoff, at most [`MAX_RETRY`] apart) and reported,
    /// never the end. `retention` is applied between batches.
    pub async fn run(
        &mut self,
        store: &Store,
        shutdown: CancellationToken,
        retention: &mut Retention,
    ) {
        let mut wait = Duration::from_millis(100);
        loop {
            match store.migrate().await {
                Ok(()) => break,
                Err(e) => self.status.failed(e),
            }
            if !pause(&shutdown, &mut wait).await {
                return;
            }
        }
        self.status.recovered();
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            if batch.is_empty() {
                let received = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    n = self.rx.recv_many(&mut batch, BATCH) => n,
                };
                if received == 0 {
                    return;
                }
            }
            match store.write(&batch).await {
                Ok(()) => {
                    self.status.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    let bytes: usize = batch.iter().map(Record::size).sum();
                    self.status.bytes.fetch_sub(bytes, Ordering::Relaxed);
                    batch.clear();
                    self.status.recovered();
                    wait = Duration::from_millis(100);
                    retention.apply(store).await;
                }
                Err(e) => {
                    self.status.failed(e);
                    if !pause(&shutdown, &mut wait).await {
                        break;
                    }
                }
            }
        }
        // Shutting down: what is buffered gets one short chance.
        while let Ok(record) = self.rx.try_recv() {
            batch.push(record);
        }
        if !batch.is_empty() {
            let flushed = tokio::time::timeout(FLUSH_AT_SHUTDOWN, store.write(&batch)).await;
            if !matches!(flushed, Ok(Ok(()))) {
                tracing::warn!(records = batch.len(), "history records not written at shutdown");
            }
        }
    }
}
