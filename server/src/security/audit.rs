//! The audit trail of actions: every launch, change and teardown is logged (target
//! `raydar::audit`: who, what, which cluster, the result), and each one that changed a cluster is
//! recorded as a Kubernetes Event on that RayCluster naming the person, so `kubectl describe` and
//! the cluster's page show who did it. The apiserver's own audit log names them too, since the
//! action itself was made as them (impersonation).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};

use crate::metrics::Counters;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, PostParams};
use kube::Client;

use super::identity::User;

/// One line of the audit log (target `raydar::audit`) at `level` (a `tracing` macro's name):
/// who, their email, the action, the cluster, the result, and `message`.
macro_rules! audit_line {
    ($level:ident, $user:expr, $action:expr, $result:literal, $($message:tt)+) => {
        tracing::$level!(
            target: "raydar::audit",
            user = %$user.name,
            email = $user.email.as_deref().unwrap_or(""),
            action = $action.reason,
            cluster = %format!("{}/{}", $action.namespace, $action.name),
            result = $result,
            $($message)+
        )
    };
}

/// What was done to a cluster.
#[derive(Clone, Debug)]
pub struct Action {
    /// The Event's reason: `Launched`, `TornDown`, `Suspended`, `Resumed`, `Scaled`.
    pub reason: &'static str,
    /// What was done, after the person's name: "launched it from template gpu-small".
    pub what: String,
    /// The cluster's namespace.
    pub namespace: String,
    /// The cluster's name.
    pub name: String,
}

/// Records actions; cheap to clone.
#[derive(Clone)]
pub struct Audit {
    /// raydar's own client: Events are raydar's one write of its own (deploy/kustomize/rbac).
    client: Client,
    /// What raydar did or warned of on its own, by reason, for `/metrics`.
    by_raydar: Counters,
}

impl Audit {
    /// How long recording an Event may take; it never holds up the action's answer.
    pub const TIMEOUT: Duration = Duration::from_secs(10);

    /// Records with `client` (raydar's own).
    pub fn new(client: Client) -> Self {
        Audit { client, by_raydar: Counters::default() }
    }

    /// Logs an action that changed the cluster `uid`, and records an Event on it in the
    /// background.
    pub fn done(&self, user: &User, action: &Action, uid: Option<String>) {
        audit_line!(info, user, action, "done", "{} {}", user.name, action.what);
        self.record(event(user, action, uid), action);
    }

    /// Logs what raydar did or is about to do to a cluster on its own (an expiry, a reclaim, a
    /// warning before one), with why, and records it as an Event on the cluster: `Warning`,
    /// since its owner may want to act.
    pub fn by_raydar(&self, action: &Action, uid: Option<String>, why: &str) {
        self.by_raydar.add(action.reason);
        tracing::warn!(
            target: "raydar::audit",
            user = "raydar",
            action = action.reason,
            cluster = %format!("{}/{}", action.namespace, action.name),
            result = "done",
            "raydar {}: {why}", action.what
        );
        let mut event = event_about(action, uid, format!("raydar {}: {why}", action.what));
        event.type_ = Some("Warning".into());
        self.record(event, action);
    }

    /// What raydar did or warned of on its own, counted by reason.
    pub fn by_raydar_counts(&self) -> &Counters {
        &self.by_raydar
    }

    /// Creates `event` in the background, within [`Audit::TIMEOUT`].
    fn record(&self, event: Event, action: &Action) {
        let api = Api::<Event>::namespaced(self.client.clone(), &action.namespace);
        let id = format!("{}/{}", action.namespace, action.name);
        tokio::spawn(async move {
            match tokio::time::timeout(Self::TIMEOUT, api.create(&PostParams::default(), &event))
                .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(cluster = %id, "cannot record the audit Event: {e}"),
                Err(_) => {
                    tracing::warn!(cluster = %id, "cannot record the audit Event: no answer within {} s", Self::TIMEOUT.as_secs())
                }
            }
        });
    }

    /// Logs an action that did not happen, with why (Kubernetes' refusal, a bad request).
    pub fn refused(&self, user: &User, action: &Action, why: &str) {
        audit_line!(
            warn,
            user,
            action,
            "refused",
            "{} was refused: {} ({why})",
            user.name,
            action.what
        );
    }
}

/// The Event on the RayCluster: reason, and a message that names the person.
pub fn event(user: &User, action: &Action, uid: Option<String>) -> Event {
    let message = match &user.email {
        Some(email) => format!("{} ({email}) {} through raydar", user.name, action.what),
        None => format!("{} {} through raydar", user.name, action.what),
    };
    event_about(action, uid, message)
}

/// A `Normal` Event on the action's RayCluster saying `message`.
fn event_about(action: &Action, uid: Option<String>, message: String) -> Event {
    let now = jiff::Timestamp::now();
    Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}.raydar.", action.name)),
            namespace: Some(action.namespace.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("ray.io/v1".into()),
            kind: Some("RayCluster".into()),
            name: Some(action.name.clone()),
            namespace: Some(action.namespace.clone()),
            uid,
            ..Default::default()
        },
        reason: Some(action.reason.into()),
        message: Some(message),
        type_: Some("Normal".into()),
        action: Some(action.reason.into()),
        source: Some(EventSource { component: Some("raydar".into()), host: None }),
        reporting_component: Some("raydar".into()),
        reporting_instance: Some("raydar".into()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_names_the_person_and_the_cluster() {
        let alice =
            User::new("alice".into(), Some("alice@example.com".into()), vec!["team-a".into()], "");
        let action = Action {
            reason: "TornDown",
            what: "tore it down".into(),
            namespace: "team-a".into(),
            name: "big".into(),
        };
        let e = event(&alice, &action, Some("uid-1".into()));
        assert_eq!(
            e.message.as_deref(),
            Some("alice (alice@example.com) tore it down through raydar")
        );
        assert_eq!(e.reason.as_deref(), Some("TornDown"));
        assert_eq!(e.involved_object.kind.as_deref(), Some("RayCluster"));
        assert_eq!(e.involved_object.uid.as_deref(), Some("uid-1"));
        assert_eq!(e.metadata.namespace.as_deref(), Some("team-a"));
    }
}
