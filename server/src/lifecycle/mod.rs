//! Lifecycle: raydar acting on clusters on its own, so none outlives its purpose. A cluster's
//! `raydar.dev/expires-at` is enforced: its owner is warned 30 and 5 minutes before (an Event on
//! the cluster, which its page and history show), and at expiry it is torn down or suspended, as
//! its template said (`raydar.dev/at-expiry`). A cluster launched with a lease that goes
//! unrenewed is torn down. A cluster that sits idle as long as its template's idle policy says
//! (`raydar.dev/idle`) is warned, then suspended or torn down (`--idle-reclaim on`), or only
//! shown as such (`dry-run`). `raydar.dev/protect: "true"` exempts a cluster from all of it.
//!
//! Only one replica acts: the holder of a Kubernetes Lease ([`lease`]). It acts as the
//! reclaimer, a ServiceAccount of its own that may do nothing but patch and delete RayClusters
//! (deploy/kustomize/rbac/identity), impersonated, so raydar's own identity stays read-only and the
//! apiserver's audit log names the reclaimer. Every act is logged, recorded as an Event on the
//! cluster and in history, with its reason.
//!
//! # Layout
//!
//! - [`lease`]: the leader election.
//! - [`idle`]: which clusters sit idle by their policy, and the plan pages show.
//! - this module: the controller, a pass over every cluster with a lifetime every few seconds.

pub mod idle;
pub mod lease;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::core::ApiResource;
use kube::Client;
use platform::history::Outcome;
use platform::kuberay::RayCluster;
use platform::lifecycle::{due, human, lease_lapsed, AtExpiry, Due};
use tokio_util::sync::CancellationToken;

pub use idle::{IdlePlan, JobActivity};
pub use lease::{Elector, Leadership};

/// How long a cluster launched with a lease lives unrenewed (`--lease-timeout`).
#[derive(Clone, Copy, Debug)]
pub struct LeaseTimeout(pub Duration);

use crate::config::IdleReclaim;
use crate::gpus::GpuMetrics;
use crate::history::{Record, Sink};
use crate::security::{Action, Audit, User};
use crate::sources::clusters::Living;
use crate::sources::Clusters;
use crate::unix_now;

/// Between passes over the clusters.
const PASS: Duration = Duration::from_secs(5);
/// Longest a call to the apiserver may take.
const CALL: Duration = Duration::from_secs(10);

/// The reclaimer's ServiceAccount (deploy/kustomize/rbac/identity), as Kubernetes names it.
pub const RECLAIMER: &str = "system:serviceaccount:raydar:raydar-reclaimer";

/// The identity raydar acts as when it reclaims.
pub fn reclaimer() -> User {
    User::from_token(
        RECLAIMER.to_owned(),
        vec!["system:serviceaccounts".into(), "system:serviceaccounts:raydar".into()],
    )
}

/// The controller: cheap to clone.
#[derive(Clone)]
pub struct Lifecycle {
    clusters: Clusters,
    leadership: Leadership,
    /// Acts as the reclaimer.
    reclaimer: Client,
    audit: Audit,
    history: Sink,
    /// How long a lease holds unrenewed.
    lease_timeout: Duration,
    /// What was done already, by (uid, expires-at): warnings given, whether it was acted on.
    /// An extension is a new key, so its warnings come again. Only live clusters are kept.
    done: Arc<Mutex<HashMap<(String, i64), Done>>>,
    /// What idleness is judged from: GPU readings and Ray jobs.
    gpus: GpuMetrics,
    jobs: JobActivity,
    /// The idle clusters, as the last pass found them; the mode.
    plan: IdlePlan,
    /// What was done to idle clusters, by (uid, idle since): a new spell of idleness is a new
    /// key, while a pass that cannot judge (readings stale a moment) changes nothing.
    idle_done: Arc<Mutex<HashMap<(String, i64), Spell>>>,
}

/// What was done in one idle spell of a cluster.
#[derive(Clone, Copy, Debug, Default)]
struct Spell {
    /// When its warning said it would be reclaimed; `None` before the warning.
    act_at: Option<i64>,
    acted: bool,
}

