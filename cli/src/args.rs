//! The command line: what each command takes, parsed with clap.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Map, Value};

/// Launch, list and tear down Ray clusters from vetted templates, and run Ray jobs on them.
///
/// Reads the current kubeconfig context (KUBECONFIG, ~/.kube/config), as kubectl does.
#[derive(Debug, Parser)]
#[command(name = "raydar", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Settings every command shares.
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Settings every command shares.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Kubeconfig context to use instead of the current one.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// How to print results: text (tables; YAML for `render`) or json for scripts.
    #[arg(short, long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Longest any single call to the Kubernetes API may take (`30s`, `1m`).
    #[arg(long, global = true, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    pub request_timeout: Duration,
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned tables and sentences for people; `render` prints YAML.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the RayClusterTemplates of the cluster with their parameters.
    Templates,
    /// Print the RayCluster manifest a template renders to, without creating anything.
    Render(RenderArgs),
    /// Launch a Ray cluster from a template (server-side dry-run, then server-side apply).
    Up(UpArgs),
    /// List Ray clusters.
    Ls(LsArgs),
    /// Tear down a Ray cluster; one that is already gone counts as success.
    Down(DownArgs),
    /// Push a Ray cluster's expiry later, within its template's maximum lifetime.
    Extend(ExtendArgs),
    /// Protect a Ray cluster from raydar's reclaims (expiry, idle GPUs, leases); --off lifts it.
    Protect(ProtectArgs),
    /// List the Ray jobs of a running Ray cluster, newest first.
    Jobs(JobsArgs),
    /// Submit a Ray job to a running Ray cluster (as a KubeRay RayJob).
    Submit(SubmitArgs),
    /// Run a Ray job on a cluster of its own, made from a template and removed after the job;
    /// prints the job's log and exits 0 only if the job succeeded.
    Run(RunArgs),
    /// Print a Ray job's log; with -f, follow it until the job ends.
    Logs(LogsArgs),
}

/// Which template and which values.
#[derive(Debug, Args)]
pub struct TemplateArgs {
    /// Template: a RayClusterTemplate YAML file, or the name of one in the cluster.
    #[arg(short, long, value_name = "FILE|NAME")]
    pub template: String,
    /// Set a parameter (repeatable); parameters not set take their defaults.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parameter)]
    pub set: Vec<(String, String)>,
    /// Namespace of the cluster [default: the context's namespace].
    #[arg(short, long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Team label (`raydar.dev/team`) for the cluster.
    #[arg(long, value_name = "TEAM", env = "RAYDAR_TEAM")]
    pub team: Option<String>,
}

/// `raydar render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Template and values.
    #[command(flatten)]
    pub template: TemplateArgs,
    /// Name of the cluster.
    #[arg(long, default_value = "my-cluster")]
    pub name: String,
    /// Owner written into the preview; nothing is created, so nobody is authenticated
    /// [default: a placeholder].
    #[arg(long, value_name = "USER", env = "RAYDAR_USER")]
    pub user: Option<String>,
    /// Also say whether its pods fit the cluster's nodes and the namespace's quota now (always
    /// said for a template read from the cluster; a template file needs no cluster without it).
    #[arg(long)]
    pub capacity: bool,
}

/// `raydar up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Name of the cluster.
    pub name: String,
    /// Template and values.
    #[command(flatten)]
    pub template: TemplateArgs,
    /// Wait until the cluster is Ready, printing its progress.
    #[arg(long)]
    pub wait: bool,
    /// Longest to wait with --wait (`90s`, `10m`, `1h`).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
    pub timeout: Duration,
}

/// `raydar ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// List clusters of every namespace.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// Namespace to list [default: the context's namespace].
    #[arg(short, long, value_name = "NS")]
    pub namespace: Option<String>,
    /// List the clusters of every context of the kubeconfig (each Kubernetes cluster), each row
    /// naming its context; one that does not answer is named on stderr (exit 1) and the others
    /// are listed all the same.
    #[arg(long)]
    pub all_contexts: bool,
}

/// `raydar down`.
#[derive(Debug, Args)]
pub struct DownArgs {
    /// Name of the cluster.
    pub name: String,
    /// Namespace of the cluster [default: the context's namespace].
    #[arg(short, long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Wait until the cluster and its pods are gone.
    #[arg(long)]
    pub wait: bool,
    /// Longest to wait with --wait.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
    pub timeout: Duration,
}

