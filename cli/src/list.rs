//! `raydar ls`: the Ray clusters of a namespace or of every namespace, one row each; of one
//! kubeconfig context, or of every one (`--all-contexts`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kube::api::ListParams;
use kube::ResourceExt;
use platform::kuberay::RayCluster;
use platform::status::format_age;
use platform::template::{ANNOTATION_OWNER, LABEL_OWNER, LABEL_TEAM, LABEL_TEMPLATE};
use platform::{ClusterPhase, ClusterSummary};
use serde::Serialize;

use crate::args::{LsArgs, Output};
use crate::error::{Error, Result};
use crate::kuberay;
use crate::kubernetes::Kubernetes;
use crate::output::{print_json, print_text, table};

/// One Ray cluster as `ls` shows it: the platform's summary, and who launched it from what.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRow {
    /// The kubeconfig context (Kubernetes cluster) it is on, with `--all-contexts`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Phase, workers, GPUs, age: the row of raydar's cluster list.
    #[serde(flatten)]
    pub summary: ClusterSummary,
    /// Who launched it: the exact user (annotation), else the owner label; empty when raydar did
    /// not launch it.
    pub owner: String,
    /// The `raydar.dev/team` label.
    pub team: String,
    /// The template it was launched from (`raydar.dev/template`).
    pub template: String,
    /// Deletion has begun; the cluster goes once its pods are gone.
    pub deleting: bool,
}

impl ClusterRow {
    /// The row for a RayCluster.
    pub fn new(cluster: &RayCluster) -> Self {
        let label = |key: &str| cluster.labels().get(key).cloned().unwrap_or_default();
        let owner = cluster
            .annotations()
            .get(ANNOTATION_OWNER)
            .cloned()
            .unwrap_or_else(|| label(LABEL_OWNER));
        ClusterRow {
            context: None,
            summary: cluster.summary(),
            owner,
            team: label(LABEL_TEAM),
            template: label(LABEL_TEMPLATE),
            deleting: cluster.metadata.deletion_timestamp.is_some(),
        }
    }

    /// `namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.summary.namespace, self.summary.name)
    }

    /// The phase in a word, with KubeRay's reason when it failed; `Terminating` once deletion began.
    pub fn phase(&self) -> String {
        match &self.summary.phase {
            _ if self.deleting => "Terminating".to_owned(),
            ClusterPhase::Failed(reason) => format!("Failed({reason})"),
            phase => phase.label().to_owned(),
        }
    }

    /// Ready over wanted worker pods: `2/4`.
    pub fn workers(&self) -> String {
        format!("{}/{}", self.summary.workers_ready, self.summary.workers_desired)
    }

    /// The progress line `--wait` prints.
    pub fn progress(&self) -> String {
        format!("{}: {}, workers {} ready", self.id(), self.phase(), self.workers())
    }

    fn cells(&self, now: i64) -> Vec<String> {
        let dash = |s: &str| if s.is_empty() { "-".to_owned() } else { s.to_owned() };
        let s = &self.summary;
        let context = self.context.iter().cloned();
        context
            .chain([
                s.namespace.clone(),
                s.name.clone(),
                self.phase(),
                self.workers(),
                s.gpus_desired.to_string(),
                if s.created_at == 0 { "-".to_owned() } else { format_age(now - s.created_at) },
                dash(&self.owner),
                dash(&self.template),
            ])
            .collect()
    }
}

/// `raydar ls`.
pub async fn list(kubernetes: &Kubernetes, args: &LsArgs, output: Output) -> Result<()> {
    let (namespace, rows) = rows(kubernetes, args).await?;
    match output {
        Output::Json => print_json(&rows),
        Output::Text if rows.is_empty() => match &namespace {
            Some(ns) => eprintln!("No Ray clusters in namespace {ns}."),
            None => eprintln!("No Ray clusters in any namespace."),
        },
        Output::Text => print_text(&render_table(&rows, unix_now())),
    }
    Ok(())
}

/// `raydar ls --all-contexts`: every context of the kubeconfig asked at once, each within the
/// request timeout, so one that does not answer holds up none of the others; their rows are
/// printed together, then the ones that did not answer are the error.
pub async fn list_contexts(args: &LsArgs, request_timeout: Duration, output: Output) -> Result<()> {
    let names = crate::kubernetes::context_names()?;
    let asked = names.iter().map(|name| async move {
        let kubernetes = Kubernetes::connect(Some(name), request_timeout).await?;
        rows(&kubernetes, args).await
    });
    let mut listed = Vec::new();
    let mut unanswered = Vec::new();
    for (name, answer) in names.iter().zip(futures::future::join_all(asked).await) {
        match answer {
            Ok((_, rows)) => listed.extend(
                rows.into_iter().map(|row| ClusterRow { context: Some(name.clone()), ..row }),
            ),
            Err(e) => unanswered.push((name.clone(), e)),
        }
    }
    match output {
        Output::Json => print_json(&listed),
        Output::Text if listed.is_empty() => eprintln!("No Ray clusters in any context."),
        Output::Text => print_text(&render_table(&listed, unix_now())),
    }
    match unanswered.is_empty() {
        true => Ok(()),
        false => Err(Error::ContextsUnanswered(unanswered)),
    }
}

