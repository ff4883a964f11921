//! `raydar`: launch, list and tear down Ray clusters from the platform's vetted templates, from
//! the terminal or a script.
//!
//! It reads the current kubeconfig context, as kubectl does, and renders templates with the same
//! `platform` template engine as raydar's server, so a cluster launched here is the cluster the
//! launch form would have made. Launches run as the kubeconfig's user: the owner label is the name
//! the apiserver reports for those credentials (a SelfSubjectReview), never a name given on the
//! command line, and Kubernetes RBAC decides what is allowed. Ray jobs go the same way: submitted
//! as KubeRay RayJobs, never posted to a Ray dashboard, which the CLI only reads (GETs through the
//! apiserver's service proxy). Extending or protecting a cluster patches its annotations as that
//! user too, held to the lifetime rules raydar's server applies (`platform::lifecycle`).
//!
//! # Layout
//!
//! - [`args`]: the command line (clap): the commands and their options.
//! - [`kubernetes`]: the client for the kubeconfig context, calls bounded by the request timeout,
//!   and who the apiserver says the user is.
//! - [`kuberay`]: reading RayClusters (as KubeRay stores them) into platform's lean type.
//! - [`templates`]: `raydar templates`, and finding the template `-t` names (file or cluster).
//! - [`launch`]: `raydar render` and `raydar up` (render, server-side dry-run, server-side apply).
//! - [`capacity`]: whether a launch's pods fit the nodes and quota, said by `up` and `render`.
//! - [`list`]: `raydar ls` and the cluster row it prints.
//! - [`teardown`]: `raydar down`.
//! - [`lifetime`]: `raydar extend` and `raydar protect`: a cluster's expiry and protection
//!   annotations, merge-patched as the user within platform's lifetime rules.
//! - [`wait`]: `--wait`: watching one object; a RayCluster until Ready or gone.
//! - [`stages`]: the stages of a cluster's start, as `up --wait` says them.
//! - [`dashboard`]: a RayCluster's Ray dashboard through the apiserver's service proxy: GETs of
//!   its jobs and job logs, nothing else.
//! - [`jobs`]: `raydar jobs`: a cluster's Ray jobs.
//! - [`logs`]: `raydar logs` (`-f`), and following a job's log to its end.
//! - [`rayjob`]: KubeRay RayJobs: entrypoints, creating one as the user, waiting for its
//!   Ray job to be submitted and then to end (shared by `submit` and `run`).
//! - [`submit`]: `raydar submit`: a job on a running cluster.
//! - [`run`]: `raydar run`: a job on a cluster of its own, made from a template.
//! - [`output`]: tables and JSON on stdout.
//! - [`error`]: why a command failed, printed as one `error:` line (one per field for bad values).

pub mod args;
pub mod capacity;
pub mod dashboard;
pub mod error;
pub mod jobs;
pub mod kuberay;
pub mod kubernetes;
pub mod launch;
pub mod lifetime;
pub mod list;
pub mod logs;
pub mod output;
pub mod rayjob;
pub mod run;
pub mod stages;
pub mod submit;
pub mod teardown;
pub mod templates;
pub mod wait;

pub use args::Cli;
pub use error::{Error, Result};

use args::Command;
use kubernetes::Kubernetes;

/// Runs one command line.
pub async fn run(cli: Cli) -> Result<()> {
    let global = &cli.global;
    let connect = || Kubernetes::connect(global.context.as_deref(), global.request_timeout);
    match &cli.command {
        // Needs the cluster only for a template given by name.
        Command::Render(args) => launch::render(global, args).await,
        Command::Templates => templates::list(&connect().await?, global.output).await,
        Command::Up(args) => launch::up(&connect().await?, args, global.output).await,
        Command::Ls(args) if args.all_contexts => match global.context {
            Some(_) => Err(Error::Precondition(
                "--all-contexts lists every context: leave out --context".to_owned(),
            )),
            None => list::list_contexts(args, global.request_timeout, global.output).await,
        },
        Command::Ls(args) => list::list(&connect().await?, args, global.output).await,
        Command::Down(args) => teardown::down(&connect().await?, args, global.output).await,
        Command::Extend(args) => lifetime::extend(&connect().await?, args, global.output).await,
        Command::Protect(args) => lifetime::protect(&connect().await?, args, global.output).await,
        Command::Jobs(args) => jobs::jobs(&connect().await?, args, global.output).await,
        Command::Submit(args) => submit::submit(&connect().await?, args, global.output).await,
        Command::Run(args) => run::run(&connect().await?, args, global.output).await,
        Command::Logs(args) => logs::logs(&connect().await?, args).await,
    }
}
