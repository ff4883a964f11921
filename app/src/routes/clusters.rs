//! The home page: the RayClusters, a page at a time, live.
//!
//! Filters, order and page live in the URL (`/?team=vision&sort=gpus`): the server renders the
//! page they ask for and pushes its changes; every link that changes them is a new page load
//! (`rel=external`), and the search box is a plain GET form, so the list needs no code of its
//! own to navigate and works before (or without) the app's code.

use std::sync::Arc;

use leptos::prelude::*;
use platform::status::format_age;
use platform::{ClusterPhase, ClusterSummary};

use crate::actions::tear_down;
use crate::api::{rest, ClusterList};
use crate::components::stream::StreamState;

/// The view's parameters, as the URL gives them.
type View = Arc<Vec<(String, String)>>;

/// The view's parameters from [`ClusterList::view`] (`key\tvalue` lines).
fn parameters(view: &str) -> Vec<(String, String)> {
    view.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Lists a page of RayClusters with their phase, workers, GPUs, owner, team, template and age;
/// rows change as the clusters do.
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

/// On the server, the page the URL asks for. In the browser this runs only when the page is
/// reached by a link from another page: it starts empty and the push stream's first page fills
/// it a moment later.
fn initial_list() -> ClusterList {
    #[cfg(feature = "ssr")]
    match crate::api::ssr::directory() {
        Ok(directory) => return directory.cluster_list(),
        Err(e) => leptos::logging::error!("{e}"),
    }
    ClusterList::default()
}

/// The page's URL with `key` set to `value` (left out when empty) and its other parameters as
/// they are, but for the cursor: another filter or order starts again at the first page.
fn link(view: &[(String, String)], key: &str, value: &str) -> String {
    let mut url = String::from("/");
    let mut add = |k: &str, v: &str| {
        url.push(if url.len() == 1 { '?' } else { '&' });
        url.push_str(k);
        url.push('=');
        for b in v.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    url.push(b as char)
                }
                _ => url.push_str(&format!("%{b:02X}")),
            }
        }
    };
    for (k, v) in view.iter().filter(|(k, _)| k != key && k != "cursor") {
        add(k, v);
    }
    if !value.is_empty() {
        add(key, value);
    }
    url
}

/// The list's links and search form as markup, made from the view's parameters: the same text on
/// the server and in the browser. Markup rather than views: every distinct view type costs the
/// first load its own rendering and hydration code (these cost about 20 KB br as views,
/// measured), markup only the code that writes it. Everything from the URL is escaped.
mod markup {
    use super::link;
    use crate::api::{ListCounts, PHASES};

