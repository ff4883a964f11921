//! raydar's web UI: Leptos pages rendered on the server (feature `ssr`) and hydrated in the
//! browser (feature `hydrate`).
//!
//! # Layout
//!
//! - [`ListApp`]: the cluster list, as `/` is rendered and hydrated (no router: the first load
//!   carries the list alone); [`App`]: every page, with the router, for every other path.
//! - [`routes`]: one module per page; [`routes::clusters`] is the home page, the live list of
//!   every RayCluster; [`routes::launch`], [`routes::cluster`], [`routes::logs`], [`routes::gpus`]
//!   [`routes::rayjobs`] and [`routes::history`] are lazy routes, whose code the
//!   browser loads when they are opened (cargo-leptos `--split`), so the list's first load stays
//!   small.
//! - [`api`]: server functions that pages load their data with, and the REST paths the browser
//!   writes to; server-only code in `api::ssr`.
//! - [`components`]: widgets more than one page shows: the push stream's state and notice, the
//!   one error a page shows ([`components::failure::AppError`]) through an error boundary.
//! - [`actions`]: tear down, suspend/resume and scale, shared by the pages; lazy-loaded.
//! - `live`: the browser's subscription to the server's push stream (hydrate only).
//! - `logview`: the log viewer's stream and lines, written straight into the page (hydrate only).
//! - `http`: the browser's calls to the REST API, with a timeout (hydrate only).

// Typed views nest deeply; the cluster page's goes past the default of 128.
#![recursion_limit = "256"]

pub mod actions;
pub mod api;
pub mod components;
#[cfg(feature = "hydrate")]
mod http;
#[cfg(feature = "hydrate")]
mod live;
#[cfg(feature = "hydrate")]
mod logview;
pub mod routes;

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, Lazy, SsrMode};

/// Loads the app's module again when Leptos' loader fails to (its import rejects, unhandled):
/// browsers drop requests in flight when the machine's network changes (tools/wasm-retry.js
/// retries the wasm; this, the module that loads it), and the page would stay server-rendered.
/// Three more tries, 0.2, 0.4 and 0.8 s apart, each under a new URL: a module whose fetch failed
/// stays failed under its own. Names come from Leptos' preload links.
const RETRY_IMPORT: &str = "addEventListener('unhandledrejection',function(e){\
var m=e.reason&&e.reason.message||'',q=function(s){return document.querySelector(s).href},i=0;\
if(m.indexOf('dynamically imported module')<0||window.__retried)return;window.__retried=1;\
(function t(){setTimeout(function(){import(q('link[rel=modulepreload]')+'?try='+(++i))\
.then(function(a){return a.default({module_or_path:q('link[as=fetch]')}).then(a.hydrate)},\
function(){if(i<3)t()})},200<<i)})()})";

/// The HTML document around the app, rendered by the server only.
/// public/favicon.svg as a data URI (the CSP allows `data:` images).
const FAVICON: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E\
%3Ccircle cx='8' cy='8' r='7' fill='%232f6fde'/%3E%3Ccircle cx='8' cy='8' r='3' fill='%23fff'/%3E%3C/svg%3E";

pub fn shell(options: LeptosOptions) -> impl IntoView {
    document(options, App)
}

/// The HTML document of the cluster list (`/`): [`ListApp`], the list without the router.
pub fn list_shell(options: LeptosOptions) -> impl IntoView {
    document(options, ListApp)
}

/// The HTML document around `body`, rendered by the server only.
fn document<B: IntoView + 'static>(options: LeptosOptions, body: fn() -> B) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                // In the page, not a request of its own: its headers alone weigh more than it.
                <link rel="icon" href=FAVICON/>
                // Plain tags rather than leptos_meta: one page title and one stylesheet do not
                // justify its weight in the wasm every first load downloads.
                <link rel="stylesheet" href="/pkg/raydar.css"/>
                {api::Session::current().map(|s| view! {
                    <meta name="raydar-user" content=s.user/>
                    <meta name="raydar-team" content=s.team/>
                    <meta name="csrf-token" content=s.csrf/>
                })}
                <title>"raydar"</title>
                // Before Leptos' loader, which gives up if the app's module fails to load.
                <script nonce=leptos::nonce::use_nonce()>{RETRY_IMPORT}</script>
                <HydrationScripts options/>
            </head>
            <body>{body()}</body>
        </html>
    }
}

