//! The home page: every RayCluster, live.

use leptos::prelude::*;
use platform::status::format_age;
use platform::{ClusterPhase, ClusterSummary};

use crate::actions::tear_down;
use crate::api::{rest, ClusterList};
use crate::components::stream::StreamState;

/// Lists every RayCluster with its phase, workers, GPUs and age; rows change as the cluster does.
#[component]
pub fn ClustersPage() -> impl IntoView {
    // A shared value, not a resource: the server has the list in memory and writes it into the
    // page, the hydrating browser reads it back, and no async loading machinery (or server
    // function client) is needed in the first-load bundle.
    let list = SharedValue::new(initial_list).into_inner();
    view! {
        <section class="clusters">
            <ClusterTable list/>
        </section>
    }
}

/// On the server, the watched list. In the browser this runs only when the page is reached by a
/// link from another page: it starts empty and the push stream's snapshot fills it a moment later.
fn initial_list() -> ClusterList {
    #[cfg(feature = "ssr")]
    match crate::api::ssr::directory() {
        Ok(directory) => return directory.cluster_list(),
        Err(e) => leptos::logging::error!("{e}"),
    }
    ClusterList::new(Vec::new(), 0, None)
}

/// The table itself, seeded from the server-rendered list and then kept current by push.
#[component]
fn ClusterTable(list: ClusterList) -> impl IntoView {
    let stale = RwSignal::new(list.stale());
    let clusters = RwSignal::new(list.clusters);
    let now = RwSignal::new(list.now);
    let stream = RwSignal::new(StreamState::Connecting);
    #[cfg(feature = "hydrate")]
    crate::live::follow(
        move |change| match change {
            crate::live::Change::Snapshot(list) => {
                stale.set(list.stale());
                clusters.set(list.clusters);
            }
            crate::live::Change::Upsert(row) => clusters.update(|rows| upsert(rows, row)),
            crate::live::Change::Delete(gone) => clusters.update(|rows| {
                rows.retain(|r| r.key() != (gone.namespace.as_str(), gone.name.as_str()))
            }),
        },
        now,
        stream,
    );

    let count = move || clusters.with(Vec::len);
    let label = move || match stale.with(Option::is_some) {
        true => "stale",
        false => stream.get().label(),
    };
    let gpus =
        move || clusters.with(|c| c.iter().map(|c| c.gpus_desired).fold(0, u64::saturating_add));
    view! {
        <div class="list-header">
            <h1>"Ray clusters"</h1>
            <a class="button primary" href="/launch">"Launch a cluster"</a>
            <span class="counts">
                {count} " clusters · " {gpus} " GPUs requested"
            </span>
            // While the apiserver does not answer, the indicator says so, for how long and why:
            // the same element, so that this costs the first load no new one.
            <span
                class="live"
                class:offline=move || label() != "live"
                data-stream=label
                title="Changes arrive by push from the server"
            >
                {move || stale.with(|s| match s {
                    Some(s) => s.describe(now.get()),
                    None => stream.get().label().to_owned(),
                })}
            </span>
        </div>
        <table class="cluster-list">
            <thead>
                <tr>
                    <th scope="col">"Namespace"</th>
                    <th scope="col">"Name"</th>
                    <th scope="col">"Phase"</th>
                    <th scope="col" class="num">"Workers"</th>
                    <th scope="col" class="num">"GPUs"</th>
                    <th scope="col" class="num">"Age"</th>
                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                </tr>
            </thead>
            <tbody>
                // Nothing listed while the apiserver does not answer is not "no clusters".
                <Show when=move || clusters.with(Vec::is_empty) && stale.with(Option::is_none)>
                    <tr class="empty-row">
                        <td colspan="7">"No Ray clusters yet. " <a href="/launch">"Launch one"</a> "."</td>
                    </tr>
                </Show>
                // Keyed by resourceVersion too: a changed cluster gets a fresh row.
                <For
                    each=move || clusters.get()
                    key=|c| (c.uid.clone(), c.resource_version.clone())
                    let:cluster
                >
                    <ClusterRow cluster now/>
                </For>
            </tbody>
        </table>
    }
}

#[component]
fn ClusterRow(cluster: ClusterSummary, now: RwSignal<i64>) -> impl IntoView {
    let created = cluster.created_at;
    let reason = match &cluster.phase {
        ClusterPhase::Failed(reason) => Some(reason.clone()),
        _ => None,
    };
    let phase = cluster.phase.label();
    let id = format!("{}/{}", cluster.namespace, cluster.name);
    let page = rest::page(&cluster.namespace, &cluster.name);
    let (namespace, name) = (cluster.namespace.clone(), cluster.name.clone());
    // Offered only to who may (Kubernetes RBAC, asked by the server for this user). Hidden rather
    // than left out: an optional view here would add 19 KB (br) to every first load (measured).
    let may_delete = cluster.may_delete;
    view! {
        <tr data-cluster=id data-phase=phase>
            <td>{cluster.namespace}</td>
            <th scope="row"><a href=page>{cluster.name}</a></th>
            <td>
                <span class=format!("phase phase-{}", phase.to_ascii_lowercase())>{phase}</span>
                {reason.map(|r| view! { <span class="reason">{r}</span> })}
            </td>
            <td class="num">{cluster.workers_ready} "/" {cluster.workers_desired}</td>
            <td class="num">{cluster.gpus_desired}</td>
            <td class="num">{move || format_age(now.get() - created)}</td>
            <td class="actions" hidden=!may_delete><TearDownButton namespace name/></td>
        </tr>
    }
}

/// Tears a cluster down after the browser's confirmation names it; says so while it goes, and
/// shows why when Kubernetes refuses. The row itself leaves when the push stream says it is gone.
#[component]
pub fn TearDownButton(namespace: String, name: String) -> impl IntoView {
    let pending = RwSignal::new(false);
    let failed = RwSignal::new(None::<String>);
    let label = format!("Tear down {namespace}/{name}");
    let click = move |_| {
        if pending.get_untracked() {
            return;
        }
        let (namespace, name) = (namespace.clone(), name.clone());
        pending.set(true);
        failed.set(None);
        leptos::task::spawn_local(async move {
            match tear_down(namespace, name).await {
                // Deleting: the pods go first (foreground), then the push stream removes the row.
                Ok(true) => {}
                Ok(false) => pending.set(false),
                Err(why) => {
                    failed.set(Some(why));
                    pending.set(false);
                }
            }
        });
    };
    view! {
        <button type="button" class="danger" aria-label=label on:click=click disabled=move || pending.get()>
            {move || if pending.get() { "Tearing down…" } else { "Tear down" }}
        </button>
        {move || failed.get().map(|why| view! { <span class="error" role="alert">{why}</span> })}
    }
}

/// Inserts or replaces a row, keeping the list sorted by namespace and name.
#[cfg(feature = "hydrate")]
fn upsert(rows: &mut Vec<ClusterSummary>, row: ClusterSummary) {
    match rows.binary_search_by(|r| r.key().cmp(&row.key())) {
        Ok(i) => rows[i] = row,
        Err(i) => rows.insert(i, row),
    }
}
