//! The one watch loop every watched kind runs: a store of what raydar keeps of each object (a
//! projection, not the object) that survives a restart of its source, the watch's health, and its
//! errors in words for whoever runs raydar.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::runtime::watcher;
use kube::{Api, Resource};
use platform::Stale;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::config::Scope;

/// What a watch lists, named for error messages.
#[derive(Clone, Copy, Debug)]
pub struct Watched {
    /// Kind, e.g. `RayCluster`.
    pub kind: &'static str,
    /// Plural name and group, e.g. `rayclusters.ray.io`.
    pub resource: &'static str,
    /// How to install the CRD when it is missing.
    pub install: &'static str,
}

/// Objects a list asks for at once. A page passes through memory whole, as sent and as parsed (a
/// Pod is about 18 KB as the apiserver sends it), and the allocator keeps what it took: with
/// kube's 500, a fleet's list left raydar 10 MB larger than with 100, and synced no sooner.
const LIST_PAGE: u32 = 100;

/// What one watch asks the apiserver for: the objects of its APIs, as `config` selects them;
/// `what` names them in messages.
pub struct Watch<K> {
    /// One API for every namespace (`None`), or one per namespace watched: each part is listed
    /// and kept current on its own, and replaces only its own namespace's objects when it lists.
    parts: Vec<(Option<String>, Api<K>)>,
    config: watcher::Config,
    what: Watched,
}

impl<K: Resource> Watch<K> {
    /// Every object of `api`: a cluster-scoped kind, or a namespaced one in every namespace.
    pub fn all(api: Api<K>, config: watcher::Config, what: Watched) -> Self {
        Watch { parts: vec![(None, api)], config, what }
    }

    /// The objects of a namespaced kind in the namespaces `scope` watches, through the API
    /// `api` makes for a namespace (`None`: every namespace).
    pub fn scoped(
        scope: &Scope,
        api: impl Fn(Option<&str>) -> Api<K>,
        config: watcher::Config,
        what: Watched,
    ) -> Self {
        let parts = scope.parts().into_iter().map(|ns| (ns.map(str::to_owned), api(ns))).collect();
        Watch { parts, config, what }
    }
}

/// The health of one watch. Written by its source, read by handlers.
#[derive(Debug)]
pub struct WatchHealth {
    /// True once the first full list has arrived; a channel, so readers can wait for it.
    synced: watch::Sender<bool>,
    /// Errors since start, for /metrics.
    errors: AtomicU64,
    /// Since when and why the watch has not been answered, cleared once it has listed everything
    /// again. The lock is never held across an await, so a std mutex is enough.
    outage: Mutex<Option<Stale>>,
}

impl Default for WatchHealth {
    fn default() -> Self {
        WatchHealth {
            synced: watch::channel(false).0,
            errors: AtomicU64::new(0),
            outage: Mutex::default(),
        }
    }
}

impl WatchHealth {
    /// True once the watch has listed everything at least once.
    pub fn synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Records a completed list; true the first time, so the caller can say so once.
    pub fn mark_synced(&self) -> bool {
        !self.synced.send_replace(true)
    }

    /// Waits up to `limit` for the first full list; the last error (or that there was none yet)
    /// when it has not come.
    pub async fn wait_synced(&self, limit: Duration, what: &str) -> Result<(), String> {
        let mut synced = self.synced.subscribe();
        let came = matches!(tokio::time::timeout(limit, synced.wait_for(|s| *s)).await, Ok(Ok(_)));
        match came {
            true => Ok(()),
            false => Err(self
                .last_error()
                .unwrap_or_else(|| format!("the {what} watch has not listed everything yet"))),
        }
    }

    /// Records that the watch listed everything again: what it keeps is current. True when it
    /// had not been answered until now.
    pub fn recovered(&self) -> bool {
        self.lock().take().is_some()
    }