/// The top bar of every page.
#[component]
fn TopBar() -> impl IntoView {
    view! {
        <header class="topbar">
            <a class="brand" href="/">"raydar"</a>
            <span class="tagline">"Ray on Kubernetes"</span>
            <nav class="nav"><a href="/">"Clusters"</a><a href="/jobs">"Jobs"</a><a href="/gpus">"GPUs"</a><a href="/history">"History"</a></nav>
            <span class="who" title="Signed in as">{who()}</span>
        </header>
    }
}

/// The cluster list as the first page a browser opens (`/`): the list without the router.
///
/// Most visits start here, so its first load carries only what the list needs; the router, and
/// every other page, load when another page is opened (a new document: every link on the list
/// is one), with [`App`].
#[component]
pub fn ListApp() -> impl IntoView {
    view! {
        <TopBar/>
        <main><routes::clusters::ClustersPage/></main>
    }
}

/// The application: top bar and page routes.
#[component]
pub fn App() -> impl IntoView {
    view! {
        <TopBar/>
        <Router>
            <main>
                // Async: the page's data is in memory on the server, so the whole list goes out
                // in the first HTML response instead of a placeholder that streams in.
                <Routes fallback=|| view! { <p class="empty">"Page not found."</p> }>
                    <Route path=path!("") view=routes::clusters::ClustersPage ssr=SsrMode::Async/>
                    <Route path=path!("launch") view={Lazy::<routes::launch::LaunchPage>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("gpus") view={Lazy::<routes::gpus::FleetPage>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("jobs") view={Lazy::<routes::rayjobs::RayJobsPage>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("history") view={Lazy::<routes::history::HistoryPage>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("history/:uid") view={Lazy::<routes::history::PostMortemPage>::new()} ssr=SsrMode::Async/>
                    // An archived job log: the log page's viewer, in its chunk.
                    <Route path=path!("history/:uid/jobs/:id") view={Lazy::<routes::logs::LogPage>::new()} ssr=SsrMode::Async/>
                    <Route
                        path=path!("clusters/:namespace/:name")
                        view={Lazy::<routes::cluster::ClusterPage>::new()}
                        ssr=SsrMode::Async
                    />
                    // A job's or a pod's log: one route for both keeps the first-load router small.
                    <Route
                        path=path!("clusters/:namespace/:name/:kind/:id")
                        view={Lazy::<routes::logs::LogPage>::new()}
                        ssr=SsrMode::Async
                    />
                </Routes>
            </main>
        </Router>
    }
}

/// Who is signed in, as the top bar says it: `alice · team-a`.
fn who() -> String {
    match api::Session::current() {
        Some(s) if s.team.is_empty() => s.user,
        Some(s) => format!("{} · {}", s.user, s.team),
        None => String::new(),
    }
}

/// Entry point of the browser build: attaches to the server-rendered page. The server renders
/// `/` as [`ListApp`] and every other page as [`App`], whose code is loaded first.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    let path = web_sys::window().and_then(|w| w.location().pathname().ok());
    if path.as_deref() == Some("/") {
        leptos::mount::hydrate_body(ListApp);
    } else {
        wasm_bindgen_futures::spawn_local(hydrate_routed());
    }
}

/// Hydrates a page of the routed [`App`]: split from the first load, with the router.
#[cfg(feature = "hydrate")]
#[leptos::lazy]
fn hydrate_routed() {
    // Lazy: the page being hydrated may be a lazy route, whose code must arrive first.
    leptos::mount::hydrate_lazy(App);
}

/// Room for the wasm splitter (tools/wasm-split) to lay out read-only data.
///
/// The splitter moves each piece of read-only data into the module (main or lazy chunk) that uses
/// it, aligning each module's share; that padding can make the laid-out data a few bytes longer
/// than the linker's segment, and then the splitter keeps *all* of it in the main module (about
/// 60 KB, 18 KB compressed, on the first load). This block is linked (`#[used]`) but read by
/// nothing, so the splitter drops it and its bytes are room for that padding. It never reaches
/// the browser.
#[cfg(feature = "hydrate")]
#[used]
static SPLIT_SLACK: [u8; 4096] = [0x5a; 4096];
