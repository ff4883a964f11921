//! One cluster's page: its phase and workers as they change (so a launch can be followed to
//! Ready), who launched it from which template, and its day-2 actions: suspend or resume, scale
//! a worker group within its bounds, tear down. Below them its pods, Ray's nodes and jobs,
//! conditions and events ([`crate::routes::overview`]).
//!
//! The page is a lazy route: its code loads when it is opened, not with the cluster list.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use leptos_router::{lazy_route, LazyRoute};
use platform::status::format_age;
use platform::{ClusterDetail, ClusterPhase, WorkerGroupSummary};

use crate::actions::change;
use crate::api::read_cluster;
use crate::components::failure::{self, AppError};
use crate::components::stream::StreamState;
use crate::routes::clusters::TearDownButton;
use crate::routes::gpus::ClusterGpuSection;
use crate::routes::overview::{follow, Overview, StartingSection};
use crate::routes::submit::SubmitJob;

/// `/clusters/{namespace}/{name}`.
pub struct ClusterPage;

#[lazy_route]
impl LazyRoute for ClusterPage {
    // The cluster is loaded by the view, not here: what `data` reads is fetched and decoded by
    // code in the first-load bundle, and the page's types belong in its own chunk.
    fn data() -> Self {
        ClusterPage
    }

    fn view(this: Self) -> AnyView {
        let _ = this;
        let params = use_params_map();
        let namespace = Memo::new(move |_| params.read().get("namespace").unwrap_or_default());
        let name = Memo::new(move |_| params.read().get("name").unwrap_or_default());
        let detail = Resource::new(
            move || (namespace.get(), name.get()),
            |(ns, name)| read_cluster(ns, name),
        );
        view! {
            <section class="cluster">
                <p class="crumbs"><a href="/">"Ray clusters"</a> " / " {namespace} " / " {name}</p>
                <Suspense fallback=|| view! { <p class="empty">"Loading the cluster…"</p> }>
                    <ErrorBoundary fallback=failure::notice>
                        {move || Suspend::new(async move {
                            detail.await.map_err(AppError::load("the cluster")).map(|detail| match detail {
                                Some(detail) => view! { <ClusterView detail/> }.into_any(),
                                None => view! { <Gone namespace=namespace.get_untracked() name=name.get_untracked()/> }.into_any(),
                            })
                        })}
                    </ErrorBoundary>
                </Suspense>
            </section>
        }
        .into_any()
    }
}

/// Said where a cluster was: it does not exist, or no longer.
#[component]
fn Gone(namespace: String, name: String, #[prop(optional)] uid: String) -> impl IntoView {
    let id = format!("{namespace}/{name}");
    let shown = id.clone();
    // What is left of it: its history (a cluster gone while its page was open has a uid).
    let history = (!uid.is_empty()).then(|| {
        view! { <a class="history-link" href=format!("/history/{uid}")>"Its history"</a> " · " }
    });
    view! {
        <p class="gone" role="status" data-gone=id>
            "RayCluster " <strong>{shown}</strong> " does not exist (any more). "
            {history}
            <a href="/">"Back to the list"</a>
        </p>
    }
}

