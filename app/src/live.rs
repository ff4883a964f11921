//! The browser's side of the push stream: one `EventSource` per page, applying each change to
//! the page's signals. The browser reconnects by itself after a drop, and the server begins
//! every connection with a snapshot, so nothing is missed across a reconnect.

use leptos::prelude::*;
use platform::ClusterSummary;
use send_wrapper::SendWrapper;
use wasm_bindgen::prelude::*;
use web_sys::{EventSource, MessageEvent};

use crate::api::{push, ClusterList, ClusterRef};
use crate::routes::clusters::StreamState;

/// Keeps `clusters` equal to the server's list, `now` ticking, and `stream` telling whether
/// changes arrive. Stops when the calling component is dropped.
pub fn follow_clusters(clusters: RwSignal<Vec<ClusterSummary>>, now: RwSignal<i64>, stream: RwSignal<StreamState>) {
    let Ok(source) = EventSource::new(push::PATH) else {
        stream.set(StreamState::Reconnecting);
        return;
    };
    let mut handlers: Vec<Closure<dyn FnMut(MessageEvent)>> = Vec::new();
    let mut on = |name: &str, f: Box<dyn FnMut(MessageEvent)>| {
        let handler = Closure::wrap(f);
        let _ = source.add_event_listener_with_callback(name, handler.as_ref().unchecked_ref());
        handlers.push(handler);
    };
    // "Live" only once the snapshot is applied: from then on the page shows the server's list.
    on(push::SNAPSHOT, Box::new(move |e| {
        if let Some(list) = parse::<ClusterList>(&e) {
            now.set(list.now);
            clusters.set(list.clusters);
            stream.set(StreamState::Live);
        }
    }));
    on(push::UPSERT, Box::new(move |e| {
        if let Some(row) = parse::<ClusterSummary>(&e) {
            clusters.update(|rows| upsert(rows, row));
        }
    }));
    on(push::DELETE, Box::new(move |e| {
        if let Some(gone) = parse::<ClusterRef>(&e) {
            clusters.update(|rows| rows.retain(|r| r.key() != (gone.namespace.as_str(), gone.name.as_str())));
        }
    }));
    on("error", Box::new(move |_| stream.set(StreamState::Reconnecting)));

    // Ages advance with the browser's clock between pushes.
    let tick = Closure::<dyn FnMut()>::new(move || now.update(|t| *t += 1));
    let timer = web_sys::window()
        .and_then(|w| w.set_interval_with_callback_and_timeout_and_arguments_0(tick.as_ref().unchecked_ref(), 1000).ok());

    let keep = SendWrapper::new((source, handlers, tick));
    on_cleanup(move || {
        let (source, _handlers, _tick) = keep.take();
        source.close();
        if let (Some(w), Some(id)) = (web_sys::window(), timer) {
            w.clear_interval_with_handle(id);
        }
    });
}

fn parse<T: serde::de::DeserializeOwned>(e: &MessageEvent) -> Option<T> {
    serde_json::from_str(&e.data().as_string()?).ok()
}

/// Inserts or replaces a row, keeping the list sorted by namespace and name.
fn upsert(rows: &mut Vec<ClusterSummary>, row: ClusterSummary) {
    match rows.binary_search_by(|r| r.key().cmp(&row.key())) {
        Ok(i) => rows[i] = row,
        Err(i) => rows.insert(i, row),
    }
}
