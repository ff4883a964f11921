//! The RayCluster watch over every namespace, what raydar keeps of each cluster, and the feed of
//! changes that open pages follow.
//!
//! The watch reads RayClusters as plain JSON and makes each into a [`RayCluster`] only to take
//! what raydar shows of it. One that does not fit KubeRay's types (a worker count past 32 bits,
//! a string where a number goes: the apiserver's schema does not catch every such case) is kept
//! as a failed row saying so, instead of breaking the watch for every other cluster.

use std::sync::Arc;

use kube::api::{ApiResource, DynamicObject};
use kube::runtime::watcher;
use kube::Client;
use platform::kuberay::RayCluster;
use platform::lifecycle::Lifetime;
use platform::{ClusterCondition, ClusterDetail, ClusterPhase, ClusterSummary, Stale};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::dynamic_api;
use super::watch::{Change, Projected, Watch, WatchHealth, Watched};
use crate::config::Scope;
use crate::history::Observer;
use crate::list::{self, Page, View};
use crate::security::Grants;

const WATCHED: Watched = Watched {
    kind: "RayCluster",
    resource: "rayclusters.ray.io",
    install: "install the KubeRay operator or its CRDs",
};

/// How many changes the feed holds for a slow follower before it must take a fresh snapshot.
pub const FEED_CAPACITY: usize = 1024;

/// A change to the cluster list, as published to followers.
// Nearly every change is an upsert: boxing it would add an allocation to each to save bytes in
// the feed's slots for the rare others (the feed holds FEED_CAPACITY, 1024, slots at most).
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum ClusterChange {
    /// A cluster was created or changed.
    Upsert(ClusterSummary),
    /// A cluster was deleted.
    Delete(ClusterRef),
    /// The watch relisted: changes may have been folded together, take a snapshot (which also
    /// ends a [`ClusterChange::Unanswered`]).
    Resync,
    /// The apiserver does not answer: the list is what it last said, from `since`.
    Unanswered(Stale),
}

/// A cluster with a lifetime, as the lifecycle controller sees it.
#[derive(Clone, Debug)]
pub struct Living {
    /// Its row.
    pub summary: ClusterSummary,
    /// Whether `spec.suspend` is set.
    pub suspended: bool,
    /// When it ends and what happens then.
    pub lifetime: Lifetime,
    /// When it last became Ready, Unix seconds.
    pub ready_since: Option<i64>,
}

/// Names a RayCluster that was deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterRef {
    pub namespace: String,
    pub name: String,
}

/// The watched RayClusters and the feed of their changes: cheap to clone. Handlers read it;
/// [`Clusters::run`] (the source) fills it.
#[derive(Clone)]
pub struct Clusters {
    inner: Arc<Shared>,
}

struct Shared {
    /// raydar's own client: the watch lists with it.
    client: Client,
    /// Names the Kubernetes cluster in error messages.
    apiserver: String,
    /// The name each cluster's row gives its Kubernetes cluster (`context`): this plane's, when
    /// raydar serves several; empty when it serves one.
    context: String,
    /// The namespaces watched.
    scope: Scope,
    /// What is kept of every RayCluster; synced, errors.
    kept: Projected<Kept>,
    /// Changes, in the order the watch saw them.
    feed: broadcast::Sender<ClusterChange>,
    /// Records what the watch sees into history, when raydar keeps one.
    history: Option<Observer>,
}

impl Clusters {
    /// An empty store, filled once [`Clusters::run`] runs; `apiserver` names the cluster in
    /// error messages, `context` in every row (empty: none). What the watch sees is recorded
    /// into `history` too, if given.
    pub fn new(
        client: Client,
        apiserver: String,
        context: String,
        scope: Scope,
        history: Option<Observer>,
    ) -> Self {
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        let kept = Projected::default();
        let shared = Shared { client, apiserver, context, scope, kept, feed, history };
        Clusters { inner: Arc::new(shared) }
    }

    /// The name rows give this Kubernetes cluster: empty when raydar serves only it.
    pub fn context(&self) -> &str {
        &self.inner.context
    }

