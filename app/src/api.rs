//! What the pages exchange with the server: the types, the server functions the lazy pages load
//! their data with, the push stream's event names and the REST paths the browser writes to.

use leptos::prelude::*;
use platform::{ClusterDetail, ClusterSummary, TemplateForm};
use serde::{Deserialize, Serialize};

/// A page of the cluster list: the rows a person asked for (filters, order and page in the URL),
/// how many match, and the view's parameters, from which the page makes its links.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterList {
    /// The rows of the page, in the view's order.
    pub clusters: Vec<ClusterSummary>,
    /// The server's clock when the list was taken, seconds since the Unix epoch; ages are
    /// computed against it so that server and browser render the same text.
    pub now: i64,
    /// How many clusters match, over all pages.
    #[serde(default)]
    pub counts: ListCounts,
    /// The view's parameters as the URL gives them (`team`, `q`, `sort`, …), in a fixed order:
    /// a `key\tvalue` line each (a string rather than a list: less for the browser to decode).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub view: String,
    /// Why the URL's parameters were refused (the page is then empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Set while the apiserver does not answer: since when (Unix seconds) the list is what it
    /// last said. (Two plain fields rather than a [`platform::Stale`]: one struct type fewer
    /// for the browser to read, on a page whose every byte counts.)
    #[serde(default, rename = "staleSince", skip_serializing_if = "Option::is_none")]
    pub stale_since: Option<i64>,
    /// And why.
    #[serde(default, rename = "staleReason", skip_serializing_if = "Option::is_none")]
    pub stale_reason: Option<String>,
    /// The Kubernetes clusters raydar serves, when it serves several (each row then names its
    /// own): a line each, home first, its name and `\tstale` while its Kubernetes API does not
    /// answer (its rows are what it last said). Empty when it serves one. (A string, as `view`.)
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub contexts: String,
}

impl ClusterList {
    /// The rows of a page and what matches, as of `now`, stale if `stale` says so.
    pub fn new(
        clusters: Vec<ClusterSummary>,
        counts: ListCounts,
        now: i64,
        stale: Option<platform::Stale>,
    ) -> Self {
        let (stale_since, stale_reason) = stale.map(|s| (s.since, s.reason)).unzip();
        ClusterList { clusters, now, counts, stale_since, stale_reason, ..ClusterList::default() }
    }

    /// Since when and why the list is not current, if it is not.
    pub fn stale(&self) -> Option<platform::Stale> {
        let (since, reason) = (self.stale_since?, self.stale_reason.clone()?);
        Some(platform::Stale { since, reason })
    }
}

/// Phases as the list shows them, in the order [`ListCounts::phases`] counts them.
pub const PHASES: [&str; 5] = ["Provisioning", "Ready", "Suspending", "Suspended", "Failed"];

/// How many clusters a list's filters match: sent with every page, and alone (`counts` on the
/// push stream) when only they changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListCounts {
    /// Clusters that match, on every page.
    pub total: u64,
    /// The GPUs they request (a suspended cluster requests none).
    pub gpus: u64,
    /// Clusters that match in each of [`PHASES`], the phase filter aside.
    pub phases: [u64; 5],
    /// The `cursor` of the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Names of the events on the cluster push stream (`/api/v1/clusters/events`).
pub mod push {
    /// The page ([`super::ClusterList`]): sent first, and again whenever which rows it shows
    /// changed (one came, left or moved) or the stream may have missed changes (a relist
    /// upstream, or the browser falling behind), and when the apiserver stops answering (marked
    /// stale until the next one).
    pub const SNAPSHOT: &str = "snapshot";
    /// A cluster the page shows changed in place ([`platform::ClusterSummary`]).
    pub const UPSERT: &str = "upsert";
    /// Only the counts changed ([`super::ListCounts`]).
    pub const COUNTS: &str = "counts";
    /// Where the stream is served.
    pub const PATH: &str = "/api/v1/clusters/events";
    /// A cluster page's lower half ([`platform::overview::ClusterOverview`]), on
    /// [`overview_path`]: sent first, then whenever it changes.
    pub const OVERVIEW: &str = "overview";
    /// A cluster's GPUs ([`platform::utilization::ClusterGpus`]), on [`gpus_path`]: sent first,
    /// then after every scrape that changed them.
    pub const GPUS: &str = "gpus";
    /// The fleet ([`platform::utilization::Fleet`]), on [`FLEET_PATH`]: sent first, then
    /// whenever a scrape or a cluster changed it.
    pub const FLEET: &str = "fleet";
    /// The cluster a page follows is gone; the stream ends.
    pub const GONE: &str = "gone";
    /// Where the fleet's stream is served.
    pub const FLEET_PATH: &str = "/api/v1/gpus/events";
    /// The RayJobs the requester may see ([`platform::rayjob::RayJobList`]), on
    /// [`RAYJOBS_PATH`]: sent first, then whenever one of them changed.
    pub const RAYJOBS: &str = "rayjobs";
    /// Where the RayJob list's stream is served.
    pub const RAYJOBS_PATH: &str = "/api/v1/rayjobs/events";

