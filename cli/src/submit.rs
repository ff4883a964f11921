//! `raydar submit`: a Ray job on a running Ray cluster, as a KubeRay RayJob made as the
//! kubeconfig's user that selects the cluster (`clusterSelector`, `HTTPMode`); with `--wait`,
//! followed to its end.

use platform::rayjob::{on_cluster, submission_names, JobRequest};
use platform::template::value::cluster_name_problem;
use platform::template::Identity;
use platform::FieldError;

use crate::args::{Output, SubmitArgs};
use crate::error::{Error, Result};
use crate::kuberay;
use crate::kubernetes::Kubernetes;
use crate::output::{print_json, print_text};
use crate::rayjob::{self, JobReport};

/// `raydar submit`.
pub async fn submit(kubernetes: &Kubernetes, args: &SubmitArgs, output: Output) -> Result<()> {
    let namespace = kubernetes.namespace(args.namespace.as_deref());
    let entrypoint = rayjob::entrypoint(&args.job.entrypoint);
    let cluster = match cluster_name_problem(&args.cluster) {
        Some(problem) => Err(Error::InvalidRequest(vec![FieldError::new("cluster", problem)])),
        None => Ok(args.cluster.as_str()),
    };
    let (entrypoint, cluster) = Error::both(entrypoint, cluster)?;
    let id = format!("{namespace}/{cluster}");
    // KubeRay would wait for a selected cluster that does not exist, never saying so.
    let existing = kubernetes
        .call(
            &format!("reading RayCluster {id}"),
            kuberay::api(&kubernetes.client, Some(&namespace)).get_opt(cluster),
        )
        .await?;
    match existing {
        None => {
            return Err(Error::Precondition(format!(
                "no RayCluster {id}; `raydar ls` lists them, `raydar run` runs a job on a cluster of its own"
            )))
        }
        Some(object) if object.metadata.deletion_timestamp.is_some() => {
            return Err(Error::Precondition(format!("RayCluster {id} is being deleted")))
        }
        Some(_) => {}
    }
    let identity =
        Identity { user: kubernetes.user().await?, team: args.team.clone().unwrap_or_default() };
    let (name, job_id) = submission_names(args.name.as_deref(), cluster);
    let job = JobRequest { entrypoint, runtime_env: args.job.runtime_env.clone(), job_id };
    let created =
        rayjob::create(kubernetes, &on_cluster(&namespace, &name, cluster, &job, &identity))
            .await?;
    if output == Output::Text {
        print_text(&format!(
            "RayJob {namespace}/{name} created (owner {}): Ray job {} on RayCluster {id}\n",
            identity.user, created.job_id
        ));
    }
    if !args.wait {
        if output == Output::Json {
            print_json(&JobReport::new(&created, &identity.user, None));
        }
        return Ok(());
    }
    rayjob::run_to_end(kubernetes, &created, &identity.user, args.timeout, output).await
}
