//! The browser's side of the push stream: one `EventSource` per page, handing each change to the
//! page. The browser reconnects by itself after a drop, and the server begins every connection
//! with a snapshot, so nothing is missed across a reconnect.

use std::rc::Rc;

use leptos::prelude::*;
use platform::ClusterSummary;
use send_wrapper::SendWrapper;
use wasm_bindgen::prelude::*;
use web_sys::{Event, EventSource, EventTarget, MessageEvent};

use crate::api::rest::here;
use crate::api::{push, ClusterList, ListCounts};
use crate::components::stream::StreamState;

/// One message of the push stream.
pub enum Change {
    /// The page anew: it replaces what is shown.
    Snapshot(ClusterList),
    /// A cluster shown changed in place.
    Upsert(ClusterSummary),
    /// Only how many clusters match changed.
    Counts(ListCounts),
}

/// Hands every change of the list `query` asks for (`?team=…&context=…`, as a URL has it; the
/// list of the home Kubernetes cluster when it names none) to `apply`, keeps
/// `now` ticking with the server's clock, and `stream` telling whether changes arrive. Stops when
/// the calling component is dropped.
pub fn follow(
    apply: impl Fn(Change) + 'static,
    query: &str,
    now: RwSignal<i64>,
    stream: RwSignal<StreamState>,
) {
    let Ok(source) = EventSource::new(&format!("{}{query}", push::PATH)) else {
        stream.set(StreamState::Reconnecting);
        return;
    };
    let apply = Rc::new(apply);
    let mut handlers: Vec<Closure<dyn FnMut(Event)>> = Vec::new();
    let mut on = |name: &str, f: Box<dyn FnMut(Event)>| handlers.push(listen(&source, name, f));
    // "Live" only once the snapshot is applied: from then on the page shows the server's list.
    let to = apply.clone();
    on(
        push::SNAPSHOT,
        Box::new(move |e| {
            if let Some(list) = parse::<ClusterList>(&e) {
                now.set(list.now);
                to(Change::Snapshot(list));
                stream.set(StreamState::Live);
            }
        }),
    );
    let to = apply.clone();
    on(
        push::UPSERT,
        Box::new(move |e| {
            if let Some(row) = parse(&e) {
                to(Change::Upsert(row));
            }
        }),
    );
    on(
        push::COUNTS,
        Box::new(move |e| {
            if let Some(counts) = parse(&e) {
                apply(Change::Counts(counts));
            }
        }),
    );
    on("error", Box::new(move |_| stream.set(StreamState::Reconnecting)));

    // Ages advance with the browser's clock between pushes.
    let tick = Closure::<dyn FnMut()>::new(move || now.update(|t| *t += 1));
    let timer = web_sys::window().and_then(|w| {
        w.set_interval_with_callback_and_timeout_and_arguments_0(
            tick.as_ref().unchecked_ref(),
            1000,
        )
        .ok()
    });

    let keep = SendWrapper::new((source, handlers, tick));
    on_cleanup(move || {
        let (source, _handlers, _tick) = keep.take();
        source.close();
        if let (Some(w), Some(id)) = (web_sys::window(), timer) {
            w.clear_interval_with_handle(id);
        }
    });
}

/// Follows the server-sent events at `url`: the JSON of each `name` event goes to `apply`, and
/// `stream` tells whether events arrive. The server sends the current state first on every
/// connection, so a reconnect (the browser's own, after a drop) misses nothing. Stops when the
/// calling component is dropped, or after a `gone` event.
pub fn follow_json<T: serde::de::DeserializeOwned + 'static>(
    url: &str,
    name: &str,
    apply: impl Fn(T) + 'static,
    stream: RwSignal<StreamState>,
) {
    let Ok(source) = EventSource::new(&here(url.to_owned())) else {
        stream.set(StreamState::Reconnecting);
        return;
    };
    let handlers = vec![
        listen(
            &source,
            name,
            Box::new(move |e| {
                if let Some(value) = parse::<T>(&e) {
                    apply(value);
                    stream.set(StreamState::Live);
                }
            }),
        ),
        listen(&source, "error", Box::new(move |_| stream.set(StreamState::Reconnecting))),
        {
            let source = source.clone();
            listen(&source.clone(), push::GONE, Box::new(move |_| source.close()))
        },
    ];
    let keep = SendWrapper::new((source, handlers));
    on_cleanup(move || {
        let (source, _handlers) = keep.take();
        source.close();
    });
}

/// Calls `f` on every `name` event of `target`, as long as the returned closure is kept.
///
/// Not inlined and not generic: wasm-split puts a function that hands a closure to JS, and all
/// it calls, in the first-load module. Behind this one function, a lazy page's handlers (boxed
/// here, called through their vtable) stay in the page's own chunk.
#[inline(never)]
pub fn listen(
    target: &EventTarget,
    name: &str,
    f: Box<dyn FnMut(Event)>,
) -> Closure<dyn FnMut(Event)> {
    let handler = Closure::wrap(f);
    let _ = target.add_event_listener_with_callback(name, handler.as_ref().unchecked_ref());
    handler
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(e: &Event) -> Option<T> {
    serde_json::from_str(&e.unchecked_ref::<MessageEvent>().data().as_string()?).ok()
}