    /// The source: watches RayClusters in the namespaces of its scope until `shutdown`. Errors
    /// are reported and retried; they never end the watch.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), String> {
        let shared = &self.inner;
        let resource = ApiResource::erase::<RayCluster>(&());
        let api = |ns: Option<&str>| dynamic_api(&shared.client, ns, &resource);
        let config = watcher::Config::default().any_semantic();
        let watch = Watch::scoped(&shared.scope, api, config, WATCHED);
        let publish = |change: Change<'_, Kept>| shared.publish(change);
        let project = |object: &DynamicObject| {
            let mut kept = Kept::of(object);
            kept.detail.summary.context.clone_from(&shared.context);
            if let Some(history) = &shared.history {
                history.applied(object, &kept.detail.summary);
            }
            kept
        };
        shared.kept.watch(watch, &shared.apiserver, project, publish, shutdown.cancelled()).await;
        Ok(())
    }

    /// The namespaces watched.
    pub fn scope(&self) -> &Scope {
        &self.inner.scope
    }

    /// What is kept of one cluster, through `f`.
    fn with<T>(&self, namespace: &str, name: &str, f: impl FnOnce(&Kept) -> T) -> Option<T> {
        self.inner.kept.read().get(&(namespace.to_owned(), name.to_owned())).map(f)
    }

    /// Every cluster not suspended, as its start is judged: its detail and KubeRay's conditions.
    pub fn starting(&self) -> Vec<(ClusterDetail, Vec<ClusterCondition>)> {
        let kept = self.inner.kept.read();
        kept.values()
            .filter(|c| !c.detail.suspend)
            .map(|c| (c.detail.clone(), c.conditions.clone()))
            .collect()
    }

    /// Every cluster, sorted by namespace and name.
    pub fn list(&self) -> Vec<ClusterSummary> {
        self.inner.kept.read().values().map(|c| c.detail.summary.clone()).collect()
    }

    /// One page of the clusters `grants` let the user read that `view` asks for, each row saying
    /// whether they may tear it down, with how many match (in all and in each phase, the filter's
    /// phase aside, so a page can offer the others) and the GPUs they request.
    pub fn page(&self, view: &View, grants: &Grants) -> Page {
        let mut page = {
            let kept = self.inner.kept.read();
            let rows = kept
                .iter()
                .filter(|((namespace, _), _)| grants.read.contains(namespace))
                .map(|(_, cluster)| (&cluster.detail.summary, cluster.search.as_str()));
            view.page(rows)
        };
        grants.apply(&mut page.items);
        page
    }

    /// One cluster by namespace and name.
    pub fn get(&self, namespace: &str, name: &str) -> Option<ClusterSummary> {
        self.with(namespace, name, |c| c.detail.summary.clone())
    }

    /// One cluster as its page shows it.
    pub fn detail(&self, namespace: &str, name: &str) -> Option<ClusterDetail> {
        self.with(namespace, name, |c| c.detail.clone())
    }

    /// The uid and `status.conditions` of one cluster, or `None` when it is not stored.
    pub fn conditions(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<(String, Vec<ClusterCondition>)> {
        self.with(namespace, name, |c| (c.detail.summary.uid.clone(), c.conditions.clone()))
    }

    /// The uid of one cluster, when it is stored.
    pub fn uid(&self, namespace: &str, name: &str) -> Option<String> {
        self.with(namespace, name, |c| c.detail.summary.uid.clone()).filter(|uid| !uid.is_empty())
    }

    /// Every cluster with an expiry, a lease or an idle policy, for the lifecycle controller.
    pub fn lifetimes(&self) -> Vec<Living> {
        let kept = self.inner.kept.read();
        kept.values()
            .filter(|c| c.lifetime.bounded() && !c.detail.summary.uid.is_empty())
            .map(|c| Living {
                summary: c.detail.summary.clone(),
                suspended: c.detail.suspend,
                lifetime: c.lifetime.clone(),
                ready_since: c
                    .detail
                    .ready_in_ms
                    .map(|ms| c.detail.summary.created_at + ms.div_euclid(1000)),
            })
            .collect()
    }

    /// The namespaces that have clusters.
    pub fn namespaces(&self) -> std::collections::BTreeSet<String> {
        self.inner.kept.read().keys().map(|(namespace, _)| namespace.clone()).collect()
    }

    /// Follows changes from now on. Subscribe before taking a snapshot so nothing falls between.
    pub fn subscribe(&self) -> broadcast::Receiver<ClusterChange> {
        self.inner.feed.subscribe()
    }

    /// Since when and why the list is not current (the apiserver does not answer), if it is not.
    pub fn stale(&self) -> Option<Stale> {
        self.inner.kept.health.stale()
    }

    /// Whether the watch has synced, and its errors.
    pub fn health(&self) -> &WatchHealth {
        &self.inner.kept.health
    }

    /// Pages following the feed right now.
    pub fn followers(&self) -> usize {
        self.inner.feed.receiver_count()
    }

    /// Clusters in the store.
    pub fn len(&self) -> usize {
        self.inner.kept.read().len()
    }

    /// True when no cluster is stored.
    pub fn is_empty(&self) -> bool {
        self.inner.kept.read().is_empty()
    }
}

