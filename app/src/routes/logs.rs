//! The log viewer page: a Ray job's log (`/clusters/{namespace}/{name}/jobs/{job}`) or a Ray pod's
//! (`/clusters/{namespace}/{name}/pods/{pod}`), live; or a job's log as history archived it
//! (`/history/{uid}/jobs/{job}`), after its cluster is gone.
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
        let (namespace, name, kind, id, uid) =
            (read("namespace"), read("name"), read("kind"), read("id"), read("uid"));
        // An archived job log (`/history/{uid}/jobs/{id}`): the same viewer on history's copy.
        let archived = !uid.is_empty();
        let what = match kind.as_str() {
            _ if archived => "Job",
            "jobs" => "Job",
            "pods" => "Pod",
            _ => return view! { <p class="empty">"Page not found."</p> }.into_any(),
        };
        let (api, stream) = if archived {
            let api = format!("/api/v1/history/clusters/{uid}/jobs/{id}/log");
            (api.clone(), format!("{api}/stream"))
        } else {
            let api = format!("/api/v1/clusters/{namespace}/{name}/{kind}/{id}/logs");
            (crate::api::rest::here(api.clone()), format!("{api}/stream"))
        };
        let crumbs = if archived {
            let record = format!("/history/{uid}");
            view! { <a href="/history">"History"</a> " / " <a href=record>{uid.clone()}</a> }
                .into_any()
        } else {
            let cluster = crate::api::rest::here(format!("/clusters/{namespace}/{name}"));
            view! { <a href="/">"Ray clusters"</a> " / " {namespace} " / " <a href=cluster>{name}</a> }
                .into_any()
        };
        let archived_note = archived.then_some(" (archived)");
        let root = NodeRef::<Div>::new();
        #[cfg(not(feature = "hydrate"))]
        let _ = stream;
        #[cfg(feature = "hydrate")]
        {
            root.on_load(move |el| {
                let viewer = send_wrapper::SendWrapper::new(crate::logview::start(&el, &stream));
                on_cleanup(move || drop(viewer.take()));
            });
        }
        view! {
            <section class="log-page">
                <p class="crumbs">{crumbs}</p>
                <h1>{what} " " <span class="mono">{id}</span> " log" {archived_note}</h1>
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
