//! Server-sent event streams, as every live page gets them: JSON events, a keep-alive comment,
//! and on shutdown a last `reconnect` event before the stream ends, so pages come back to the
//! next raydar instead of waiting out a dead connection.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

/// A comment on every event stream this often, so proxies keep it open and a closed page is
/// noticed.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The last event of every stream when raydar shuts down.
pub const RECONNECT: &str = "reconnect";
/// How soon a page reconnects after [`RECONNECT`] (the `retry` field, milliseconds).
const RECONNECT_AFTER: Duration = Duration::from_millis(500);

/// One server-sent event, as a client reads it off the stream (the OpenAPI description of every
/// `text/event-stream` answer).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // read by the derive only
pub struct ServerSentEvent {
    /// The event's name: which kind of message `data` is.
    #[schema(value_type = String, required = false)]
    event: Option<String>,
    /// The message, JSON.
    data: String,
    /// The event's id (a log stream's last line), sent back as `Last-Event-ID` on reconnect.
    #[schema(value_type = String, required = false)]
    id: Option<String>,
    /// Milliseconds to wait before reconnecting.
    #[schema(value_type = u64, required = false)]
    retry: Option<u64>,
}

/// An event named `name` whose data is `data` as JSON.
pub fn json_event(name: &str, data: &impl serde::Serialize) -> Result<Event, Infallible> {
    // Serializing these plain structs cannot fail; an empty event would be ignored by the page.
    Ok(Event::default().event(name).data(serde_json::to_string(data).unwrap_or_default()))
}

/// `events` as a server-sent event response that ends, after a [`RECONNECT`] event, once
/// `shutdown` is cancelled.
pub fn stream<S>(events: S, shutdown: &CancellationToken) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let token = shutdown.clone();
    // A stream that ended by itself (a log that finished) ends without the goodbye.
    let goodbye = futures::stream::once(async move { token.is_cancelled() }).filter_map(
        |stopping| async move {
            stopping.then(|| {
                Ok(Event::default()
                    .event(RECONNECT)
                    .retry(RECONNECT_AFTER)
                    .data(r#"{"reason":"raydar is restarting"}"#))
            })
        },
    );
    let body = events.take_until(shutdown.clone().cancelled_owned()).chain(goodbye);
    Sse::new(body).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response()
}

/// The items of `items` that differ from the one before by `key` (the clock left out), ending
/// after the first `None` (the cluster is gone).
pub fn changes_only<T, K: PartialEq>(
    items: impl futures::Stream<Item = Option<T>>,
    key: impl Fn(&T) -> K,
) -> impl futures::Stream<Item = Option<T>> {
    enum Step<T> {
        Send(T),
        Same,
        Gone,
    }
    items
        .scan((None::<K>, false), move |(last, ended), item| {
            let step = match item {
                _ if *ended => return std::future::ready(None),
                None => {
                    *ended = true;
                    Step::Gone
                }
                Some(item) => {
                    let k = key(&item);
                    if last.as_ref() == Some(&k) {
                        Step::Same
                    } else {
                        *last = Some(k);
                        Step::Send(item)
                    }
                }
            };
            std::future::ready(Some(step))
        })
        .filter_map(|step| {
            std::future::ready(match step {
                Step::Send(item) => Some(Some(item)),
                Step::Gone => Some(None),
                Step::Same => None,
            })
        })
}