    /// `text` safe in an element or a quoted attribute.
    pub fn escape(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c => out.push(c),
            }
        }
        out
    }

    /// A link to the list with `key` set to `value`; `attrs` are more attributes (` class=…`).
    fn a(view: &[(String, String)], key: &str, value: &str, attrs: &str, text: &str) -> String {
        let href = escape(&link(view, key, value));
        format!("<a rel=\"external\" href=\"{href}\"{attrs}>{text}</a>")
    }

    /// Marks the link to what is shown now.
    fn current(yes: bool) -> &'static str {
        if yes {
            " aria-current=\"true\""
        } else {
            ""
        }
    }

    /// The value of `key` in the view; empty when not set.
    pub fn param<'a>(view: &'a [(String, String)], key: &str) -> &'a str {
        view.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v)
    }

    /// The search box, the other parameters it carries, and a chip for each label filter (a
    /// link to the list without it).
    pub fn search(view: &[(String, String)]) -> String {
        let mut html = format!(
            "<input type=\"search\" name=\"q\" value=\"{}\" aria-label=\"Search clusters\" \
             placeholder=\"Namespace, name, team, owner or template\">",
            escape(param(view, "q"))
        );
        for (k, v) in view.iter().filter(|(k, _)| k != "q" && k != "cursor") {
            html += &format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", escape(v));
        }
        html += "<button type=\"submit\">Search</button>";
        for (k, v) in view {
            if ["namespace", "name", "team", "owner", "template"].contains(&k.as_str()) {
                let text = format!("{k}: {} ×", escape(v));
                html += &a(view, k, "", " class=\"chip\" title=\"Remove this filter\"", &text);
            }
        }
        html
    }

    /// A link for each phase with how many clusters are in it and one for all, then links back
    /// to the first page (past it) and on to the next (when there is one).
    pub fn phases(view: &[(String, String)], counts: &ListCounts) -> String {
        let shown = param(view, "phase");
        let all = counts.phases.iter().sum::<u64>();
        let count = |phase: &str, n: u64| format!("{phase} <span class=\"num\">{n}</span>");
        let mut html = a(view, "phase", "", current(shown.is_empty()), &count("All", all));
        for (phase, n) in PHASES.iter().zip(counts.phases) {
            html += &a(view, "phase", phase, current(shown == *phase), &count(phase, n));
        }
        if !param(view, "cursor").is_empty() {
            html += &a(view, "cursor", "", " class=\"page\"", "First page");
        }
        if let Some(next) = &counts.next {
            html += &a(view, "cursor", next, " class=\"page\"", "Next page");
        }
        html
    }

    /// When raydar serves several Kubernetes clusters ([`crate::api::ClusterList::contexts`]):
    /// a link to the list of all of them and one to each's, the one shown marked, those that do
    /// not answer said so.
    pub fn contexts(view: &[(String, String)], contexts: &str) -> String {
        if contexts.is_empty() {
            return String::new();
        }
        let shown = match param(view, "context") {
            "" => "*",
            shown => shown,
        };
        let mut html = String::from("<span class=\"contexts\">Kubernetes: ");
        html += &a(view, "context", "*", current(shown == "*"), "All");
        for line in contexts.lines() {
            let name = line.split('\t').next().unwrap_or_default();
            html += " ";
            html += &context(view, name, contexts, current(shown == name));
        }
        html + "</span>"
    }

    /// A Kubernetes cluster's name as a link to the list of its clusters, and `stale` after it
    /// while `contexts` says it does not answer; nothing for none (raydar serves one).
    pub fn context(view: &[(String, String)], name: &str, contexts: &str, attrs: &str) -> String {
        if name.is_empty() {
            return String::new();
        }
        let mut html = a(view, "context", name, attrs, &escape(name));
        if contexts.lines().any(|l| l.strip_suffix("\tstale") == Some(name)) {
            html += " <span class=\"stale\">stale</span>";
        }
        html
    }

    /// A column heading that sorts the list by `by` (the default order when empty).
    pub fn sort(view: &[(String, String)], by: &str, text: &str) -> String {
        a(view, "sort", by, current(param(view, "sort") == by), text)
    }

    /// Who launched: the owner as a label, and the pipeline and run when one did.
    pub fn owner(view: &[(String, String)], cluster: &platform::ClusterSummary) -> String {
        let mut html = label(view, "owner", &cluster.owner);
        if !cluster.pipeline.is_empty() {
            let (pipeline, run) = (escape(&cluster.pipeline), escape(&cluster.run));
            html += &format!(r#" <small class="via" title="run {run}">via {pipeline}</small>"#);
        }
        html
    }

    /// A label's value as a link to the list filtered by it; nothing when it is empty.
    pub fn label(view: &[(String, String)], key: &str, value: &str) -> String {
        match value.is_empty() {
            true => String::new(),
            false => a(view, key, value, "", &escape(value)),
        }
    }
}

