//! Idle clusters: which clusters sit idle by their template's policy (`raydar.dev/idle`), since
//! when, and when that policy reclaims them: the plan the lifecycle controller acts on (with
//! `--idle-reclaim on`) and the fleet page and `/metrics` show (also with `dry-run`).
//!
//! Idle means both, for the policy's whole window: every GPU the cluster holds below the
//! policy's utilization ([`GpuMetrics::idle_since`]: nothing is idle on stale readings), and no
//! Ray job pending or running, as the job reader last saw the cluster's dashboard
//! ([`JobActivity`]: nothing is idle while that read is old, or never came). The window also
//! starts no earlier than the cluster last became Ready, so a resumed cluster is not judged by
//! the time it sat suspended.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use platform::lifecycle::{jobs_quiet_since, IdleRule};
use platform::overview::RayJob;
use platform::utilization::{Reclaimable, Reclaims};

use crate::config::IdleReclaim;
use crate::gpus::GpuMetrics;
use crate::sources::clusters::Living;

/// How old the last read of a cluster's Ray jobs may be and still say it is quiet: a few of the
/// job reader's rounds (`crate::history::jobs::EVERY`).
const JOBS_FRESH_S: i64 = 45;

/// When each cluster's Ray jobs were last read and since when they left it quiet, by uid: the
/// job reader writes it, the idle rule reads it. Cheap to clone; holds live clusters only.
#[derive(Clone, Default)]
pub struct JobActivity {
    seen: Arc<Mutex<HashMap<String, Seen>>>,
}

#[derive(Clone, Copy)]
struct Seen {
    read_at: i64,
    /// `None` while a job is pending or running.
    quiet_since: Option<i64>,
}

impl JobActivity {
    /// `jobs`, read from cluster `uid`'s dashboard at `now`.
    pub fn saw(&self, uid: &str, jobs: &[RayJob], now: i64) {
        let seen = Seen { read_at: now, quiet_since: jobs_quiet_since(jobs) };
        self.lock().insert(uid.to_owned(), seen);
    }

    /// Keeps only the clusters `live` says exist.
    pub fn retain(&self, live: impl Fn(&str) -> bool) {
        self.lock().retain(|uid, _| live(uid));
    }

