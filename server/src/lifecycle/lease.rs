//! Which raydar acts: a Kubernetes Lease (coordination.k8s.io/v1) held by one replica at a time,
//! renewed while it lives, taken over by another once it has not been renewed for its duration.
//!
//! As client-go's leader election does, a Lease held by another is judged by this replica's
//! own clock: it is taken over only after it has been seen unchanged for the whole duration, so
//! replicas whose clocks disagree never both act.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::Client;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long a Lease holds without renewal.
pub const DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews it.
const RENEW: Duration = Duration::from_secs(5);
/// How often a replica that does not hold it looks again.
const RETRY: Duration = Duration::from_secs(2);
/// Longest a call to the apiserver may take.
const CALL: Duration = Duration::from_secs(5);

/// Whether this replica holds the Lease: cheap to clone.
#[derive(Clone)]
pub struct Leadership(watch::Receiver<bool>);

impl Leadership {
    /// True while this replica acts.
    pub fn leading(&self) -> bool {
        *self.0.borrow()
    }

    /// Leadership that is always held (tests of what acts).
    pub fn alone() -> Leadership {
        // A receiver keeps the last value after its sender is gone.
        Leadership(watch::channel(true).1)
    }
}

/// Takes and keeps the Lease `namespace/name` for `identity`: the source.
#[derive(Clone)]
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    tx: watch::Sender<bool>,
}

/// The other holder last seen, and since when (by this replica's clock).
struct Seen {
    holder: String,
    renewed: Option<MicroTime>,
    at: Instant,
}

impl Elector {
    /// An elector for the Lease `namespace/name`, as `identity`, and the leadership it keeps.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: String,
    ) -> (Elector, Leadership) {
        let (tx, rx) = watch::channel(false);
        let api = Api::namespaced(client, namespace);
        (Elector { api, name: name.to_owned(), identity, tx }, Leadership(rx))
    }

    /// The source: tries for the Lease, renews it while held, until `shutdown`, then lets it
    /// go so another replica takes over at once.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), String> {
        let mut seen: Option<Seen> = None;
        let mut renewed_at: Option<Instant> = None;
        loop {
            let attempt = tokio::time::timeout(CALL, self.try_hold(&mut seen)).await;
            let holds = match attempt {
                Ok(Ok(holds)) => holds,
                Ok(Err(e)) => {
                    tracing::warn!(lease = %self.name, "leader election: {e}");
                    false
                }
                Err(_) => {
                    tracing::warn!(lease = %self.name, "leader election: the apiserver did not answer within {CALL:?}");
                    false
                }
            };
            if holds {
                renewed_at = Some(Instant::now());
            }
            // A holder that cannot renew keeps acting only while its Lease would still hold.
            let leading = holds || renewed_at.is_some_and(|at| at.elapsed() < DURATION - RENEW);
            if !leading {
                renewed_at = None;
            }
            self.tx.send_if_modified(|was| {
                if *was != leading {
                    tracing::info!(identity = %self.identity, lease = %self.name, leading, "leadership changed");
                    *was = leading;
                    return true;
                }
                false
            });
            let wait = if leading { RENEW } else { RETRY };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        if *self.tx.borrow() {
            self.tx.send_replace(false);
            let _ = tokio::time::timeout(CALL, self.release()).await;
        }
        Ok(())
    }

    /// Takes or renews the Lease; whether this replica holds it now.
    async fn try_hold(&self, seen: &mut Option<Seen>) -> Result<bool, kube::Error> {
        let now = MicroTime(jiff::Timestamp::now());
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.name.clone()), ..Default::default() },
                spec: Some(self.spec(None, now)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        if !holder.is_empty() && holder != self.identity {
            // Another holds it: expired only once unchanged for its whole duration, by this
            // replica's clock.
            let same =
                seen.as_ref().is_some_and(|s| s.holder == holder && s.renewed == spec.renew_time);
            if !same {
                *seen = Some(Seen { holder, renewed: spec.renew_time.clone(), at: Instant::now() });
                return Ok(false);
            }
            let duration = spec
                .lease_duration_seconds
                .map_or(DURATION, |s| Duration::from_secs(s.max(1) as u64));
            if seen.as_ref().is_some_and(|s| s.at.elapsed() < duration) {
                return Ok(false);
            }
        }
        lease.spec = Some(self.spec(Some(&spec), now));
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            // Another replica wrote it first (resourceVersion): it holds it.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The Lease's spec with this replica holding it at `now`, after `before`.
    fn spec(&self, before: Option<&LeaseSpec>, now: MicroTime) -> LeaseSpec {
        let ours = before.is_some_and(|b| b.holder_identity.as_deref() == Some(&self.identity));
        let transitions = before.and_then(|b| b.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(DURATION.as_secs() as i32),
            acquire_time: if ours {
                before.and_then(|b| b.acquire_time.clone())
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(if ours || before.is_none() {
                transitions
            } else {
                transitions + 1
            }),
            ..Default::default()
        }
    }

    /// Gives the Lease up (empty holder), so another replica need not wait out its duration.
    async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else { return };
        let Some(spec) = lease.spec.as_mut() else { return };
        if spec.holder_identity.as_deref() != Some(&self.identity) {
            return;
        }
        spec.holder_identity = None;
        if self.api.replace(&self.name, &PostParams::default(), &lease).await.is_ok() {
            tracing::info!(lease = %self.name, "leadership given up at shutdown");
        }
    }
}
