//! GPUs: a cluster's GPU section (charts over a chosen window, each GPU now, Ray's own view) and
//! the fleet page (requested, held, busy and idle GPUs by team and cluster).
//!
//! Both are pushed by the server after every scrape that changed them (and the fleet after a
//! cluster change): GPU numbers change inside the GPUs, which tell nobody, so the server scrapes
//! them on its own clock and the browser makes no requests of its own. Charts are SVG images
//! drawn by the server; their URL carries the scrape's time, so a pushed scrape redraws them and
//! an unchanged one costs nothing. Each chart comes in the page's light and dark colours; the
//! browser picks with `prefers-color-scheme`.

use leptos::prelude::*;
use leptos_router::{lazy_route, LazyRoute};
use platform::status::format_age;
use platform::utilization::{
    gib, percent, watts, Chart, ClusterGpus, Fleet, GpuNow, Reclaims, Window,
};

use crate::api::read_fleet;
use crate::components::failure::{self, AppError};
use crate::components::stream::{Reconnecting, StreamState};
use platform::waiting::fleet::{TemplateStarts, WaitingGroup};

/// A cluster's GPUs, kept current by the server's pushes.
#[component]
pub fn ClusterGpuSection(namespace: String, name: String) -> impl IntoView {
    let panel = RwSignal::new(None::<ClusterGpus>);
    let stream = RwSignal::new(StreamState::Connecting);
    let window = RwSignal::new(Window::Minutes15);
    let now = RwSignal::new(0_i64);
    #[cfg(feature = "hydrate")]
    {
        let url = crate::api::push::gpus_path(&namespace, &name);
        let apply = move |fresh: ClusterGpus| {
            now.set(fresh.now);
            panel.set(Some(fresh));
        };
        crate::live::follow_json(&url, crate::api::push::GPUS, apply, stream);
        tick(now);
    }
    let now = Signal::from(now);
    let base = format!("/api/v1/clusters/{namespace}/{name}/gpus");
    let buttons = Window::ALL
        .into_iter()
        .map(|w| {
            view! {
                <button type="button" aria-pressed=move || (window.get() == w).to_string() on:click=move |_| window.set(w)>
                    {w.as_str()}
                </button>
            }
        })
        .collect_view();
    view! {
        <section class="gpus">
            <h2>"GPUs"</h2>
            <Reconnecting stream/>
            {move || match panel.get() {
                None => view! { <p class="empty">"Reading GPU metrics…"</p> }.into_any(),
                Some(p) if p.gpus.is_empty() && p.requested == 0 => {
                    view! { <p class="empty">"This cluster asks for no GPUs."</p> }.into_any()
                }
                Some(p) => view! { <GpuSummary panel=p now/> }.into_any(),
            }}
            <div class="windows" role="group" aria-label="Chart window">{buttons}</div>
            {Chart::ALL
                .into_iter()
                .map(|chart| {
                    let base = base.clone();
                    let src = move |theme: &str| {
                        let version = panel.with(|p| p.as_ref().and_then(|p| p.scraped_at).unwrap_or(0));
                        crate::api::rest::here(format!("{base}/{}.svg?window={}&theme={theme}&at={version}", chart.as_str(), window.get().as_str()))
                    };
                    let dark = src.clone();
                    view! {
                        <figure class="chart" data-chart=chart.as_str()>
                            <figcaption>{chart.title()}</figcaption>
                            <picture>
                                <source media="(prefers-color-scheme: dark)" srcset=move || dark("dark")/>
                                <img src=move || src("light") alt=chart.title() width="760" height="250"/>
                            </picture>
                        </figure>
                    }
                })
                .collect_view()}
        </section>
    }
}

/// Advances `now` (the server's clock at the last push) by a second every second, so that ages
/// shown grow between pushes: a source that is down pushes nothing new.
#[cfg(feature = "hydrate")]
fn tick(now: RwSignal<i64>) {
    crate::http::repeat(1000, || std::future::ready(()), move |()| now.update(|t| *t += 1));
}

