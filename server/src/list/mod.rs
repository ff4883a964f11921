//! Lists of clusters as people ask for them: a [`View`] (filters, order, page size, where to
//! start), the [`Page`] it shows, and the [`Window`] an open page follows, which tells a change
//! to a row it shows from one that changes which rows it shows.
//!
//! Rows arrive in namespace and name order (the store's); other orders are sorted per page.
//!
//! # Layout
//!
//! - this module: [`View`], [`Page`] and [`Window`], and [`merge`] of several Kubernetes
//!   clusters' pages;
//! - [`feed`]: the push stream of one open list page, built on a [`Window`]; of a page over every
//!   Kubernetes cluster, built on [`merge`].

pub mod feed;

use std::borrow::Cow;

use app::api::{ListCounts, PHASES};
use platform::ClusterSummary;

/// Which clusters a list asks for: each field that is set must match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub namespace: Option<String>,
    /// One cluster's name.
    pub name: Option<String>,
    /// The `raydar.dev/team` label.
    pub team: Option<String>,
    /// The `raydar.dev/owner` label.
    pub owner: Option<String>,
    /// The `raydar.dev/template` label.
    pub template: Option<String>,
    /// A phase as the list shows it (`Ready`, …).
    pub phase: Option<&'static str>,
    /// Lower-case text found in the namespace, name, team, owner, template, pipeline or run.
    pub text: Option<String>,
}

impl Filter {
    /// Whether `row` matches, its phase aside; `search` is its [`search_text`], asked for only
    /// when a free text is.
    fn matches<'a>(&self, row: &ClusterSummary, search: impl FnOnce() -> Cow<'a, str>) -> bool {
        let is = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        is(&self.namespace, &row.namespace)
            && is(&self.name, &row.name)
            && is(&self.team, &row.team)
            && is(&self.owner, &row.owner)
            && is(&self.template, &row.template)
            && self
                .text
                .as_deref()
                .is_none_or(|text| !text.contains(SEARCH_APART) && search().contains(text))
    }

    /// Whether `row`'s phase is the one asked for, if one is.
    fn in_phase(&self, row: &ClusterSummary) -> bool {
        self.phase.is_none_or(|p| p == row.phase.label())
    }
}

/// Between the fields of [`search_text`]: no name or label holds it, so a text without it never
/// matches across two fields.
const SEARCH_APART: char = '\n';

/// What a list's free text is looked for in: namespace, name, team, owner, template, pipeline and
/// run, in lower case, apart by a character none of them holds.
pub fn search_text(row: &ClusterSummary) -> String {
    let fields =
        [&row.namespace, &row.name, &row.team, &row.owner, &row.template, &row.pipeline, &row.run];
    let mut text = String::new();
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            text.push(SEARCH_APART);
        }
        text.push_str(field);
    }
    text.to_lowercase()
}

/// The order of a list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// By namespace, then name.
    #[default]
    Name,
    /// Newest first.
    Newest,
    /// Most GPUs first.
    Gpus,
}

/// A row's place in an order: its sort value (0 for [`Order::Name`]), then namespace and name,
/// which no two rows share.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position(i128, String, String);

impl Position {
    fn of(row: &ClusterSummary, order: Order) -> Position {
        // Larger first: the value is negated.
        let value = match order {
            Order::Name => 0,
            Order::Newest => -i128::from(row.created_at),
            Order::Gpus => -i128::from(row.gpus_desired),
        };
        Position(value, row.namespace.clone(), row.name.clone())
    }

    /// `VALUE:NAMESPACE:NAME` (namespaces and names hold no colon). Any such text is a place in
    /// any order: one from another order is merely somewhere else in this one.
    fn cursor(&self) -> String {
        format!("{}:{}:{}", self.0, self.1, self.2)
    }

    fn parse(cursor: &str) -> Result<Position, String> {
        let bad = || format!("cursor {cursor:?} is not a next cursor (VALUE:NAMESPACE:NAME)");
        let mut parts = cursor.splitn(3, ':');
        let value = parts.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        let (namespace, name) = (parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?);
        if name.contains(':') {
            return Err(bad());
        }
        Ok(Position(value, namespace.to_owned(), name.to_owned()))
    }

    fn is(&self, namespace: &str, name: &str) -> bool {
        self.1 == namespace && self.2 == name
    }
}