/// The cluster, kept current by the push stream.
#[component]
fn ClusterView(detail: ClusterDetail) -> impl IntoView {
    let (namespace, name) = (detail.summary.namespace.clone(), detail.summary.name.clone());
    // Actions are offered only to who may take them (Kubernetes RBAC, asked by the server).
    let (may_change, may_delete) = (detail.may_change, detail.summary.may_delete);
    let now = RwSignal::new(detail.summary.created_at);
    let detail = RwSignal::new(detail);
    let gone = RwSignal::new(false);
    let stream = RwSignal::new(StreamState::Connecting);
    #[cfg(feature = "hydrate")]
    {
        use crate::live::Change;
        let is_this = {
            let (namespace, name) = (namespace.clone(), name.clone());
            move |ns: &str, n: &str| ns == namespace && n == name
        };
        // Groups and suspend are not in the stream's rows: read them again when the row changed.
        let refresh = {
            let (namespace, name) = (namespace.clone(), name.clone());
            move || {
                let (namespace, name) = (namespace.clone(), name.clone());
                leptos::task::spawn_local(async move {
                    match read_cluster(namespace, name).await {
                        Ok(Some(fresh)) => detail.set(fresh),
                        Ok(None) => gone.set(true),
                        Err(_) => {}
                    }
                });
            }
        };
        crate::live::follow(
            move |change| match change {
                Change::Snapshot(list) => {
                    match list.clusters.into_iter().find(|c| is_this(&c.namespace, &c.name)) {
                        Some(row)
                            if row.resource_version
                                != detail
                                    .with_untracked(|d| d.summary.resource_version.clone()) =>
                        {
                            detail.update(|d| d.summary = row);
                            refresh();
                        }
                        Some(_) => {}
                        None => gone.set(true),
                    }
                }
                Change::Upsert(row) if is_this(&row.namespace, &row.name) => {
                    detail.update(|d| d.summary = row);
                    refresh();
                }
                // A deleted cluster leaves the page: the next snapshot says so.
                _ => {}
            },
            // The list's stream of this one cluster.
            &crate::api::rest::here(format!("?namespace={namespace}&name={name}")),
            now,
            stream,
        );
    }

    let id = format!("{namespace}/{name}");
    let summary = move || detail.with(|d| d.summary.clone());
    let phase = move || detail.with(|d| d.summary.phase.label());
    let reason = move || match detail.with(|d| d.summary.phase.clone()) {
        ClusterPhase::Failed(reason) => Some(reason),
        _ => None,
    };
    let created = detail.with_untracked(|d| d.summary.created_at);
    let uid = detail.with_untracked(|d| d.summary.uid.clone());
    let expires_at = move || detail.with(|d| d.expires_at);
    let protected = move || detail.with(|d| d.protected);
    let ready_in = move || detail.with(|d| d.ready_in_ms);
    let (owner, template) =
        detail.with_untracked(|d| (d.summary.owner.clone(), d.summary.template.clone()));
    let (pipeline, run) =
        detail.with_untracked(|d| (d.summary.pipeline.clone(), d.summary.run.clone()));
    // Named when raydar serves several.
    let kubernetes = detail.with_untracked(|d| d.summary.context.clone());
    let failed = RwSignal::new(None::<String>);
    let pending = RwSignal::new(false);
    let toggle_suspend = {
        let (namespace, name) = (namespace.clone(), name.clone());
        move |_| {
            if pending.get_untracked() {
                return;
            }
            let suspend = !detail.with_untracked(|d| d.suspend);
            let body = serde_json::json!({ "suspend": suspend }).to_string();
            pending.set(true);
            failed.set(None);
            let (namespace, name) = (namespace.clone(), name.clone());
            leptos::task::spawn_local(async move {
                match change(namespace, name, body).await {
                    Ok(()) => detail.update(|d| d.suspend = suspend),
                    Err(why) => failed.set(Some(why)),
                }
                pending.set(false);
            });
        }
    };

    let (ns_for_groups, name_for_groups) = (namespace.clone(), name.clone());
    // One push stream for the page's start stages near the top and its overview below.
    let feed = follow(&namespace, &name);
    view! {
        <Show
            when=move || !gone.get()
            fallback={
                let (namespace, name, uid) = (namespace.clone(), name.clone(), uid.clone());
                move || view! { <Gone namespace=namespace.clone() name=name.clone() uid=uid.clone()/> }
            }
        >
            <div class="cluster-header" data-cluster=id.clone() data-phase=phase>
                <h1>{name.clone()}</h1>
                <span class=move || format!("phase phase-{}", phase().to_ascii_lowercase())>{phase}</span>
                {move || reason().map(|r| view! { <span class="reason">{r}</span> })}
                <span
                    class="live"
                    class:offline=move || stream.get() != StreamState::Live
                    data-stream=move || stream.get().label()
                >
                    {move || stream.get().label()}
                </span>
            </div>
            <dl class="facts">
                {(!kubernetes.is_empty()).then(|| view! {
                    <div><dt>"Kubernetes cluster"</dt><dd class="context">{kubernetes.clone()}</dd></div>
                })}
                <div><dt>"Namespace"</dt><dd>{namespace.clone()}</dd></div>
                <div><dt>"Workers ready"</dt><dd class="workers">{move || { let s = summary(); format!("{}/{}", s.workers_ready, s.workers_desired) }}</dd></div>
                <div><dt>"GPUs"</dt><dd>{move || summary().gpus_desired}</dd></div>
                <div><dt>"Age"</dt><dd>{move || format_age(now.get() - created)}</dd></div>
                {move || ready_in().map(|ms| view! {
                    <div><dt>"Ready in"</dt><dd class="ready-in">{format!("{:.1} s", ms as f64 / 1000.0)}</dd></div>
                })}
                <div><dt>"Owner"</dt><dd>{or_dash(owner.clone())}</dd></div>
                <div><dt>"Template"</dt><dd>{or_dash(template.clone())}</dd></div>
                {(!pipeline.is_empty()).then(|| view! {
                    <div><dt>"Pipeline"</dt><dd class="pipeline">{pipeline.clone()} " (run " {run.clone()} ")"</dd></div>
                })}
                {move || expires_at().map(|t| view! {
                    <div><dt>"Expires"</dt><dd class="expires">
                        {super::history::utc(t * 1000)}
                        {protected().then_some(" (protected: never reclaimed)")}
                    </dd></div>
                })}
                <div><dt>"History"</dt><dd>
                    <a class="history-link" href=format!("/history/{uid}")>"Timeline and events"</a>
                </dd></div>
            </dl>
            <Expiry detail now namespace=namespace.clone() name=name.clone() may_change/>
            <div class="cluster-actions">
                {may_change.then(|| view! {
                    <button type="button" on:click=toggle_suspend.clone() disabled=move || pending.get()
                        title="Suspended clusters keep their spec but no pods">
                        {move || if detail.with(|d| d.suspend) { "Resume" } else { "Suspend" }}
                    </button>
                })}
                {may_delete.then(|| view! { <TearDownButton namespace=namespace.clone() name=name.clone()/> })}
                {(!may_change && !may_delete).then(|| view! {
                    <p class="empty">"You may look at this cluster; changing it is up to its namespace's owners."</p>
                })}
                {move || failed.get().map(|why| view! { <p class="error" role="alert">{why}</p> })}
            </div>
            <StartingSection feed/>
            <Groups detail namespace=ns_for_groups.clone() name=name_for_groups.clone() may_change/>
            <ClusterGpuSection namespace=ns_for_groups.clone() name=name_for_groups.clone()/>
            <Overview feed namespace=ns_for_groups.clone() name=name_for_groups.clone()/>
            <super::history::OlderEvents uid=uid.clone() now/>
            <SubmitJob namespace=ns_for_groups.clone() name=name_for_groups.clone()/>
        </Show>
    }
}