/// When a GPU page's readings were read, as of `now`.
fn scraped(scraped_at: Option<i64>, now: Signal<i64>) -> impl IntoView {
    let text = move || {
        scraped_at.map_or_else(
            || "Not scraped yet.".to_owned(),
            |at| format!("Scraped {} ago.", format_age(now.get() - at)),
        )
    };
    view! { <span class="scraped">{text}</span> }
}

/// While the readings cannot be read at all, for how long and why: the numbers shown are the
/// last ones read.
fn stale_note(stale: Option<platform::Stale>, now: Signal<i64>) -> impl IntoView {
    stale.map(
        |s| view! { <p class="error" role="alert" data-stale>{move || s.describe(now.get())}</p> },
    )
}

/// The banner of a cluster its template's idle policy is about to reclaim (or is reclaiming).
fn reclaim_warning(r: platform::utilization::Reclaimable, now: Signal<i64>) -> impl IntoView {
    let then = if r.action == "teardown" { "torn down" } else { "suspended" };
    let rule = format!(
        "no Ray job has run and every GPU has stayed below {:.0} % for {}",
        r.gpu_below,
        format_age(now.get_untracked() - r.idle_since)
    );
    let text = move || {
        let left = r.due_at - now.get();
        if left > 0 {
            format!("Idle: {rule}. By its template's idle policy raydar will have it {then} in {} unless it is used (a Ray job keeps it).", format_age(left))
        } else {
            format!("Idle: {rule}. By its template's idle policy raydar is having it {then}.")
        }
    };
    view! { <p class="idle-flag" role="alert" data-reclaim=r.action.clone()>{text}</p> }
}

/// The numbers above the charts: held and busy GPUs, the idle flag, each GPU now, Ray's view.
#[component]
fn GpuSummary(panel: ClusterGpus, now: Signal<i64>) -> impl IntoView {
    let held = panel.gpus.len();
    let busy = panel.gpus.iter().filter(|g| g.util.is_some_and(|u| u >= panel.idle_below)).count();
    let idle = panel.idle.map(|idle| {
        format!(
            "Idle: every GPU below {:.0} % for {}, {:.1} GPU-hours held idle.",
            panel.idle_below,
            format_age(panel.now - idle.since),
            idle.gpu_hours
        )
    });
    let with_node =
        panel.gpus.iter().map(|g| &g.node).collect::<std::collections::BTreeSet<_>>().len() > 1;
    let rows = panel.gpus.iter().map(|g| gpu_row(g, with_node)).collect_view();
    let ray = match (panel.ray, panel.ray_error) {
        (Some(r), _) => format!(
            "Ray sees {} node{}, CPU {}, memory {} of {}{}.",
            r.nodes,
            if r.nodes == 1 { "" } else { "s" },
            percent(r.cpu_util),
            gib(r.mem_used_bytes.map(|b| b / 1048576.0)),
            gib(r.mem_total_bytes.map(|b| b / 1048576.0)),
            match r.gpus {
                Some(n) if n > 0.0 => format!(
                    ", {n:.0} GPUs at {}, {} of GPU memory",
                    percent(r.gpu_util),
                    gib(r.gram_used_mib)
                ),
                _ => ", no GPUs".to_owned(),
            }
        ),
        (None, Some(why)) => format!("Ray's metrics: {why}"),
        (None, None) => String::new(),
    };
    let errors = panel.errors.join("; ");
    view! {
        <p class="gpu-summary" data-held=held data-busy=busy data-idle=idle.is_some().to_string()>
            {format!("{held} of {} requested GPUs held, {busy} busy, average {}. ", panel.requested, percent(panel.avg_util))}
            {scraped(panel.scraped_at, now)}
        </p>
        {stale_note(panel.stale, now)}
        {idle.map(|text| view! { <p class="idle-flag" role="status">{text}</p> })}
        {panel.reclaim.map(|r| reclaim_warning(r, now))}
        {(!errors.is_empty()).then(|| view! { <p class="error">"Not scraped: " {errors}</p> })}
        <table class="gpu-table" hidden=held == 0>
            <thead><tr>
                <th scope="col">"GPU"</th><th scope="col">"Model"</th><th scope="col">"Pod"</th>
                <th scope="col" class="num">"Utilization"</th><th scope="col" class="num">"Memory"</th>
                <th scope="col" class="num">"Power"</th><th scope="col" class="num">"Temperature"</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
        <p class="ray-usage">{ray}</p>
    }
}

