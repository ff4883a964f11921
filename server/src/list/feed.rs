//! The push stream of one open list page: its page first, then what changes on it.
//!
//! A change to a row the page shows goes out at once, alone. A change to which rows it shows (a
//! cluster came onto the page, left it or moved) sends the page again, and a change elsewhere
//! only its counts: both at most a few times a second, so a fleet's churn costs each page a
//! bounded number of page computations, not one per change.
//!
//! A page over every Kubernetes cluster (`context=*`, [`follow_every`]) is simpler: any change on
//! any of them takes the merged page again (at most ten times a second), sent when it differs.

use std::convert::Infallible;
use std::time::Duration;

use app::api::{push, ClusterList, ListCounts};
use axum::response::sse::Event;
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;
use tokio::time::Instant;

use futures::stream::SelectAll;
use futures::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use super::{Page, Touch, View, Window};
use crate::api::contexts::{every_page, list_page, states};
use crate::contexts::Fleet;
use crate::push::json_event;
use crate::security::{Access, Ask, User};
use crate::sources::{ClusterChange, Clusters};

/// Least time between two pages sent again because rows came, left or moved: the first goes at
/// once, so a cluster that comes onto a quiet page shows as soon as it exists.
const PAGE_EVERY: Duration = Duration::from_millis(100);
/// Least time between two counts sent because clusters elsewhere changed.
const COUNTS_EVERY: Duration = Duration::from_secs(1);

/// The events of one follower of `view`, as `user` may see it: the page, then its changes.
/// `fleet` says which other Kubernetes clusters the page can switch to.
pub fn follow(
    clusters: Clusters,
    access: Access,
    fleet: Fleet,
    user: User,
    view: View,
) -> impl Stream<Item = Result<Event, Infallible>> {
    // Subscribed before the first page is taken, so no change falls between.
    let changes = clusters.subscribe();
    let follower = Follower {
        clusters,
        fleet,
        access,
        user,
        changes,
        window: Window::new(view, &Page::default()),
        started: false,
        counts: ListCounts::default(),
        due: None,
        page_sent: None,
        counts_sent: None,
    };
    futures::stream::unfold(follower, |mut f| async move {
        let event = f.next().await?;
        Some((event, f))
    })
}

/// What is owed to the page, and from when it may be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Owed {
    Counts,
    Page,
}

struct Follower {
    clusters: Clusters,
    fleet: Fleet,
    access: Access,
    user: User,
    changes: Receiver<ClusterChange>,
    /// What the page shows.
    window: Window,
    /// Whether the first page was sent.
    started: bool,
    /// The counts last sent.
    counts: ListCounts,
    /// What the page is owed, if anything.
    due: Option<Owed>,
    /// When a page was last sent because its rows changed (not the first, nor a resync).
    page_sent: Option<Instant>,
    /// When counts (alone or with a page) were last sent.
    counts_sent: Option<Instant>,
}

impl Follower {
    /// The next event for the page; `None` when the feed ends.
    async fn next(&mut self) -> Option<Result<Event, Infallible>> {
        if !self.started {
            self.started = true;
            return Some(self.page().await);
        }
        loop {
            let at = self.due.map(|owed| self.when(owed));
            let change = tokio::select! {
                // A due page or count first: under churn, changes never stop coming.
                biased;
                () = sleep_until(at), if at.is_some() => None,
                change = self.changes.recv() => Some(change),
            };
            let Some(change) = change else {
                if let Some(event) = self.settle().await {
                    return Some(event);
                }
                continue;
            };
            match change {
                Ok(ClusterChange::Upsert(mut row)) => {
                    if !self.may("list", &row.namespace).await {
                        continue;
                    }
                    match self.window.upsert(&row) {
                        Touch::Row { recount } => {
                            self.window.replaced(&row);
                            if recount {
                                self.owe(Owed::Counts);
                            }
                            row.may_delete = self.may("delete", &row.namespace).await;
                            return Some(json_event(push::UPSERT, &row));
                        }
                        Touch::Rows => self.owe(Owed::Page),
                        Touch::Counts => self.owe(Owed::Counts),
                        Touch::Nothing => {}
                    }
                }
                Ok(ClusterChange::Delete(gone)) => {
                    match self.window.delete(&gone.namespace, &gone.name) {
                        Touch::Rows => self.owe(Owed::Page),
                        _ => self.owe(Owed::Counts),
                    }
                }
                // The page again, at once: a relist may have folded changes together, a lagging
                // follower missed some, and a stale (or live again) list says so.
                Ok(ClusterChange::Resync | ClusterChange::Unanswered(_))
                | Err(RecvError::Lagged(_)) => return Some(self.page().await),
                Err(RecvError::Closed) => return None,
            }
        }
    }

    fn owe(&mut self, owed: Owed) {
        self.due = self.due.max(Some(owed));
    }