impl Shared {
    fn publish(&self, change: Change<'_, Kept>) {
        if let Some(history) = &self.history {
            match &change {
                Change::Deleted(c) => history.deleted(&c.detail.summary),
                // Called after the new list is in place, with no lock held.
                Change::Relisted => history
                    .relisted(self.kept.read().values().map(|c| c.detail.summary.uid.clone())),
                Change::Applied(_) | Change::Unanswered(_) => {}
            }
        }
        let change = match change {
            Change::Applied(c) => ClusterChange::Upsert(c.detail.summary.clone()),
            Change::Deleted(c) => ClusterChange::Delete(ClusterRef {
                namespace: c.detail.summary.namespace.clone(),
                name: c.detail.summary.name.clone(),
            }),
            Change::Relisted => ClusterChange::Resync,
            Change::Unanswered(stale) => ClusterChange::Unanswered(stale),
        };
        // No receivers is fine: nobody has the page open.
        let _ = self.feed.send(change);
    }
}

/// What raydar keeps of a RayCluster: what its page shows (the list's row within) and its
/// conditions (the page's events). A few hundred bytes, where the object is kilobytes.
struct Kept {
    detail: ClusterDetail,
    conditions: Vec<ClusterCondition>,
    /// Its lifetime: when it expires, what happens then, whether it is protected.
    lifetime: Lifetime,
    /// What a list's free text is looked for in ([`list::search_text`]), made once here rather
    /// than for every row of every list.
    search: String,
}

impl Kept {
    fn new(detail: ClusterDetail, conditions: Vec<ClusterCondition>, lifetime: Lifetime) -> Kept {
        let search = list::search_text(&detail.summary);
        Kept { detail, conditions, lifetime, search }
    }

    fn of(object: &DynamicObject) -> Kept {
        let label = |key: &str| {
            object.metadata.labels.as_ref().and_then(|l| l.get(key)).cloned().unwrap_or_default()
        };
        let lifetime = Lifetime::of(object.metadata.annotations.as_ref());
        let typed = serde_json::to_value(object).and_then(serde_json::from_value::<RayCluster>);
        match typed {
            Ok(cluster) => {
                let mut detail = cluster.detail();
                let created_ms = detail.summary.created_at * 1000;
                detail.ready_in_ms = crate::history::record::ready_since(object)
                    .map(|ready| ready - created_ms)
                    .filter(|ms| *ms >= 0);
                Kept::new(
                    detail,
                    cluster.status.map(|s| s.conditions).unwrap_or_default(),
                    lifetime,
                )
            }
            Err(e) => {
                let meta = &object.metadata;
                tracing::warn!(
                    namespace = meta.namespace.as_deref().unwrap_or_default(),
                    name = meta.name.as_deref().unwrap_or_default(),
                    "a RayCluster does not fit KubeRay's types, shown as failed: {e}"
                );
                let summary = ClusterSummary {
                    namespace: meta.namespace.clone().unwrap_or_default(),
                    name: meta.name.clone().unwrap_or_default(),
                    uid: meta.uid.clone().unwrap_or_default(),
                    resource_version: meta.resource_version.clone().unwrap_or_default(),
                    phase: ClusterPhase::Failed(format!("malformed RayCluster: {e}")),
                    workers_ready: 0,
                    workers_desired: 0,
                    gpus_desired: 0,
                    created_at: meta.creation_timestamp.as_ref().map_or(0, |t| t.0.as_second()),
                    team: label(platform::template::LABEL_TEAM),
                    owner: label(platform::template::LABEL_OWNER),
                    template: label(platform::template::LABEL_TEMPLATE),
                    pipeline: label(platform::template::LABEL_PIPELINE),
                    run: label(platform::template::LABEL_RUN),
                    may_delete: false,
                    context: String::new(),
                };
                let detail = ClusterDetail {
                    summary,
                    suspend: false,
                    groups: Vec::new(),
                    may_change: false,
                    expires_at: None,
                    protected: false,
                    suspend_at_expiry: false,
                    ready_in_ms: None,
                };
                Kept::new(detail, Vec::new(), lifetime)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list::{Filter, Order};

    /// A store of clusters `(namespace, name, team, owner, created, gpus, suspended)`.
    fn fleet(rows: &[(&str, &str, &str, &str, i64, u32, bool)]) -> Clusters {
        let client = Client::try_from(kube::Config::new("https://127.0.0.1:1".parse().unwrap()))
            .expect("a client that is never used");
        let clusters = Clusters::new(client, "nowhere".into(), String::new(), Scope::All, None);
        let mut kept = clusters.inner.kept.write_for_tests();
        for &(namespace, name, team, owner, created, gpus, suspend) in rows {
            let object: DynamicObject = serde_json::from_value(serde_json::json!({
                "apiVersion": "ray.io/v1", "kind": "RayCluster",
                "metadata": {"namespace": namespace, "name": name,
                    "creationTimestamp": jiff::Timestamp::from_second(created).unwrap().to_string(),
                    "labels": {"raydar.dev/team": team, "raydar.dev/owner": owner,
                               "raydar.dev/template": "gpu-small"}},
                "spec": {"suspend": suspend, "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {
                    "containers": [{"name": "ray-head", "resources": {"limits": {"nvidia.com/gpu": gpus.to_string()}}}]}}}},
                "status": {"state": if suspend { "suspended" } else { "ready" }}
            }))
            .unwrap();
            kept.insert((namespace.into(), name.into()), Kept::of(&object));
        }
        drop(kept);
        clusters
    }

