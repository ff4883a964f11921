//! History: past and present clusters (`/history`, filtered by the query: `owner`, `team`,
//! `template`, `namespace`, `outcome`, `kind`, `q`) and one cluster's post-mortem (`/history/{uid}`),
//! which works after the cluster is gone: how it was launched, its timeline, its events, its Ray
//! jobs (their archived logs open in the log viewer), its GPU-hours and utilization, its pods'
//! containers that ended (why, exit code, last lines), how it ended and who ended it, the
//! manifest. Both read raydar's history API from the browser.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use leptos_router::{lazy_route, LazyRoute};
use platform::history::{
    gpu_hours, ArchiveState, ClusterRecord, GpuSample, HistoryPage as Page, Outcome, PastCluster,
    PastJob, Termination,
};
use platform::overview::EventRow;
use platform::status::format_age;

/// `/history`.
pub struct HistoryPage;

#[lazy_route]
impl LazyRoute for HistoryPage {
    fn data() -> Self {
        HistoryPage
    }

    fn view(this: Self) -> AnyView {
        let _ = this;
        view! {
            <section class="history">
                <h1>"History"</h1>
                <Filters/>
                <HistoryList/>
            </section>
        }
        .into_any()
    }
}

/// The filters, as a plain GET form: the page's URL says what is shown, so it can be shared.
#[component]
fn Filters() -> impl IntoView {
    let query = use_query_map().get_untracked();
    let asked = move |name: &str| query.get(name).unwrap_or_default();
    let field = |name: &'static str, label: &'static str| {
        view! {
            <label>{label}<input type="search" name=name value=asked(name) autocomplete="off"/></label>
        }
    };
    let outcome = asked("outcome");
    let kind = asked("kind");
    let kinds =
        [("", "any"), ("cluster", "clusters"), ("rayjob", "RayJobs")].map(|(value, label)| {
            view! { <option value=value selected=kind == value>{label}</option> }
        });
    view! {
        <form class="history-filters" method="get" action="/history">
            <label>"Search"
                <input type="search" name="q" value=asked("q") placeholder="name, owner, team, template, pipeline, RayJob…"/>
            </label>
            <label>"Kind"<select name="kind">{kinds}</select></label>
            {field("owner", "Owner")}
            {field("team", "Team")}
            {field("template", "Template")}
            {field("namespace", "Namespace")}
            <label>"Outcome"
                <select name="outcome">
                    <option value="">"any"</option>
                    {Outcome::ALL.map(|o| {
                        let selected = o.as_str() == outcome;
                        view! { <option value=o.as_str() selected=selected>{o.as_str()}</option> }
                    }).collect_view()}
                </select>
            </label>
            <button type="submit">"Show"</button>
        </form>
    }
}

/// What a fetch of the history API came to (made in the browser only: the server renders
/// `Loading`).
#[derive(Clone)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum Loaded<T> {
    Loading,
    Failed(String),
    Done(T),
}

#[component]
fn HistoryList() -> impl IntoView {
    let page = RwSignal::new(Loaded::<Page>::Loading);
    #[cfg(feature = "hydrate")]
    {
        let query = web_sys::window().and_then(|w| w.location().search().ok()).unwrap_or_default();
        // Every Kubernetes cluster's unless the page's URL names one.
        let url = crate::api::rest::in_context(format!("/api/v1/history/clusters{query}"), "*");
        load(url, page);
    }
    view! {
        {move || match page.get() {
            Loaded::Loading => view! { <p class="empty">"Loading history…"</p> }.into_any(),
            Loaded::Failed(why) => view! { <p class="problem" role="alert">{why}</p> }.into_any(),
            Loaded::Done(p) => list(p).into_any(),
        }}
    }
}

/// Fetches `url` into `into` (browser only).
#[cfg(feature = "hydrate")]
fn load<T: serde::de::DeserializeOwned + Clone + Send + Sync + 'static>(
    url: String,
    into: RwSignal<Loaded<T>>,
) {
    leptos::task::spawn_local(async move {
        let loaded = match crate::http::send("GET", &url, None).await {
            Ok(answer) if answer.ok() => match serde_json::from_value(answer.body) {
                Ok(value) => Loaded::Done(value),
                Err(e) => Loaded::Failed(format!("raydar's answer could not be read: {e}")),
            },
            Ok(answer) => Loaded::Failed(answer.message()),
            Err(e) => Loaded::Failed(e),
        };
        into.set(loaded);
    });
}

