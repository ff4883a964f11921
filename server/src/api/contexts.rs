//! The Kubernetes clusters this raydar serves (`--contexts`): which they are and how each
//! answers, and the cluster list over all of them (`GET /api/v1/clusters?context=*`).

use axum::extract::State;
use axum::Json;
use platform::Stale;
use serde::Serialize;
use utoipa::ToSchema;

use app::api::ClusterList;

use super::clusters::ClusterItems;
use crate::contexts::Fleet;
use crate::list::{merge, Page, View};
use crate::security::User;
use crate::unix_now;

/// One Kubernetes cluster raydar serves, and how its watch is.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContextState {
    /// Its name: what `?context=` takes.
    pub name: String,
    /// Whether it is the one a request without `?context=` is answered for.
    pub home: bool,
    /// Whether its clusters have been listed at least once.
    pub synced: bool,
    /// Set while its Kubernetes API does not answer: its clusters are what it last said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<Stale>,
}

/// The Kubernetes clusters raydar serves.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContextList {
    /// Home first, then as `--contexts` lists them.
    pub items: Vec<ContextState>,
}

/// How each plane of `fleet` is.
pub fn states(fleet: &Fleet) -> Vec<ContextState> {
    fleet
        .planes()
        .iter()
        .enumerate()
        .map(|(i, plane)| ContextState {
            name: plane.name.clone(),
            home: i == 0,
            synced: plane.clusters.health().synced(),
            stale: plane.clusters.stale(),
        })
        .collect()
}

/// `GET /api/v1/contexts`: the Kubernetes clusters raydar serves, and whether each answers.
#[utoipa::path(get, path = "/contexts", tag = "clusters",
    responses((status = 200, description = "The Kubernetes clusters raydar serves", body = ContextList)))]
pub async fn list(State(fleet): State<Fleet>) -> Json<ContextList> {
    Json(ContextList { items: states(&fleet) })
}

/// The page `view` shows of the clusters `user` may see on every Kubernetes cluster: each
/// cluster's own page of it (with its RBAC's grants), merged in the view's order, each row naming
/// its context; and how each context answers.
pub async fn every_page(fleet: &Fleet, user: &User, view: &View) -> (Page, Vec<ContextState>) {
    // Each asked at once: the slowest to answer who may see what sets the time, not their sum.
    let pages = fleet.planes().iter().map(|plane| async move {
        let grants = plane.access_now().grants(user, plane.clusters.namespaces()).await;
        (plane.name.clone(), plane.clusters.page(&view.for_context(&plane.name), &grants))
    });
    (merge(view, futures::future::join_all(pages).await), states(fleet))
}

/// `GET /api/v1/clusters?context=*`: [`every_page`] as the API answers it.
pub async fn all_clusters(fleet: &Fleet, user: &User, view: &View) -> ClusterItems {
    let (page, states) = every_page(fleet, user, view).await;
    ClusterItems { contexts: Some(states), ..ClusterItems::of(page.items, page.counts, None) }
}

/// A list page of several Kubernetes clusters: `page` (of one, `stale` if it is, or of all),
/// and which are served and which do not answer. The list of all is stale while one is: since
/// the earliest, and why, naming it.
pub fn list_page(page: Page, stale: Option<Stale>, states: &[ContextState]) -> ClusterList {
    let every = states.iter().filter_map(|s| Some((&s.name, s.stale.as_ref()?)));
    let stale = stale.or_else(|| {
        let (name, first) = every.min_by_key(|(_, s)| s.since)?;
        Some(Stale { since: first.since, reason: format!("{name}: {}", first.reason) })
    });
    let mut list = ClusterList::new(page.items, page.counts, unix_now(), stale);
    if states.len() > 1 {
        for state in states {
            let mark = if state.stale.is_some() { "\tstale" } else { "" };
            list.contexts += &format!("{}{mark}\n", state.name);
        }
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(name: &str, stale: Option<(i64, &str)>) -> ContextState {
        let stale = stale.map(|(since, why)| Stale { since, reason: why.to_owned() });
        ContextState { name: name.to_owned(), home: name == "east", synced: true, stale }
    }

    #[test]
    fn a_list_of_several_is_stale_while_one_is_and_names_it() {
        let states = [
            state("east", None),
            state("west", Some((200, "connection refused"))),
            state("north", Some((100, "timed out"))),
        ];
        let list = list_page(Page::default(), None, &states);
        assert_eq!(list.contexts, "east\nwest\tstale\nnorth\tstale\n");
        assert_eq!(list.stale_since, Some(100), "since the earliest");
        assert_eq!(list.stale_reason.as_deref(), Some("north: timed out"));
        let one = list_page(Page::default(), None, &states[..1]);
        assert!(one.contexts.is_empty() && one.stale().is_none(), "one served: nothing to say");
        let live = list_page(Page::default(), None, &[state("east", None), state("west", None)]);
        assert!(live.stale().is_none() && live.contexts == "east\nwest\n");
    }
}
