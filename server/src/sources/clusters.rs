//! The RayCluster watch over every namespace, what raydar keeps of each cluster, and the feed of
//! changes that open pages follow.
//!
//! The watch reads RayClusters as plain JSON and makes each into a [`RayCluster`] only to take
//! what raydar shows of it. One that does not fit KubeRay's types (a worker count past 32 bits,
//! a string where a number goes: the apiserver's schema does not catch every such case) is kept
//! as a failed row saying so, instead of breaking the watch for every other cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use app::api::{ClusterList, ClusterRef};
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::watcher;
use kube::{Api, Client};
use platform::kuberay::RayCluster;
use platform::{ClusterCondition, ClusterDetail, ClusterPhase, ClusterSummary, Stale};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::watch::{Change, Projected, WatchHealth, Watched};
use crate::unix_now;

const WATCHED: Watched = Watched {
    kind: "RayCluster",
    resource: "rayclusters.ray.io",
    install: "install the KubeRay operator or its CRDs",
};

/// How many changes the feed holds for a slow follower before it must take a fresh snapshot.
pub const FEED_CAPACITY: usize = 1024;

/// A change to the cluster list, as published to followers.
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
    /// What is kept of every RayCluster; synced, errors.
    kept: Projected<Kept>,
    /// Changes, in the order the watch saw them.
    feed: broadcast::Sender<ClusterChange>,
}

impl Clusters {
    /// An empty store, filled once [`Clusters::run`] runs; `apiserver` names the cluster in
    /// error messages.
    pub fn new(client: Client, apiserver: String) -> Self {
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        Clusters { inner: Arc::new(Shared { client, apiserver, kept: Projected::default(), feed }) }
    }