/// The clusters `args` asks for from `kubernetes`, in namespace and name order, and the
/// namespace listed (`None`: every one).
async fn rows(kubernetes: &Kubernetes, args: &LsArgs) -> Result<(Option<String>, Vec<ClusterRow>)> {
    let namespace = (!args.all_namespaces).then(|| kubernetes.namespace(args.namespace.as_deref()));
    let api = kuberay::api(&kubernetes.client, namespace.as_deref());
    let action = match &namespace {
        Some(ns) => format!("listing RayClusters in namespace {ns}"),
        None => "listing RayClusters in every namespace".to_owned(),
    };
    let clusters = kubernetes
        .call(&action, api.list(&ListParams::default()))
        .await
        .map_err(kuberay_missing)?;
    let mut rows: Vec<ClusterRow> = clusters
        .items
        .into_iter()
        .map(|object| ClusterRow::new(&kuberay::ray_cluster(object)))
        .collect();
    rows.sort_by(|a, b| a.summary.key().cmp(&b.summary.key()));
    Ok((namespace, rows))
}

/// The `ls` table for `rows`, ages counted to `now` (seconds since the epoch); with a CONTEXT
/// column first when the rows name their contexts.
pub fn render_table(rows: &[ClusterRow], now: i64) -> String {
    let header = ["NAMESPACE", "NAME", "PHASE", "WORKERS", "GPUS", "AGE", "OWNER", "TEMPLATE"];
    let context = rows.first().is_some_and(|r| r.context.is_some()).then_some("CONTEXT");
    let mut cells = vec![context.into_iter().chain(header).map(str::to_owned).collect()];
    cells.extend(rows.iter().map(|row| row.cells(now)));
    table(&cells)
}

/// Now, in seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A 404 when listing RayClusters means KubeRay's CRD is not installed; say so.
fn kuberay_missing(error: Error) -> Error {
    match error {
        Error::Refused { code: 404, .. } => Error::Precondition(
            "this cluster has no RayCluster resource (ray.io/v1): the KubeRay operator and its CRDs are not installed"
                .to_owned(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(json: serde_json::Value) -> RayCluster {
        serde_json::from_value(json).expect("a RayCluster")
    }

    #[test]
    fn rows_show_owner_template_and_progress() {
        let ready = cluster(serde_json::json!({
            "apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {
                "name": "demo", "namespace": "ml", "creationTimestamp": "2025-06-01T12:00:00Z",
                "labels": {"raydar.dev/owner": "alice_example.com", "raydar.dev/template": "cpu-small"},
                "annotations": {"raydar.dev/owner": "alice@example.com"}
            },
            "spec": {"headGroupSpec": {}, "workerGroupSpecs": [{"groupName": "cpu", "replicas": 2, "maxReplicas": 4}]},
            "status": {
                "readyWorkerReplicas": 2, "desiredWorkerReplicas": 2,
                "conditions": [{"type": "HeadPodReady", "status": "True"}, {"type": "RayClusterProvisioned", "status": "True"}]
            }
        }));
        let foreign = cluster(serde_json::json!({
            "apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": "hand-made", "namespace": "ml", "deletionTimestamp": "2025-06-01T12:02:00Z"},
            "spec": {"headGroupSpec": {}}
        }));
        let rows = [ClusterRow::new(&ready), ClusterRow::new(&foreign)];
        let now =
            "2025-06-01T12:03:00Z".parse::<k8s_openapi::jiff::Timestamp>().unwrap().as_second();
        assert_eq!(
            render_table(&rows, now),
            "NAMESPACE   NAME        PHASE         WORKERS   GPUS   AGE    OWNER               TEMPLATE\n\
             ml          demo        Ready         2/2       0      3m0s   alice@example.com   cpu-small\n\
             ml          hand-made   Terminating   0/0       0      -      -                   -\n"
        );
        assert_eq!(rows[0].progress(), "ml/demo: Ready, workers 2/2 ready");
        let json = serde_json::to_value(&rows[0]).unwrap();
        assert_eq!(json["phase"], "Ready");
        assert_eq!(json["owner"], "alice@example.com");
        assert_eq!(json["workersReady"], 2);
    }
}