/// What a list asks for: which clusters, in which order, how many, from where.
#[derive(Clone, Debug)]
pub struct View {
    pub filter: Filter,
    pub order: Order,
    /// Most rows on a page (at least 1).
    pub limit: usize,
    /// Rows after this place only (a previous page's `next`).
    after: Option<Position>,
    /// Of a list of several Kubernetes clusters ([`merge`]): the context of the row at `after`,
    /// which tells rows of the same place in different contexts apart.
    after_context: Option<String>,
    /// Rows at `after` too (a context ordered after `after_context`: [`View::for_context`]).
    from_after: bool,
}

impl View {
    /// A view, or why `cursor` is not a place in a list.
    pub fn new(
        filter: Filter,
        order: Order,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<View, String> {
        // A list of several Kubernetes clusters adds the context: VALUE:NAMESPACE:NAME:CONTEXT.
        let (at, after_context) = match cursor.map(|c| c.splitn(4, ':').collect::<Vec<_>>()) {
            Some(parts) if parts.len() == 4 => {
                (Some(parts[..3].join(":")), Some(parts[3].to_owned()))
            }
            _ => (cursor.map(str::to_owned), None),
        };
        let after = at.as_deref().map(Position::parse).transpose()?;
        Ok(View { filter, order, limit: limit.max(1), after, after_context, from_after: false })
    }

    /// This view of the clusters of `context`, one of several Kubernetes clusters listed
    /// together: the row at the cursor's place is after it when its context is.
    pub fn for_context(&self, context: &str) -> View {
        let from_after = self.after_context.as_deref().is_some_and(|after| context > after);
        View { from_after, ..self.clone() }
    }

    /// The page of `rows` (in namespace and name order, each with its [`search_text`]) this view
    /// shows, with how many match in all and in each phase (the phase filter aside) and the GPUs
    /// they request.
    pub fn page<'a>(&self, rows: impl Iterator<Item = (&'a ClusterSummary, &'a str)>) -> Page {
        let mut counts = ListCounts::default();
        let mut matching: Vec<(Position, &ClusterSummary)> = Vec::new();
        for (row, search) in rows {
            if !self.filter.matches(row, || Cow::Borrowed(search)) {
                continue;
            }
            counts.phases[phase_index(row)] += 1;
            if self.filter.in_phase(row) {
                counts.total += 1;
                counts.gpus = counts.gpus.saturating_add(row.gpus_desired);
                matching.push((Position::of(row, self.order), row));
            }
        }
        // In name order already; other orders are sorted (stable: names stay in order among
        // equals).
        if self.order != Order::Name {
            matching.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let start = self.after.as_ref().map_or(0, |after| {
            matching.partition_point(|(p, _)| p < after || (!self.from_after && p == after))
        });
        let rows = &matching[start..];
        let items = rows.iter().take(self.limit).map(|(_, c)| (*c).clone()).collect();
        counts.next = (rows.len() > self.limit).then(|| rows[self.limit - 1].0.cursor());
        Page { items, counts }
    }
}

/// The page of `view` over several Kubernetes clusters, from each one's page of
/// [`View::for_context`] by the context's name: rows in the view's order (the context last), each
/// naming its context, counts summed, and a `next` that names the context of the last row
/// (`VALUE:NAMESPACE:NAME:CONTEXT`).
pub fn merge(view: &View, pages: Vec<(String, Page)>) -> Page {
    let mut counts = ListCounts::default();
    let mut more = false;
    let mut rows = Vec::new();
    for (context, page) in pages {
        counts.total += page.counts.total;
        counts.gpus = counts.gpus.saturating_add(page.counts.gpus);
        for (sum, n) in counts.phases.iter_mut().zip(page.counts.phases) {
            *sum += n;
        }
        more |= page.counts.next.is_some();
        rows.extend(
            page.items.into_iter().map(|row| ClusterSummary { context: context.clone(), ..row }),
        );
    }
    rows.sort_by_cached_key(|row| (Position::of(row, view.order), row.context.clone()));
    more |= rows.len() > view.limit;
    rows.truncate(view.limit);
    counts.next = more
        .then(|| rows.last())
        .flatten()
        .map(|row| format!("{}:{}", Position::of(row, view.order).cursor(), row.context));
    Page { items: rows, counts }
}

/// Where a phase is counted in [`ListCounts::phases`]: the order of [`PHASES`].
fn phase_index(row: &ClusterSummary) -> usize {
    let label = row.phase.label();
    PHASES.iter().position(|p| *p == label).unwrap_or(PHASES.len() - 1)
}

/// One page of a list.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub items: Vec<ClusterSummary>,
    /// How many match, and where the next page starts.
    pub counts: ListCounts,
}

