//! The routes' handlers, one file per resource; each asks only for the state it uses.
//!
//! # Layout
//! - [`clusters`]: the list, one cluster, its page's overview, the push stream of changes.
//! - [`contexts`]: the Kubernetes clusters served, and the list over all of them.
//! - [`actions`]: launch, suspend, resume, scale, tear down, as the requester.
//! - [`templates`]: the templates clusters are launched from.
//! - [`leases`]: pipeline leases, renewed.
//! - [`jobs`]: a cluster's Ray jobs, typed.
//! - [`rayjobs`]: KubeRay RayJobs: the list, one, a job submitted to a cluster.
//! - [`logs`]: job and pod logs, live or as a download.
//! - [`gpus`]: a cluster's GPUs and charts, the fleet.
//! - [`starts`]: the fleet's waiting clusters by reason; time to Ready per template.
//! - [`history`]: clusters past and present, and one cluster's record, after it is gone too.
//! - [`ray`]: allowlisted reads of a Ray dashboard.
//! - [`ops`]: health, readiness, metrics, the session.
//! - [`pages`]: what Leptos pages and server functions find in context.
//! - [`doc`]: the OpenAPI description's root and shared parameters.

pub mod actions;
pub mod clusters;
pub mod contexts;
pub mod doc;
pub mod gpus;
pub mod history;
pub mod jobs;
pub mod leases;
pub mod logs;
pub mod ops;
pub mod pages;
pub mod ray;
pub mod rayjobs;
pub mod starts;
pub mod templates;