    /// Where a cluster's overview stream is served.
    pub fn overview_path(namespace: &str, name: &str) -> String {
        format!("/api/v1/clusters/{namespace}/{name}/overview/events")
    }

    /// Where a cluster's GPU stream is served.
    pub fn gpus_path(namespace: &str, name: &str) -> String {
        format!("/api/v1/clusters/{namespace}/{name}/gpus/events")
    }
}

/// Who is signed in, as the server took them to be, and the token their writes carry. The
/// server puts it in the page's head (meta tags); the browser reads it from there.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The user name.
    pub user: String,
    /// Their team (first group), possibly empty.
    pub team: String,
    /// The CSRF token: the `X-CSRF-Token` header of every write.
    pub csrf: String,
}

impl Session {
    /// The signed-in user: on the server from the request, in the browser from the page's meta
    /// tags (which the server wrote), so both render the same.
    pub fn current() -> Option<Session> {
        #[cfg(feature = "ssr")]
        {
            use_context::<Session>()
        }
        #[cfg(not(feature = "ssr"))]
        {
            let meta = |name: &str| -> Option<String> {
                #[cfg(feature = "hydrate")]
                {
                    web_sys::window()?
                        .document()?
                        .query_selector(&format!("meta[name={name}]"))
                        .ok()??
                        .get_attribute("content")
                }
                #[cfg(not(feature = "hydrate"))]
                {
                    let _ = name;
                    None
                }
            };
            Some(Session {
                user: meta("raydar-user")?,
                team: meta("raydar-team").unwrap_or_default(),
                csrf: meta("csrf-token")?,
            })
        }
    }
}

/// What the launch form is generated from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LaunchForms {
    /// Every RayClusterTemplate, sorted by name.
    pub templates: Vec<TemplateForm>,
    /// Who a launch is made as: the server's identity of the requester, shown, never sent back.
    pub owner: String,
    /// The requester's team, set as the `raydar.dev/team` label.
    pub team: String,
    /// The namespace the form starts with.
    pub namespace: String,
    /// The Kubernetes cluster the launch goes to, when raydar serves several; empty otherwise.
    #[serde(default)]
    pub context: String,
    /// The Kubernetes clusters raydar serves, when several (each with its own templates).
    #[serde(default)]
    pub contexts: Vec<String>,
}

/// The templates a cluster can be launched from, and who would launch it.
#[server(prefix = "/_sfn", endpoint = "launch-forms")]
pub async fn launch_templates() -> Result<LaunchForms, ServerFnError> {
    Ok(ssr::directory()?.launch_forms())
}

/// One cluster for its page; `None` once it is gone.
#[server(prefix = "/_sfn", endpoint = "cluster")]
pub async fn read_cluster(
    namespace: String,
    name: String,
) -> Result<Option<ClusterDetail>, ServerFnError> {
    Ok(ssr::directory()?.cluster_detail(&namespace, &name))
}

/// The fleet page: GPUs requested, held, busy and idle, by cluster and team.
#[server(prefix = "/_sfn", endpoint = "fleet")]
pub async fn read_fleet() -> Result<platform::utilization::Fleet, ServerFnError> {
    Ok(ssr::directory()?.fleet().await)
}

/// What `?context=` takes for every Kubernetes cluster at once (the lists only).
pub const ALL_CONTEXTS: &str = "*";

/// The Kubernetes cluster of the page being rendered, as its URL names it (`?context=`):
/// provided by the server, read from the address bar in the browser, so both render the same.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PageContext(pub String);

impl PageContext {
    /// The page's Kubernetes cluster; empty when its URL names none (the home one) or all.
    pub fn current() -> String {
        #[cfg(feature = "ssr")]
        {
            use_context::<PageContext>().map(|c| c.0).unwrap_or_default()
        }
        #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
        {
            Self::of(
                &web_sys::window().and_then(|w| w.location().search().ok()).unwrap_or_default(),
            )
        }
        #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
        {
            String::new()
        }
    }