    /// When what is owed may be sent: at once unless the same was sent a moment ago.
    fn when(&self, owed: Owed) -> Instant {
        let (last, every) = match owed {
            Owed::Page => (self.page_sent, PAGE_EVERY),
            Owed::Counts => (self.counts_sent, COUNTS_EVERY),
        };
        last.map_or_else(Instant::now, |last| last + every)
    }

    /// Pays what is owed: the page again if its rows changed, else its counts if they did.
    async fn settle(&mut self) -> Option<Result<Event, Infallible>> {
        let owed = self.due.take()?;
        let (page, list) = self.take().await;
        if owed == Owed::Page || !self.window.shows(&page) {
            self.page_sent = Some(Instant::now());
            return Some(self.send_page(page, list));
        }
        if page.counts == self.counts {
            return None;
        }
        self.counts = page.counts.clone();
        self.counts_sent = Some(Instant::now());
        Some(json_event(push::COUNTS, &page.counts))
    }

    /// The page now.
    async fn page(&mut self) -> Result<Event, Infallible> {
        self.due = None;
        let (page, list) = self.take().await;
        self.send_page(page, list)
    }

    /// Takes the page of the view as the user may see it, and the list that sends it.
    async fn take(&mut self) -> (Page, ClusterList) {
        let grants = self.access.grants(&self.user, self.clusters.namespaces()).await;
        let page = self.clusters.page(self.window.view(), &grants);
        let list = list_page(page.clone(), self.clusters.stale(), &states(&self.fleet));
        (page, list)
    }

    fn send_page(&mut self, page: Page, list: ClusterList) -> Result<Event, Infallible> {
        self.window = Window::new(self.window.view().clone(), &page);
        self.counts = page.counts;
        self.counts_sent = Some(Instant::now());
        json_event(push::SNAPSHOT, &list)
    }

    /// Whether the user may `verb` RayClusters in `namespace` (asked of Kubernetes, answers
    /// cached briefly).
    async fn may(&self, verb: &'static str, namespace: &str) -> bool {
        self.access.may(&self.user, &Ask::rayclusters(verb, namespace)).await
    }
}

/// Sleeps until `at` (forever when `None`: the branch is disabled then anyway).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The events of one follower of `view` over every Kubernetes cluster (`context=*`), as `user`
/// may see each: the merged page, then the page again whenever it changed, at once and then at
/// most every [`PAGE_EVERY`]. No row goes alone: a change on any cluster takes the merged page
/// again, and only a page that differs from the last one sent goes out. (A page of several
/// clusters is followed by a person looking at all of them, not by a fleet's worth of tabs.)
pub fn follow_every(
    fleet: Fleet,
    user: User,
    view: View,
) -> impl Stream<Item = Result<Event, Infallible>> {
    // Subscribed before the first page is taken, so no change falls between.
    let changes = fleet.planes().iter().map(|p| BroadcastStream::new(p.clusters.subscribe()));
    let follower = EveryFollower {
        changes: futures::stream::select_all(changes),
        fleet,
        user,
        view,
        sent: None,
        due: false,
        sent_at: None,
    };
    futures::stream::unfold(follower, |mut f| async move {
        let event = f.next().await?;
        Some((event, f))
    })
}

struct EveryFollower {
    fleet: Fleet,
    user: User,
    view: View,
    /// Every cluster's changes; a lagging one says so, which is a change too.
    changes: SelectAll<BroadcastStream<ClusterChange>>,
    /// The page last sent (its clock aside).
    sent: Option<ClusterList>,
    /// Whether a change came since.
    due: bool,
    sent_at: Option<Instant>,
}

impl EveryFollower {
    async fn next(&mut self) -> Option<Result<Event, Infallible>> {
        if self.sent.is_none() {
            return self.page().await;
        }
        loop {
            let at = self.due.then(|| self.sent_at.map_or_else(Instant::now, |t| t + PAGE_EVERY));
            tokio::select! {
                biased;
                () = sleep_until(at), if at.is_some() => {
                    self.due = false;
                    if let Some(event) = self.page().await {
                        return Some(event);
                    }
                }
                change = self.changes.next() => match change {
                    Some(_) => self.due = true,
                    None => return None,
                },
            }
        }
    }

    /// The page now, unless it is the one last sent.
    async fn page(&mut self) -> Option<Result<Event, Infallible>> {
        let (page, states) = every_page(&self.fleet, &self.user, &self.view).await;
        let list = list_page(page, None, &states);
        self.sent_at = Some(Instant::now());
        let same =
            self.sent.as_ref().is_some_and(|s| *s == ClusterList { now: s.now, ..list.clone() });
        if same {
            return None;
        }
        let event = json_event(push::SNAPSHOT, &list);
        self.sent = Some(list);
        Some(event)
    }
}
