//! History: what raydar remembers of every cluster after it is gone (who launched it and how,
//! its phases, its Kubernetes Events, how it ended), kept in a database of its own, so that a
//! teardown or a restart of raydar loses nothing.
//!
//! Sources put [`Record`]s into a bounded [`Sink`] without waiting; one writer empties it into
//! the [`Store`] in transactions. The database being slow or away never holds up a live page:
//! records wait in the buffer and the writer retries; pages say history is unavailable, and how
//! many records were lost if the buffer filled.
//!
//! # Layout
//!
//! - [`store`]: the database (SQLite or PostgreSQL, one set of migrations), its writes and
//!   queries, and retention.
//! - [`sink`]: the bounded buffer and the writer.
//! - [`record`]: what is written, made from what the sources saw.
//! - [`observe`]: the cluster watch's records: first sight, phase changes, deletion.
//! - [`events`]: the Kubernetes Events of clusters and their pods, as a source of its own.
//! - [`jobs`]: clusters' Ray jobs and their driver logs, as a source of its own; [`archive`]:
//!   one job's log in compressed chunks, capped, and how complete it is.
//! - [`gpus`]: clusters' GPU use, a step at a time, as a source of its own.

pub mod archive;
pub mod events;
pub mod gpus;
pub mod jobs;
pub mod observe;
pub mod record;
pub mod sink;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use observe::Observer;
pub use record::Record;
pub use sink::{Retention, Sink};
pub use store::{Database, Store};

use crate::config::HistorySettings;

/// History: its store (for reads), its sink (for sources) and the writer between: cheap to clone.
#[derive(Clone)]
pub struct History {
    /// For reads.
    pub store: Store,
    /// For sources.
    pub sink: Sink,
    writer: Arc<tokio::sync::Mutex<sink::Writer>>,
    keep: Duration,
    max_bytes: u64,
    /// Most bytes of text archived of one job's log.
    pub job_log_bytes: u64,
    /// Seconds between GPU use records.
    pub gpu_step: u32,
}

impl History {
    /// History as `settings` say; the database is reached only once [`History::run`] runs.
    pub fn open(settings: &HistorySettings) -> Result<History, String> {
        let store = Store::open(&settings.database)?;
        let (sink, writer) = sink::sink(settings.buffer);
        Ok(History {
            store,
            sink,
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
            keep: settings.keep,
            max_bytes: settings.max_bytes,
            job_log_bytes: settings.job_log_bytes,
            gpu_step: settings.gpu_step,
        })
    }

    /// The source: brings the schema up to date, then writes records and applies retention
    /// until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), String> {
        let mut writer = self.writer.lock().await;
        let mut retention = Retention::new(self.keep, self.max_bytes);
        writer.run(&self.store, shutdown, &mut retention).await;
        Ok(())
    }
}
