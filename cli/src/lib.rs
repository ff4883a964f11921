//! `raydar`: launch, list and tear down Ray clusters from the platform's vetted templates, from
//! the terminal or a script.
//!
//! It reads the current kubeconfig context, as kubectl does, and renders templates with the same
//! `platform` template engine as raydar's server, so a cluster launched here is the cluster the
//! launch form would have made. Launches run as the kubeconfig's user: the owner label is the name
//! the apiserver reports for those credentials (a SelfSubjectReview), never a name given on the
//! command line, and Kubernetes RBAC decides what is allowed.
//!
//! # Layout
//!
//! - [`args`]: the command line (clap): the commands and their options.
//! - [`kubernetes`]: the client for the kubeconfig context, calls bounded by the request timeout,
//!   and who the apiserver says the user is.
//! - [`kuberay`]: reading RayClusters (as KubeRay stores them) into platform's lean type.
//! - [`templates`]: `raydar templates`, and finding the template `-t` names (file or cluster).
//! - [`launch`]: `raydar render` and `raydar up` (render, server-side dry-run, server-side apply).
//! - [`list`]: `raydar ls` and the cluster row it prints.
//! - [`teardown`]: `raydar down`.
//! - [`wait`]: `--wait`: watching one RayCluster until Ready or gone.
//! - [`output`]: tables and JSON on stdout.
//! - [`error`]: why a command failed, printed as one `error:` line (one per field for bad values).

pub mod args;
pub mod error;
pub mod kuberay;
pub mod kubernetes;
pub mod launch;
pub mod list;
pub mod output;
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
        Command::Ls(args) => list::list(&connect().await?, args, global.output).await,
        Command::Down(args) => teardown::down(&connect().await?, args, global.output).await,
    }
}