fn gpu_row(gpu: &GpuNow, with_node: bool) -> impl IntoView {
    // The macro moves children before it reads attributes: clone what both use first.
    let label = gpu.label(with_node);
    let shown = label.clone();
    let memory = format!("{} / {}", gib(gpu.mem_used_mib), gib(gpu.mem_total_mib));
    let temp = gpu.temp_c.map_or_else(|| "–".to_owned(), |t| format!("{t:.0} °C"));
    view! {
        <tr data-gpu=label data-util=gpu.util.map(|u| u.to_string()).unwrap_or_default()>
            <th scope="row">{shown}</th>
            <td>{gpu.model.clone()}</td>
            <td class="mono">{gpu.pod.clone()}</td>
            <td class="num">{percent(gpu.util)}</td>
            <td class="num">{memory}</td>
            <td class="num">{watts(gpu.power_w)}</td>
            <td class="num">{temp}</td>
        </tr>
    }
}

/// `/gpus`: the fleet.
pub struct FleetPage;

#[lazy_route]
impl LazyRoute for FleetPage {
    fn data() -> Self {
        FleetPage
    }

    fn view(this: Self) -> AnyView {
        let _ = this;
        let first = Resource::new(|| (), |_| read_fleet());
        view! {
            <section class="fleet">
                <h1>"GPUs"</h1>
                <Suspense fallback=|| view! { <p class="empty">"Loading the fleet…"</p> }>
                    <ErrorBoundary fallback=failure::notice>
                        {move || Suspend::new(async move {
                            first.await.map_err(AppError::load("the fleet")).map(|fleet| view! { <FleetView fleet/> })
                        })}
                    </ErrorBoundary>
                </Suspense>
            </section>
        }
        .into_any()
    }
}

#[component]
fn FleetView(fleet: Fleet) -> impl IntoView {
    let now = RwSignal::new(fleet.now);
    let fleet = RwSignal::new(fleet);
    let stream = RwSignal::new(StreamState::Connecting);
    #[cfg(feature = "hydrate")]
    {
        tick(now);
        let apply = move |fresh: Fleet| {
            now.set(fresh.now);
            fleet.set(fresh);
        };
        crate::live::follow_json(
            crate::api::push::FLEET_PATH,
            crate::api::push::FLEET,
            apply,
            stream,
        );
    }
    view! {
        <Reconnecting stream/>
        {move || fleet.with(|f| fleet_tables(f, now.into()))}
        <FleetStarts now=now.into()/>
    }
}

/// How often the fleet's starts are read again.
#[cfg(feature = "hydrate")]
const STARTS_EVERY_MS: i32 = 5_000;