/// The table and what is around it, seeded from the server-rendered page and then kept current by
/// push.
#[component]
fn ClusterTable(list: ClusterList) -> impl IntoView {
    // Whether the list is current and, of several Kubernetes clusters, which answer: one signal
    // (each costs the first load code of its own).
    let health = RwSignal::new((list.stale(), list.contexts));
    let stale = move |f: fn(&Option<platform::Stale>) -> bool| health.with(|h| f(&h.0));
    // Of several Kubernetes clusters, each row names its own (a column of its own).
    let single = health.with_untracked(|h| h.1.is_empty());
    let view: View = Arc::new(parameters(&list.view));
    let filtered = view.iter().any(|(k, _)| k != "sort" && k != "limit");
    let clusters = RwSignal::new(list.clusters);
    let counts = RwSignal::new(list.counts);
    let now = RwSignal::new(list.now);
    let stream = RwSignal::new(StreamState::Connecting);
    #[cfg(feature = "hydrate")]
    crate::live::follow(
        move |change| match change {
            crate::live::Change::Snapshot(list) => {
                health.set((list.stale(), list.contexts));
                counts.set(list.counts);
                clusters.set(list.clusters);
            }
            // Rows that come, leave or move arrive as a new page; this is one in place.
            crate::live::Change::Upsert(row) => clusters.update(|rows| {
                if let Some(r) = rows.iter_mut().find(|r| r.key() == row.key()) {
                    *r = row;
                }
            }),
            crate::live::Change::Counts(c) => counts.set(c),
        },
        // The page's own filters, order, page and Kubernetes cluster, as the server took them:
        // the stream follows what the page shows.
        &link(&view, "cursor", markup::param(&view, "cursor"))[1..],
        now,
        stream,
    );

    let label = move || match stale(Option::is_some) {
        true => "stale",
        false => stream.get().label(),
    };
    let phases = view.clone();
    let launch = match markup::param(&view, "context") {
        "" | "*" => "/launch".to_owned(),
        one => format!("/launch?context={one}"),
    };
    // A refused URL empties the page: the empty row says why.
    let empty = match list.error {
        Some(error) => error,
        None if filtered => "No clusters match. ".into(),
        None => "No Ray clusters yet. ".into(),
    };
    view! {
        <div class="list-header">
            <h1>"Ray clusters"</h1>
            <a class="button primary" href=launch>"Launch a cluster"</a>
            <span class="counts">
                {move || counts.with(|c| format!("{} clusters · {} GPUs requested", c.total, c.gpus))}
            </span>
            // While the apiserver does not answer, the indicator says so, for how long and why:
            // the same element, so that this costs the first load no new one.
            <span
                class="live"
                class:offline=move || label() != "live"
                data-stream=label
                title="Changes arrive by push from the server"
            >
                {move || health.with(|h| match &h.0 {
                    Some(s) => s.describe(now.get()),
                    None => stream.get().label().to_owned(),
                })}
            </span>
        </div>
        // A plain GET form: the search goes into the URL, and the server renders that page.
        <form class="filters" method="get" action="/" role="search" inner_html=markup::search(&view)></form>
        <nav class="phases" aria-label="Phases, pages and Kubernetes clusters" inner_html=move || {
            let contexts = health.with(|h| markup::contexts(&phases, &h.1));
            counts.with(|c| markup::phases(&phases, c)) + &contexts
        }></nav>
        <table class="cluster-list">
            <thead>
                <tr>
                    <th scope="col" hidden=single>"Kubernetes"</th>
                    <th scope="col">"Namespace"</th>
                    <th scope="col" inner_html=markup::sort(&view, "", "Name")></th>
                    <th scope="col">"Phase"</th>
                    <th scope="col" class="num">"Workers"</th>
                    <th scope="col" class="num" inner_html=markup::sort(&view, "gpus", "GPUs")></th>
                    <th scope="col">"Owner"</th>
                    <th scope="col">"Team"</th>
                    <th scope="col">"Template"</th>
                    <th scope="col" class="num" inner_html=markup::sort(&view, "newest", "Age")></th>
                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                </tr>
            </thead>
            <tbody>
                // Nothing listed while the apiserver does not answer is not "no clusters".
                <Show when=move || clusters.with(Vec::is_empty) && stale(Option::is_none)>
                    <tr class="empty-row">
                        <td colspan="11">
                            {empty.clone()}
                            <a rel="external" href=if filtered { "/" } else { "/launch" }>
                                {if filtered { "Show all" } else { "Launch one" }}
                            </a>
                            "."
                        </td>
                    </tr>
                </Show>
                // Keyed by resourceVersion too: a changed cluster gets a fresh row.
                <For
                    each=move || clusters.get()
                    key=|c| (c.uid.clone(), c.resource_version.clone())
                    let:cluster
                >
                    <ClusterRow cluster now view=view.clone() health single/>
                </For>
            </tbody>
        </table>
    }
}