    /// The source: watches RayClusters in every namespace until `shutdown`. Errors are reported
    /// and retried; they never end the watch.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), String> {
        let shared = &self.inner;
        let resource = ApiResource::erase::<RayCluster>(&());
        let api = Api::<DynamicObject>::all_with(shared.client.clone(), &resource);
        let config = watcher::Config::default().any_semantic();
        let publish = |change: Change<'_, Kept>| shared.publish(change);
        shared
            .kept
            .run(
                || watcher(api.clone(), config.clone()),
                WATCHED,
                &shared.apiserver,
                Kept::of,
                publish,
                shutdown.cancelled(),
            )
            .await;
        Ok(())
    }

    /// What is kept of one cluster, through `f`.
    fn with<T>(&self, namespace: &str, name: &str, f: impl FnOnce(&Kept) -> T) -> Option<T> {
        self.inner.kept.read().get(&(namespace.to_owned(), name.to_owned())).map(f)
    }

    /// Every cluster, sorted by namespace and name.
    pub fn list(&self) -> Vec<ClusterSummary> {
        self.inner.kept.read().values().map(|c| c.detail.summary.clone()).collect()
    }

    /// One page of the clusters in `readable` namespaces that match `filter`, in `order`, after
    /// `cursor` (a previous page's `next`); with how many match and how many match in each phase
    /// (the filter's phase aside, so a page can offer the others).
    pub fn page(
        &self,
        filter: &Filter,
        order: Order,
        limit: usize,
        cursor: Option<&str>,
        readable: &BTreeSet<String>,
    ) -> Result<Page, String> {
        let after = cursor.map(Position::parse).transpose()?;
        let kept = self.inner.kept.read();
        let mut phases: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut matching: Vec<(Position, &Kept)> = Vec::new();
        for ((namespace, _), cluster) in kept.iter() {
            if !readable.contains(namespace) || !filter.matches(cluster) {
                continue;
            }
            let phase = cluster.detail.summary.phase.label();
            *phases.entry(phase).or_default() += 1;
            if filter.phase.is_none_or(|p| p == phase) {
                matching.push((Position::of(&cluster.detail.summary, order), cluster));
            }
        }
        // The store is in name order already; other orders are sorted (a stable sort keeps names
        // in order among equals).
        if order != Order::Name {
            matching.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let total = matching.len();
        let start = after.map_or(0, |after| matching.partition_point(|(p, _)| *p <= after));
        let rows = &matching[start..];
        let items: Vec<ClusterSummary> =
            rows.iter().take(limit).map(|(_, c)| c.detail.summary.clone()).collect();
        let next = (rows.len() > limit).then(|| rows[limit - 1].0.cursor());
        let phases = phases.into_iter().map(|(p, n)| (p.to_owned(), n)).collect();
        Ok(Page { items, next, total, phases })
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

    /// Every cluster with its team and owner (the `raydar.dev/team` and `raydar.dev/owner`
    /// labels raydar's launches set; empty when absent).
    pub fn with_owners(&self) -> Vec<(ClusterSummary, String, String)> {
        self.inner
            .kept
            .read()
            .values()
            .map(|c| {
                let owner = c.detail.owner.clone().unwrap_or_default();
                (c.detail.summary.clone(), c.team.clone(), owner)
            })
            .collect()
    }

    /// The namespaces that have clusters.
    pub fn namespaces(&self) -> std::collections::BTreeSet<String> {
        self.inner.kept.read().keys().map(|(namespace, _)| namespace.clone()).collect()
    }

    /// The list with the server's clock, as pages render it (every cluster: callers keep what
    /// the requester may see).
    pub fn snapshot(&self) -> ClusterList {
        ClusterList::new(self.list(), unix_now(), self.stale())
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

/// Which clusters a list asks for: each field that is set must match.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub namespace: Option<String>,
    /// The `raydar.dev/team` label.
    pub team: Option<String>,
    /// The `raydar.dev/owner` label.
    pub owner: Option<String>,
    /// The `raydar.dev/template` label.
    pub template: Option<String>,
    /// A phase as the list shows it (`Ready`, …).
    pub phase: Option<&'static str>,
    /// Lower-case text found in the namespace, name, team, owner or template.
    pub text: Option<String>,
}

impl Filter {
    /// Whether `cluster` matches, its phase aside.
    fn matches(&self, cluster: &Kept) -> bool {
        let detail = &cluster.detail;
        let summary = &detail.summary;
        let owner = detail.owner.as_deref().unwrap_or_default();
        let template = detail.template.as_deref().unwrap_or_default();
        let is = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        is(&self.namespace, &summary.namespace)
            && is(&self.team, &cluster.team)
            && is(&self.owner, owner)
            && is(&self.template, template)
            && self
                .text
                .as_deref()
                .is_none_or(|text| !text.contains(SEARCH_APART) && cluster.search.contains(text))
    }
}

/// The order of a list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// By namespace, then name.
    #[default]
    Name,
    /// Newest first.
    Newest,
    /// Most GPUs first.
    Gpus,
}

/// A row's place in an order: its sort value (0 for [`Order::Name`]), then namespace and name,
/// which no two rows share.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Position(i128, String, String);

impl Position {
    fn of(row: &ClusterSummary, order: Order) -> Position {
        // Larger first: the value is negated.
        let value = match order {
            Order::Name => 0,
            Order::Newest => -i128::from(row.created_at),
            Order::Gpus => -i128::from(row.gpus_desired),
        };
        Position(value, row.namespace.clone(), row.name.clone())
    }

    /// `VALUE:NAMESPACE:NAME` (namespaces and names hold no colon). Any such text is a place in
    /// any order: one from another order is merely somewhere else in this one.
    fn cursor(&self) -> String {
        format!("{}:{}:{}", self.0, self.1, self.2)
    }

    fn parse(cursor: &str) -> Result<Position, String> {
        let bad = || format!("cursor {cursor:?} is not a next cursor (VALUE:NAMESPACE:NAME)");
        let mut parts = cursor.splitn(3, ':');
        let value = parts.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        let (namespace, name) = (parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?);
        if name.contains(':') {
            return Err(bad());
        }
        Ok(Position(value, namespace.to_owned(), name.to_owned()))
    }
}

/// One page of a list.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub items: Vec<ClusterSummary>,
    /// Where the next page starts; `None` on the last.
    pub next: Option<String>,
    /// Clusters that match, on every page.
    pub total: usize,
    /// Clusters that match in each phase, the phase filter aside.
    pub phases: BTreeMap<String, usize>,
}

/// What raydar keeps of a RayCluster: what its page shows (the list's row within), its team, and
/// its conditions (the page's events). A few hundred bytes, where the object is kilobytes.
struct Kept {
    detail: ClusterDetail,
    /// The `raydar.dev/team` label; empty when absent.
    team: String,
    conditions: Vec<ClusterCondition>,
    /// Namespace, name, team, owner and template in lower case, apart by [`SEARCH_APART`]: what
    /// a list's free text is looked for in, made once here rather than for every row of every
    /// list.
    search: String,
}