    fn names(page: &Page) -> Vec<String> {
        page.items.iter().map(|c| format!("{}/{}", c.namespace, c.name)).collect()
    }

    #[tokio::test]
    async fn a_list_is_filtered_counted_by_phase_sorted_and_paged() {
        let clusters = fleet(&[
            ("ml", "alpha", "vision", "alice", 100, 8, false),
            ("ml", "beta", "vision", "bob", 300, 0, true),
            ("ml", "gamma", "speech", "alice", 200, 4, false),
            ("nlp", "delta", "speech", "carol", 400, 2, false),
            ("secret", "omega", "vision", "alice", 500, 16, false),
        ]);
        let readable = Grants { read: ["ml".into(), "nlp".into()].into(), ..Grants::default() };
        let all = Filter::default();
        let page =
            clusters.page(&View::new(all.clone(), Order::Name, 10, None).unwrap(), &readable);
        assert_eq!(
            names(&page),
            ["ml/alpha", "ml/beta", "ml/gamma", "nlp/delta"],
            "unreadable out"
        );
        assert_eq!((page.counts.total, page.counts.next.as_deref()), (4, None));
        assert_eq!(page.counts.phases[3], 1, "one suspended");

        let alice = Filter { owner: Some("alice".into()), ..Filter::default() };
        assert_eq!(
            names(
                &clusters
                    .page(&View::new(alice.clone(), Order::Name, 10, None).unwrap(), &readable)
            ),
            ["ml/alpha", "ml/gamma"]
        );
        let text = Filter { text: Some("speech".into()), ..Filter::default() };
        let page =
            clusters.page(&View::new(text.clone(), Order::Newest, 10, None).unwrap(), &readable);
        assert_eq!(names(&page), ["nlp/delta", "ml/gamma"], "newest first");
        let suspended = Filter { phase: Some("Suspended"), ..Filter::default() };
        let page =
            clusters.page(&View::new(suspended.clone(), Order::Name, 10, None).unwrap(), &readable);
        assert_eq!((names(&page), page.counts.total), (vec!["ml/beta".to_owned()], 1));
        assert_eq!(
            page.counts.phases.iter().sum::<u64>(),
            4,
            "counts leave the phase filter aside"
        );

        // Most GPUs first, two at a time: every row once, in order, across pages.
        let first =
            clusters.page(&View::new(all.clone(), Order::Gpus, 2, None).unwrap(), &readable);
        assert_eq!(names(&first), ["ml/alpha", "ml/gamma"]);
        let cursor = first.counts.next.clone().expect("a next page");
        let second = clusters
            .page(&View::new(all.clone(), Order::Gpus, 2, Some(&cursor)).unwrap(), &readable);
        assert_eq!(names(&second), ["nlp/delta", "ml/beta"]);
        assert_eq!(second.counts.next, None);
        let by_name =
            clusters.page(&View::new(all.clone(), Order::Name, 3, None).unwrap(), &readable);
        let rest = clusters.page(
            &View::new(all.clone(), Order::Name, 3, by_name.counts.next.as_deref()).unwrap(),
            &readable,
        );
        assert_eq!(names(&rest), ["nlp/delta"]);
        let wrong = View::new(all, Order::Newest, 2, Some("ml:alpha"));
        assert!(wrong.unwrap_err().contains("cursor"), "not a cursor");
    }
}