#[component]
fn ClusterRow(
    cluster: ClusterSummary,
    now: RwSignal<i64>,
    view: View,
    health: RwSignal<(Option<platform::Stale>, String)>,
    single: bool,
) -> impl IntoView {
    let created = cluster.created_at;
    let reason = match &cluster.phase {
        ClusterPhase::Failed(reason) => Some(reason.clone()),
        _ => None,
    };
    let phase = cluster.phase.label();
    let id = format!("{}/{}", cluster.namespace, cluster.name);
    let page = rest::page(&cluster.namespace, &cluster.name);
    // Its page on its Kubernetes cluster (a DNS label, nothing to encode).
    let page = match cluster.context.is_empty() {
        true => page,
        false => format!("{page}?context={}", cluster.context),
    };
    let (namespace, name) = (cluster.namespace.clone(), cluster.name.clone());
    // Offered only to who may (Kubernetes RBAC, asked by the server for this user). Hidden rather
    // than left out: an optional view here would add 19 KB (br) to every first load (measured).
    let may_delete = cluster.may_delete;
    let owner = markup::owner(&view, &cluster);
    let (context, on, row_context) = (cluster.context.clone(), view.clone(), cluster.context);
    view! {
        <tr data-cluster=id data-phase=phase>
            <td hidden=single inner_html=move || health.with(|h| markup::context(&on, &context, &h.1, ""))></td>
            <td>{cluster.namespace}</td>
            <th scope="row"><a href=page>{cluster.name}</a></th>
            <td>
                <span class=format!("phase phase-{}", phase.to_ascii_lowercase())>{phase}</span>
                {reason.map(|r| view! { <span class="reason">{r}</span> })}
            </td>
            <td class="num">{cluster.workers_ready} "/" {cluster.workers_desired}</td>
            <td class="num">{cluster.gpus_desired}</td>
            // Each label links to the list filtered by it.
            <td inner_html=owner></td>
            <td inner_html=markup::label(&view, "team", &cluster.team)></td>
            <td inner_html=markup::label(&view, "template", &cluster.template)></td>
            <td class="num">{move || format_age(now.get() - created)}</td>
            <td class="actions" hidden=!may_delete><TearDownButton namespace name context=row_context/></td>
        </tr>
    }
}

