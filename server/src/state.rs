//! What handlers can reach, as one cheap-to-clone [`AppState`] from which each handler takes
//! only the part it uses (`State<Clusters>`, `State<Actions>`, ...: axum's `FromRef`).
//!
//! Every field is a handle on something owned elsewhere: the sources fill theirs in the
//! background ([`crate::sources`], started by [`crate::start`]); nothing here starts a task.

use std::sync::Arc;

use axum::extract::FromRef;
use kube::Client;
use leptos::config::LeptosOptions;
use tokio_util::sync::CancellationToken;

use crate::api::actions::Actions;
use crate::api::gpus::Gpus;
use crate::api::logs::{Downloads, Logs};
use crate::api::ops::{Metered, Readiness};
use crate::api::pages::Pages;
use crate::contexts::Fleet;
use crate::gpus::GpuMetrics;
use crate::history::History;
use crate::lifecycle::{IdlePlan, Leadership, LeaseTimeout};
use crate::logs::LogStreams;
use crate::metrics::RequestTimes;
use crate::overview::Overviews;
use crate::ray::{Dashboards, RayMetrics};
use crate::security::{
    Access, ActionLimit, Audit, Authn, CsrfKey, Identify, ServedAs, StreamLimit, TokenReviews,
};
use crate::sources::{Clusters, NodeCapacity, RayJobs, Templates};
use crate::supervisor::SourceStatus;

/// Everything a handler may ask for.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// How long answers took, by route.
    pub requests: RequestTimes,
    /// Leptos settings: site root and output names.
    pub leptos: LeptosOptions,
    /// raydar's own Kubernetes client: it reads, and impersonates users.
    pub kube: Client,
    /// The watched RayClusters and the feed of their changes.
    pub clusters: Clusters,
    /// The watched RayClusterTemplates.
    pub templates: Templates,
    /// The watched RayJobs.
    pub rayjobs: RayJobs,
    /// Nodes, their pods' requests and quotas: what launches are judged against.
    pub capacity: NodeCapacity,
    /// What raydar remembers of clusters, past and present.
    pub history: History,
    /// Whether this replica is the one that acts on clusters.
    pub leadership: Leadership,
    /// How long a pipeline's lease holds unrenewed.
    pub lease_timeout: LeaseTimeout,
    /// Pods, events and Ray's view, for cluster pages.
    pub overviews: Overviews,
    /// Reads Ray dashboards: GET only, on an allowlist.
    pub dashboards: Dashboards,
    /// Ray's own metrics of each head.
    pub ray_metrics: RayMetrics,
    /// Live job and pod logs, one upstream per log shared by its viewers.
    pub logs: LogStreams,
    /// GPU history and what pages make of it.
    pub gpus: GpuMetrics,
    /// The clusters idle by their template's policy, and what is done with them.
    pub idle: IdlePlan,
    /// Where identities come from.
    pub authn: Arc<Authn>,
    /// Bearer tokens' users, as the apiserver says.
    pub tokens: TokenReviews,
    /// The names browsers may reach raydar under.
    pub served_as: Arc<ServedAs>,
    /// Kubernetes as each user: their clients and what they may do.
    pub access: Access,
    /// Signs the CSRF tokens of pages.
    pub csrf: CsrfKey,
    /// Actions per user per minute.
    pub limit: ActionLimit,
    /// Records who did what.
    pub audit: Audit,
    /// How every background source is.
    pub sources: SourceStatus,
    /// Cancelled when raydar shuts down: open event streams end with a `reconnect` event.
    pub shutdown: CancellationToken,
    /// Open event streams, in all and per person.
    pub streams: StreamLimit,
    /// Logs being read for download.
    pub downloads: Downloads,
    /// How long a client may take to send a request's headers (the listener's limit, not a
    /// handler's).
    pub header_timeout: std::time::Duration,
    /// Every Kubernetes cluster served, for what spans them.
    pub fleet: Fleet,
}

impl FromRef<AppState> for Actions {
    fn from_ref(s: &AppState) -> Self {
        Actions {
            templates: s.templates.clone(),
            clusters: s.clusters.clone(),
            access: s.access.clone(),
            limit: s.limit.clone(),
            audit: s.audit.clone(),
            history: s.history.sink.clone(),
            capacity: s.capacity.clone(),
        }
    }
}

impl FromRef<AppState> for Logs {
    fn from_ref(s: &AppState) -> Self {
        Logs {
            streams: s.logs.clone(),
            downloads: s.downloads.clone(),
            dashboards: s.dashboards.clone(),
            kube: s.kube.clone(),
            shutdown: s.shutdown.clone(),
        }
    }
}

impl FromRef<AppState> for Gpus {
    fn from_ref(s: &AppState) -> Self {
        Gpus {
            metrics: s.gpus.clone(),
            ray: s.ray_metrics.clone(),
            clusters: s.clusters.clone(),
            sources: s.sources.clone(),
            idle: s.idle.clone(),
        }
    }
}

impl FromRef<AppState> for Pages {
    fn from_ref(s: &AppState) -> Self {
        Pages {
            clusters: s.clusters.clone(),
            templates: s.templates.clone(),
            gpus: Gpus::from_ref(s),
            csrf: s.csrf.clone(),
            kube: s.kube.clone(),
            fleet: s.fleet.clone(),
        }
    }
}

impl FromRef<AppState> for Identify {
    fn from_ref(s: &AppState) -> Self {
        Identify { authn: s.authn.clone(), tokens: s.tokens.clone() }
    }
}

impl FromRef<AppState> for Readiness {
    fn from_ref(s: &AppState) -> Self {
        Readiness {
            clusters: s.clusters.clone(),
            templates: s.templates.clone(),
            pods: s.overviews.pods().clone(),
            rayjobs: s.rayjobs.clone(),
            sources: s.sources.clone(),
        }
    }
}

impl FromRef<AppState> for Metered {
    fn from_ref(s: &AppState) -> Self {
        Metered {
            clusters: s.clusters.clone(),
            templates: s.templates.clone(),
            pods: s.overviews.pods().clone(),
            logs: s.logs.clone(),
            sources: s.sources.clone(),
            streams: s.streams.clone(),
            idle: s.idle.clone(),
            rayjobs: s.rayjobs.clone(),
            requests: s.requests.clone(),
            database: s.history.store.timings().clone(),
            lifecycle: s.audit.by_raydar_counts().clone(),
            fleet: s.fleet.clone(),
        }
    }
}