/// What an open page shows of its view, to tell what a change does to it.
#[derive(Debug)]
pub struct Window {
    view: View,
    /// The rows shown, in order: place, resourceVersion, phase and GPUs.
    shown: Vec<(Position, String, &'static str, u64)>,
    /// Whether rows past the last shown are on later pages (a new row after it is not shown).
    more: bool,
}

/// What a change does to an open page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    /// A row it shows changed in place: send the row; `recount` when the counts change too.
    Row { recount: bool },
    /// Which rows it shows changed (one came, left or moved): send the page again.
    Rows,
    /// Only its counts may have changed.
    Counts,
    /// Nothing it shows.
    Nothing,
}

impl Window {
    /// The window of `view` showing `page`.
    pub fn new(view: View, page: &Page) -> Window {
        let shown = page
            .items
            .iter()
            .map(|r| {
                let place = Position::of(r, view.order);
                (place, r.resource_version.clone(), r.phase.label(), r.gpus_desired)
            })
            .collect();
        Window { view, shown, more: page.counts.next.is_some() }
    }

    pub fn view(&self) -> &View {
        &self.view
    }

    /// Whether `page` shows the same rows, as they were, as this window.
    pub fn shows(&self, page: &Page) -> bool {
        self.shown.len() == page.items.len()
            && self.shown.iter().zip(&page.items).all(|((place, version, ..), row)| {
                place.is(&row.namespace, &row.name) && *version == row.resource_version
            })
    }

    /// What `row`, created or changed, does to the page.
    pub fn upsert(&self, row: &ClusterSummary) -> Touch {
        let place = Position::of(row, self.view.order);
        // A change's row has no search text made: it is made here only if a free text asks.
        let matches = self.view.filter.matches(row, || Cow::Owned(search_text(row)));
        let belongs = matches
            && self.view.filter.in_phase(row)
            && self.view.after.as_ref().is_none_or(|after| place > *after)
            && (!self.more || self.shown.last().is_none_or(|(last, ..)| place <= *last));
        let shown = self.shown.iter().find(|(p, ..)| p.is(&row.namespace, &row.name));
        match (shown, belongs) {
            (Some((was, _, phase, gpus)), true) if *was == place => {
                Touch::Row { recount: *phase != row.phase.label() || *gpus != row.gpus_desired }
            }
            (None, false) if matches => Touch::Counts,
            (None, false) => Touch::Nothing,
            _ => Touch::Rows,
        }
    }

    /// What deleting a cluster does to the page.
    pub fn delete(&self, namespace: &str, name: &str) -> Touch {
        match self.shown.iter().any(|(p, ..)| p.is(namespace, name)) {
            true => Touch::Rows,
            false => Touch::Counts,
        }
    }

    /// Notes that a row it shows changed in place.
    pub fn replaced(&mut self, row: &ClusterSummary) {
        if let Some(shown) = self.shown.iter_mut().find(|(p, ..)| p.is(&row.namespace, &row.name)) {
            (shown.1, shown.2, shown.3) =
                (row.resource_version.clone(), row.phase.label(), row.gpus_desired);
        }
    }
}

#[cfg(test)]
mod tests {
    use platform::ClusterPhase;

    use super::*;

    fn row(namespace: &str, name: &str, team: &str, created: i64, gpus: u64) -> ClusterSummary {
        ClusterSummary {
            namespace: namespace.into(),
            name: name.into(),
            uid: format!("{namespace}-{name}"),
            resource_version: "1".into(),
            phase: ClusterPhase::Ready,
            workers_ready: 1,
            workers_desired: 1,
            gpus_desired: gpus,
            created_at: created,
            team: team.into(),
            owner: "alice".into(),
            template: "gpu-small".into(),
            pipeline: String::new(),
            run: String::new(),
            may_delete: false,
            context: String::new(),
        }
    }

    fn page_of(view: &View, rows: &[ClusterSummary]) -> Page {
        let texts: Vec<String> = rows.iter().map(search_text).collect();
        view.page(rows.iter().zip(texts.iter().map(String::as_str)))
    }

    fn view(filter: Filter, order: Order, limit: usize) -> View {
        View::new(filter, order, limit, None).unwrap()
    }

