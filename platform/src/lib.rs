//! The parts of raydar that the server, the `raydar` CLI and pipelines share.
//!
//! Everything here is pure and synchronous: no tokio, no network, so it is tested as plain
//! functions and can be compiled for the browser.
//!
//! # Layout
//!
//! - [`status`]: the cluster status model: the phase users see ([`ClusterPhase`], following
//!   KubeRay's dashboard rule) and the row of the cluster list ([`ClusterSummary`]).
//! - [`ansi`]: colour escape sequences in log lines, as styled runs of plain text.
//! - [`overview`]: what a cluster's page shows below the summary: pods, conditions, events, and
//!   Ray's nodes and jobs ([`overview::ClusterOverview`]).
//! - [`dashboard`]: Ray dashboard answers read into the overview's nodes and jobs (feature
//!   `dashboard`).
//! - [`kuberay`]: the KubeRay `RayCluster` resource (ray.io/v1), the fields raydar reads
//!   (feature `kube`).
//! - [`history`]: what raydar remembers of clusters after they are gone, as its history API
//!   answers.
//! - [`capacity`]: whether a launch's pods fit the nodes and the namespace's quota, before it is
//!   made (feature `kube`).
//! - [`lifecycle`]: a cluster's lifetime from its annotations: when to warn, when to act, how far
//!   an extension may go (feature `kube`).
//! - [`rayjob`]: the KubeRay `RayJob` resource as a row of the RayJob list.
//! - [`gpu`]: GPU metrics as dcgm-exporter serves them, one reading per GPU, attributed to the
//!   RayCluster whose pod holds it (feature `metrics`).
//! - [`utilization`]: GPU use as pages show it: a cluster's GPUs, chart windows, the fleet's
//!   requested, busy and idle GPUs by cluster and team.
//! - [`template`]: the template engine: `RayClusterTemplate`s with typed parameters, rendered
//!   into RayCluster manifests under the platform's policy (the parameter schema always, the rest
//!   with feature `kube`).
//! - [`waiting`]: a cluster's start stage by stage (created → scheduled → running → Ray head →
//!   workers → Ready), how long each took, and what holds the one it is in.

pub mod ansi;
#[cfg(feature = "kube")]
pub mod capacity;
#[cfg(feature = "dashboard")]
pub mod dashboard;
#[cfg(feature = "metrics")]
pub mod gpu;
pub mod history;
#[cfg(feature = "kube")]
pub mod kuberay;
#[cfg(feature = "kube")]
pub mod lifecycle;
pub mod overview;
pub mod rayjob;
pub mod status;
pub mod template;
pub mod utilization;
pub mod waiting;

pub use status::{
    ClusterCondition, ClusterDetail, ClusterPhase, ClusterSummary, Stale, WorkerGroupSummary,
};
#[cfg(feature = "kube")]
pub use template::{
    render, validate_template, Error as TemplateError, Identity, LaunchRequest, RayClusterTemplate,
};
pub use template::{FieldError, TemplateForm, TemplateParameter};
