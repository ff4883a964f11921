//! The parts of raydar that the server, the `raydar` CLI and pipelines share.
//!
//! Everything here is pure and synchronous: no tokio, no network, so it is tested as plain
//! functions and can be compiled for the browser.
//!
//! # Layout
//!
//! - [`status`]: the cluster status model: the phase users see ([`ClusterPhase`], following
//!   KubeRay's dashboard rule) and the row of the cluster list ([`ClusterSummary`]).
//! - [`kuberay`]: the KubeRay `RayCluster` resource (ray.io/v1), the fields raydar reads
//!   (feature `kube`).

pub mod status;
#[cfg(feature = "kube")]
pub mod kuberay;

pub use status::{ClusterCondition, ClusterPhase, ClusterSummary};