/// `raydar extend`.
#[derive(Debug, Args)]
pub struct ExtendArgs {
    /// Name of the cluster.
    pub name: String,
    /// Namespace of the cluster [default: the context's namespace].
    #[arg(short, long, value_name = "NS")]
    pub namespace: Option<String>,
    /// How much longer it may live (`30m`, `2h`, `1d`), from its current end (from now if that has
    /// passed).
    #[arg(long, value_name = "DURATION", value_parser = extension)]
    pub by: Duration,
}

/// `raydar protect`.
#[derive(Debug, Args)]
pub struct ProtectArgs {
    /// Name of the cluster.
    pub name: String,
    /// Namespace of the cluster [default: the context's namespace].
    #[arg(short, long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Lift the protection: raydar reclaims the cluster again when it expires, idles or its
    /// pipeline's lease lapses.
    #[arg(long)]
    pub off: bool,
}

/// `raydar jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Name of the cluster.
    pub name: String,
    /// Namespace of the cluster [default: the context's namespace].
    #[arg(short, long, value_name = "NS")]
    pub namespace: Option<String>,
}

/// What a Ray job runs.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// Ray's runtime environment for the job, a JSON object
    /// (`{"pip": ["numpy"], "env_vars": {"EPOCHS": "3"}}`).
    #[arg(long, value_name = "JSON", value_parser = runtime_env)]
    pub runtime_env: Option<Map<String, Value>>,
    /// The command the job runs, after `--`. Several words are quoted for the shell one by one;
    /// a single word is taken as a shell command line, as written.
    #[arg(last = true, required = true, num_args = 1.., value_name = "ENTRYPOINT")]
    pub entrypoint: Vec<String>,
}

/// `raydar submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Name of the running cluster to submit to.
    pub cluster: String,
    /// Namespace of the cluster and the RayJob [default: the context's namespace].
    #[arg(short, long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Name of the RayJob; its Ray job's submission id is the name and 5 random characters
    /// [default: the cluster's name and 5 random characters, also the submission id].
    #[arg(long, value_name = "JOBNAME", value_parser = rayjob_name)]
    pub name: Option<String>,
    /// Team label (`raydar.dev/team`) for the RayJob.
    #[arg(long, value_name = "TEAM", env = "RAYDAR_TEAM")]
    pub team: Option<String>,
    /// Wait for the job to end, printing its log; exit 0 only if it succeeded.
    #[arg(long)]
    pub wait: bool,
    /// Longest to wait with --wait for KubeRay to submit the job (not for the job to end).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
    pub timeout: Duration,
    /// The job.
    #[command(flatten)]
    pub job: JobArgs,
}

/// `raydar run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Template and values of the job's cluster.
    #[command(flatten)]
    pub template: TemplateArgs,
    /// Name of the RayJob, which is also the Ray job's submission id
    /// [default: the template's name and 5 random characters].
    #[arg(long, value_name = "NAME", value_parser = rayjob_name)]
    pub name: Option<String>,
    /// Seconds the job's cluster is kept after the job ends (0 to 86400).
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(0..=86_400))]
    pub ttl: u32,
    /// Longest to wait for the job's cluster to start and KubeRay to submit the job (not for the
    /// job to end: the template's lifetime bounds that).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
    pub timeout: Duration,
    /// The job.
    #[command(flatten)]
    pub job: JobArgs,
}

/// `raydar logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Name of the cluster.
    pub name: String,
    /// The job's submission id (`raydar jobs` lists them) [default: the cluster's newest job].
    pub job: Option<String>,
    /// Namespace of the cluster [default: the context's namespace].
    #[arg(short, long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Follow the log until the job ends; exit 0 only if it succeeded.
    #[arg(short, long)]
    pub follow: bool,
}

/// `KEY=VALUE`, split at the first `=` (values may contain `=`).
fn parameter(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

/// A duration as templates write them (`90s`, `10m`, `1h30m`); zero is refused, a wait or a
/// call with no time at all cannot succeed.
fn duration(text: &str) -> Result<Duration, String> {
    match platform::template::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be longer than zero".to_owned()),
        Ok(d) => Ok(d),
        Err(platform::template::duration::DurationError::OutOfRange) => {
            Err("is longer than a century".to_owned())
        }
        Err(_) => Err("expected a duration such as 90s, 10m or 1h30m".to_owned()),
    }
}

