//! raydar-server: watches KubeRay RayClusters and serves raydar's web UI, REST API and live
//! pushes from what it watched.
//!
//! Data flows one way: the Kubernetes watch feeds an in-memory store; pages and API handlers read
//! the store; changes reach browsers by server-sent events, never by the browser polling.
//!
//! # Layout
//!
//! - [`config`]: command-line and environment settings.
//! - [`auth`]: who is asking (an authenticating proxy's headers, or dev mode), Kubernetes clients
//!   that act as them, and what they may see (SelfSubjectAccessReview, cached).
//! - [`guard`]: web hardening: same-origin writes with a CSRF token, security headers, a per-user
//!   limit on actions.
//! - [`audit`]: who did what: a log line and an Event on the RayCluster for every action.
//! - [`clusters`]: the RayCluster watch, the store it fills and the feed of changes it publishes.
//! - [`gpus`]: GPU metrics: dcgm-exporter scraped into a bounded history and attributed to
//!   RayClusters, Ray's own metrics, a cluster's GPUs and the fleet's idle ones.
//! - [`charts`]: a cluster's GPU charts, drawn with plotters as SVG.
//! - [`templates`]: the RayClusterTemplate watch and the store launches render from.
//! - [`launch`]: launching (render, dry-run, server-side apply) and deleting RayClusters.
//! - [`logs`]: live job and pod logs: one upstream per log, shared by its viewers through a ring.
//! - [`overview`]: what a cluster's page shows below its summary: its pods (a watch), conditions,
//!   recent events and Ray's nodes and jobs (read in the background, cached briefly).
//! - [`push`]: the server-sent event stream of cluster changes that open pages follow.
//! - [`ray`]: reading Ray dashboards: GET only, on an allowlist, with timeouts and per-cluster
//!   limits.
//! - [`rest`]: the JSON API under `/api/v1`, health and readiness.
//! - [`watch`]: what the watches share: sync state, errors in words.
//! - [`web`]: the router: Leptos pages, server functions, static files, and the pieces above.

pub mod audit;
pub mod auth;
pub mod charts;
pub mod clusters;
pub mod config;
pub mod gpus;
pub mod guard;
pub mod launch;
pub mod logs;
pub mod overview;
pub mod push;
pub mod ray;
pub mod rest;
pub mod templates;
pub mod watch;
pub mod web;

pub use config::Config;
pub use web::{router, serve, AppState};

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable Kubernetes client configuration (kubeconfig or in-cluster).
    #[error(
        "cannot configure the Kubernetes client: {0} (set KUBECONFIG or run inside a cluster)"
    )]
    KubeConfig(#[source] kube::Error),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
