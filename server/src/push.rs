//! The push stream open pages follow: server-sent events of cluster changes.
//!
//! Each connection starts with a snapshot, then gets every change as it happens. A follower that
//! falls more than [`crate::clusters::FEED_CAPACITY`] changes behind gets a fresh snapshot
//! instead of the changes it missed, so a slow browser never makes the server buffer without bound.

use std::convert::Infallible;
use std::time::Duration;

use app::api::push;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::stream::{self, Stream, StreamExt};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use crate::auth::{Access, Ask, User};
use crate::clusters::{ClusterChange, Clusters};
use crate::web::AppState;

/// `GET /api/v1/clusters/events`: the clusters the requester may see, then their changes, as
/// server-sent events. (A cross-origin request never gets here: [`crate::guard`].)
pub async fn cluster_events(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
) -> Response {
    Sse::new(cluster_stream(state.clusters, state.access, user))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The events for one follower: snapshot first, then changes, each kept to what `user` may see
/// (asked of Kubernetes as they come, answers cached briefly).
pub fn cluster_stream(
    clusters: Clusters,
    access: Access,
    user: User,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let changes = BroadcastStream::new(clusters.subscribe());
    let (c, a, u) = (clusters.clone(), access.clone(), user.clone());
    let first = async move { Some(snapshot(&c, &a, &u).await) };
    stream::once(first)
        .chain(changes.then(move |change| {
            let (clusters, access, user) = (clusters.clone(), access.clone(), user.clone());
            async move {
                let may = |verb: &'static str, namespace: &str| {
                    let (access, user, ask) =
                        (access.clone(), user.clone(), Ask::rayclusters(verb, namespace));
                    async move { access.may(&user, &ask).await }
                };
                match change {
                    Ok(ClusterChange::Upsert(mut row)) => {
                        if !may("list", &row.namespace).await {
                            return None;
                        }
                        row.may_delete = may("delete", &row.namespace).await;
                        Some(json_event(push::UPSERT, &row))
                    }
                    Ok(ClusterChange::Delete(gone)) => {
                        may("list", &gone.namespace).await.then(|| json_event(push::DELETE, &gone))
                    }
                    Ok(ClusterChange::Resync) | Err(BroadcastStreamRecvError::Lagged(_)) => {
                        Some(snapshot(&clusters, &access, &user).await)
                    }
                }
            }
        }))
        .filter_map(|event| async move { event })
}

async fn snapshot(clusters: &Clusters, access: &Access, user: &User) -> Result<Event, Infallible> {
    let mut list = clusters.snapshot();
    access
        .grants(user, list.clusters.iter().map(|c| c.namespace.clone()))
        .await
        .apply(&mut list.clusters);
    json_event(push::SNAPSHOT, &list)
}

fn json_event(name: &str, data: &impl serde::Serialize) -> Result<Event, Infallible> {
    // Serializing these plain structs cannot fail; an empty event would be ignored by the page.
    Ok(Event::default().event(name).data(serde_json::to_string(data).unwrap_or_default()))
}
