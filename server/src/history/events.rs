//! The Kubernetes Events of Ray clusters and their pods, into history as they happen: the
//! apiserver keeps an Event an hour, history keeps it as long as its cluster's record.
//!
//! One watch of Events in every namespace, kept as nothing but records: an Event about a
//! RayCluster names the cluster's uid itself; one about a pod is the cluster's when the pod is a
//! Ray pod raydar watches (`ray.io/cluster`). Any other Event is passed over.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use tokio_util::sync::CancellationToken;

use super::{Record, Sink};
use crate::config::Scope;
use crate::overview::event_row;
use crate::sources::{typed_api, Clusters, RayPods};

/// The Events source: cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    client: Client,
    scope: Scope,
    sink: Sink,
    clusters: Clusters,
    pods: RayPods,
}

impl EventLog {
    /// Records into `sink` the Events of `clusters` and of `pods`, in the namespaces of `scope`.
    pub fn new(
        client: Client,
        scope: Scope,
        sink: Sink,
        clusters: Clusters,
        pods: RayPods,
    ) -> EventLog {
        EventLog { client, scope, sink, clusters, pods }
    }

    /// The source: follows Events until `shutdown`; a failed watch is retried with backoff.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), String> {
        let parts = self.scope.parts();
        let apis = parts.into_iter().map(|ns| typed_api::<Event>(&self.client, ns));
        let events = futures::stream::select_all(apis.map(|api| {
            watcher(api, watcher::Config::default().page_size(500))
                .default_backoff()
                .applied_objects()
                .boxed()
        }));
        tokio::pin!(events);
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                event = events.next() => event,
            };
            match event {
                None => return Err("the Events watch ended".into()),
                Some(Err(e)) => tracing::warn!("history: the Events watch failed, retrying: {e}"),
                Some(Ok(event)) => self.record(event),
            }
        }
    }

    /// Records `event` when it is about a Ray cluster or one of its pods.
    fn record(&self, event: Event) {
        let object = &event.involved_object;
        let namespace = object.namespace.as_deref().unwrap_or_default();
        let name = object.name.as_deref().unwrap_or_default();
        let cluster = match object.kind.as_deref() {
            Some("RayCluster") => object.uid.clone(),
            Some("Pod") => self
                .pods
                .cluster_of(namespace, name)
                .and_then(|cluster| self.clusters.uid(namespace, &cluster)),
            _ => None,
        };
        let (Some(cluster), Some(uid)) = (cluster, event.metadata.uid.clone()) else { return };
        let first_seen = event
            .first_timestamp
            .as_ref()
            .map(|t| t.0.as_second())
            .or(event.event_time.as_ref().map(|t| t.0.as_second()))
            .or(event.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second()))
            .unwrap_or(0);
        let row = event_row(event);
        self.sink.send(Record::Event { cluster, uid, row, first_seen });
    }
}
