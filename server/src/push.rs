//! The push stream open pages follow: server-sent events of cluster changes.
//!
//! Each connection starts with a snapshot, then gets every change as it happens. A follower that
//! falls more than [`crate::clusters::FEED_CAPACITY`] changes behind gets a fresh snapshot
//! instead of the changes it missed, so a slow browser never makes the server buffer without bound.

use std::convert::Infallible;
use std::time::Duration;

use app::api::push;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream, StreamExt};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use crate::clusters::{ClusterChange, Clusters};
use crate::web::AppState;

/// `GET /api/v1/clusters/events`: the cluster list, then its changes, as server-sent events.
pub async fn cluster_events(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-origin event streams are not allowed\n").into_response();
    }
    Sse::new(cluster_stream(state.clusters))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The events for one follower: snapshot first, then changes.
pub fn cluster_stream(clusters: Clusters) -> impl Stream<Item = Result<Event, Infallible>> {
    let changes = BroadcastStream::new(clusters.subscribe());
    let first = snapshot(&clusters);
    stream::once(async move { first }).chain(changes.map(move |change| match change {
        Ok(ClusterChange::Upsert(row)) => json_event(push::UPSERT, &row),
        Ok(ClusterChange::Delete(gone)) => json_event(push::DELETE, &gone),
        Ok(ClusterChange::Resync) | Err(BroadcastStreamRecvError::Lagged(_)) => snapshot(&clusters),
    }))
}

fn snapshot(clusters: &Clusters) -> Result<Event, Infallible> {
    json_event(push::SNAPSHOT, &clusters.snapshot())
}

fn json_event(name: &str, data: &impl serde::Serialize) -> Result<Event, Infallible> {
    // Serializing these plain structs cannot fail; an empty event would be ignored by the page.
    Ok(Event::default().event(name).data(serde_json::to_string(data).unwrap_or_default()))
}

/// A browser sends Origin on cross-site requests; when it does, it must name this server.
/// Requests without Origin (curl, same-origin EventSource in some browsers) are let through.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    origin.split_once("://").is_some_and(|(_, authority)| authority == host)
}