/// The clusters waiting to start, grouped by what holds them, and time to Ready per template
/// (`/api/v1/starts`, read again every few seconds).
#[component]
fn FleetStarts(now: Signal<i64>) -> impl IntoView {
    let groups = RwSignal::new(None::<Vec<WaitingGroup>>);
    let templates = RwSignal::new(Vec::<TemplateStarts>::new());
    let error = RwSignal::new(None::<String>);
    #[cfg(feature = "hydrate")]
    crate::http::repeat(
        STARTS_EVERY_MS,
        || crate::http::send("GET", "/api/v1/starts", None),
        move |answer| match answer {
            Ok(answer) if answer.ok() => {
                let read = |field: &str| answer.body[field].clone();
                groups.set(serde_json::from_value(read("waiting")).ok());
                templates.set(serde_json::from_value(read("templates")).unwrap_or_default());
                error.set(answer.body["historyError"].as_str().map(str::to_owned));
            }
            Ok(answer) => error.set(Some(answer.message())),
            Err(why) => error.set(Some(why)),
        },
    );
    let waiting = move || {
        match groups.get() {
        None => view! { <p class="empty">"Reading the clusters that wait…"</p> }.into_any(),
        Some(groups) if groups.is_empty() => {
            view! { <p class="empty">"Every cluster has started."</p> }.into_any()
        }
        Some(groups) => groups
            .into_iter()
            .map(|g| {
                let count = g.clusters.len();
                let rows = g
                    .clusters
                    .into_iter()
                    .map(|c| {
                        let href = crate::api::rest::here(crate::api::rest::page(&c.namespace, &c.name));
                        let since = c.since;
                        view! {
                            <tr data-cluster=format!("{}/{}", c.namespace, c.name)>
                                <th scope="row"><a href=href>{c.namespace.clone()} " / " {c.name.clone()}</a></th>
                                <td>{c.template}</td>
                                <td>{c.owner}</td>
                                <td>{c.stage}</td>
                                <td class="num">{move || format_age(now.get() - since)}</td>
                                <td>{c.message}</td>
                            </tr>
                        }
                    })
                    .collect_view();
                view! {
                    <h3 data-reason=g.kind.clone()>{g.label} " (" {count} ")"</h3>
                    <table class="starts-waiting" data-reason=g.kind>
                        <thead><tr>
                            <th scope="col">"Cluster"</th><th scope="col">"Template"</th><th scope="col">"Owner"</th>
                            <th scope="col">"Stage"</th><th scope="col" class="num">"Waiting"</th><th scope="col">"Why"</th>
                        </tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                }
            })
            .collect_view()
            .into_any(),
    }
    };
    let ready_rows = move || {
        templates
            .get()
            .into_iter()
            .map(|t| {
                let name = t.template.clone();
                view! {
                    <tr data-template=name>
                        <th scope="row">{t.template}</th>
                        <td class="num">{t.clusters}</td>
                        <td class="num">{format!("{:.1} s", t.p50_s)}</td>
                        <td class="num">{format!("{:.1} s", t.p95_s)}</td>
                    </tr>
                }
            })
            .collect_view()
    };
    view! {
        <section class="starts">
            <h2>"Waiting to start"</h2>
            {move || error.get().map(|e| view! { <p class="error">{e}</p> })}
            {waiting}
            <h2>"Time to Ready by template (7 days)"</h2>
            {move || templates.with(Vec::is_empty).then(|| view! {
                <p class="empty">"No cluster launched from a template has become Ready in the last 7 days."</p>
            })}
            <table class="starts-templates" hidden=move || templates.with(Vec::is_empty)>
                <thead><tr>
                    <th scope="col">"Template"</th><th scope="col" class="num">"Clusters"</th>
                    <th scope="col" class="num">"p50"</th><th scope="col" class="num">"p95"</th>
                </tr></thead>
                <tbody>{ready_rows}</tbody>
            </table>
        </section>
    }
}