fn list(page: Page) -> impl IntoView {
    let stale = page.stale.map(|s| {
        view! {
            <p class="stale" role="status">
                "History is not being written right now (" {s.reason} "): what is shown is what was written before."
            </p>
        }
    });
    let lost = (page.lost > 0).then(|| {
        view! {
            <p class="stale" role="status">
                {format!("{} records were lost while the history database was away longer than raydar's buffer held.", page.lost)}
            </p>
        }
    });
    let query = use_query_map().get_untracked();
    let next = page.next.map(|after| {
        let mut pairs: Vec<String> =
            ["q", "owner", "team", "template", "namespace", "outcome", "kind"]
                .into_iter()
                .filter_map(|name| query.get(name).filter(|v| !v.is_empty()).map(|v| (name, v)))
                .map(|(name, value)| format!("{name}={}", encode(&value)))
                .collect();
        pairs.push(format!("after={}", encode(&after)));
        let href = format!("/history?{}", pairs.join("&"));
        view! { <a class="next" href=href>"Older →"</a> }
    });
    let rows = if page.items.is_empty() {
        view! { <p class="empty">"No cluster you may see matches."</p> }.into_any()
    } else {
        view! {
            <table class="history-table">
                <thead><tr>
                    <th scope="col">"Cluster"</th><th scope="col">"Owner"</th>
                    <th scope="col">"Team"</th><th scope="col">"Template"</th>
                    <th scope="col">"Outcome"</th><th scope="col">"Created"</th>
                    <th scope="col" class="num">"Ready in"</th><th scope="col" class="num">"Lived"</th>
                    <th scope="col" class="num">"GPUs"</th>
                </tr></thead>
                <tbody>{page.items.into_iter().map(row).collect_view()}</tbody>
            </table>
        }
        .into_any()
    };
    view! { {stale} {lost} {rows} {next} }
}

/// `text` for a URL's query, every byte but unreserved ones percent-encoded.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn row(c: PastCluster) -> impl IntoView {
    let href = format!("/history/{}", c.uid);
    let ready =
        c.time_to_ready().map(|s| format_age(s.round() as i64)).unwrap_or_else(|| "—".into());
    let lived = c
        .deleted_at
        .map(|gone| format_age(gone / 1000 - c.created_at))
        .unwrap_or_else(|| "live".into());
    let outcome = c.outcome.as_str();
    let id = format!("{}/{}", c.namespace, c.name);
    let label = id.clone();
    view! {
        <tr data-history=id data-outcome=outcome data-rayjob=c.rayjob.clone()>
            <th scope="row">
                <a href=href>{label}</a>
                {(!c.rayjob.is_empty()).then(|| view! { <span class="rayjob">" for RayJob " {c.rayjob.clone()}</span> })}
                {(!c.context.is_empty()).then(|| view! { <span class="context">" on " {c.context.clone()}</span> })}
            </th>
            <td>{c.owner.clone()}{(!c.pipeline.is_empty()).then(|| format!(" via {}", c.pipeline))}</td>
            <td>{c.team.clone()}</td>
            <td>{c.template.clone()}</td>
            <td class=format!("outcome outcome-{outcome}") title=c.ended_why.clone()>{outcome}</td>
            <td title=utc(c.created_at * 1000)>{utc(c.created_at * 1000)}</td>
            <td class="num">{ready}</td>
            <td class="num">{lived}</td>
            <td class="num">{c.gpus}</td>
        </tr>
    }
}

/// `/history/{uid}`: one cluster's post-mortem.
pub struct PostMortemPage;

#[lazy_route]
impl LazyRoute for PostMortemPage {
    fn data() -> Self {
        PostMortemPage
    }

    fn view(this: Self) -> AnyView {
        let _ = this;
        let uid = use_params_map().get_untracked().get("uid").unwrap_or_default();
        view! { <section class="post-mortem"><PostMortem uid/></section> }.into_any()
    }
}