    #[test]
    fn several_kubernetes_clusters_page_together_each_row_once_in_order() {
        // The same namespace and names on both, the newest order mixing them.
        let east: Vec<_> = (0..5).map(|i| row("ml", &format!("c{i}"), "v", 10 * i, 0)).collect();
        let west: Vec<_> =
            (0..4).map(|i| row("ml", &format!("c{i}"), "v", 10 * i + 5, 0)).collect();
        for order in [Order::Name, Order::Newest] {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let all = View::new(Filter::default(), order, 3, cursor.as_deref()).unwrap();
                let pages = [("east", &east), ("west", &west)]
                    .map(|(context, rows)| {
                        (context.to_owned(), page_of(&all.for_context(context), rows))
                    })
                    .into();
                let merged = merge(&all, pages);
                assert_eq!(merged.counts.total, 9, "counts are over both");
                assert!(merged.items.len() <= 3);
                seen.extend(merged.items.into_iter().map(|r| format!("{}/{}", r.context, r.name)));
                match merged.counts.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            let expected: Vec<String> = match order {
                Order::Name => (0..5)
                    .flat_map(|i| ["east", "west"].map(|c| format!("{c}/c{i}")))
                    .filter(|r| r != "west/c4")
                    .collect(),
                _ => (0..5)
                    .rev()
                    .flat_map(|i| ["west", "east"].map(|c| format!("{c}/c{i}")))
                    .filter(|r| r != "west/c4")
                    .collect(),
            };
            assert_eq!(seen, expected, "{order:?}");
        }
    }

    #[test]
    fn free_text_matches_within_one_field_in_any_case() {
        let r = row("ml", "Alpha", "vision", 0, 0);
        let text = |t: &str| Filter { text: Some(t.to_lowercase()), ..Filter::default() };
        let search = || Cow::Owned(search_text(&r));
        assert!(text("ALP").matches(&r, search));
        assert!(text("gpu-sm").matches(&r, search), "the template");
        assert!(!text("alpha\nvision").matches(&r, search), "not across fields");
    }

    #[test]
    fn a_change_to_a_shown_row_is_sent_alone_and_one_that_moves_rows_resends_the_page() {
        let rows: Vec<_> =
            (0..5).map(|i| row("ml", &format!("c{i}"), "vision", i, i as u64)).collect();
        let by_name = view(Filter::default(), Order::Name, 3);
        let page = page_of(&by_name, &rows);
        assert_eq!(page.counts.next.as_deref(), Some("0:ml:c2"));
        let window = Window::new(by_name, &page);

        let mut changed = rows[1].clone();
        changed.workers_ready = 0;
        changed.resource_version = "2".into();
        assert_eq!(window.upsert(&changed), Touch::Row { recount: false }, "in place");
        changed.phase = ClusterPhase::Suspended;
        assert_eq!(window.upsert(&changed), Touch::Row { recount: true }, "phase counts change");
        assert_eq!(window.upsert(&rows[4]), Touch::Counts, "past the page");
        assert_eq!(window.upsert(&row("ml", "b", "vision", 9, 0)), Touch::Rows, "a new row on it");
        assert_eq!(window.upsert(&row("zz", "a", "vision", 9, 0)), Touch::Counts);
        assert_eq!(window.delete("ml", "c0"), Touch::Rows);
        assert_eq!(window.delete("ml", "c4"), Touch::Counts);

        // By GPUs: a row whose GPUs change moves.
        let by_gpus = view(Filter::default(), Order::Gpus, 3);
        let window = Window::new(by_gpus.clone(), &page_of(&by_gpus, &rows));
        let mut scaled = rows[3].clone();
        scaled.gpus_desired = 0;
        assert_eq!(window.upsert(&scaled), Touch::Rows, "moved off the page");

        // A filter: rows that do not match touch nothing.
        let vision =
            view(Filter { team: Some("vision".into()), ..Filter::default() }, Order::Name, 10);
        let window = Window::new(vision.clone(), &page_of(&vision, &rows));
        assert_eq!(window.upsert(&row("ml", "x", "speech", 0, 0)), Touch::Nothing);
        let mut left = rows[0].clone();
        left.team = "speech".into();
        assert_eq!(window.upsert(&left), Touch::Rows, "a shown row that no longer matches");
    }

    #[test]
    fn a_page_counts_phases_apart_from_its_phase_filter_and_gpus_of_what_it_matches() {
        let mut rows: Vec<_> =
            (0..4).map(|i| row("ml", &format!("c{i}"), "vision", i, 2)).collect();
        rows[0].phase = ClusterPhase::Suspended;
        rows[0].gpus_desired = 0;
        let ready = view(Filter { phase: Some("Ready"), ..Filter::default() }, Order::Name, 2);
        let page = page_of(&ready, &rows);
        assert_eq!(page.counts.total, 3);
        assert_eq!(page.counts.gpus, 6);
        assert_eq!(page.counts.phases, [0, 3, 0, 1, 0]);
        assert_eq!(page.items.len(), 2);
        assert!(Window::new(ready, &page).shows(&page));
    }
}
