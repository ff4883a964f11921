//! The log viewer page: a Ray job's log (`/clusters/{namespace}/{name}/jobs/{job}`) or a Ray pod's
//! (`/clusters/{namespace}/{name}/pods/{pod}`), live.
//!
//! The server renders the frame (tools, an empty log, the Download link, which works without
//! script); in the browser `logview` fills the log from the server's stream of it. The page is a
//! lazy route, loaded when a log is opened.

use leptos::html::Div;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use leptos_router::{lazy_route, LazyRoute};

/// `/clusters/{namespace}/{name}/{jobs|pods}/{id}`.
pub struct LogPage;

#[lazy_route]
impl LazyRoute for LogPage {
    fn data() -> Self {
        LogPage
    }

    fn view(this: Self) -> AnyView {
        let _ = this;
        let params = use_params_map();
        let read = |key: &str| params.with_untracked(|p| p.get(key).unwrap_or_default());
        let (namespace, name, kind, id) =
            (read("namespace"), read("name"), read("kind"), read("id"));
        let what = match kind.as_str() {
            "jobs" => "Job",
            "pods" => "Pod",
            _ => return view! { <p class="empty">"Page not found."</p> }.into_any(),
        };
        let api = format!("/api/v1/clusters/{namespace}/{name}/{kind}/{id}/logs");
        let cluster = format!("/clusters/{namespace}/{name}");
        let root = NodeRef::<Div>::new();
        #[cfg(feature = "hydrate")]
        {
            let stream = format!("{api}/stream");
            root.on_load(move |el| {
                let viewer = send_wrapper::SendWrapper::new(crate::logview::start(&el, &stream));
                on_cleanup(move || drop(viewer.take()));
            });
        }
        view! {
            <section class="log-page">
                <p class="crumbs">
                    <a href="/">"Ray clusters"</a> " / " {namespace} " / " <a href=cluster>{name}</a>
                </p>
                <h1>{what} " " <span class="mono">{id}</span> " log"</h1>
                <div class="log-view" node_ref=root>
                    <div class="log-tools">
                        <button type="button" class="pause" aria-pressed="false">"Pause"</button>
                        <input type="search" class="search" placeholder="Search the log" aria-label="Search the log"/>
                        <span class="matches" hidden></span>
                        <a class="button" href=api download>"Download"</a>
                        <span class="log-state" data-state="connecting" role="status">"connecting…"</span>
                    </div>
                    <p class="dropped empty" hidden></p>
                    <div class="log" role="log" aria-live="off"><div class="log-lines"></div></div>
                </div>
            </section>
        }
        .into_any()
    }
}