/// Between the fields of [`Kept::search`]: no name or label holds it, so a text without it
/// never matches across two fields.
const SEARCH_APART: char = '\n';

impl Kept {
    fn new(detail: ClusterDetail, team: String, conditions: Vec<ClusterCondition>) -> Kept {
        let summary = &detail.summary;
        let fields = [
            summary.namespace.as_str(),
            &summary.name,
            &team,
            detail.owner.as_deref().unwrap_or_default(),
            detail.template.as_deref().unwrap_or_default(),
        ];
        let search = fields.join(&SEARCH_APART.to_string()).to_lowercase();
        Kept { detail, team, conditions, search }
    }

    fn of(object: &DynamicObject) -> Kept {
        let label = |key: &str| object.metadata.labels.as_ref()?.get(key).cloned();
        let team = label(platform::template::LABEL_TEAM).unwrap_or_default();
        let typed = serde_json::to_value(object).and_then(serde_json::from_value::<RayCluster>);
        match typed {
            Ok(cluster) => Kept::new(
                cluster.detail(),
                team,
                cluster.status.map(|s| s.conditions).unwrap_or_default(),
            ),
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
                    may_delete: false,
                };
                let detail = ClusterDetail {
                    summary,
                    suspend: false,
                    owner: label(platform::template::LABEL_OWNER),
                    template: label(platform::template::LABEL_TEMPLATE),
                    groups: Vec::new(),
                    may_change: false,
                };
                Kept::new(detail, team, Vec::new())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store of clusters `(namespace, name, team, owner, created, gpus, suspended)`.
    fn fleet(rows: &[(&str, &str, &str, &str, i64, u32, bool)]) -> Clusters {
        let client = Client::try_from(kube::Config::new("https://127.0.0.1:1".parse().unwrap()))
            .expect("a client that is never used");
        let clusters = Clusters::new(client, "nowhere".into());
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
        let readable: BTreeSet<String> = ["ml".into(), "nlp".into()].into();
        let all = Filter::default();
        let page = clusters.page(&all, Order::Name, 10, None, &readable).unwrap();
        assert_eq!(
            names(&page),
            ["ml/alpha", "ml/beta", "ml/gamma", "nlp/delta"],
            "unreadable out"
        );
        assert_eq!((page.total, page.next.as_deref()), (4, None));
        assert_eq!(page.phases.get("Suspended"), Some(&1));

        let alice = Filter { owner: Some("alice".into()), ..Filter::default() };
        assert_eq!(
            names(&clusters.page(&alice, Order::Name, 10, None, &readable).unwrap()),
            ["ml/alpha", "ml/gamma"]
        );
        let text = Filter { text: Some("speech".into()), ..Filter::default() };
        let page = clusters.page(&text, Order::Newest, 10, None, &readable).unwrap();
        assert_eq!(names(&page), ["nlp/delta", "ml/gamma"], "newest first");
        let suspended = Filter { phase: Some("Suspended"), ..Filter::default() };
        let page = clusters.page(&suspended, Order::Name, 10, None, &readable).unwrap();
        assert_eq!((names(&page), page.total), (vec!["ml/beta".to_owned()], 1));
        assert_eq!(page.phases.values().sum::<usize>(), 4, "counts leave the phase filter aside");

        // Most GPUs first, two at a time: every row once, in order, across pages.
        let first = clusters.page(&all, Order::Gpus, 2, None, &readable).unwrap();
        assert_eq!(names(&first), ["ml/alpha", "ml/gamma"]);
        let cursor = first.next.clone().expect("a next page");
        let second = clusters.page(&all, Order::Gpus, 2, Some(&cursor), &readable).unwrap();
        assert_eq!(names(&second), ["nlp/delta", "ml/beta"]);
        assert_eq!(second.next, None);
        let by_name = clusters.page(&all, Order::Name, 3, None, &readable).unwrap();
        let rest = clusters.page(&all, Order::Name, 3, by_name.next.as_deref(), &readable).unwrap();
        assert_eq!(names(&rest), ["nlp/delta"]);
        let wrong = clusters.page(&all, Order::Newest, 2, Some("ml:alpha"), &readable);
        assert!(wrong.unwrap_err().contains("cursor"), "not a cursor");
    }
}