    /// Since when cluster `uid`'s jobs have left it quiet at `now`; `None` when one is pending or
    /// running, or they were not read lately.
    pub fn quiet_since(&self, uid: &str, now: i64) -> Option<i64> {
        let seen = *self.lock().get(uid)?;
        (now - seen.read_at <= JOBS_FRESH_S).then_some(seen.quiet_since).flatten()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Seen>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One cluster idle by its policy, as the controller judged it.
#[derive(Clone, Debug)]
pub struct IdleCluster {
    pub living: Living,
    pub rule: IdleRule,
    /// Since when it has been idle, Unix seconds.
    pub since: i64,
    /// GPUs it holds.
    pub gpus: u32,
    /// When its owner was told it would be reclaimed, once warned.
    pub act_at: Option<i64>,
}

/// Whether `cluster` is idle by its policy at `now`, judged from `gpus` and `jobs`; `None` when
/// it has no policy, is protected, suspended, or not idle.
pub fn judge(
    cluster: &Living,
    gpus: &GpuMetrics,
    jobs: &JobActivity,
    now: i64,
) -> Option<IdleCluster> {
    let rule = cluster.lifetime.idle?;
    if cluster.lifetime.protected || cluster.suspended {
        return None;
    }
    let s = &cluster.summary;
    if s.phase != platform::ClusterPhase::Ready {
        return None;
    }
    let ready_since = cluster.ready_since?;
    let (gpus_since, held) = gpus.idle_since(&s.namespace, &s.name, rule.gpu_below)?;
    let jobs_since = jobs.quiet_since(&s.uid, now)?;
    let since = gpus_since.max(jobs_since).max(ready_since);
    Some(IdleCluster { living: cluster.clone(), rule, since, gpus: held, act_at: None })
}

/// The idle clusters the fleet page and `/metrics` show, as of the controller's last pass:
/// cheap to clone.
#[derive(Clone)]
pub struct IdlePlan {
    mode: IdleReclaim,
    inner: Arc<PlanInner>,
}

struct PlanInner {
    clusters: RwLock<Vec<IdleCluster>>,
    reclaimed: AtomicU64,
}

impl IdlePlan {
    /// An empty plan under `mode`.
    pub fn new(mode: IdleReclaim) -> IdlePlan {
        let inner = PlanInner { clusters: RwLock::default(), reclaimed: AtomicU64::new(0) };
        IdlePlan { mode, inner: Arc::new(inner) }
    }

    /// What raydar does with idle clusters.
    pub fn mode(&self) -> IdleReclaim {
        self.mode
    }

    /// Replaces the plan: the clusters idle long enough to be warned, or past their window.
    pub fn set(&self, clusters: Vec<IdleCluster>) {
        *self.inner.clusters.write().unwrap_or_else(|e| e.into_inner()) = clusters;
    }

    /// Counts a cluster reclaimed.
    pub fn reclaimed(&self) {
        self.inner.reclaimed.fetch_add(1, Ordering::Relaxed);
    }

    /// Cluster `namespace/name` in the plan at `now`, if it is in it and the plan acts.
    pub fn of(&self, namespace: &str, name: &str, now: i64) -> Option<Reclaimable> {
        if self.mode != IdleReclaim::On {
            return None;
        }
        let clusters = self.inner.clusters.read().unwrap_or_else(|e| e.into_inner());
        let s = |c: &&IdleCluster| {
            c.living.summary.namespace == namespace && c.living.summary.name == name
        };
        clusters.iter().find(s).map(|c| reclaimable(c, now))
    }

    /// The plan at `now` over the clusters `visible` lets through, most overdue first.
    pub fn show(&self, now: i64, visible: impl Fn(&str) -> bool) -> Reclaims {
        let clusters = self.inner.clusters.read().unwrap_or_else(|e| e.into_inner());
        let mut shown: Vec<Reclaimable> = clusters
            .iter()
            .filter(|c| visible(&c.living.summary.namespace))
            .map(|c| reclaimable(c, now))
            .collect();
        shown.sort_by(|a, b| {
            (a.due_at, &a.namespace, &a.name).cmp(&(b.due_at, &b.namespace, &b.name))
        });
        Reclaims {
            mode: mode_name(self.mode).to_owned(),
            clusters: shown,
            reclaimed: self.inner.reclaimed.load(Ordering::Relaxed),
        }
    }
}

/// `--idle-reclaim`'s value as the API says it.
fn mode_name(mode: IdleReclaim) -> &'static str {
    match mode {
        IdleReclaim::On => "on",
        IdleReclaim::DryRun => "dry-run",
        IdleReclaim::Off => "off",
    }
}

fn reclaimable(c: &IdleCluster, now: i64) -> Reclaimable {
    let s = &c.living.summary;
    let due_at = c.act_at.unwrap_or(c.since + c.rule.after_s);
    Reclaimable {
        namespace: s.namespace.clone(),
        name: s.name.clone(),
        team: s.team.clone(),
        owner: s.owner.clone(),
        gpus: c.gpus,
        gpu_below: c.rule.gpu_below,
        after_s: c.rule.after_s,
        action: c.rule.action.as_str().to_owned(),
        idle_since: c.since,
        due_at,
        gpu_hours_saved: f64::from(c.gpus) * (now - due_at).max(0) as f64 / 3600.0,
    }
}

#[cfg(test)]
mod tests {
    use platform::lifecycle::{AtExpiry, Lifetime};
    use platform::{ClusterPhase, ClusterSummary};

    use super::*;
    use crate::config::GpuSettings;
    use crate::gpus::{two_gpus, PodClusters};

    const RULE: IdleRule = IdleRule { gpu_below: 10.0, after_s: 600, action: AtExpiry::Suspend };

