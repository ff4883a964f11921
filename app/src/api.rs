//! Server functions the pages load their data with, and the types they exchange.

use leptos::prelude::*;
use platform::ClusterSummary;
use serde::{Deserialize, Serialize};

/// Every RayCluster the server watches, sorted by namespace and name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterList {
    /// The rows of the cluster list.
    pub clusters: Vec<ClusterSummary>,
    /// The server's clock when the list was taken, seconds since the Unix epoch; ages are
    /// computed against it so that server and browser render the same text.
    pub now: i64,
}

/// Names a RayCluster that was deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRef {
    /// Kubernetes namespace.
    pub namespace: String,
    /// RayCluster name.
    pub name: String,
}

/// Names of the events on the cluster push stream (`/api/v1/clusters/events`).
pub mod push {
    /// The whole list ([`super::ClusterList`]): sent first, and again whenever the stream may
    /// have missed changes (a relist upstream, or the browser falling behind).
    pub const SNAPSHOT: &str = "snapshot";
    /// A cluster was created or changed ([`platform::ClusterSummary`]).
    pub const UPSERT: &str = "upsert";
    /// A cluster was deleted ([`super::ClusterRef`]).
    pub const DELETE: &str = "delete";
    /// Where the stream is served.
    pub const PATH: &str = "/api/v1/clusters/events";
}

/// The cluster list, as the server's watch sees it now.
#[server(prefix = "/_sfn", endpoint = "clusters")]
pub async fn list_clusters() -> Result<ClusterList, ServerFnError> {
    Ok(ssr::directory()?.cluster_list())
}

/// Server-only side of the server functions: what the server provides through context.
#[cfg(feature = "ssr")]
pub mod ssr {
    use std::sync::Arc;

    use leptos::prelude::*;

    use super::ClusterList;

    /// What the server knows about RayClusters, as the pages read it.
    pub trait ClusterDirectory: Send + Sync + 'static {
        /// The current cluster list.
        fn cluster_list(&self) -> ClusterList;
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
        use_context::<Directory>()
            .ok_or_else(|| ServerFnError::new("raydar-server did not provide the cluster directory"))
    }
}
