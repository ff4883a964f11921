//! `raydar down`: deleting a Ray cluster, with its pods (foreground propagation); a cluster that
//! is already gone is a success.

use kube::api::DeleteParams;
use kube::ResourceExt;
use serde::Serialize;

use crate::args::{DownArgs, Output};
use crate::error::{Error, Result};
use crate::kuberay;
use crate::kubernetes::Kubernetes;
use crate::output::{print_json, print_text};
use crate::wait::{self, Goal};

/// What `down` did, as `-o json` prints it.
#[derive(Debug, Serialize)]
pub struct DownReport {
    /// Namespace of the cluster.
    pub namespace: String,
    /// Name of the cluster.
    pub name: String,
    /// `deleted` (it is gone), `deleting` (its pods are still being removed; no `--wait`) or
    /// `already-gone` (there was nothing to delete).
    pub result: &'static str,
}

/// `raydar down`.
pub async fn down(kubernetes: &Kubernetes, args: &DownArgs, output: Output) -> Result<()> {
    let namespace = kubernetes.namespace(args.namespace.as_deref());
    let name = &args.name;
    let id = format!("{namespace}/{name}");
    let api = kuberay::api(&kubernetes.client, Some(&namespace));
    // Foreground: the RayCluster stays (Terminating) until its pods are gone, so `--wait` means
    // the GPUs are free again.
    let deleted = kubernetes
        .call(&format!("deleting RayCluster {id}"), api.delete(name, &DeleteParams::foreground()))
        .await;
    // The apiserver answers with the object while deletion goes on, or a Status once it is gone.
    let result = match deleted.map(|answer| answer.left()) {
        Err(Error::Refused { code: 404, .. }) => "already-gone",
        Err(error) => return Err(error),
        Ok(None) => "deleted",
        Ok(Some(cluster)) if args.wait => {
            let uid = cluster.uid().unwrap_or_default();
            wait::until(kubernetes, &namespace, name, Goal::Gone { uid }, args.timeout).await?;
            "deleted"
        }
        Ok(Some(_)) => "deleting",
    };
    match output {
        Output::Json => print_json(&DownReport { namespace, name: name.clone(), result }),
        Output::Text => {
            print_text(&match result {
                "already-gone" => format!("RayCluster {id} is already gone\n"),
                "deleting" => {
                    format!("RayCluster {id} is being deleted (its pods go first; --wait waits for them)\n")
                }
                _ => format!("RayCluster {id} deleted\n"),
            })
        }
    }
    Ok(())
}