/// Sends `body` as a change of `namespace/name`: `pending` meanwhile, a refusal into `failed`.
fn send_change(
    namespace: String,
    name: String,
    body: String,
    pending: RwSignal<bool>,
    failed: RwSignal<Option<String>>,
) {
    pending.set(true);
    failed.set(None);
    leptos::task::spawn_local(async move {
        if let Err(why) = change(namespace, name, body).await {
            failed.set(Some(why));
        }
        pending.set(false);
    });
}

/// How long an extension the page offers, shortest first.
const EXTENSIONS: [&str; 4] = ["1h", "2h", "4h", "8h"];

/// The cluster's end: from 30 minutes before it, a banner that counts down (and says when it has
/// passed); for those who may change the cluster, an extension within its template's maximum
/// lifetime (the server says how far that is when asked for more).
#[component]
fn Expiry(
    detail: RwSignal<ClusterDetail>,
    now: RwSignal<i64>,
    namespace: String,
    name: String,
    may_change: bool,
) -> impl IntoView {
    let failed = RwSignal::new(None::<String>);
    let pending = RwSignal::new(false);
    let by = RwSignal::new(EXTENSIONS[0].to_owned());
    let banner = move || {
        let (expires_at, protected, suspend) =
            detail.with(|d| (d.expires_at, d.protected, d.suspend_at_expiry));
        let left = expires_at? - now.get();
        if protected || left > 30 * 60 {
            return None;
        }
        let then = if suspend { "suspended" } else { "torn down" };
        let text = if left > 0 {
            format!(
                "This cluster's lifetime ends in {}: raydar will then have it {then}.",
                format_age(left)
            )
        } else {
            format!("This cluster's lifetime has ended: raydar has it {then}.")
        };
        Some(view! { <p class="idle-flag" role="alert" data-expiry-warning=left.max(0)>{text}</p> })
    };
    let extend = move |_| {
        if pending.get_untracked() {
            return;
        }
        let body = serde_json::json!({ "extend": by.get_untracked() }).to_string();
        send_change(namespace.clone(), name.clone(), body, pending, failed);
    };
    let options = EXTENSIONS.map(|e| view! { <option value=e>{e}</option> });
    let extendable = move || may_change && detail.with(|d| d.expires_at.is_some() && !d.protected);
    view! {
        {banner}
        <Show when=extendable>
            <div class="extend">
                <label>"Extend by " <select on:change=move |e| by.set(event_target_value(&e))>{options.clone()}</select></label>
                " " <button type="button" on:click=extend.clone() disabled=move || pending.get()>"Extend"</button>
                {move || failed.get().map(|why| view! { <span class="error" role="alert">{why}</span> })}
            </div>
        </Show>
    }
}