    /// Records an error the watch will retry after. Logged when it starts an outage or says
    /// something new (a retry every few seconds must not fill the log); the outage's start is
    /// kept. Returns the outage when it starts with this error.
    pub fn failed(&self, message: String) -> Option<Stale> {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut outage = self.lock();
        match outage.as_mut() {
            Some(o) if o.reason == message => tracing::debug!("{message}; retrying"),
            Some(o) => {
                tracing::warn!("{message}; retrying");
                o.reason = message;
            }
            None => {
                tracing::warn!("{message}; retrying");
                *outage = Some(Stale { since: crate::unix_now(), reason: message });
                return outage.clone();
            }
        }
        None
    }

    /// Since when and why the watch has not been answered, if it has not listed everything
    /// since its last error.
    pub fn stale(&self) -> Option<Stale> {
        self.lock().clone()
    }

    /// The last error, if the watch has not recovered since.
    pub fn last_error(&self) -> Option<String> {
        self.lock().as_ref().map(|o| o.reason.clone())
    }

    /// Errors since start.
    pub fn error_count(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Stale>> {
        self.outage.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How long a watch waits before trying again after an error: from [`Retry::FIRST`], doubling
/// up to [`Retry::LAST`], each wait a quarter longer or shorter at random so that replicas do not
/// retry in step. Short, unlike client-go's 30 s: a restarted apiserver must show in the pages
/// within seconds, and one list every two seconds is nothing to an apiserver that answers.
#[derive(Debug)]
struct Retry {
    next: Duration,
}

impl Retry {
    const FIRST: Duration = Duration::from_millis(500);
    const LAST: Duration = Duration::from_secs(2);
    /// How long a list may go without an answer during an outage before it is asked again (the
    /// first time; doubled each time).
    const LIST_PATIENCE: Duration = Duration::from_secs(2);

    fn new() -> Self {
        Retry { next: Self::FIRST }
    }

    fn wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (wait * 2).min(Self::LAST);
        // Jitter from the clock's nanoseconds: no random number generator for this.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.subsec_nanos());
        wait.mul_f64(0.75 + f64::from(nanos % 1000) / 2000.0)
    }
}

/// An object's namespace (empty for cluster-scoped kinds) and name.
pub type Key = (String, String);

/// What changed in a [`Projected`] store, told to its source as it happens.
pub enum Change<'a, P> {
    /// An object was created or changed; this is what is kept of it now.
    Applied(&'a P),
    /// An object was deleted; this is what was kept of it.
    Deleted(&'a P),
    /// The watch listed everything again: any object may have changed, and the store is
    /// current (again, after [`Change::Unanswered`]).
    Relisted,
    /// The watch is not answered: the store is what it last said, until the next
    /// [`Change::Relisted`].
    Unanswered(Stale),
}

/// What raydar keeps of each object of one kind, as a watch last saw it, with the watch's health:
/// shared by the source that fills it and the handles that read it.
///
/// Only a projection of each object is kept (what raydar shows and decides on), never the object:
/// a Pod is about 18 KB as the apiserver sends it and tens of thousands of them are a fleet. The
/// map outlives the source's runs: a run that relists (after a restart of the source, or a
/// watch that could not resume) builds its map aside and swaps it in only once the list is
/// complete, so readers keep the last known objects meanwhile, never an empty or half list.
pub struct Projected<P> {
    objects: RwLock<BTreeMap<Key, P>>,
    /// Synced, errors.
    pub health: WatchHealth,
}

impl<P> Default for Projected<P> {
    fn default() -> Self {
        Projected { objects: RwLock::default(), health: WatchHealth::default() }
    }
}

impl<P> Projected<P> {
    /// The objects, by namespace and name; held briefly (the watch waits to write meanwhile).
    pub fn read(&self) -> RwLockReadGuard<'_, BTreeMap<Key, P>> {
        self.objects.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<Key, P>> {
        self.objects.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The map to fill by hand (tests of what reads it).
    #[cfg(test)]
    pub fn write_for_tests(&self) -> RwLockWriteGuard<'_, BTreeMap<Key, P>> {
        self.write()
    }

    /// Keeps the store current with the objects `watch` asks for, until `shutdown`: [`Self::run`]
    /// over kube-rs watchers, what every source does.
    pub async fn watch<K>(
        &self,
        watch: Watch<K>,
        apiserver: &str,
        project: impl Fn(&K) -> P,
        on_change: impl FnMut(Change<'_, P>),
        shutdown: impl Future<Output = ()>,
    ) where
        K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    {
        let Watch { parts, config, what } = watch;
        let config = config.page_size(LIST_PAGE);
        let namespaces: Vec<Option<String>> = parts.iter().map(|(ns, _)| ns.clone()).collect();
        let watcher = || {
            futures::stream::select_all(parts.iter().enumerate().map(|(part, (_, api))| {
                watcher::watcher(api.clone(), config.clone()).map(move |e| (part, e)).boxed()
            }))
        };
        self.run(watcher, &namespaces, what, apiserver, project, on_change, shutdown).await
    }

    /// Keeps the store current with the objects kube-rs watchers (made by `watch`, each event
    /// with the index of its part in `parts`) tell of until `shutdown`, keeping what `project`
    /// makes of each, and telling `on_change` of each change once the store has it. A part is
    /// the namespace it watches, or `None` for every namespace.
    ///
    /// An error never ends the run: it is recorded in [`Self::health`] (in words, as `explain`
    /// says), told once as [`Change::Unanswered`] when it starts an outage, and followed after a
    /// short [`Retry`] by a new watcher, which lists everything again. A resumed watch would
    /// say nothing when nothing changed, so only a complete list proves the store current:
    /// the outage ends at that list's [`Change::Relisted`]. A watch whose resume point is gone
    /// (410, after etcd compacted) lists again at once, without an outage.
    #[allow(clippy::too_many_arguments)]
    pub async fn run<K, S>(
        &self,
        watch: impl Fn() -> S,
        parts: &[Option<String>],
        what: Watched,
        apiserver: &str,
        project: impl Fn(&K) -> P,
        mut on_change: impl FnMut(Change<'_, P>),
        shutdown: impl Future<Output = ()>,
    ) where
        K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
        S: Stream<Item = (usize, watcher::Result<watcher::Event<K>>)> + Send,
    {
        let key = |o: &K| {
            let meta = o.meta();
            (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default())
        };
        tokio::pin!(shutdown);
        let mut retry = Retry::new();
        let mut patience = Retry::LIST_PATIENCE;
        'watch: loop {
            // Each part's list in progress, swapped in whole when it is complete; which parts
            // have listed since this watch began. Gathered as a list and made a map once whole:
            // a map built by inserting a list in its (sorted) order leaves its nodes half full,
            // near twice the memory for a fleet's tens of thousands of objects.
            let mut relist: Vec<Option<Vec<(Key, P)>>> = parts.iter().map(|_| None).collect();
            let mut listed = vec![false; parts.len()];
            let stream = watch();
            tokio::pin!(stream);
            let error = loop {
                // During an outage, a list the apiserver sits on is asked again: it may have
                // reached the apiserver while it was starting, and a new one is answered sooner.
                // The patience doubles each time, so a list that is merely long gets its time.
                let listing_in_outage =
                    relist.iter().any(Option::is_some) && self.health.stale().is_some();
                let stall = async {
                    match listing_in_outage {
                        true => tokio::time::sleep(patience).await,
                        false => std::future::pending().await,
                    }
                };
                let event = tokio::select! {
                    _ = &mut shutdown => break 'watch,
                    () = stall => {
                        self.health.failed(format!(
                            "the Kubernetes apiserver at {apiserver} did not answer a list of {}s \
                             within {patience:?}", what.kind));
                        patience *= 2;
                        break None;
                    }
                    event = stream.next() => event,
                };
                let (part, event) = match event {
                    // A watcher's stream does not end; were it to, list again.
                    None => break None,
                    Some((_, Err(e))) => break Some(e),
                    Some((part, Ok(event))) => (part, event),
                };
                match event {
                    watcher::Event::Init => relist[part] = Some(Vec::new()),
                    watcher::Event::InitApply(o) => {
                        relist[part].get_or_insert_default().push((key(&o), project(&o)));
                    }
                    watcher::Event::InitDone => {
                        // Sorted, and built bottom up with full nodes (a key listed twice: its
                        // last).
                        let new: BTreeMap<Key, P> =
                            relist[part].take().unwrap_or_default().into_iter().collect();
                        let (old, count) = {
                            let mut objects = self.write();
                            let old = match &parts[part] {
                                None => std::mem::replace(&mut *objects, new),
                                Some(namespace) => {
                                    objects.retain(|(ns, _), _| ns != namespace);
                                    objects.extend(new);
                                    BTreeMap::new()
                                }
                            };
                            (old, objects.len())
                        };
                        // The old map is freed after the lock is let go; with the objects
                        // the list was made from, it goes back to the system.
                        drop(old);
                        crate::memory::release();
                        listed[part] = true;
                        if !listed.iter().all(|l| *l) {
                            continue;
                        }
                        (retry, patience) = (Retry::new(), Retry::LIST_PATIENCE);
                        if self.health.mark_synced() {
                            tracing::info!(objects = count, "{} watch synced", what.kind);
                        }
                        if self.health.recovered() {
                            tracing::info!(objects = count, "{} watch answered again", what.kind);
                        }
                        on_change(Change::Relisted);
                    }
                    watcher::Event::Apply(o) => {
                        let (key, kept) = (key(&o), project(&o));
                        let mut objects = self.write();
                        objects.insert(key.clone(), kept);
                        on_change(Change::Applied(&objects[&key]));
                    }
                    watcher::Event::Delete(o) => {
                        let removed = self.write().remove(&key(&o));
                        if let Some(removed) = removed {
                            on_change(Change::Deleted(&removed));
                        }
                    }
                }
            };
            match error {
                Some(e) if is_gone(&e) => {
                    tracing::info!(
                        "{} watch resumed too late (410 Gone): listing again",
                        what.kind
                    );
                    continue;
                }
                Some(e) => {
                    if let Some(outage) = self.health.failed(explain(&e, what, apiserver)) {
                        on_change(Change::Unanswered(outage));
                    }
                }
                None => {}
            }
            tokio::select! {
                _ = &mut shutdown => break,
                () = tokio::time::sleep(retry.wait()) => {}
            }
        }
    }
}

/// The watch's resume point is older than what the apiserver keeps (410 Gone).
fn is_gone(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::WatchError(status) => status.code == 410,
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => matches!(e, kube::Error::Api(s) if s.code == 410),
        watcher::Error::NoResourceVersion => false,
    }
}

/// Says in plain words what a watch error means for the person running raydar.
pub fn explain(error: &watcher::Error, what: Watched, apiserver: &str) -> String {
    let Watched { kind, resource, install } = what;
    let client_error = match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => e,
        other => return format!("{kind} watch failed: {other}"),
    };
    match client_error {
        kube::Error::Api(status) if status.code == 404 => {
            format!("the {kind} CRD ({resource}) is not installed in the Kubernetes cluster at {apiserver}: {install}")
        }
        kube::Error::Api(status) if status.code == 401 || status.code == 403 => format!(
            "raydar may not list {kind}s at {apiserver} ({}): grant its identity get/list/watch on {resource}",
            status.message
        ),
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            format!("cannot reach the Kubernetes apiserver at {apiserver}: {client_error}")
        }
        other => format!("{kind} watch failed at {apiserver}: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::core::Status;

    use super::*;

    const RAYCLUSTER: Watched = Watched {
        kind: "RayCluster",
        resource: "rayclusters.ray.io",
        install: "install the KubeRay operator or its CRDs",
    };

    fn api_error(code: u16, message: &str) -> watcher::Error {
        watcher::Error::InitialListFailed(kube::Error::Api(
            Status::failure(message, "x").with_code(code).boxed(),
        ))
    }

    #[test]
    fn a_missing_crd_is_named_with_the_fix() {
        let message = explain(
            &api_error(404, "the server could not find the requested resource"),
            RAYCLUSTER,
            "https://k8s:6443",
        );
        assert!(
            message.contains("rayclusters.ray.io") && message.contains("not installed"),
            "{message}"
        );
        assert!(
            message.contains("https://k8s:6443")
                && message.contains("install the KubeRay operator"),
            "{message}"
        );
    }

    #[test]
    fn a_forbidden_list_says_which_permission_is_missing() {
        let message = explain(
            &api_error(403, "rayclusters.ray.io is forbidden"),
            RAYCLUSTER,
            "https://k8s:6443",
        );
        assert!(message.contains("get/list/watch on rayclusters.ray.io"), "{message}");
    }

    #[test]
    fn health_reports_the_last_error_until_recovery() {
        let health = WatchHealth::default();
        assert!(!health.synced() && health.last_error().is_none());
        health.failed("cannot reach".into());
        health.failed("still cannot reach".into());
        assert_eq!(
            (health.error_count(), health.last_error().as_deref()),
            (2, Some("still cannot reach"))
        );
        assert!(health.mark_synced() && !health.mark_synced());
        assert!(health.recovered() && !health.recovered());
        assert_eq!((health.synced(), health.last_error()), (true, None));
    }

    #[test]
    fn an_outage_starts_once_and_keeps_its_start() {
        let health = WatchHealth::default();
        let started = health.failed("cannot reach".into()).expect("the first error starts it");
        assert_eq!(health.failed("still cannot reach".into()), None, "told once");
        let stale = health.stale().unwrap();
        assert_eq!((stale.since, stale.reason.as_str()), (started.since, "still cannot reach"));
    }

    #[test]
    fn retries_come_soon_and_stay_short() {
        let mut retry = Retry::new();
        let waits: Vec<Duration> = (0..8).map(|_| retry.wait()).collect();
        assert!(waits[0] < Duration::from_millis(700), "{waits:?}");
        assert!(waits.iter().all(|w| *w <= Retry::LAST.mul_f64(1.25)), "{waits:?}");
        assert!(waits[7] >= Retry::LAST.mul_f64(0.75), "{waits:?}");
    }

    /// A scripted watcher stream, one script per watcher the run makes.
    type Script = Vec<watcher::Result<watcher::Event<ConfigMap>>>;

    fn map(name: &str) -> ConfigMap {
        ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// A whole list of `names`, then `then`.
    fn listed(names: &[&str], then: Option<watcher::Result<watcher::Event<ConfigMap>>>) -> Script {
        let applies = names.iter().map(|n| Ok(watcher::Event::InitApply(map(n))));
        std::iter::once(Ok(watcher::Event::Init))
            .chain(applies)
            .chain([Ok(watcher::Event::InitDone)])
            .chain(then)
            .collect()
    }

    fn refused() -> watcher::Result<watcher::Event<ConfigMap>> {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        Err(watcher::Error::WatchFailed(kube::Error::Service(Box::new(io))))
    }

    fn gone() -> watcher::Result<watcher::Event<ConfigMap>> {
        Err(watcher::Error::WatchError(
            Status::failure("too old", "Expired").with_code(410).boxed(),
        ))
    }

    #[tokio::test]
    async fn an_outage_keeps_the_last_list_until_a_whole_new_one_is_in() {
        let scripts = Mutex::new(std::collections::VecDeque::from([
            // Etcd compacted past the watch's resume point: listed again at once, no outage.
            listed(&["a", "b"], Some(gone())),
            listed(&["a", "b"], Some(refused())),
            vec![refused()],
            // Back: b was deleted and c created meanwhile.
            listed(&["a", "c"], None),
        ]));
        let watch = || {
            let script = scripts.lock().unwrap().pop_front().unwrap_or_default();
            futures::stream::iter(script).chain(futures::stream::pending()).map(|e| (0, e))
        };
        let store: Projected<String> = Projected::default();
        let keys = |store: &Projected<String>| store.read().values().cloned().collect::<Vec<_>>();
        let done = tokio_util::sync::CancellationToken::new();
        let mut changes = Vec::new();
        let on_change = |change: Change<'_, String>| {
            changes.push(match change {
                Change::Relisted => format!("relisted {:?}", keys(&store)),
                Change::Unanswered(stale) => {
                    format!("unanswered: {} {:?}", stale.reason, keys(&store))
                }
                Change::Applied(_) | Change::Deleted(_) => "change".into(),
            });
            if changes.len() == 4 {
                done.cancel();
            }
        };
        let name = |m: &ConfigMap| m.metadata.name.clone().unwrap();
        let run =
            store.run(watch, &[None], RAYCLUSTER, "https://k8s", name, on_change, done.cancelled());
        tokio::time::timeout(Duration::from_secs(10), run).await.expect("the run ends when told");
        let unanswered = "unanswered: cannot reach the Kubernetes apiserver at https://k8s: \
                          ServiceError: refused [\"a\", \"b\"]";
        assert_eq!(
            changes,
            [
                r#"relisted ["a", "b"]"#,
                r#"relisted ["a", "b"]"#,
                unanswered,
                r#"relisted ["a", "c"]"#
            ]
        );
        assert_eq!((store.health.stale(), store.health.error_count()), (None, 2));
    }

    #[tokio::test]
    async fn a_namespace_that_lists_again_replaces_only_its_own_objects() {
        let in_ns = |namespace: &str, name: &str| {
            let mut m = map(name);
            m.metadata.namespace = Some(namespace.into());
            m
        };
        let script: Vec<(usize, watcher::Result<watcher::Event<ConfigMap>>)> = vec![
            (0, Ok(watcher::Event::Init)),
            (1, Ok(watcher::Event::Init)),
            (0, Ok(watcher::Event::InitApply(in_ns("a", "x")))),
            (0, Ok(watcher::Event::InitDone)),
            (1, Ok(watcher::Event::InitApply(in_ns("b", "y")))),
            (1, Ok(watcher::Event::InitDone)),
            // b lists again on its own: a's objects stay.
            (1, Ok(watcher::Event::Init)),
            (1, Ok(watcher::Event::InitApply(in_ns("b", "z")))),
            (1, Ok(watcher::Event::InitDone)),
        ];
        let script = Mutex::new(Some(script));
        let watch = || {
            let script = script.lock().unwrap().take().unwrap_or_default();
            futures::stream::iter(script).chain(futures::stream::pending())
        };
        let store: Projected<String> = Projected::default();
        let done = tokio_util::sync::CancellationToken::new();
        let mut changes = Vec::new();
        let on_change = |change: Change<'_, String>| {
            if let Change::Relisted = change {
                changes.push(store.read().keys().cloned().collect::<Vec<_>>());
            }
            if changes.len() == 2 {
                done.cancel();
            }
        };
        let name = |m: &ConfigMap| m.metadata.name.clone().unwrap();
        let parts = [Some("a".to_owned()), Some("b".to_owned())];
        let run =
            store.run(watch, &parts, RAYCLUSTER, "https://k8s", name, on_change, done.cancelled());
        tokio::time::timeout(Duration::from_secs(10), run).await.expect("the run ends when told");
        let key = |ns: &str, name: &str| (ns.to_owned(), name.to_owned());
        // Synced only once both namespaces had listed.
        assert_eq!(
            changes,
            [vec![key("a", "x"), key("b", "y")], vec![key("a", "x"), key("b", "z")]]
        );
        assert!(store.health.synced());
    }

    #[tokio::test]
    async fn waiting_for_a_sync_says_why_it_has_not_come() {
        let health = WatchHealth::default();
        let waited = health.wait_synced(Duration::from_millis(10), "RayCluster").await;
        assert!(waited.unwrap_err().contains("RayCluster watch has not listed"));
        health.failed("cannot reach the apiserver".into());
        let waited = health.wait_synced(Duration::from_millis(10), "RayCluster").await;
        assert_eq!(waited.unwrap_err(), "cannot reach the apiserver");
        health.mark_synced();
        assert_eq!(health.wait_synced(Duration::from_millis(10), "RayCluster").await, Ok(()));
    }
}