#[component]
fn PostMortem(uid: String) -> impl IntoView {
    let record = RwSignal::new(Loaded::<ClusterRecord>::Loading);
    #[cfg(feature = "hydrate")]
    load(format!("/api/v1/history/clusters/{uid}"), record);
    #[cfg(not(feature = "hydrate"))]
    let _ = uid;
    view! {
        {move || match record.get() {
            Loaded::Loading => view! { <h1>"Cluster history"</h1><p class="empty">"Loading…"</p> }.into_any(),
            Loaded::Failed(why) => view! {
                <h1>"Cluster history"</h1><p class="problem" role="alert">{why}</p>
            }.into_any(),
            Loaded::Done(r) => post_mortem(r).into_any(),
        }}
    }
}

fn post_mortem(r: ClusterRecord) -> impl IntoView {
    let c = r.cluster;
    let id = format!("{}/{}", c.namespace, c.name);
    let live = (c.outcome == Outcome::Live).then(|| {
        let href =
            crate::api::rest::in_context(crate::api::rest::page(&c.namespace, &c.name), &c.context);
        view! { <a class="live-link" href=href>"Open the live page"</a> }
    });
    let fact = |term: &'static str, value: String| {
        (!value.is_empty()).then(|| view! { <dt>{term}</dt><dd>{value}</dd> })
    };
    let ended = match (&c.ended_by, &c.ended_why) {
        (by, why) if by.is_empty() && why.is_empty() => String::new(),
        (by, why) if why.is_empty() => by.clone(),
        (by, why) if by.is_empty() => why.clone(),
        (by, why) => format!("{by}: {why}"),
    };
    let pipeline = match (c.pipeline.is_empty(), c.run.is_empty()) {
        (true, _) => String::new(),
        (false, true) => c.pipeline.clone(),
        (false, false) => format!("{} (run {})", c.pipeline, c.run),
    };
    let parameters = match &r.parameters {
        serde_json::Value::Object(map) if !map.is_empty() => map
            .iter()
            .map(|(k, v)| {
                format!("{k}={}", v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    };
    let manifest = serde_json::to_string_pretty(&r.manifest).unwrap_or_default();
    let outcome = c.outcome.as_str();
    view! {
        <h1>{id}</h1>
        <p class=format!("outcome outcome-{outcome}") data-outcome=outcome>{outcome} {live}</p>
        <dl class="facts">
            {fact("Kubernetes cluster", c.context.clone())}
            {fact("Owner", c.owner.clone())}
            {fact("Team", c.team.clone())}
            {fact("Template", c.template.clone())}
            {fact("RayJob", c.rayjob.clone())}
            {fact("Parameters", parameters)}
            {fact("Pipeline", pipeline)}
            {fact("Created", utc(c.created_at * 1000))}
            {fact("Ready in", c.time_to_ready().map(|s| format!("{s:.1} s")).unwrap_or_default())}
            {fact("Deleted", c.deleted_at.map(utc).unwrap_or_default())}
            {fact("Ended by", ended)}
            {fact("GPUs, most at once", c.gpus.to_string())}
            {fact("UID", c.uid.clone())}
        </dl>
        <section class="timeline">
            <h2>"Timeline"</h2>
            <ol>
                {r.phases.into_iter().map(|p| view! {
                    <li data-phase=p.phase.clone()>
                        <time>{utc(p.at)}</time> " " <strong>{p.phase.clone()}</strong>
                        {(!p.reason.is_empty()).then(|| format!(": {}", p.reason))}
                    </li>
                }).collect_view()}
            </ol>
        </section>
        <section class="events">
            <h2>"Events"</h2>
            {events_table(r.events, "No events were kept.")}
        </section>
        <section class="jobs">
            <h2>"Ray jobs"</h2>
            {if r.jobs.is_empty() {
                view! { <p class="empty">"No Ray jobs were seen on this cluster."</p> }.into_any()
            } else {
                let uid = c.uid.clone();
                view! {
                    <table class="jobs-table">
                        <thead><tr>
                            <th scope="col">"Job"</th><th scope="col">"Status"</th>
                            <th scope="col">"Entrypoint"</th><th scope="col">"Started"</th>
                            <th scope="col">"Ended"</th><th scope="col">"Log"</th>
                        </tr></thead>
                        <tbody>{r.jobs.into_iter().map(|j| job_row(&uid, j)).collect_view()}</tbody>
                    </table>
                }.into_any()
            }}
        </section>
        {gpu_section(r.gpu_use)}
        <section class="terminations">
            <h2>"Pod terminations"</h2>
            {if r.terminations.is_empty() {
                view! { <p class="empty">"No container of its pods ended while raydar watched."</p> }.into_any()
            } else {
                view! {
                    <table class="terminations-table">
                        <thead><tr>
                            <th scope="col">"Ended"</th><th scope="col">"Pod"</th>
                            <th scope="col">"Container"</th><th scope="col">"Reason"</th>
                            <th scope="col" class="num">"Exit code"</th><th scope="col" class="num">"Restarts"</th>
                        </tr></thead>
                        <tbody>{r.terminations.into_iter().map(termination_row).collect_view()}</tbody>
                    </table>
                }.into_any()
            }}
        </section>
        <details class="manifest">
            <summary>"Manifest as launched"</summary>
            <pre>{manifest}</pre>
        </details>
    }
}

/// Events as history keeps them, newest first; `none` when there are none.
fn events_table(events: Vec<EventRow>, none: &'static str) -> AnyView {
    if events.is_empty() {
        return view! { <p class="empty">{none}</p> }.into_any();
    }
    view! {
        <table class="events-table">
            <thead><tr>
                <th scope="col">"Last seen"</th><th scope="col">"Type"</th>
                <th scope="col">"Reason"</th><th scope="col">"Object"</th>
                <th scope="col">"Message"</th><th scope="col" class="num">"Count"</th>
            </tr></thead>
            <tbody>{events.into_iter().map(|e| view! {
                <tr data-reason=e.reason.clone()>
                    <td>{utc(e.last_seen * 1000)}</td>
                    <td class=format!("event-{}", e.kind.to_ascii_lowercase())>{e.kind.clone()}</td>
                    <td>{e.reason.clone()}</td>
                    <td>{e.object.clone()}</td>
                    <td>{e.message.clone()}</td>
                    <td class="num">{e.count}</td>
                </tr>
            }).collect_view()}</tbody>
        </table>
    }
    .into_any()
}

/// How long the apiserver keeps an Event (its default `--event-ttl`): older ones are history's.
const EVENT_TTL_S: i64 = 3600;

/// On a live cluster's page: its events older than an hour, which the apiserver no longer has,
/// read from history when opened.
#[component]
pub fn OlderEvents(uid: String, now: RwSignal<i64>) -> impl IntoView {
    let asked = RwSignal::new(false);
    let record = RwSignal::new(Loaded::<ClusterRecord>::Loading);
    let open = move |_| {
        if asked.get_untracked() {
            return;
        }
        asked.set(true);
        #[cfg(feature = "hydrate")]
        load(format!("/api/v1/history/clusters/{uid}"), record);
    };
    #[cfg(not(feature = "hydrate"))]
    let _ = &uid;
    view! {
        <details class="older-events" on:toggle=open>
            <summary>"Events older than an hour, from history"</summary>
            {move || asked.get().then(|| match record.get() {
                Loaded::Loading => view! { <p class="empty">"Loading…"</p> }.into_any(),
                Loaded::Failed(why) => view! { <p class="problem" role="alert">{why}</p> }.into_any(),
                Loaded::Done(r) => {
                    let cutoff = now.get_untracked() - EVENT_TTL_S;
                    let older = r.events.into_iter().filter(|e| e.last_seen < cutoff).collect();
                    events_table(older, "None: every event it had is in the last hour.")
                }
            })}
        </details>
    }
}

/// The post-mortem's GPU use: GPU-hours held, busy and idle, and utilization over the
/// cluster's life (one point a step), drawn as SVG.
fn gpu_section(samples: Vec<GpuSample>) -> AnyView {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return view! {
            <section class="gpu-use"><h2>"GPU use"</h2>
                <p class="empty">"No GPU use was recorded."</p></section>
        }
        .into_any();
    };
    let (held, busy, idle) = gpu_hours(&samples);
    let (from, to) = (first.at, last.at + i64::from(last.seconds));
    let span = (to - from).max(1) as f64;
    let x = |t: i64| (t - from) as f64 / span * 600.0;
    let points = samples
        .iter()
        .filter_map(|s| {
            let u = s.util?;
            Some(format!(
                "{:.1},{:.1}",
                x(s.at + i64::from(s.seconds) / 2),
                150.0 - u.clamp(0.0, 100.0) * 1.4
            ))
        })
        .collect::<Vec<_>>()
        .join(" ");
    // Markup made here of numbers and fixed words only, set as the figure's HTML: SVG elements
    // built one by one would each add glue to the script every first load carries.
    let chart = format!(
        r##"<svg class="gpu-chart" viewBox="0 0 600 160" width="600" role="img" style="max-width: 100%; height: auto" aria-label="Mean GPU utilization, 0 to 100 %, over the cluster's life"><line x1="0" y1="150" x2="600" y2="150" stroke="#999"/><line x1="0" y1="10" x2="600" y2="10" stroke="#ddd"/><polyline class="util" points="{points}" fill="none" stroke="currentColor" stroke-width="2"/></svg>"##
    );
    let most = samples.iter().map(|s| s.gpus).max().unwrap_or(0);
    let hours = format!("{held:.2} GPU-hours held: {busy:.2} busy, {idle:.2} idle");
    view! {
        <section class="gpu-use">
            <h2>"GPU use"</h2>
            <p class="gpu-hours">{hours}</p>
            <figure class="gpu-figure" inner_html=chart></figure>
            <p class="chart-span">
                {utc(from * 1000)} " to " {utc(to * 1000)}
                {format!(": mean utilization (0 to 100 %), at most {most} GPUs held")}
            </p>
        </section>
    }
    .into_any()
}

/// A row of the post-mortem's pod terminations; a failed container's last lines under it.
fn termination_row(t: Termination) -> impl IntoView {
    let class = if t.oom_killed() || t.failed() { "event-warning" } else { "" };
    let last = (!t.last_lines.is_empty()).then(|| {
        view! {
            <tr class="last-lines"><td colspan="6">
                <details><summary>"Its last lines"</summary><pre>{t.last_lines.clone()}</pre></details>
            </td></tr>
        }
    });
    view! {
        <tr data-pod=t.pod.clone() data-reason=t.reason.clone()>
            <td>{utc(t.finished_at * 1000)}</td>
            <td class="mono">{t.pod.clone()}</td>
            <td>{t.container.clone()}</td>
            <td class=class>{t.reason.clone()}</td>
            <td class="num">{t.exit_code}</td>
            <td class="num">{t.restarts}</td>
        </tr>
        {last}
    }
}

/// A row of the post-mortem's jobs: its status, and its archived log.
fn job_row(uid: &str, j: PastJob) -> impl IntoView {
    let log = match j.log.state {
        ArchiveState::None => view! { <span class="empty">"not archived"</span> }.into_any(),
        state => {
            let href = format!("/history/{uid}/jobs/{}", j.id);
            let lines = format!("{} lines, {}", j.log.lines, state.as_str());
            view! { <a href=href>"Log"</a> " " <span class="log-archive">{lines}</span> }.into_any()
        }
    };
    let note = (!j.log.note.is_empty()).then(|| view! { <br/><small>{j.log.note.clone()}</small> });
    view! {
        <tr data-job=j.id.clone() data-status=j.status.clone()>
            <td class="mono">{j.id.clone()}</td>
            <td>{j.status.clone()}</td>
            <td class="mono">{j.entrypoint.clone()}</td>
            <td>{j.started_at.map(utc).unwrap_or_default()}</td>
            <td>{j.ended_at.map(utc).unwrap_or_default()}</td>
            <td>{log}{note}</td>
        </tr>
    }
}

/// Unix milliseconds as `2026-12-06 22:10:05 UTC`.
pub fn utc(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_796_594_400_000), "2026-12-06 22:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }
}