/// What the idle rule reads and where it shows what it found.
#[derive(Clone)]
pub struct IdleInputs {
    pub gpus: GpuMetrics,
    pub jobs: JobActivity,
    pub plan: IdlePlan,
}

#[derive(Clone, Debug, Default)]
struct Done {
    warned: Vec<i64>,
    acted: bool,
}

impl Lifecycle {
    /// A controller acting on `clusters` while `leadership` holds, through `reclaimer` (a client
    /// as the reclaimer), recording to `audit` and `history`; judging idleness from `idle`.
    pub fn new(
        clusters: Clusters,
        leadership: Leadership,
        reclaimer: Client,
        audit: Audit,
        history: Sink,
        lease_timeout: Duration,
        idle: IdleInputs,
    ) -> Lifecycle {
        Lifecycle {
            clusters,
            leadership,
            reclaimer,
            audit,
            history,
            lease_timeout,
            done: Arc::default(),
            gpus: idle.gpus,
            jobs: idle.jobs,
            plan: idle.plan,
            idle_done: Arc::default(),
        }
    }

    /// The source: a pass every [`PASS`] until `shutdown`. Every replica judges idleness (its
    /// fleet page shows it); only the one that leads acts.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), String> {
        loop {
            if self.clusters.health().synced() {
                let (now, leading) = (unix_now(), self.leadership.leading());
                let living = self.clusters.lifetimes();
                if leading {
                    self.pass(&living, now).await;
                }
                self.idle_pass(&living, now, leading).await;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(PASS) => {}
            }
        }
    }

    fn done(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i64), Done>> {
        self.done.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One pass over `living` at `now`: every expiry warning and act that is due, every lapsed
    /// lease.
    async fn pass(&self, living: &[Living], now: i64) {
        self.done().retain(|(uid, _), _| living.iter().any(|c| &c.summary.uid == uid));
        for cluster in living {
            if lease_lapsed(&cluster.lifetime, now, self.lease_timeout) {
                self.reclaim_lapsed(cluster).await;
                continue;
            }
            let Some(expires_at) = cluster.lifetime.expires_at else { continue };
            let key = (cluster.summary.uid.clone(), expires_at);
            let done = self.done().get(&key).cloned().unwrap_or_default();
            // A teardown is made once; a suspension holds while the cluster is expired: one
            // resumed without an extension is suspended again.
            if done.acted && cluster.lifetime.at_expiry == AtExpiry::TearDown {
                continue;
            }
            match due(&cluster.lifetime, now, &done.warned) {
                Due::Nothing => {}
                Due::Warn { left, before } => {
                    self.warn(cluster, left);
                    self.done().entry(key).or_default().warned.push(before);
                }
                Due::Act => {
                    if self.expire(cluster, expires_at).await {
                        self.done().entry(key).or_default().acted = true;
                    }
                }
            }
        }
    }

    /// Judges every cluster of `living` with an idle policy at `now` and shows those idle long
    /// enough to be warned; `leading` with `--idle-reclaim on`, warns and reclaims them.
    async fn idle_pass(&self, living: &[Living], now: i64, leading: bool) {
        if self.plan.mode() == IdleReclaim::Off {
            return;
        }
        let idle: Vec<idle::IdleCluster> =
            living.iter().filter_map(|c| idle::judge(c, &self.gpus, &self.jobs, now)).collect();
        self.idle_done().retain(|(uid, _), _| living.iter().any(|c| &c.summary.uid == uid));
        let acting = leading && self.plan.mode() == IdleReclaim::On;
        let mut shown = Vec::new();
        for cluster in idle {
            let idle_for = now - cluster.since;
            if idle_for < cluster.rule.after_s - cluster.rule.warning_lead() {
                continue;
            }
            let key = (cluster.living.summary.uid.clone(), cluster.since);
            let spell = self.idle_done().get(&key).copied().unwrap_or_default();
            shown.push(idle::IdleCluster { act_at: spell.act_at, ..cluster.clone() });
            if !acting || spell.acted {
                continue;
            }
            match cluster.rule.due(idle_for, now, spell.act_at) {
                Due::Nothing => {}
                Due::Warn { left, .. } => {
                    self.warn_idle(&cluster, left);
                    self.idle_mark(key, |spell| spell.act_at = Some(now + left));
                    if let Some(last) = shown.last_mut() {
                        last.act_at = Some(now + left);
                    }
                }
                Due::Act => {
                    if self.reclaim_idle(&cluster, idle_for).await {
                        self.idle_mark(key, |spell| spell.acted = true);
                        self.plan.reclaimed();
                    }
                }
            }
        }
        self.plan.set(shown);
    }

    fn idle_done(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i64), Spell>> {
        self.idle_done.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes what was done in the idle spell `key`, forgetting the cluster's earlier spells.
    fn idle_mark(&self, key: (String, i64), mark: impl FnOnce(&mut Spell)) {
        let mut done = self.idle_done();
        done.retain(|(uid, since), _| *uid != key.0 || *since == key.1);
        mark(done.entry(key).or_default());
    }

    /// Why `cluster` counts as idle, for its Events.
    fn idle_why(cluster: &idle::IdleCluster) -> String {
        let since =
            jiff::Timestamp::from_second(cluster.since).map(|t| t.to_string()).unwrap_or_default();
        format!(
            "every GPU it holds has been below {} % with no Ray job pending or running since \
             {since}, and its template reclaims a cluster idle for {} (raydar.dev/idle)",
            cluster.rule.gpu_below,
            human(cluster.rule.after_s)
        )
    }

    fn warn_idle(&self, cluster: &idle::IdleCluster, left: i64) {
        let s = &cluster.living.summary;
        let action = Action {
            reason: "IdleSoon",
            what: format!(
                "will have it {} in {} unless it is used",
                cluster.rule.action.done(),
                human(left)
            ),
            namespace: s.namespace.clone(),
            name: s.name.clone(),
        };
        let why = format!(
            "{}; a Ray job keeps it, as does protecting it (raydar protect {} -n {})",
            Self::idle_why(cluster),
            s.name,
            s.namespace
        );
        self.audit.by_raydar(&action, Some(s.uid.clone()), &why);
    }

    /// Suspends or tears down `cluster`, idle for `idle_for` seconds; whether it was done.
    async fn reclaim_idle(&self, cluster: &idle::IdleCluster, idle_for: i64) -> bool {
        let how = cluster.rule.action;
        if !self.end(&cluster.living, how).await {
            return false;
        }
        let (outcome, what) = match how {
            AtExpiry::TearDown => (Some(Outcome::Reclaimed), "tore it down"),
            AtExpiry::Suspend => (None, "suspended it"),
        };
        let why = format!("idle for {}: {}", human(idle_for), Self::idle_why(cluster));
        self.record(&cluster.living, "IdleReclaimed", what, outcome, "raydar (idle)", &why);
        true
    }

    fn warn(&self, cluster: &Living, left: i64) {
        let s = &cluster.summary;
        let then = cluster.lifetime.at_expiry.done();
        let action = Action {
            reason: "ExpiresSoon",
            what: format!("will have it {then} in {}", human(left)),
            namespace: s.namespace.clone(),
            name: s.name.clone(),
        };
        let why = format!(
            "its lifetime ends then (raydar.dev/expires-at); its owner can extend it on its page or \
             with raydar extend {} -n {}",
            s.name, s.namespace
        );
        self.audit.by_raydar(&action, Some(s.uid.clone()), &why);
    }

    /// Tears down or suspends `cluster`, whose lifetime ended at `expires_at`; whether it was
    /// done (or needs no doing: already suspended, already gone).
    async fn expire(&self, cluster: &Living, expires_at: i64) -> bool {
        let ended =
            jiff::Timestamp::from_second(expires_at).map(|t| t.to_string()).unwrap_or_default();
        let why = format!("its lifetime ended at {ended} (raydar.dev/expires-at)");
        let how = cluster.lifetime.at_expiry;
        if how == AtExpiry::Suspend && cluster.suspended {
            return true;
        }
        if !self.end(cluster, how).await {
            return false;
        }
        let (outcome, what) = match how {
            AtExpiry::TearDown => (Some(Outcome::Expired), "tore it down"),
            AtExpiry::Suspend => (None, "suspended it"),
        };
        self.record(cluster, "Expired", what, outcome, "raydar (expiry)", &why);
        true
    }

    /// Tears down `cluster`, whose launcher stopped renewing its lease, once.
    async fn reclaim_lapsed(&self, cluster: &Living) {
        let key = (cluster.summary.uid.clone(), LAPSED);
        if self.done().get(&key).is_some_and(|d| d.acted) {
            return;
        }
        let renewed = cluster.lifetime.lease_renewed_at.unwrap_or_default();
        let renewed =
            jiff::Timestamp::from_second(renewed).map(|t| t.to_string()).unwrap_or_default();
        let why = format!(
            "its lease was last renewed at {renewed}, more than {} ago (--lease-timeout): the \
             pipeline that launched it is gone",
            human(self.lease_timeout.as_secs() as i64)
        );
        if self.end(cluster, AtExpiry::TearDown).await {
            self.done().entry(key).or_default().acted = true;
            let outcome = Some(Outcome::Reclaimed);
            self.record(cluster, "LeaseLapsed", "tore it down", outcome, "raydar (lease)", &why);
        }
    }

    /// Ends `cluster` as the reclaimer: deletes it (only it: never one made again under its
    /// name meanwhile) or suspends it. Whether that is done, or was already.
    async fn end(&self, cluster: &Living, how: AtExpiry) -> bool {
        let s = &cluster.summary;
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.reclaimer.clone(),
            &s.namespace,
            &ApiResource::erase::<RayCluster>(&()),
        );
        let done = match how {
            AtExpiry::Suspend => {
                let patch = Patch::Merge(serde_json::json!({"spec": {"suspend": true}}));
                let params = PatchParams::default();
                let call = api.patch(&s.name, &params, &patch);
                tokio::time::timeout(CALL, call).await.map(|r| r.map(|_| ()))
            }
            AtExpiry::TearDown => {
                let uid = Some(s.uid.clone());
                let params = DeleteParams {
                    preconditions: Some(Preconditions { uid, resource_version: None }),
                    ..DeleteParams::foreground()
                };
                tokio::time::timeout(CALL, api.delete(&s.name, &params))
                    .await
                    .map(|r| r.map(|_| ()))
            }
        };
        let id = format!("{}/{}", s.namespace, s.name);
        match done {
            Ok(Ok(())) => true,
            Ok(Err(kube::Error::Api(status))) if status.code == 404 => true,
            Ok(Err(e)) => {
                tracing::warn!(cluster = %id, "cannot act as the reclaimer: {e}");
                false
            }
            Err(_) => {
                tracing::warn!(cluster = %id, "the apiserver did not answer within {CALL:?}");
                false
            }
        }
    }

    /// Logs and records what was done to `cluster` (an Event on it; in history, how it ended
    /// when it did).
    fn record(
        &self,
        cluster: &Living,
        reason: &'static str,
        what: &str,
        outcome: Option<Outcome>,
        by: &str,
        why: &str,
    ) {
        let s = &cluster.summary;
        if let Some(outcome) = outcome {
            let (uid, by, why) = (s.uid.clone(), by.to_owned(), why.to_owned());
            self.history.send(Record::Ending { uid, outcome, by, why });
        }
        let action = Action {
            reason,
            what: what.into(),
            namespace: s.namespace.clone(),
            name: s.name.clone(),
        };
        self.audit.by_raydar(&action, Some(s.uid.clone()), why);
    }
}

/// The key under which a lapsed lease's reclaim is remembered (no expiry is this).
const LAPSED: i64 = i64::MIN;
