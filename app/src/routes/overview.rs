//! The lower half of a cluster's page: its pods, Ray's nodes and jobs, the RayCluster's conditions
//! and recent events, pushed by the server (`/api/v1/clusters/{namespace}/{name}/overview/events`)
//! whenever they change: pods and conditions as Kubernetes' watches see them, Ray's view and the
//! events as the server reads them (once per cluster, however many pages follow it; see the
//! server's `overview` module). The browser makes no requests of its own while the page is open;
//! only its clock ticks, for the ages. Ray's part is shown apart from the rest: an unreachable
//! dashboard says so there and hides nothing else.

use leptos::prelude::*;
use platform::overview::{ClusterOverview, EventRow, PodRow, RayJob, RayNode, RayView};
use platform::status::format_age;
use platform::waiting::Waiting;
use platform::ClusterCondition;

use crate::api::rest::here;
use crate::components::stream::{Reconnecting, StreamState};

/// One page's follow of a cluster's overview: the server's pushes, and its clock advanced by the
/// browser's between them. One stream, however many parts of the page show it.
#[derive(Clone, Copy)]
pub struct Feed {
    overview: RwSignal<Option<ClusterOverview>>,
    stream: RwSignal<StreamState>,
    now: RwSignal<i64>,
}

/// Follows the overview of `namespace/name` for as long as the calling component lives.
pub fn follow(namespace: &str, name: &str) -> Feed {
    let feed = Feed {
        overview: RwSignal::new(None),
        stream: RwSignal::new(StreamState::Connecting),
        now: RwSignal::new(0),
    };
    #[cfg(feature = "hydrate")]
    {
        let url = crate::api::push::overview_path(namespace, name);
        let apply = move |fresh: ClusterOverview| {
            feed.now.set(fresh.now);
            feed.overview.set(Some(fresh));
        };
        crate::live::follow_json(&url, crate::api::push::OVERVIEW, apply, feed.stream);
        crate::http::repeat(
            1000,
            || std::future::ready(()),
            move |()| feed.now.update(|t| *t += 1),
        );
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (namespace, name);
    feed
}

/// The cluster's start, near the top of its page: the stages and what holds it.
#[component]
pub fn StartingSection(feed: Feed) -> impl IntoView {
    let now = Signal::from(feed.now);
    move || {
        let waiting = feed.overview.with(|o| o.as_ref().and_then(|o| o.waiting.clone()));
        waiting.map(|waiting| view! { <Starting waiting now/> })
    }
}

/// Pods, Ray, conditions and events of `namespace/name`, kept current by the server's pushes.
#[component]
pub fn Overview(feed: Feed, namespace: String, name: String) -> impl IntoView {
    let (ns, cluster) = (StoredValue::new(namespace), StoredValue::new(name));
    let now = Signal::from(feed.now);
    let stream = feed.stream;
    view! {
        <Reconnecting stream/>
        {move || match feed.overview.get() {
            None => view! { <p class="empty">"Loading pods, Ray and events…"</p> }.into_any(),
            Some(o) => view! {
                {o.stale.map(|s| view! { <p class="error" role="alert" data-stale>{move || s.describe(now.get())}</p> })}
                <Pods pods=o.pods now namespace=ns.get_value() name=cluster.get_value()/>
                <Ray ray=o.ray now namespace=ns.get_value() name=cluster.get_value()/>
                <Conditions conditions=o.conditions/>
                <Events events=o.events now/>
            }.into_any(),
        }}
    }
}

#[component]
fn Pods(pods: Vec<PodRow>, now: Signal<i64>, namespace: String, name: String) -> impl IntoView {
    let empty = pods.is_empty();
    let rows = pods
        .into_iter()
        .map(|pod| {
            // The live viewer, and the whole log so far as a file.
            let viewer = here(format!("/clusters/{namespace}/{name}/pods/{}", pod.name));
            let logs = here(format!("/api/v1/clusters/{namespace}/{name}/pods/{}/logs", pod.name));
            let role = if pod.role == "head" { "head".to_owned() } else { format!("worker · {}", pod.group) };
            view! {
                <tr data-pod=pod.name.clone() data-phase=pod.phase.clone()>
                    <th scope="row">{pod.name.clone()}</th>
                    <td>{role}</td>
                    <td class=format!("pod-{}", pod.phase.to_ascii_lowercase())>{pod.phase.clone()}{(!pod.ready).then_some(" (not ready)")}</td>
                    <td>{pod.node.unwrap_or_else(|| "—".into())}</td>
                    <td class="mono">{pod.ip.unwrap_or_else(|| "—".into())}</td>
                    <td class="num">{pod.restarts}</td>
                    <td class="num">{move || format_age(now.get() - pod.created)}</td>
                    <td><a href=viewer>"Follow"</a> " · " <a href=logs download>"Download"</a></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <h2>"Pods"</h2>
        {empty.then(|| view! { <p class="empty">"No pods: KubeRay has not created them, or the cluster is suspended."</p> })}
        <table class="pods" hidden=empty>
            <thead><tr>
                <th scope="col">"Pod"</th><th scope="col">"Role"</th><th scope="col">"Phase"</th>
                <th scope="col">"Node"</th><th scope="col">"IP"</th><th scope="col" class="num">"Restarts"</th>
                <th scope="col" class="num">"Age"</th><th scope="col">"Logs"</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

#[component]
fn Ray(ray: RayView, now: Signal<i64>, namespace: String, name: String) -> impl IntoView {
    let RayView { checked, error, nodes, jobs } = ray;
    let state = match (&error, checked) {
        (Some(_), _) => "unreachable",
        (None, Some(_)) => "ok",
        (None, None) => "waiting",
    };
    let notice = match (error, checked) {
        (Some(error), Some(at)) => Some(format!(
            "Ray's dashboard is not answering: {error}. Shown: its answer of {} ago.",
            format_age(now.get_untracked() - at)
        )),
        (Some(error), None) => Some(format!("Ray's dashboard is not answering: {error}")),
        (None, None) => Some("Asking Ray…".to_owned()),
        (None, Some(_)) => None,
    };
    let node_rows = nodes.into_iter().map(node_row).collect_view();
    let no_jobs = jobs.is_empty();
    let job_rows = jobs.into_iter().map(|job| job_row(job, now, &namespace, &name)).collect_view();
    view! {
        <section class="ray" data-ray=state>
            <h2>"Ray"</h2>
            {notice.map(|n| view! { <p class=if state == "unreachable" { "error" } else { "empty" } role="status">{n}</p> })}
            <h3>"Nodes"</h3>
            <table class="ray-nodes">
                <thead><tr>
                    <th scope="col">"Node IP"</th><th scope="col">"Role"</th><th scope="col">"State"</th>
                    <th scope="col" class="num">"CPUs"</th><th scope="col" class="num">"CPU use"</th>
                    <th scope="col" class="num">"GPUs"</th><th scope="col" class="num">"Memory"</th>
                </tr></thead>
                <tbody>{node_rows}</tbody>
            </table>
            <h3>"Jobs"</h3>
            {(no_jobs && state == "ok").then(|| view! { <p class="empty">"No jobs yet. Submit one below."</p> })}
            <table class="ray-jobs" hidden=no_jobs>
                <thead><tr>
                    <th scope="col">"Job"</th><th scope="col">"Status"</th><th scope="col">"Entrypoint"</th>
                    <th scope="col" class="num">"Started"</th><th scope="col" class="num">"Duration"</th>
                    <th scope="col">"Log"</th>
                </tr></thead>
                <tbody>{job_rows}</tbody>
            </table>
        </section>
    }
}

fn node_row(node: RayNode) -> impl IntoView {
    let gib = |bytes: u64| bytes as f64 / (1u64 << 30) as f64;
    // The macro moves children before it reads attributes: clone what both use first.
    let ip = node.ip.clone();
    view! {
        <tr data-node=ip>
            <th scope="row" class="mono">{node.ip}</th>
            <td>{if node.head { "head" } else { "worker" }}</td>
            <td>{node.state}</td>
            <td class="num">{node.cpus}</td>
            <td class="num">{format!("{:.0}%", node.cpu_percent)}</td>
            <td class="num">{node.gpus}</td>
            <td class="num">{format!("{:.1} / {:.1} GiB", gib(node.memory_used), gib(node.memory_total))}</td>
        </tr>
    }
}

fn job_row(job: RayJob, now: Signal<i64>, namespace: &str, name: &str) -> impl IntoView {
    let viewer = here(format!("/clusters/{namespace}/{name}/jobs/{}", job.id));
    let href = here(format!("/api/v1/clusters/{namespace}/{name}/jobs/{}/logs", job.id));
    let start_time = job.start_time;
    let started = move || {
        start_time.map_or_else(
            || "—".to_owned(),
            |ms| format!("{} ago", format_age(now.get() - ms / 1000)),
        )
    };
    let running = job.clone();
    let duration = move || {
        running
            .duration_ms(now.get() * 1000)
            .map_or_else(|| "—".to_owned(), |ms| format_age(ms / 1000))
    };
    let (id, status) = (job.id.clone(), job.status.clone());
    let class = format!("job-{}", job.status.to_ascii_lowercase());
    view! {
        <tr data-job=id data-status=status>
            <th scope="row">{job.id.clone()}</th>
            <td class=class title=job.message.unwrap_or_default()>{job.status}</td>
            <td class="mono entrypoint" title=job.entrypoint.clone()>{job.entrypoint.clone()}</td>
            <td class="num">{started}</td>
            <td class="num">{duration}</td>
            <td><a href=viewer>"Follow"</a> " · " <a href=href download>"Download"</a></td>
        </tr>
    }
}

/// The cluster's start, stage by stage: how long each took, the one it is in counting up, and
/// what holds it in words (with a crash-looping container's last lines).
#[component]
fn Starting(waiting: Waiting, now: Signal<i64>) -> impl IntoView {
    let heading = match (&waiting.current, waiting.time_to_ready_s) {
        (None, Some(took)) => format!("Started: Ready in {}", format_age(took)),
        (None, None) => "Started".to_owned(),
        (Some(_), _) => "Starting".to_owned(),
    };
    let stages = waiting
        .stages
        .into_iter()
        .map(|stage| {
            let (name, state) = (stage.name.clone(), stage.state.clone());
            let took = match (stage.state.as_str(), stage.took_s, stage.started_at) {
                ("now", _, Some(began)) => {
                    let progress = stage.progress.clone();
                    let counting = move || {
                        let waited = format!("waiting {}", format_age(now.get() - began));
                        if progress.is_empty() { waited } else { format!("{progress}, {waited}") }
                    };
                    view! { <span class="took">{counting}</span> }.into_any()
                }
                ("done", Some(took), _) if stage.name != "created" => {
                    view! { <span class="took">{format_age(took)}</span> }.into_any()
                }
                _ => ().into_any(),
            };
            view! { <li data-stage=name data-state=state><span class="label">{stage.label}</span>{took}</li> }
        })
        .collect_view();
    let reason = waiting.reason.map(|r| {
        let lines = (!r.last_lines.is_empty())
            .then(|| view! { <pre class="last-lines">{r.last_lines}</pre> });
        view! {
            <div class="waiting-reason" role="status" data-kind=r.kind>
                <p>{r.message}</p>
                {lines}
            </div>
        }
    });
    let current = waiting.current.unwrap_or_default();
    view! {
        <section class="starting" data-current=current>
            <h2>{heading}</h2>
            <ol class="stages">{stages}</ol>
            {reason}
        </section>
    }
}

#[component]
fn Conditions(conditions: Vec<ClusterCondition>) -> impl IntoView {
    let rows = conditions
        .into_iter()
        .map(|c| {
            let (type_, status) = (c.type_.clone(), c.status.clone());
            view! {
            <tr data-condition=type_ data-status=status>
                <th scope="row">{c.type_}</th>
                <td>{c.status}</td>
                <td>{c.reason.unwrap_or_default()}</td>
                <td>{c.message.unwrap_or_default()}</td>
                <td class="mono">{c.last_transition_time.unwrap_or_default()}</td>
            </tr>
            }
        })
        .collect_view();
    view! {
        <h2>"Conditions"</h2>
        <table class="conditions">
            <thead><tr>
                <th scope="col">"Condition"</th><th scope="col">"Status"</th><th scope="col">"Reason"</th>
                <th scope="col">"Message"</th><th scope="col">"Since"</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

#[component]
fn Events(events: Vec<EventRow>, now: Signal<i64>) -> impl IntoView {
    let empty = events.is_empty();
    let rows = events
        .into_iter()
        .map(|e| {
            let (class, reason) =
                (format!("event-{}", e.kind.to_ascii_lowercase()), e.reason.clone());
            view! {
            <tr class=class data-reason=reason>
                <td>{e.kind}</td>
                <th scope="row">{e.reason}</th>
                <td class="mono">{e.object}</td>
                <td>{e.message}</td>
                <td class="num">{e.count}</td>
                <td class="num">{move || format_age(now.get() - e.last_seen)}</td>
            </tr>
            }
        })
        .collect_view();
    view! {
        <h2>"Recent events"</h2>
        {empty.then(|| view! { <p class="empty">"No recent events."</p> })}
        <table class="events" hidden=empty>
            <thead><tr>
                <th scope="col">"Type"</th><th scope="col">"Reason"</th><th scope="col">"Object"</th>
                <th scope="col">"Message"</th><th scope="col" class="num">"Count"</th><th scope="col" class="num">"Last seen"</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