    /// `ns/train` (uid `u1`), Ready since `ready_since`, with the idle policy [`RULE`].
    fn train(ready_since: i64) -> Living {
        let summary = ClusterSummary {
            namespace: "ns".into(),
            name: "train".into(),
            uid: "u1".into(),
            resource_version: "1".into(),
            phase: ClusterPhase::Ready,
            workers_ready: 1,
            workers_desired: 1,
            gpus_desired: 2,
            created_at: 0,
            team: "vision".into(),
            owner: "ada".into(),
            template: "gpu-single-node".into(),
            pipeline: String::new(),
            run: String::new(),
            may_delete: false,
            context: String::new(),
        };
        let lifetime = Lifetime {
            expires_at: None,
            at_expiry: AtExpiry::TearDown,
            protected: false,
            lease_renewed_at: None,
            idle: Some(RULE),
        };
        Living { summary, suspended: false, lifetime, ready_since: Some(ready_since) }
    }

    #[test]
    fn idle_runs_from_the_latest_of_gpus_quiet_last_job_and_ready_and_never_on_old_numbers() {
        let metrics = GpuMetrics::new(&GpuSettings { interval_s: 10, ..GpuSettings::default() });
        let pods: PodClusters = [(("ns".into(), "train-gpu-0".into()), "train".into())].into();
        let now = crate::unix_now();
        let t0 = now - 3_000;
        // Busy for its first 1,000 s, then at 2 %.
        for t in (t0..now).step_by(10) {
            let util = if t < t0 + 1_000 { 80.0 } else { 2.0 };
            metrics.record(t as u32, &two_gpus(util), &pods, Vec::new());
        }
        let jobs = JobActivity::default();
        let idle =
            |cluster: &Living| judge(cluster, &metrics, &jobs, now).map(|c| (c.since, c.gpus));
        assert_eq!(idle(&train(t0)), None, "its jobs never read: not idle");
        jobs.saw("u1", &[], now);
        assert_eq!(idle(&train(t0)), Some((t0 + 1_000, 2)), "from its GPUs' last busy reading");
        let ended = RayJob {
            status: "SUCCEEDED".into(),
            end_time: Some((t0 + 2_000) * 1000),
            ..RayJob::default()
        };
        jobs.saw("u1", std::slice::from_ref(&ended), now);
        assert_eq!(idle(&train(t0)).map(|i| i.0), Some(t0 + 2_000), "from its last job's end");
        assert_eq!(idle(&train(t0 + 2_500)).map(|i| i.0), Some(t0 + 2_500), "from its resume");

        let running = RayJob { status: "RUNNING".into(), ..RayJob::default() };
        jobs.saw("u1", &[ended, running], now);
        assert_eq!(idle(&train(t0)), None, "a job runs, GPUs or not");
        jobs.saw("u1", &[], now);
        let strict = Living {
            lifetime: Lifetime {
                idle: Some(IdleRule { gpu_below: 1.0, ..RULE }),
                ..train(t0).lifetime
            },
            ..train(t0)
        };
        assert_eq!(idle(&strict), None, "2 % is not below 1 %");
        let protected =
            Living { lifetime: Lifetime { protected: true, ..train(t0).lifetime }, ..train(t0) };
        assert_eq!(idle(&protected), None);
        assert_eq!(idle(&Living { suspended: true, ..train(t0) }), None);

        metrics.unreadable(now as u32, "Prometheus http://p: connection refused".into());
        assert_eq!(idle(&train(t0)), None, "nothing is idle on stale readings");
    }

    fn job(status: &str, end_s: Option<i64>) -> RayJob {
        RayJob { status: status.into(), end_time: end_s.map(|s| s * 1000), ..RayJob::default() }
    }

    #[test]
    fn jobs_say_quiet_only_while_their_read_is_fresh_and_none_runs() {
        let jobs = JobActivity::default();
        assert_eq!(jobs.quiet_since("a", 1_000), None, "never read");
        jobs.saw("a", &[job("SUCCEEDED", Some(900))], 1_000);
        assert_eq!(jobs.quiet_since("a", 1_010), Some(900));
        assert_eq!(jobs.quiet_since("a", 1_000 + JOBS_FRESH_S + 1), None, "read too long ago");
        jobs.saw("a", &[job("SUCCEEDED", Some(900)), job("RUNNING", None)], 1_020);
        assert_eq!(jobs.quiet_since("a", 1_021), None, "a job runs");
        jobs.retain(|uid| uid != "a");
        assert_eq!(jobs.quiet_since("a", 1_021), None, "forgotten once gone");
    }
}
