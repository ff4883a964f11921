//! The home page: every RayCluster, live.

use leptos::prelude::*;
use platform::status::format_age;
use platform::{ClusterPhase, ClusterSummary};

use crate::api::{list_clusters, ClusterList};

/// Lists every RayCluster with its phase, workers, GPUs and age; rows change as the cluster does.
#[component]
pub fn ClustersPage() -> impl IntoView {
    let initial = Resource::new(|| (), |_| list_clusters());
    view! {
        <section class="clusters">
            <Suspense fallback=|| view! { <p class="empty">"Loading clusters…"</p> }>
                {move || Suspend::new(async move {
                    match initial.await {
                        Ok(list) => view! { <ClusterTable list/> }.into_any(),
                        Err(e) => view! {
                            <p class="error" role="alert">"Could not load clusters: " {e.to_string()}</p>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The table itself, seeded from the server-rendered list and then kept current by push.
#[component]
fn ClusterTable(list: ClusterList) -> impl IntoView {
    let clusters = RwSignal::new(list.clusters);
    let now = RwSignal::new(list.now);
    let stream = RwSignal::new(StreamState::Connecting);
    #[cfg(feature = "hydrate")]
    crate::live::follow_clusters(clusters, now, stream);

    let count = move || clusters.with(Vec::len);
    let gpus = move || clusters.with(|c| c.iter().map(|c| u64::from(c.gpus_desired)).sum::<u64>());
    view! {
        <div class="list-header">
            <h1>"Ray clusters"</h1>
            <span class="counts">
                {count} " clusters · " {gpus} " GPUs requested"
            </span>
            <span
                class="live"
                class:offline=move || stream.get() != StreamState::Live
                data-stream=move || stream.get().label()
                title="Changes arrive by push from the server"
            >
                {move || stream.get().label()}
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
                </tr>
            </thead>
            <tbody>
                <Show when=move || clusters.with(Vec::is_empty)>
                    <tr class="empty-row">
                        <td colspan="6">"No Ray clusters yet."</td>
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

/// Whether the page is receiving changes. Server and browser both start at `Connecting`, so the
/// server-rendered text matches the hydrated one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamState {
    /// Rendered, not yet subscribed.
    Connecting,
    /// Changes arrive as they happen.
    Live,
    /// The stream dropped; the browser is reconnecting and the list may be stale.
    Reconnecting,
}

impl StreamState {
    fn label(self) -> &'static str {
        match self {
            Self::Connecting => "connecting…",
            Self::Live => "live",
            Self::Reconnecting => "reconnecting…",
        }
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
    view! {
        <tr data-cluster=id data-phase=phase>
            <td>{cluster.namespace}</td>
            <th scope="row">{cluster.name}</th>
            <td>
                <span class=format!("phase phase-{}", phase.to_ascii_lowercase())>{phase}</span>
                {reason.map(|r| view! { <span class="reason">{r}</span> })}
            </td>
            <td class="num">{cluster.workers_ready} "/" {cluster.workers_desired}</td>
            <td class="num">{cluster.gpus_desired}</td>
            <td class="num">{move || format_age(now.get() - created)}</td>
        </tr>
    }
}