    /// The `context` of a URL's query (`?a=b&context=west`), if it names one Kubernetes
    /// cluster by a name that can be one (a DNS label: nothing in it to escape).
    pub fn of(query: &str) -> String {
        let value =
            query.trim_start_matches('?').split('&').find_map(|p| p.strip_prefix("context="));
        let label =
            |v: &&str| v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        value.filter(|v| !v.is_empty()).filter(label).unwrap_or_default().to_owned()
    }
}

/// Where the browser sends launches and day-2 changes: the REST API, so the page and scripts
/// share one write path with one set of checks.
pub mod rest {
    /// `POST` launches (`?dryRun=true` previews).
    pub const CLUSTERS: &str = "/api/v1/clusters";

    /// `DELETE` tears down, `PATCH` suspends, resumes or scales.
    pub fn cluster(namespace: &str, name: &str) -> String {
        format!("{CLUSTERS}/{namespace}/{name}")
    }

    /// The page of one cluster.
    pub fn page(namespace: &str, name: &str) -> String {
        format!("/clusters/{namespace}/{name}")
    }

    /// `url` on the Kubernetes cluster the page is of ([`super::PageContext`]): what a page
    /// links to, reads and writes stays on its Kubernetes cluster.
    pub fn here(url: String) -> String {
        in_context(url, &super::PageContext::current())
    }

    /// `url` on the Kubernetes cluster called `context` (its `context` query parameter), or as
    /// it is when `context` is empty (the home one, or the only one) or `url` names one already.
    /// Context names are DNS labels (or `*`): nothing to encode.
    pub fn in_context(url: String, context: &str) -> String {
        let named = url.contains("?context=") || url.contains("&context=");
        match (context.is_empty() || named, url.contains('?')) {
            (true, _) => url,
            (false, true) => format!("{url}&context={context}"),
            (false, false) => format!("{url}?context={context}"),
        }
    }
}

/// Server-only side of the server functions: what the server provides through context.
#[cfg(feature = "ssr")]
pub mod ssr {
    use std::sync::Arc;

    use leptos::prelude::*;

    use platform::ClusterDetail;

    use super::{ClusterList, LaunchForms};

    /// What the server knows about RayClusters and templates, as the pages read it.
    pub trait ClusterDirectory: Send + Sync + 'static {
        /// The current cluster list.
        fn cluster_list(&self) -> ClusterList;
        /// One cluster, if it exists.
        fn cluster_detail(&self, namespace: &str, name: &str) -> Option<ClusterDetail>;
        /// The launch form's templates and the requester's identity.
        fn launch_forms(&self) -> LaunchForms;
        /// GPUs by cluster and team, over the clusters the requester may see (and, with
        /// several Kubernetes clusters, each one's totals: it may ask each who may see what).
        fn fleet(
            &self,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = platform::utilization::Fleet> + Send>>;
    }

    /// The server's [`ClusterDirectory`], provided as Leptos context.
    #[derive(Clone)]
    pub struct Directory(pub Arc<dyn ClusterDirectory>);

    impl std::ops::Deref for Directory {
        type Target = dyn ClusterDirectory;
        fn deref(&self) -> &Self::Target {
            &*self.0
        }
    }

    /// The directory from context, or an error naming what the server forgot to provide.
    pub fn directory() -> Result<Directory, ServerFnError> {
        use_context::<Directory>().ok_or_else(|| {
            ServerFnError::new("raydar-server did not provide the cluster directory")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::rest::in_context;
    use super::PageContext;

    #[test]
    fn a_url_names_its_kubernetes_cluster_once() {
        assert_eq!(in_context("/clusters/ml/a".into(), "west"), "/clusters/ml/a?context=west");
        assert_eq!(
            in_context("/x.svg?theme=dark".into(), "west"),
            "/x.svg?theme=dark&context=west"
        );
        assert_eq!(in_context("/clusters/ml/a".into(), ""), "/clusters/ml/a", "the home one");
        assert_eq!(in_context("/?context=*".into(), "west"), "/?context=*", "named already");
    }

    #[test]
    fn a_page_is_of_the_kubernetes_cluster_its_url_names_if_it_can_be_one() {
        assert_eq!(PageContext::of("?namespace=ml&context=west-2"), "west-2");
        assert_eq!(PageContext::of("context=east"), "east");
        assert_eq!(PageContext::of("?context=*"), "", "all of them: none in particular");
        assert_eq!(PageContext::of("?context=%22%3E"), "", "not a name");
        assert_eq!(PageContext::of("?context=a\"b"), "");
        assert_eq!(PageContext::of(""), "");
    }
}