/// The worker groups, each with its scale control.
#[component]
fn Groups(
    detail: RwSignal<ClusterDetail>,
    namespace: String,
    name: String,
    may_change: bool,
) -> impl IntoView {
    view! {
        <h2>"Worker groups"</h2>
        <table class="groups">
            <thead>
                <tr>
                    <th scope="col">"Group"</th>
                    <th scope="col" class="num">"Replicas"</th>
                    <th scope="col" class="num">"Bounds"</th>
                    <th scope="col" class="num">"GPUs per worker"</th>
                    <th scope="col">"Scale"</th>
                </tr>
            </thead>
            <tbody>
                <For
                    each=move || detail.with(|d| d.groups.clone())
                    key=|g| (g.name.clone(), g.replicas, g.min_replicas, g.max_replicas)
                    let:group
                >
                    <GroupRow group namespace=namespace.clone() name=name.clone() may_change/>
                </For>
            </tbody>
        </table>
    }
}

/// One worker group and its scale control, held to the group's bounds before anything is sent.
#[component]
fn GroupRow(
    group: WorkerGroupSummary,
    namespace: String,
    name: String,
    may_change: bool,
) -> impl IntoView {
    let WorkerGroupSummary {
        name: group_name,
        replicas,
        min_replicas: min,
        max_replicas: max,
        gpus_per_worker,
    } = group;
    let wanted = RwSignal::new(replicas.to_string());
    // Alike the suspend button's handler, on purpose: folding both into one shared helper moved
    // 12 KB (br) of this lazy page into the first-load wasm (measured), so they stay apart.
    let failed = RwSignal::new(None::<String>);
    let pending = RwSignal::new(false);
    let label = format!("Replicas of group {group_name}");
    let submit = {
        let group_name = group_name.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            if pending.get_untracked() {
                return;
            }
            let replicas = match wanted.get_untracked().trim().parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    failed.set(Some(format!("must be a whole number from {min} to {max}")));
                    return;
                }
            };
            let body =
                serde_json::json!({ "scale": { "group": group_name, "replicas": replicas } })
                    .to_string();
            send_change(namespace.clone(), name.clone(), body, pending, failed);
        }
    };
    view! {
        <tr data-group=group_name.clone()>
            <th scope="row">{group_name.clone()}</th>
            <td class="num replicas">{replicas}</td>
            <td class="num">{min} "–" {max}</td>
            <td class="num">{gpus_per_worker}</td>
            <td>
                {may_change.then(|| view! {
                    <form class="scale" on:submit=submit novalidate>
                        <input type="text" inputmode="numeric" aria-label=label size="4"
                            prop:value=move || wanted.get() on:input=move |ev| wanted.set(event_target_value(&ev))/>
                        <button type="submit" disabled=move || pending.get()>"Scale"</button>
                        {move || failed.get().map(|why| view! { <span class="error" role="alert">{why}</span> })}
                    </form>
                })}
            </td>
        </tr>
    }
}

/// A label's value, or a dash when the cluster has none.
fn or_dash(value: String) -> String {
    if value.is_empty() {
        "—".into()
    } else {
        value
    }
}