fn fleet_tables(f: &Fleet, now: Signal<i64>) -> impl IntoView {
    let rule = format!(
        "{} GPUs reported: {} held by Ray clusters, {} by other pods, {} free. A cluster is idle when all its GPUs stay below {:.0} % for {}.",
        f.total,
        f.total - f.free - f.other,
        f.other,
        f.free,
        f.idle_below,
        format_age(f.idle_after_s as i64)
    );
    let errors = f.errors.join("; ");
    let teams = f
        .teams
        .iter()
        .map(|t| {
            let name = if t.team.is_empty() { "(no team)".to_owned() } else { t.team.clone() };
            view! {
                <tr data-team=t.team.clone()>
                    <th scope="row">{name}</th>
                    <td class="num">{t.clusters}</td>
                    <td class="num">{t.requested}</td>
                    <td class="num">{t.held}</td>
                    <td class="num">{t.busy}</td>
                    <td class="num">{t.idle_clusters}</td>
                    <td class="num">{format!("{:.1}", t.idle_gpu_hours)}</td>
                </tr>
            }
        })
        .collect_view();
    let clusters = f
        .clusters
        .iter()
        .map(|c| {
            let href = crate::api::rest::here(crate::api::rest::page(&c.namespace, &c.name));
            let idle = c.idle.map(|i| format!("idle {}, {:.1} GPU-h", format_age(f.now - i.since), i.gpu_hours));
            view! {
                <tr data-cluster=format!("{}/{}", c.namespace, c.name) data-idle=c.idle.is_some().to_string() class:idle=c.idle.is_some()>
                    <th scope="row"><a href=href>{c.namespace.clone()} " / " {c.name.clone()}</a></th>
                    <td>{c.team.clone()}</td>
                    <td>{c.owner.clone()}</td>
                    <td class="num">{c.requested}</td>
                    <td class="num">{c.held}</td>
                    <td class="num">{c.busy}</td>
                    <td class="num">{percent(c.avg_util)}</td>
                    <td class="idle-cell">{idle.unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        {per_context(f)}
        <p class="fleet-rule">{rule} " " {scraped(f.scraped_at, now)}</p>
        {stale_note(f.stale.clone(), now)}
        {(!errors.is_empty()).then(|| view! { <p class="error">"Not scraped: " {errors}</p> })}
        <h2>"By team"</h2>
        <table class="fleet-teams">
            <thead><tr>
                <th scope="col">"Team"</th><th scope="col" class="num">"Clusters"</th><th scope="col" class="num">"Requested"</th>
                <th scope="col" class="num">"Held"</th><th scope="col" class="num">"Busy"</th>
                <th scope="col" class="num">"Idle clusters"</th><th scope="col" class="num">"Idle GPU-hours"</th>
            </tr></thead>
            <tbody>{teams}</tbody>
        </table>
        <h2>"By cluster"</h2>
        <table class="fleet-clusters">
            <thead><tr>
                <th scope="col">"Cluster"</th><th scope="col">"Team"</th><th scope="col">"Owner"</th>
                <th scope="col" class="num">"Requested"</th><th scope="col" class="num">"Held"</th>
                <th scope="col" class="num">"Busy"</th><th scope="col" class="num">"Utilization"</th><th scope="col">"Idle"</th>
            </tr></thead>
            <tbody>{clusters}</tbody>
        </table>
        {reclaims(&f.reclaims, now)}
    }
}

/// With several Kubernetes clusters served, each one's GPUs added up (links to its own fleet
/// page), then which one the rest of the page is about.
fn per_context(f: &Fleet) -> Option<impl IntoView> {
    if f.contexts.is_empty() {
        return None;
    }
    let rows = f
        .contexts
        .iter()
        .map(|c| {
            let current = c.name == f.context;
            let href = format!("/gpus?context={}", c.name);
            let readings = match &c.stale {
                Some(stale) => stale.describe(f.now),
                None if !c.errors.is_empty() => format!("Not scraped: {}", c.errors.join("; ")),
                None => c.scraped_at.map_or_else(
                    || "Not scraped yet.".to_owned(),
                    |at| format!("Scraped {} ago.", format_age(f.now - at)),
                ),
            };
            view! {
                <tr data-context=c.name.clone() data-stale=c.stale.is_some().to_string() class:current=current>
                    <th scope="row"><a href=href aria-current=current.then_some("page")>{c.name.clone()}</a></th>
                    <td class="num">{c.total}</td>
                    <td class="num">{c.ray()}</td>
                    <td class="num">{c.other}</td>
                    <td class="num">{c.free}</td>
                    <td class="num">{c.clusters}</td>
                    <td class="num">{c.requested}</td>
                    <td class="num">{c.held}</td>
                    <td class="num">{c.busy}</td>
                    <td class="num">{c.idle_clusters}</td>
                    <td>{readings}</td>
                </tr>
            }
        })
        .collect_view();
    Some(view! {
        <h2>"By Kubernetes cluster"</h2>
        <table class="fleet-contexts">
            <thead><tr>
                <th scope="col">"Kubernetes cluster"</th><th scope="col" class="num">"GPUs"</th>
                <th scope="col" class="num">"Held by Ray"</th><th scope="col" class="num">"Other pods"</th>
                <th scope="col" class="num">"Free"</th><th scope="col" class="num">"Clusters"</th>
                <th scope="col" class="num">"Requested"</th><th scope="col" class="num">"Held"</th>
                <th scope="col" class="num">"Busy"</th><th scope="col" class="num">"Idle clusters"</th>
                <th scope="col">"Readings"</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
        <p class="fleet-context">"Below: Kubernetes cluster " <strong>{f.context.clone()}</strong>
            ". GPUs, held by Ray and free count every GPU there; clusters, requested, held and busy, the Ray clusters you may see."</p>
    })
}

/// Idle reclaim: what raydar does with clusters idle by their template's policy, and each one
/// idle long enough to be warned or reclaimed.
fn reclaims(r: &Reclaims, now: Signal<i64>) -> impl IntoView {
    let saved: f64 = r.clusters.iter().map(|c| c.gpu_hours_saved).sum();
    let mode = match r.mode.as_str() {
        "on" => format!(
            "Clusters whose template has an idle policy are warned, then suspended or torn down, once no Ray job runs and every GPU stays below the policy's utilization for its window. {} reclaimed since raydar started.",
            r.reclaimed
        ),
        "dry-run" => format!(
            "Dry run: raydar shows what its templates' idle policies would reclaim and acts on none. Reclaiming those past their window would have saved {saved:.2} GPU-hours so far."
        ),
        _ => "Off: templates' idle policies are not applied.".to_owned(),
    };
    let rows = r
        .clusters
        .iter()
        .map(|c| {
            let href = crate::api::rest::here(crate::api::rest::page(&c.namespace, &c.name));
            let window = platform::template::format_duration(std::time::Duration::from_secs(c.after_s.max(0) as u64));
            let policy = format!("below {:.0} % for {window}, then {}", c.gpu_below, c.action);
            let (since, due_at) = (c.idle_since, c.due_at);
            let due = move || {
                let left = due_at - now.get();
                if left > 0 { format!("in {}", format_age(left)) } else { format!("{} ago", format_age(-left)) }
            };
            view! {
                <tr data-reclaim=format!("{}/{}", c.namespace, c.name) data-action=c.action.clone()>
                    <th scope="row"><a href=href>{c.namespace.clone()} " / " {c.name.clone()}</a></th>
                    <td>{c.team.clone()}</td>
                    <td>{c.owner.clone()}</td>
                    <td class="num">{c.gpus}</td>
                    <td>{move || format_age(now.get() - since)}</td>
                    <td>{policy}</td>
                    <td>{due}</td>
                    <td class="num">{format!("{:.2}", c.gpu_hours_saved)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <h2>"Idle reclaim"</h2>
        <p class="reclaim-mode" data-mode=r.mode.clone()>{mode}</p>
        {(!r.clusters.is_empty()).then(|| view! {
            <table class="fleet-reclaims">
                <thead><tr>
                    <th scope="col">"Cluster"</th><th scope="col">"Team"</th><th scope="col">"Owner"</th>
                    <th scope="col" class="num">"GPUs"</th><th scope="col">"Idle for"</th><th scope="col">"Policy"</th>
                    <th scope="col">"Reclaim due"</th><th scope="col" class="num">"GPU-hours saved"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        })}
    }
}
