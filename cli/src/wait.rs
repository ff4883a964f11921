//! `--wait`: watching one object (a RayCluster until it is Ready for `up` or gone for `down`; a
//! RayJob, for [`crate::rayjob`]), printing its progress on stderr: for `up`, also the stage of
//! its start it is in and what holds it ([`crate::stages`]), and at Ready how long each took.

use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::ResourceExt;
use platform::kuberay::RayCluster;
use platform::ClusterPhase;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::kuberay;
use crate::kubernetes::Kubernetes;
use crate::list::ClusterRow;
use crate::stages;

/// How often `up --wait` reads the stages of the cluster's start again.
const STAGES_EVERY: Duration = Duration::from_secs(2);

/// What to wait for.
#[derive(Clone, Debug)]
pub enum Goal {
    /// The cluster reaches phase Ready; Failed or deletion ends the wait with an error.
    Ready,
    /// The cluster with this UID no longer exists.
    Gone {
        /// UID of the cluster being deleted: a new cluster of the same name does not count.
        uid: String,
    },
}

/// Watches `namespace/name` until `goal` or `timeout`; returns the cluster as last seen (none
/// once gone).
pub async fn until(
    kubernetes: &Kubernetes,
    namespace: &str,
    name: &str,
    goal: Goal,
    timeout: Duration,
) -> Result<Option<ClusterRow>> {
    let id = format!("{namespace}/{name}");
    let api = kuberay::api(&kubernetes.client, Some(namespace));
    let mut states = watch_one(api, name, kubernetes.request_timeout).boxed();

    let started = Instant::now();
    let deadline = started + timeout;
    let mut last: Option<ClusterRow> = None;
    let mut printed = String::new();
    // While waiting for Ready: the stages, read again every few seconds (pods and events change
    // without the RayCluster changing), said when they change.
    let mut cluster: Option<RayCluster> = None;
    let mut stage_said = String::new();
    let mut stage_tick = tokio::time::interval(STAGES_EVERY);
    let stamp = |started: Instant| format!("[{:>5.1}s]", started.elapsed().as_secs_f64());
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout_at(deadline, states.next()) => next,
            _ = stage_tick.tick(), if matches!(goal, Goal::Ready) && cluster.is_some() => {
                let read = match &cluster {
                    Some(cluster) => stages::read(kubernetes, cluster).await,
                    None => None,
                };
                let line = read.as_ref().map(stages::now).unwrap_or_default();
                if !line.is_empty() && line != stage_said {
                    eprintln!("{} {line}", stamp(started));
                    stage_said = line;
                }
                continue;
            }
        };
        let current = match next {
            Err(_) | Ok(None) => {
                let mut last =
                    last.as_ref().map_or_else(|| "not seen yet".to_owned(), ClusterRow::progress);
                if let Some(reason) =
                    stage_said.lines().find_map(|l| l.trim().strip_prefix("waiting: "))
                {
                    last = format!("{last}; {reason}");
                }
                let goal = if matches!(goal, Goal::Ready) { "to be Ready" } else { "to be gone" };
                let object = format!("RayCluster {id}");
                return Err(Error::WaitTimeout { object, goal, last, after: timeout });
            }
            Ok(Some(Err(error))) => {
                check_watch_error(&format!("watching RayCluster {id}"), error)?;
                continue;
            }
            Ok(Some(Ok(object))) => object.map(kuberay::ray_cluster),
        };
        cluster = current.clone();
        let row = current.as_ref().map(ClusterRow::new);
        if let Some(row) = &row {
            let line = row.progress();
            if line != printed {
                eprintln!("{} {line}", stamp(started));
                printed = line;
            }
            last = Some(row.clone());
        }
        match (&goal, current, row) {
            (Goal::Ready, None, _) => {
                return Err(Error::Precondition(format!(
                    "RayCluster {id} was deleted while waiting for it to be Ready"
                )))
            }
            (Goal::Ready, Some(_), Some(row)) => match &row.summary.phase {
                ClusterPhase::Ready if !row.deleting => {
                    let read = match &cluster {
                        Some(cluster) => stages::read(kubernetes, cluster).await,
                        None => None,
                    };
                    if let Some(waiting) = read {
                        eprintln!("{} {}", stamp(started), stages::durations(&waiting));
                    }
                    return Ok(Some(row));
                }
                ClusterPhase::Failed(reason) => {
                    return Err(Error::ClusterFailed { cluster: id, reason: reason.clone() })
                }
                _ if row.deleting => {
                    return Err(Error::Precondition(format!(
                        "RayCluster {id} is being deleted; it will not become Ready"
                    )))
                }
                _ => {}
            },
            (Goal::Gone { uid }, Some(cluster), _)
                if cluster.uid().as_deref() != Some(uid.as_str()) =>
            {
                // Someone launched a new cluster of the same name: the one deleted is gone.
                return Ok(None);
            }
            (Goal::Gone { .. }, None, _) => {
                eprintln!("{} {id}: gone", stamp(started));
                return Ok(None);
            }
            _ => {}
        }
    }
}

/// The object `name` of `api` as it is now, after the first complete list and after every
/// change: `None` while it does not exist. Errors are the watcher's, which retries with backoff.
pub fn watch_one(
    api: Api<DynamicObject>,
    name: &str,
    request_timeout: Duration,
) -> impl Stream<Item = Result<Option<DynamicObject>, watcher::Error>> + Send {
    // The server ends each watch before the client's read timeout would (see Kubernetes::connect);
    // the watcher then resumes where it was.
    let watch_seconds = request_timeout.as_secs().saturating_sub(5).clamp(1, 290);
    let config = watcher::Config::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(u32::try_from(watch_seconds).unwrap_or(290));
    // The watcher lists first (Init, InitApply per object, InitDone), then streams changes; only
    // a complete list or a change says what exists now.
    let mut listing = None;
    watcher(api, config).default_backoff().filter_map(move |event| {
        let current = match event {
            Err(error) => Some(Err(error)),
            Ok(Event::Init) => {
                listing = None;
                None
            }
            Ok(Event::InitApply(object)) => {
                listing = Some(object);
                None
            }
            Ok(Event::InitDone) => Some(Ok(listing.take())),
            Ok(Event::Apply(object)) => Some(Ok(Some(object))),
            Ok(Event::Delete(_)) => Some(Ok(None)),
        };
        std::future::ready(current)
    })
}

/// A watch error that retrying will not fix (no permission, no such resource) ends the wait;
/// others (a restarting apiserver) are shown and retried with backoff.
pub fn check_watch_error(action: &str, error: watcher::Error) -> Result<()> {
    let action = action.to_owned();
    match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e)
            if matches!(&e, kube::Error::Api(s) if matches!(s.code, 401 | 403 | 404)) =>
        {
            Err(Error::kube(action, e))
        }
        other => {
            eprintln!("warning: {action}: {}; retrying", crate::error::causes(&other));
            Ok(())
        }
    }
}
