//! Runs every background source, starts again with backoff one that fails or panics, and tells
//! `/readyz`, `/metrics` and the pages how each one is.
//!
//! A source is an `async fn run(handle, shutdown) -> Result<(), String>` that works until
//! `shutdown` is cancelled. Returning before that, with an error or without, or panicking, is a
//! failure: it is logged and counted, the source is reported down (naming why) and it is started
//! again after a backoff that doubles from [`BACKOFF`]'s first to its last wait, and starts over
//! once a run has lasted a minute. Nothing it had filled is lost: a source's store belongs to its
//! handle, not to the run (see `sources::watch::Projected`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Waits before a failed source is started again: doubling from the first to the last.
pub const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));
/// A run that lasted this long was healthy: the next failure waits the first backoff again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// How every source is: cheap to clone, read by `/readyz`, `/metrics` and pages.
#[derive(Clone, Default)]
pub struct SourceStatus {
    /// By source name. A std mutex: held only to copy a few fields, never across an await.
    sources: Arc<Mutex<BTreeMap<&'static str, Health>>>,
}

/// One source's record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// Why it is down (failed and waiting to start again), or `None` while it runs.
    pub down: Option<String>,
    /// Failures since raydar started (errors and panics).
    pub failures: u64,
    /// Times it was started again.
    pub restarts: u64,
}

impl SourceStatus {
    fn update(&self, name: &'static str, change: impl FnOnce(&mut Health)) {
        change(self.sources.lock().unwrap_or_else(|e| e.into_inner()).entry(name).or_default());
    }

    /// Every source by name.
    pub fn all(&self) -> BTreeMap<&'static str, Health> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// One source's record, when it is supervised.
    pub fn get(&self, name: &str) -> Option<Health> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    /// The sources that are down, each as `name: why`.
    pub fn down(&self) -> Vec<String> {
        self.down_of(|_| true)
    }

    /// The sources among those `of` picks that are down, each as `source name is down: why`:
    /// what a page that shows their data says, so that it never shows frozen data as current.
    pub fn down_of(&self, of: impl Fn(&str) -> bool) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|(name, _)| of(name))
            .filter_map(|(name, health)| health.down.map(|why| format!("{name}: {why}")))
            .collect()
    }
}

/// Starts sources, keeps them running, and stops them all on shutdown.
pub struct Supervisor {
    backoff: (Duration, Duration),
    status: SourceStatus,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Supervisor {
    /// A supervisor whose sources stop when `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken) -> Self {
        Supervisor {
            backoff: BACKOFF,
            status: SourceStatus::default(),
            shutdown,
            tasks: JoinSet::new(),
        }
    }

    /// The same supervisor, waiting `first` then up to `last` before starting a failed source
    /// again (instead of [`BACKOFF`]'s).
    pub fn with_backoff(mut self, first: Duration, last: Duration) -> Self {
        self.backoff = (first, last);
        self
    }

    /// How its sources are.
    pub fn status(&self) -> SourceStatus {
        self.status.clone()
    }

    /// Runs source `name` (`run(shutdown)`, called again for every restart) until shutdown.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, run: F)
    where
        F: Fn(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let (status, shutdown, backoff) =
            (self.status.clone(), self.shutdown.clone(), self.backoff);
        status.update(name, |_| {});
        self.tasks.spawn(async move {
            let mut wait = backoff.0;
            loop {
                let started = Instant::now();
                let ran = std::panic::AssertUnwindSafe(run(shutdown.clone())).catch_unwind().await;
                if shutdown.is_cancelled() {
                    return;
                }
                let why = match ran {
                    Ok(Ok(())) => "stopped by itself".to_owned(),
                    Ok(Err(why)) => why,
                    Err(panic) => format!("panicked: {}", panic_message(panic.as_ref())),
                };
                if started.elapsed() >= HEALTHY_RUN {
                    wait = backoff.0;
                }
                tracing::error!(source = name, "{why}; starting it again in {wait:?}");
                status.update(name, |h| {
                    h.failures += 1;
                    h.down = Some(format!("{why} (starting again in {:.1} s)", wait.as_secs_f64()));
                });
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => return,
                }
                wait = (wait * 2).min(backoff.1);
                status.update(name, |h| {
                    h.restarts += 1;
                    h.down = None;
                });
            }
        });
    }

    /// Waits for every source to stop (they stop once shutdown is cancelled), at most `limit`.
    pub async fn join(mut self, limit: Duration) {
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!("sources still running {limit:?} after shutdown; leaving them");
        }
    }
}

/// What a panic said, when it said it with a string (as `panic!` and `expect` do).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("without a message")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_failing_source_is_reported_down_and_started_again_with_backoff() {
        let shutdown = CancellationToken::new();
        let ms = Duration::from_millis;
        let mut supervisor = Supervisor::new(shutdown.clone()).with_backoff(ms(200), ms(400));
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        supervisor.spawn("flaky", move |shutdown| {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                match run {
                    0 => panic!("the first run panics"),
                    1 => Err("the second run fails".to_owned()),
                    _ => {
                        shutdown.cancelled().await;
                        Ok(())
                    }
                }
            }
        });
        let status = supervisor.status();
        let started = Instant::now();
        // Waits (a loaded machine is slow) until the source's health is as `wanted` says.
        let until = async |wanted: &dyn Fn(&Health) -> bool| {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let health = status.get("flaky").unwrap_or_default();
                if wanted(&health) {
                    return health;
                }
                assert!(Instant::now() < deadline, "never as wanted: {health:?}");
                tokio::time::sleep(ms(10)).await;
            }
        };
        let down = until(&|h| h.failures == 1).await;
        // Pages that show a source's data say it is down; others do not.
        assert_eq!(status.down_of(|name| name == "flaky").len(), 1);
        assert!(status.down_of(|name| name == "clusters").is_empty());
        assert!(
            down.down.as_deref().unwrap().contains("panicked: the first run panics"),
            "{down:?}"
        );
        assert_eq!(status.down().len(), 1);
        // After 200 ms the second run fails at once; after 400 ms more the third runs.
        let down = until(&|h| h.failures == 2).await;
        assert_eq!(down.restarts, 1);
        assert!(down.down.as_deref().unwrap().contains("the second run fails"), "{down:?}");
        assert!(started.elapsed() >= ms(200), "the first wait is 200 ms");
        let up = until(&|h| h.restarts == 2).await;
        assert_eq!(up, Health { down: None, failures: 2, restarts: 2 });
        assert!(started.elapsed() >= ms(600), "the second wait is 400 ms");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        shutdown.cancel();
        supervisor.join(Duration::from_secs(1)).await;
        assert_eq!(status.get("flaky").unwrap().failures, 2, "a stop on shutdown is no failure");
    }
}
