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

/// How long a raydar waits for the SQLite history another one holds (a restart overlapping the
/// last process's exit) before it refuses to start.
const SOLE_WAIT: Duration = Duration::from_secs(10);

/// Takes the SQLite database at `path` for this process alone, waiting up to `wait` for another
/// process to let it go: a lock on `PATH.lock` beside it, naming its holder. SQLite serves one
/// replica (its writes and the lifecycle's lease are one process's); a second one refuses to
/// start and says why, rather than both writing one file.
fn sole_writer(path: &std::path::Path, wait: Duration) -> Result<std::fs::File, String> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    }
    let lock = std::path::PathBuf::from(format!("{}.lock", path.display()));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&lock)
        .map_err(|e| format!("cannot open {}: {e}", lock.display()))?;
    let deadline = std::time::Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&lock).unwrap_or_default();
                let holder = match holder.trim() {
                    "" => String::new(),
                    said => format!(" ({said})"),
                };
                return Err(format!(
                    "another raydar-server{holder} keeps its history in the SQLite database {}: \
                     SQLite serves one replica; for several, give them one PostgreSQL \
                     (--database postgres://...)",
                    path.display()
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", lock.display()));
            }
        }
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let said = format!("pid {} on {}", std::process::id(), host.trim());
    // Who holds it, for the message a second process gives; the lock is what counts.
    let _ = file.set_len(0).and_then(|()| file.write_all(said.as_bytes()));
    Ok(file)
}

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
    /// With SQLite, the lock that keeps the file this process's alone, held while any clone is.
    sole: Option<Arc<std::fs::File>>,
}

impl History {
    /// History as `settings` say; the database is reached only once [`History::run`] runs.
    pub fn open(settings: &HistorySettings) -> Result<History, String> {
        let sole = match &settings.database {
            Database::Sqlite(path) => Some(Arc::new(sole_writer(path, SOLE_WAIT)?)),
            Database::Postgres(_) => None,
        };
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
            sole,
        })
    }

    /// Whether several replicas may share this history (PostgreSQL), or one alone (SQLite).
    pub fn shared(&self) -> bool {
        self.sole.is_none()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sqlite_history_is_one_processs_until_it_lets_go() {
        let dir = std::env::temp_dir().join(format!("raydar-sole-unit-{}", std::process::id()));
        let path = dir.join("raydar.db");
        let first = sole_writer(&path, Duration::ZERO).unwrap();
        let refused = sole_writer(&path, Duration::from_millis(200)).unwrap_err();
        let me = format!("another raydar-server (pid {} on ", std::process::id());
        assert!(refused.contains(&me) && refused.contains("PostgreSQL"), "{refused}");
        drop(first);
        assert!(sole_writer(&path, Duration::ZERO).is_ok(), "free once its holder let go");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
