//! `raydar run`: a Ray job on a cluster of its own. The template renders exactly as for `up`
//! (owner from the apiserver, team, parameter bounds, policy, lifetime), and the cluster becomes
//! the `rayClusterSpec` of a RayJob that KubeRay shuts down `--ttl` seconds after the job ends.
//! The job's log is printed while it runs; the exit status is the job's.

use platform::rayjob::{ephemeral, JobRequest};
use platform::template::{Identity, Timestamp};

use crate::args::{Output, RunArgs};
use crate::error::{Error, Result};
use crate::kubernetes::Kubernetes;
use crate::launch::render_with;
use crate::rayjob;
use crate::templates::TemplateSource;

/// `raydar run`.
pub async fn run(kubernetes: &Kubernetes, args: &RunArgs, output: Output) -> Result<()> {
    let namespace = kubernetes.namespace(args.template.namespace.as_deref());
    let template = TemplateSource::from_arg(&args.template.template).load(kubernetes).await?;
    let identity = Identity {
        user: kubernetes.user().await?,
        team: args.template.team.clone().unwrap_or_default(),
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| platform::rayjob::default_name(template.template_name()));
    let now = Timestamp::now();
    // Every field error, the template's and the job's, is said before anything is made.
    let (cluster, entrypoint) = Error::both(
        render_with(&template, &args.template, &name, &namespace, &identity, now),
        rayjob::entrypoint(&args.job.entrypoint),
    )?;
    // The submission id is the RayJob's name: one name to follow it by, in Kubernetes and in Ray.
    let job =
        JobRequest { entrypoint, runtime_env: args.job.runtime_env.clone(), job_id: name.clone() };
    let created = rayjob::create(kubernetes, &ephemeral(&cluster, &job, args.ttl, now)).await?;
    // Stdout is the job's log (or the report): what raydar says goes to stderr.
    eprintln!(
        "RayJob {namespace}/{name} created from template {} (owner {}); its cluster goes {} s after the job ends",
        template.template_name(),
        identity.user,
        args.ttl
    );
    rayjob::run_to_end(kubernetes, &created, &identity.user, args.timeout, output).await
}