/// Tears a cluster down (on the Kubernetes cluster called `context`; empty: the page's) after
/// the browser's confirmation names it; says so while it goes, and shows why when Kubernetes
/// refuses. The row itself leaves when the push stream says it is gone.
#[component]
pub fn TearDownButton(
    namespace: String,
    name: String,
    #[prop(optional)] context: String,
) -> impl IntoView {
    let pending = RwSignal::new(false);
    let failed = RwSignal::new(None::<String>);
    let label = format!("Tear down {namespace}/{name}");
    let click = move |_| {
        if pending.get_untracked() {
            return;
        }
        let (namespace, name, context) = (namespace.clone(), name.clone(), context.clone());
        pending.set(true);
        failed.set(None);
        leptos::task::spawn_local(async move {
            match tear_down(namespace, name, context).await {
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

#[cfg(test)]
mod tests {
    use super::{link, markup};
    use crate::api::ListCounts;

    fn view(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_link_keeps_the_view_but_its_page_and_encodes_values() {
        let v = view(&[("team", "vision & speech"), ("sort", "gpus"), ("cursor", "-8:ml:a")]);
        assert_eq!(
            link(&v, "phase", "Ready"),
            "/?team=vision%20%26%20speech&sort=gpus&phase=Ready"
        );
        assert_eq!(link(&v, "team", ""), "/?sort=gpus", "a filter taken away");
        assert_eq!(
            link(&v, "cursor", "-2:ml:b"),
            "/?team=vision%20%26%20speech&sort=gpus&cursor-2%3Aml%3Ab"
                .replace("cursor-", "cursor=-")
        );
    }

    #[test]
    fn text_from_the_url_is_escaped_in_the_markup() {
        let v = view(&[("q", "\"><script>alert(1)</script>"), ("team", "<b>")]);
        let form = markup::search(&v);
        assert!(!form.contains("<script>") && !form.contains("<b>"), "{form}");
        assert!(form.contains("value=\"&quot;&gt;&lt;script&gt;"), "{form}");
        assert!(form.contains("team: &lt;b&gt; ×"), "the chip: {form}");
        let label = markup::label(&v, "owner", "<img src=x onerror=alert(1)>");
        assert!(
            label.starts_with("<a rel=\"external\" href=\"/?q=%22") && !label.contains("<img"),
            "{label}"
        );
    }

    #[test]
    fn a_cluster_a_pipeline_launched_names_the_pipeline_and_its_run_escaped() {
        let row = |pipeline: &str| -> platform::ClusterSummary {
            serde_json::from_value(serde_json::json!({"namespace": "ml", "name": "c", "uid": "u",
                "resourceVersion": "1", "phase": "Ready", "workersReady": 0, "workersDesired": 0,
                "gpusDesired": 0, "createdAt": 0, "owner": "ci-bot", "pipeline": pipeline,
                "run": "r<1>"}))
            .unwrap()
        };
        let html = markup::owner(&[], &row("nightly<b>"));
        assert!(html.contains(">ci-bot</a>"), "{html}");
        assert!(
            html.ends_with(
                r#"<small class="via" title="run r&lt;1&gt;">via nightly&lt;b&gt;</small>"#
            ),
            "{html}"
        );
        assert!(!markup::owner(&[], &row("")).contains("via"));
    }

    #[test]
    fn several_kubernetes_clusters_link_to_each_one_s_list_and_say_which_is_stale() {
        let served = "east\nwest\tstale\n";
        let all = markup::contexts(&view(&[("team", "a"), ("context", "*")]), served);
        assert!(
            all.contains("href=\"/?team=a&amp;context=%2A\" aria-current=\"true\">All</a>"),
            "{all}"
        );
        assert!(all.contains("href=\"/?team=a&amp;context=east\">east</a>"), "{all}");
        assert!(
            all.contains("context=west\">west</a> <span class=\"stale\">stale</span>"),
            "the one that does not answer is said stale: {all}"
        );
        let one = markup::contexts(&view(&[("context", "east")]), "east\nwest\n");
        assert!(one.contains("href=\"/?context=east\" aria-current=\"true\">east<"), "{one}");
        assert!(!one.contains("stale"), "{one}");
        assert_eq!(markup::contexts(&view(&[]), ""), "", "one Kubernetes cluster: nothing");
        assert_eq!(markup::context(&view(&[]), "", "", ""), "", "nor in its rows");
    }

    #[test]
    fn phases_and_pages_link_to_their_lists() {
        let v = view(&[("phase", "Ready"), ("cursor", "0:ml:b")]);
        let counts = ListCounts {
            phases: [1, 2, 0, 3, 0],
            next: Some("0:ml:z".into()),
            ..ListCounts::default()
        };
        let phases = markup::phases(&v, &counts);
        assert!(phases.contains("href=\"/\">All <span class=\"num\">6</span>"), "{phases}");
        assert!(
            phases.contains(
                "href=\"/?phase=Ready\" aria-current=\"true\">Ready <span class=\"num\">2</span>"
            ),
            "{phases}"
        );
        assert!(
            phases.contains(">First page<")
                && phases.contains("href=\"/?phase=Ready&amp;cursor=0%3Aml%3Az\""),
            "{phases}"
        );
        let one = markup::phases(&view(&[]), &ListCounts::default());
        assert!(!one.contains("page<"), "one page: no page links: {one}");
    }
}