/// How much longer a cluster may live; the words are the server's for the same mistake
/// (`PATCH /api/v1/clusters/{ns}/{name}` with `{"extend": ..}`).
fn extension(text: &str) -> Result<Duration, String> {
    match platform::template::parse_duration(text.trim()) {
        Ok(by) if !by.is_zero() => Ok(by),
        Err(platform::template::duration::DurationError::OutOfRange) => {
            Err("is longer than a century".to_owned())
        }
        _ => Err("is not a duration above 0 such as 30m, 2h or 1d".to_owned()),
    }
}

/// A RayJob name ([`platform::rayjob::name_problem`]).
fn rayjob_name(text: &str) -> Result<String, String> {
    platform::rayjob::name_problem(text).map_or_else(|| Ok(text.to_owned()), Err)
}

/// Ray's runtime environment: a JSON object, as Ray takes it.
fn runtime_env(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str(text) {
        Ok(Value::Object(env)) => Ok(env),
        Ok(_) => {
            Err("must be a JSON object, as Ray's runtime_env (working_dir, pip, env_vars…)".into())
        }
        Err(e) => Err(format!("is not JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("raydar").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn up_takes_name_template_values_and_wait() {
        let cli = parse(&[
            "up",
            "demo",
            "-t",
            "cpu-small",
            "-n",
            "ml",
            "--set",
            "workers=3",
            "--set",
            "cmd=a=b",
            "--wait",
            "--timeout",
            "2m",
            "-o",
            "json",
        ])
        .unwrap();
        let Command::Up(up) = cli.command else { panic!("not up: {:?}", cli.command) };
        assert_eq!(up.name, "demo");
        assert_eq!(up.template.template, "cpu-small");
        assert_eq!(up.template.namespace.as_deref(), Some("ml"));
        assert_eq!(
            up.template.set,
            vec![("workers".into(), "3".into()), ("cmd".into(), "a=b".into())]
        );
        assert!(up.wait);
        assert_eq!(up.timeout, Duration::from_secs(120));
        assert_eq!(cli.global.output, Output::Json);
        assert_eq!(cli.global.request_timeout, Duration::from_secs(30));
    }

    #[test]
    fn every_context_or_one() {
        let Command::Ls(ls) = parse(&["ls", "-A", "--all-contexts"]).unwrap().command else {
            panic!("not ls")
        };
        assert!(ls.all_contexts);
        // Refused before anything is read.
        let both = parse(&["--context", "prod", "ls", "--all-contexts"]).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let e = runtime.block_on(crate::run(both)).unwrap_err();
        assert_eq!(e.to_string(), "--all-contexts lists every context: leave out --context");
    }

    #[test]
    fn global_options_go_before_or_after_the_command() {
        let before = parse(&["--context", "prod", "-o", "json", "ls", "-A"]).unwrap();
        let after = parse(&["ls", "-A", "--context", "prod", "--output", "json"]).unwrap();
        for cli in [before, after] {
            assert_eq!(cli.global.context.as_deref(), Some("prod"));
            assert_eq!(cli.global.output, Output::Json);
            let Command::Ls(ls) = cli.command else { panic!("not ls") };
            assert!(ls.all_namespaces);
        }
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        for args in [
            &["up", "demo", "-t", "cpu-small", "--set", "workers"][..],
            &["up", "demo", "-t", "cpu-small", "--set", "=3"],
            &["up", "demo"],
            &["up", "demo", "-t", "x", "--timeout", "soon"],
            &["down", "demo", "--timeout", "0"],
            &["ls", "-A", "-n", "ml"],
            &["ls", "-o", "xml"],
            &["render", "-t", "x", "--request-timeout", "-1s"],
        ] {
            let error = parse(args).expect_err(&format!("{args:?} parsed"));
            assert_ne!(error.exit_code(), 0, "{args:?}");
        }
    }

    #[test]
    fn jobs_take_a_command_after_the_double_dash() {
        let cli = parse(&[
            "run",
            "-t",
            "cpu-small",
            "--set",
            "workers=0",
            "--ttl",
            "5",
            "-n",
            "ml",
            "--",
            "python",
            "-c",
            "print('hi')",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else { panic!("not run") };
        assert_eq!(run.job.entrypoint, ["python", "-c", "print('hi')"]);
        assert_eq!((run.ttl, run.name, run.template.namespace.as_deref()), (5, None, Some("ml")));
        assert_eq!(run.timeout, Duration::from_secs(600));

        let cli = parse(&[
            "submit",
            "gpu-a",
            "--runtime-env",
            r#"{"env_vars": {"EPOCHS": "3"}}"#,
            "--name",
            "nightly",
            "--wait",
            "--",
            "python train.py --epochs 3",
        ])
        .unwrap();
        let Command::Submit(submit) = cli.command else { panic!("not submit") };
        assert_eq!((submit.cluster.as_str(), submit.name.as_deref()), ("gpu-a", Some("nightly")));
        assert_eq!(submit.job.runtime_env.unwrap()["env_vars"]["EPOCHS"], "3");
        assert_eq!(submit.job.entrypoint, ["python train.py --epochs 3"]);
        assert!(submit.wait);

        let Command::Logs(logs) = parse(&["logs", "gpu-a", "j-1", "-f"]).unwrap().command else {
            panic!("not logs")
        };
        assert_eq!((logs.job.as_deref(), logs.follow), (Some("j-1"), true));
        let Command::Jobs(jobs) = parse(&["jobs", "gpu-a", "-n", "ml"]).unwrap().command else {
            panic!("not jobs")
        };
        assert_eq!((jobs.name.as_str(), jobs.namespace.as_deref()), ("gpu-a", Some("ml")));
    }

    #[test]
    fn bad_job_options_are_usage_errors_naming_them() {
        for (args, option) in [
            (&["submit", "gpu-a"][..], "ENTRYPOINT"),
            (&["submit", "gpu-a", "python", "x.py"], "python"),
            (&["submit", "gpu-a", "--runtime-env", "[1]", "--", "x"], "--runtime-env"),
            (&["submit", "gpu-a", "--runtime-env", "{", "--", "x"], "--runtime-env"),
            (&["submit", "gpu-a", "--name", "Nightly", "--", "x"], "--name"),
            (&["run", "-t", "cpu-small", "--ttl=-1", "--", "x"], "--ttl"),
            (&["run", "-t", "cpu-small", "--ttl", "86401", "--", "x"], "--ttl"),
            (&["run", "-t", "cpu-small", "--name", &"x".repeat(48), "--", "x"], "--name"),
        ] {
            let error = parse(args).expect_err(&format!("{args:?} parsed"));
            assert_eq!(error.exit_code(), 2, "{args:?}");
            assert!(error.to_string().contains(option), "{args:?}: {error}");
        }
    }

    #[test]
    fn extend_takes_a_duration_and_protect_an_off_switch() {
        let cli = parse(&["extend", "demo", "-n", "ml", "--by", "1h30m"]).unwrap();
        let Command::Extend(extend) = cli.command else { panic!("not extend") };
        assert_eq!(
            (extend.name.as_str(), extend.namespace.as_deref(), extend.by),
            ("demo", Some("ml"), Duration::from_secs(5_400))
        );
        let Command::Extend(extend) = parse(&["extend", "demo", "--by", "1d"]).unwrap().command
        else {
            panic!("not extend")
        };
        assert_eq!(extend.by, Duration::from_secs(86_400));

        let Command::Protect(protect) = parse(&["protect", "demo"]).unwrap().command else {
            panic!("not protect")
        };
        assert!(!protect.off);
        let Command::Protect(protect) = parse(&["protect", "demo", "--off"]).unwrap().command
        else {
            panic!("not protect")
        };
        assert!(protect.off);

        for (args, said) in [
            (&["extend", "demo"][..], "--by"),
            (
                &["extend", "demo", "--by", "soon"],
                "is not a duration above 0 such as 30m, 2h or 1d",
            ),
            (&["extend", "demo", "--by", "0"], "is not a duration above 0"),
            (&["extend", "demo", "--by", "1.5h"], "is not a duration above 0"),
            (&["extend", "demo", "--by", "40000d"], "longer than a century"),
            (&["protect", "demo", "--on"], "--on"),
        ] {
            let error = parse(args).expect_err(&format!("{args:?} parsed"));
            assert_eq!(error.exit_code(), 2, "{args:?}");
            assert!(error.to_string().contains(said), "{args:?}: {error}");
        }
    }

    #[test]
    fn render_defaults() {
        let cli = parse(&["render", "-t", "deploy/templates/cpu-small.yaml"]).unwrap();
        let Command::Render(render) = cli.command else { panic!("not render") };
        assert_eq!(render.name, "my-cluster");
        assert_eq!(render.template.namespace, None);
        assert_eq!(cli.global.output, Output::Text);
    }
}
