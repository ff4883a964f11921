//! Settings, from flags or `RAYDAR_…` environment variables (flags win), with clap: each flag is
//! written once, with its variable, default and help; `--help` groups them by concern. A wrong
//! value is refused naming the flag, its variable and what is allowed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::HeaderName;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, ValueEnum};

use crate::contexts::{self, Context};
use crate::history::Database;
use crate::ray::Reach;
use crate::security::{Authn, Cidr, ProxyHeaders, ServedAs, User};

/// How raydar-server runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Where to serve health, readiness and metrics alone, without identity, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// The namespaces watched: every one, or a team's.
    pub scope: Scope,
    /// The Kubernetes clusters served, the home one first: `--contexts`' list, else the one the
    /// environment points at.
    pub contexts: Vec<Context>,
    /// Folder of the built site: `pkg/` with the wasm, JS and CSS.
    pub site_root: PathBuf,
    /// Where identities come from.
    pub authn: Authn,
    /// The secret replicas share, from which CSRF tokens are signed; `None`: a key per process.
    pub session_secret: Option<String>,
    /// The audience bearer tokens must be meant for; `None`: the apiserver's own.
    pub token_audience: Option<String>,
    /// The names browsers may reach raydar under.
    pub served_as: ServedAs,
    /// Launches, changes and teardowns one user may make per minute.
    pub action_rate: u32,
    /// How Ray dashboards are reached.
    pub ray_dashboard: Reach,
    /// Most logs followed live at once, each one upstream stream shared by its viewers.
    pub log_streams: usize,
    /// Lines kept of each followed log for viewers that join late or fall behind.
    pub log_buffer_lines: usize,
    /// Bytes of text kept of all followed logs together.
    pub log_buffer_bytes: usize,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// Most event streams open at once.
    pub event_streams: usize,
    /// Most logs read for download at once.
    pub log_downloads: usize,
    /// Most event streams of one person open at once.
    pub event_streams_per_person: usize,
    /// Where GPU metrics come from and what counts as idle ([`GpuSettings`]).
    pub gpus: GpuSettings,
    /// Where history is kept, and how much ([`HistorySettings`]).
    pub history: HistorySettings,
    /// The namespace and name of the Lease that elects the one replica that acts (expiry,
    /// reclaims).
    pub lease_namespace: String,
    pub lease_name: String,
    /// How long a cluster launched with a lease lives unrenewed.
    pub lease_timeout: Duration,
    /// Whether idle clusters are reclaimed as their templates say, only shown, or neither.
    pub idle_reclaim: IdleReclaim,
}

/// How raydar writes its log lines (to standard output).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line of text each, for people.
    #[default]
    Text,
    /// One JSON object each (time, level, target, message and fields), for log pipelines.
    Json,
}

/// Which namespaces raydar watches and launches into.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every namespace (a cluster-wide install).
    #[default]
    All,
    /// Only these, sorted (a team's install, whose RBAC is a Role in each): RayClusters, their
    /// pods, events and RayJobs elsewhere are not seen, and Nodes are not read.
    Namespaces(Vec<String>),
}

impl Scope {
    /// Whether `namespace` is watched.
    pub fn covers(&self, namespace: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Namespaces(listed) => {
                listed.binary_search_by(|n| n.as_str().cmp(namespace)).is_ok()
            }
        }
    }

    /// What each watch of a namespaced kind asks for: one part for every namespace (`None`),
    /// or one per namespace watched.
    pub fn parts(&self) -> Vec<Option<&str>> {
        match self {
            Scope::All => vec![None],
            Scope::Namespaces(listed) => listed.iter().map(|ns| Some(ns.as_str())).collect(),
        }
    }

    /// The namespaces to watch one by one; `None` for every namespace at once.
    pub fn namespaces(&self) -> Option<&[String]> {
        match self {
            Scope::All => None,
            Scope::Namespaces(listed) => Some(listed),
        }
    }
}

/// What raydar does with clusters that sit idle by their template's policy (`policy.idle`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IdleReclaim {
    /// Warns their owners, then suspends or tears them down.
    On,
    /// Only shows what would be reclaimed and the GPU-hours that would save (fleet page,
    /// /metrics): to try a policy on a fleet before it acts.
    DryRun,
    /// Neither.
    Off,
}

/// History: the database, the buffer in front of it, and retention.
#[derive(Clone, Debug, PartialEq)]
pub struct HistorySettings {
    /// Where it is kept.
    pub database: Database,
    /// Records that wait in memory while the database does not answer; more are lost, counted.
    pub buffer: usize,
    /// How long a deleted cluster's history is kept.
    pub keep: Duration,
    /// Most bytes history keeps, about; the oldest deleted clusters go first.
    pub max_bytes: u64,
    /// Most bytes of text archived of one job's driver log.
    pub job_log_bytes: u64,
    /// Seconds between the GPU use written to history.
    pub gpu_step: u32,
}

/// GPU metrics: which dcgm-exporters to scrape, or which Prometheus to ask; how often, and the
/// idle rule.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuSettings {
    /// A Prometheus server that scrapes the dcgm-exporters, by its base URL. When set, raydar
    /// asks it instead of scraping the exporters itself, and fills its history from it at start.
    pub prometheus: Option<String>,
    /// Namespace of the dcgm-exporter pods.
    pub namespace: String,
    /// Their label selector.
    pub selector: String,
    /// Their metrics port.
    pub port: u16,
    /// How they are reached.
    pub reach: ExporterReach,
    /// Seconds between scrapes, or queries of Prometheus.
    pub interval_s: u32,
    /// A GPU under this utilization, percent, is idle.
    pub idle_below: f64,
    /// A cluster whose GPUs have all been idle this long, seconds, is flagged.
    pub idle_after_s: u32,
}

/// How raydar reaches a dcgm-exporter pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExporterReach {
    /// `/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/metrics` on the apiserver.
    #[value(name = "proxy")]
    ApiserverProxy,
    /// `http://{pod IP}:{port}/metrics`, from inside the cluster.
    #[value(name = "pod")]
    PodIp,
}

impl Default for GpuSettings {
    /// The flags' defaults.
    fn default() -> Self {
        GpuSettings {
            prometheus: None,
            namespace: "gpu-operator".into(),
            selector: "app=nvidia-dcgm-exporter".into(),
            port: 9400,
            reach: ExporterReach::ApiserverProxy,
            interval_s: 15,
            idle_below: 10.0,
            idle_after_s: 30 * 60,
        }
    }
}

/// Where identities come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum AuthMode {
    /// An authenticating proxy (oauth2-proxy) in front sends who is asking in headers, believed
    /// only from --trusted-proxies.
    Proxy,
    /// Everyone who connects is --dev-user; loopback addresses only.
    Dev,
}

/// The command line. Every flag has a `RAYDAR_…` variable (the site root also reads Leptos'
/// own `LEPTOS_SITE_ROOT`).
#[derive(Debug, Parser)]
#[command(
    name = "raydar-server",
    version,
    about = "The console of a shared Ray-on-Kubernetes platform.",
    long_about = "Watches KubeRay RayClusters in every namespace (or those of --namespaces) of \
        the Kubernetes cluster named by the current kubeconfig context (KUBECONFIG), or the \
        cluster it runs in, and serves raydar on --addr. Every flag can be set by the \
        environment variable named beside it; a flag wins."
)]
struct Flags {
    /// Where to listen.
    #[arg(long, env = "RAYDAR_ADDR", default_value = "127.0.0.1:3000", value_name = "HOST:PORT",
        help_heading = "Serving", value_parser = socket_addr)]
    addr: SocketAddr,
    /// The built site, with pkg/ (tools/site.sh writes it to target/site).
    #[arg(
        long,
        env = "LEPTOS_SITE_ROOT",
        default_value = "target/site",
        value_name = "DIR",
        help_heading = "Serving"
    )]
    site_root: PathBuf,
    /// The address people open raydar at, like https://raydar.example.com: requests naming
    /// another host are refused. Without it, dev mode answers to loopback names only, and proxy
    /// mode to whatever host the proxy forwards.
    #[arg(long, env = "RAYDAR_PUBLIC_URL", value_name = "URL", value_parser = public_url,
        help_heading = "Serving")]
    public_url: Option<reqwest::Url>,
    /// Also serve /metrics, /healthz and /readyz here, without identity, and nothing else: for
    /// Prometheus and the kubelet's probes, which no proxy signs in.
    #[arg(long, env = "RAYDAR_METRICS_ADDR", value_name = "HOST:PORT", value_parser = socket_addr,
        help_heading = "Observability")]
    metrics_addr: Option<SocketAddr>,
    /// How log lines are written: text for people, json (one object a line) for log pipelines.
    /// RUST_LOG says which (default info).
    #[arg(
        long,
        env = "RAYDAR_LOG_FORMAT",
        value_enum,
        default_value = "text",
        help_heading = "Observability"
    )]
    log_format: LogFormat,
    /// Watch only these namespaces (a team's install, whose RBAC is a Role in each), not every
    /// one: launches elsewhere are refused, and capacity is not judged (Nodes are not read).
    #[arg(long, env = "RAYDAR_NAMESPACES", value_name = "NS,..", value_delimiter = ',',
        value_parser = namespace, help_heading = "Serving")]
    namespaces: Vec<String>,
    /// A YAML file listing the Kubernetes clusters to serve (kubeconfig contexts, or the one
    /// raydar runs in), the first being home; see the README. Unset: the cluster KUBECONFIG or
    /// the ServiceAccount points at.
    #[arg(long, env = "RAYDAR_CONTEXTS", value_name = "FILE", help_heading = "Serving")]
    contexts: Option<PathBuf>,

    /// Where identities come from.
    #[arg(
        long,
        env = "RAYDAR_AUTH",
        value_enum,
        default_value = "proxy",
        help_heading = "Identity"
    )]
    auth: AuthMode,
    /// The authenticating proxy's addresses, whose identity headers raydar believes.
    #[arg(long, env = "RAYDAR_TRUSTED_PROXIES", value_name = "CIDR,..", value_delimiter = ',',
        value_parser = cidr, help_heading = "Identity")]
    trusted_proxies: Vec<Cidr>,
    /// The proxy's header naming the user.
    #[arg(long, env = "RAYDAR_USER_HEADER", default_value = "X-Forwarded-User", value_name = "NAME",
        value_parser = header_name, help_heading = "Identity")]
    user_header: HeaderName,
    /// The proxy's header with the user's email.
    #[arg(long, env = "RAYDAR_EMAIL_HEADER", default_value = "X-Forwarded-Email", value_name = "NAME",
        value_parser = header_name, help_heading = "Identity")]
    email_header: HeaderName,
    /// The proxy's header with the user's groups, comma-separated.
    #[arg(long, env = "RAYDAR_GROUPS_HEADER", default_value = "X-Forwarded-Groups", value_name = "NAME",
        value_parser = header_name, help_heading = "Identity")]
    groups_header: HeaderName,
    /// Put before each of the proxy's groups when raydar acts as the user in Kubernetes, like
    /// oidc: (as the apiserver's --oidc-groups-prefix), so RBAC bindings name them apart from
    /// other groups. A user or group system:… from the proxy is refused either way.
    #[arg(
        long,
        env = "RAYDAR_PROXY_GROUPS_PREFIX",
        default_value = "",
        value_name = "PREFIX",
        help_heading = "Identity"
    )]
    proxy_groups_prefix: String,
    /// The secret every replica is given alike (32 characters or more; a Kubernetes Secret in the
    /// environment): CSRF tokens are signed from it, so a page that moves to another replica
    /// keeps writing. Unset: each process signs with a key of its own.
    #[arg(long, env = "RAYDAR_SESSION_SECRET", value_name = "SECRET", hide_env_values = true,
        value_parser = session_secret, help_heading = "Identity")]
    session_secret: Option<String>,
    /// The audience a bearer token (a pipeline's ServiceAccount token) must be issued for, as
    /// the apiserver's TokenReview checks it; unset: the apiserver's own audience.
    #[arg(long, env = "RAYDAR_TOKEN_AUDIENCE", value_name = "AUDIENCE", value_parser = not_empty,
        help_heading = "Identity")]
    token_audience: Option<String>,
    /// Dev mode's user.
    #[arg(long, env = "RAYDAR_DEV_USER", default_value = "developer", value_name = "USER",
        value_parser = not_empty, help_heading = "Identity")]
    dev_user: String,
    /// Dev mode's groups; the first is the team.
    #[arg(
        long,
        env = "RAYDAR_DEV_GROUPS",
        default_value = "dev",
        value_name = "G,..",
        value_delimiter = ',',
        help_heading = "Identity"
    )]
    dev_groups: Vec<String>,

    /// Launches, changes and teardowns per user per minute.
    #[arg(long, env = "RAYDAR_ACTION_RATE", default_value = "30", value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..), help_heading = "Limits")]
    action_rate: u32,
    /// Most logs followed live at once, each shared by all its viewers; a new one beyond is
    /// refused.
    #[arg(long, env = "RAYDAR_LOG_STREAMS", default_value = "64", value_name = "N",
        value_parser = count, help_heading = "Limits")]
    log_streams: usize,
    /// Lines kept of each followed log for late or slow viewers.
    #[arg(long, env = "RAYDAR_LOG_BUFFER_LINES", default_value = "10000", value_name = "N",
        value_parser = count, help_heading = "Limits")]
    log_buffer_lines: usize,
    /// MiB of text kept of all followed logs together, shared equally (each at most 16 MiB): a
    /// new log takes its share from the others.
    #[arg(long, env = "RAYDAR_LOG_BUFFER_MIB", default_value = "64", value_name = "MIB",
        value_parser = count, help_heading = "Limits")]
    log_buffer_mib: usize,
    /// Most logs read for download at once (each is held whole until sent, a pod's up to 64
    /// MiB); one more is refused (503).
    #[arg(long, env = "RAYDAR_LOG_DOWNLOADS", default_value = "4", value_name = "N",
        value_parser = count, help_heading = "Limits")]
    log_downloads: usize,
    /// Most live pages' event streams open at once, everyone's together; one more is refused
    /// (503).
    #[arg(long, env = "RAYDAR_EVENT_STREAMS", default_value = "4096", value_name = "N",
        value_parser = count, help_heading = "Limits")]
    event_streams: usize,
    /// Most event streams one person may have open (a page open is one or two); one more is
    /// refused (429).
    #[arg(long, env = "RAYDAR_EVENT_STREAMS_PER_PERSON", default_value = "32", value_name = "N",
        value_parser = count, help_heading = "Limits")]
    event_streams_per_person: usize,
    /// How long a client may take to send a request's headers before its connection is closed:
    /// connections that trickle them (slowloris) hold a socket each for this long, no more.
    #[arg(long, env = "RAYDAR_HEADER_TIMEOUT", default_value = "10s", value_name = "DURATION",
        value_parser = duration, help_heading = "Limits")]
    header_timeout: u32,

    /// How Ray dashboards are reached, read-only: proxy (through the apiserver's service proxy),
    /// service (KubeRay's head service, from inside the cluster) or a URL template with
    /// {namespace} and {name}.
    #[arg(long, env = "RAYDAR_RAY_DASHBOARD", default_value = "proxy", value_name = "HOW",
        value_parser = reach, help_heading = "Ray")]
    ray_dashboard: Reach,

    /// Ask this Prometheus server, which scrapes the dcgm-exporters, instead of scraping them
    /// (e.g. http://prometheus.monitoring:9090).
    #[arg(long, env = "RAYDAR_PROMETHEUS", value_name = "URL", value_parser = prometheus_url,
        help_heading = "GPU metrics")]
    prometheus: Option<String>,
    /// Namespace of the dcgm-exporter pods (NVIDIA's GPU Operator's).
    #[arg(long, env = "RAYDAR_DCGM_NAMESPACE", default_value = "gpu-operator", value_name = "NS",
        value_parser = namespace, help_heading = "GPU metrics")]
    dcgm_namespace: String,
    /// Label selector of the dcgm-exporter pods.
    #[arg(long, env = "RAYDAR_DCGM_SELECTOR", default_value = "app=nvidia-dcgm-exporter",
        value_name = "LABELS", value_parser = not_empty, help_heading = "GPU metrics")]
    dcgm_selector: String,
    /// Metrics port of the dcgm-exporters.
    #[arg(long, env = "RAYDAR_DCGM_PORT", default_value = "9400", value_name = "PORT",
        value_parser = clap::value_parser!(u16).range(1..), help_heading = "GPU metrics")]
    dcgm_port: u16,
    /// Reach the dcgm-exporters through the apiserver's pod proxy, or straight at the pod IP
    /// from inside the cluster.
    #[arg(
        long,
        env = "RAYDAR_DCGM_REACH",
        value_enum,
        default_value = "proxy",
        help_heading = "GPU metrics"
    )]
    dcgm_reach: ExporterReach,
    /// Between GPU scrapes or queries, like 15s or 1m (plain numbers are seconds).
    #[arg(long, env = "RAYDAR_GPU_INTERVAL", default_value = "15s", value_name = "DURATION",
        value_parser = duration, help_heading = "GPU metrics")]
    gpu_interval: u32,
    /// A GPU under this utilization is idle.
    #[arg(long, env = "RAYDAR_GPU_IDLE_BELOW", default_value = "10", value_name = "PERCENT",
        value_parser = percent, help_heading = "GPU metrics")]
    gpu_idle_below: f64,
    /// A cluster whose GPUs have all been idle this long is flagged, like 30m, 2h or 1h30m.
    #[arg(long, env = "RAYDAR_GPU_IDLE_AFTER", default_value = "30m", value_name = "DURATION",
        value_parser = duration, help_heading = "GPU metrics")]
    gpu_idle_after: u32,

    /// Folder of raydar's own files: the SQLite history database (raydar.db) unless --database
    /// names another.
    #[arg(
        long,
        env = "RAYDAR_DATA_DIR",
        default_value = "raydar-data",
        value_name = "DIR",
        help_heading = "History"
    )]
    data_dir: PathBuf,
    /// Keep history in this database instead: postgres://USER[:PASSWORD]@HOST[:PORT]/DB (for
    /// several replicas, which share it), or sqlite://PATH.
    #[arg(long, env = "RAYDAR_DATABASE", value_name = "URL", value_parser = database,
        help_heading = "History")]
    database: Option<Database>,
    /// Records (phase changes, events, ...) kept in memory while the database does not answer;
    /// past this they are lost, and counted.
    #[arg(long, env = "RAYDAR_HISTORY_BUFFER", default_value = "100000", value_name = "N",
        value_parser = count, help_heading = "History")]
    history_buffer: usize,
    /// How long a deleted cluster's history is kept, like 90d.
    #[arg(long, env = "RAYDAR_HISTORY_KEEP", default_value = "90d", value_name = "DURATION",
        value_parser = duration, help_heading = "History")]
    history_keep: u32,
    /// Most MiB history keeps: past it, the clusters deleted longest ago go first.
    #[arg(long, env = "RAYDAR_HISTORY_MAX_MIB", default_value = "10240", value_name = "MIB",
        value_parser = count, help_heading = "History")]
    history_max_mib: usize,
    /// Most MiB of one Ray job's driver log that history archives: past it the rest is counted,
    /// not kept, and the archive says it was cut. 0: job logs are not archived.
    #[arg(long, env = "RAYDAR_HISTORY_JOB_LOG_MIB", default_value = "64", value_name = "MIB",
        value_parser = whole, help_heading = "History")]
    history_job_log_mib: usize,
    /// How often each cluster's GPU use (GPUs held, utilization, busy and idle GPU-hours) is
    /// written to history: its resolution there, like 5m.
    #[arg(long, env = "RAYDAR_HISTORY_GPU_STEP", default_value = "5m", value_name = "DURATION",
        value_parser = duration, help_heading = "History")]
    history_gpu_step: u32,

    /// Namespace of the Lease by which one replica among several is elected to act on
    /// clusters: expiry, idle reclaim, pipeline leases.
    #[arg(long, env = "RAYDAR_LEASE_NAMESPACE", default_value = "raydar", value_name = "NS",
        value_parser = namespace, help_heading = "Lifecycle")]
    lease_namespace: String,
    /// Name of that Lease: replicas that share it elect one among them; raydars given other
    /// names act each on their own (two installations side by side).
    #[arg(long, env = "RAYDAR_LEASE_NAME", default_value = "raydar-lifecycle", value_name = "NAME",
        value_parser = namespace, help_heading = "Lifecycle")]
    lease_name: String,
    /// A cluster launched with a lease (pipelines: the Dagster resource) is reclaimed once its
    /// lease goes unrenewed this long, like 5m.
    #[arg(long, env = "RAYDAR_LEASE_TIMEOUT", default_value = "5m", value_name = "DURATION",
        value_parser = duration, help_heading = "Lifecycle")]
    lease_timeout: u32,
    /// Clusters whose template has an idle policy (policy.idle) and that sit idle by it: on
    /// (warned, then suspended or torn down), dry-run (only shown on the fleet page and in
    /// /metrics, with the GPU-hours reclaiming would save) or off.
    #[arg(
        long,
        env = "RAYDAR_IDLE_RECLAIM",
        value_enum,
        default_value = "on",
        help_heading = "Lifecycle"
    )]
    idle_reclaim: IdleReclaim,
}

impl Flags {
    fn history_settings(&self) -> HistorySettings {
        HistorySettings {
            database: self
                .database
                .clone()
                .unwrap_or_else(|| Database::Sqlite(self.data_dir.join("raydar.db"))),
            buffer: self.history_buffer,
            keep: Duration::from_secs(u64::from(self.history_keep)),
            max_bytes: (self.history_max_mib as u64).saturating_mul(1 << 20),
            job_log_bytes: (self.history_job_log_mib as u64).saturating_mul(1 << 20),
            gpu_step: self.history_gpu_step,
        }
    }

    fn gpu_settings(&self) -> GpuSettings {
        GpuSettings {
            prometheus: self.prometheus.clone(),
            namespace: self.dcgm_namespace.clone(),
            selector: self.dcgm_selector.clone(),
            port: self.dcgm_port,
            reach: self.dcgm_reach,
            interval_s: self.gpu_interval,
            idle_below: self.gpu_idle_below,
            idle_after_s: self.gpu_idle_after,
        }
    }

    /// The settings, once the flags that depend on each other agree.
    fn into_config(self) -> Result<Config, String> {
        let authn = match self.auth {
            AuthMode::Dev => {
                if !self.addr.ip().is_loopback() {
                    return Err(format!(
                        "--auth dev makes everyone who connects {:?}, so it listens on loopback only: \
                         --addr {} is not a loopback address (use 127.0.0.1 or [::1], or --auth proxy \
                         behind an authenticating proxy)",
                        self.dev_user, self.addr
                    ));
                }
                let groups = self.dev_groups.iter().map(|g| g.trim()).filter(|g| !g.is_empty());
                Authn::Dev(User::new(
                    self.dev_user.trim().to_owned(),
                    None,
                    groups.map(str::to_owned).collect(),
                    "",
                ))
            }
            AuthMode::Proxy => {
                if self.trusted_proxies.is_empty() {
                    return Err(
                        "--auth proxy needs --trusted-proxies (env RAYDAR_TRUSTED_PROXIES): the addresses of \
                         the authenticating proxy whose identity headers raydar may believe, such as \
                         127.0.0.1/32 for a proxy beside it; for local use without one, --auth dev"
                            .into(),
                    );
                }
                Authn::Proxy(ProxyHeaders {
                    trusted: self.trusted_proxies.clone(),
                    user: self.user_header.clone(),
                    email: self.email_header.clone(),
                    groups: self.groups_header.clone(),
                    groups_prefix: self.proxy_groups_prefix.clone(),
                })
            }
        };
        let loopback = self.auth == AuthMode::Dev;
        let scope = match self.namespaces.is_empty() {
            true => Scope::All,
            false => Scope::Namespaces(sorted_unique(self.namespaces.clone())),
        };
        let contexts = match &self.contexts {
            Some(path) => contexts::read(path, &scope).map_err(|e| format!("--contexts: {e}"))?,
            None => contexts::inferred(&scope),
        };
        Ok(Config {
            contexts,
            served_as: ServedAs::new(loopback, self.public_url.clone()),
            gpus: self.gpu_settings(),
            history: self.history_settings(),
            lease_namespace: self.lease_namespace.clone(),
            lease_name: self.lease_name.clone(),
            lease_timeout: Duration::from_secs(u64::from(self.lease_timeout)),
            idle_reclaim: self.idle_reclaim,
            addr: self.addr,
            metrics_addr: self.metrics_addr,
            log_format: self.log_format,
            scope,
            site_root: self.site_root,
            authn,
            token_audience: self.token_audience,
            session_secret: self.session_secret,
            action_rate: self.action_rate,
            ray_dashboard: self.ray_dashboard,
            log_streams: self.log_streams,
            log_buffer_lines: self.log_buffer_lines,
            log_buffer_bytes: self.log_buffer_mib.saturating_mul(1 << 20),
            header_timeout: Duration::from_secs(u64::from(self.header_timeout)),
            event_streams: self.event_streams,
            log_downloads: self.log_downloads,
            event_streams_per_person: self.event_streams_per_person,
        })
    }
}

impl Config {
    /// Reads flags (`args` without the program name) over environment variables over defaults;
    /// a refusal says which flag (and variable) is wrong and what it allows.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let args = std::iter::once("raydar-server".to_owned()).chain(args);
        Flags::try_parse_from(args).map_err(refusal)?.into_config()
    }

    /// [`Config::from_args`] of this process' command line: `--help` and `--version` print and
    /// exit 0, a refusal is printed and exits 2.
    pub fn from_command_line() -> Self {
        let flags = match Flags::try_parse() {
            Ok(flags) => flags,
            Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
                e.exit()
            }
            Err(e) => {
                eprintln!("raydar-server: {}\n\nSee raydar-server --help.", refusal(e));
                std::process::exit(2)
            }
        };
        flags.into_config().unwrap_or_else(|why| {
            eprintln!("raydar-server: {why}\n\nSee raydar-server --help.");
            std::process::exit(2)
        })
    }
}

/// A clap error in raydar's words: a wrong value as `--flag/RAYDAR_VAR: why`, anything else as
/// clap says it.
fn refusal(error: clap::Error) -> String {
    let context = |kind| match error.get(kind) {
        Some(ContextValue::String(text)) => Some(text.clone()),
        _ => None,
    };
    let flag = context(ContextKind::InvalidArg)
        .and_then(|arg| arg.split_whitespace().next().map(str::to_owned));
    let source = std::error::Error::source(&error).map(|s| s.to_string());
    match (error.kind(), flag, source) {
        (ErrorKind::ValueValidation, Some(flag), Some(why)) => {
            let env = Flags::command()
                .get_arguments()
                .find(|a| a.get_long().is_some_and(|l| format!("--{l}") == flag))
                .and_then(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()));
            match env {
                Some(env) => format!("{flag}/{env}: {why}"),
                None => format!("{flag}: {why}"),
            }
        }
        _ => error.render().to_string().trim_start_matches("error: ").trim().to_owned(),
    }
}

fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|e| format!("{text:?} is not HOST:PORT with a numeric host ({e})"))
}

fn database(text: &str) -> Result<Database, String> {
    let text = text.trim();
    if let Some(path) = text.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(
                "sqlite:// needs a file path, like sqlite:///var/lib/raydar/raydar.db".into()
            );
        }
        return Ok(Database::Sqlite(PathBuf::from(path)));
    }
    match reqwest::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "postgres" | "postgresql") && url.has_host() => {
            Ok(Database::Postgres(text.to_owned()))
        }
        _ => Err(format!(
            "{:?} is not a database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB or sqlite://PATH",
            // A password in a refused URL stays out of the message.
            text.split('@').next_back().unwrap_or_default()
        )),
    }
}

fn cidr(text: &str) -> Result<Cidr, String> {
    Cidr::parse(text)
}

fn header_name(text: &str) -> Result<HeaderName, String> {
    HeaderName::try_from(text.trim().to_ascii_lowercase())
        .map_err(|_| format!("{text:?} is not an HTTP header name"))
}

fn not_empty(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(text.to_owned())
    }
}

fn count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{text:?} is not a whole number above 0")),
    }
}

fn whole(text: &str) -> Result<usize, String> {
    text.trim().parse::<usize>().map_err(|_| format!("{text:?} is not a whole number"))
}

fn reach(text: &str) -> Result<Reach, String> {
    Reach::parse(text)
}

fn namespace(text: &str) -> Result<String, String> {
    match platform::template::value::namespace_problem(text.trim()) {
        None => Ok(text.trim().to_owned()),
        Some(problem) => Err(problem),
    }
}

fn session_secret(text: &str) -> Result<String, String> {
    match text.chars().count() {
        32.. => Ok(text.to_owned()),
        n => Err(format!(
            "is {n} characters: give 32 or more (openssl rand -hex 32), the same on every replica"
        )),
    }
}

fn sorted_unique(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names.dedup();
    names
}

fn percent(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{text:?} is not a percentage (0 to 100)")),
    }
}

fn duration(text: &str) -> Result<u32, String> {
    parse_duration("", text).map_err(|e| e.trim_start_matches(": ").to_owned())
}

/// Reads a duration the way templates write them (`90s`, `30m`, `2h`, `1h30m`:
/// [`platform::template::parse_duration`]) or plain seconds, above zero; errors start with
/// `flag`.
pub fn parse_duration(flag: &str, text: &str) -> Result<u32, String> {
    let text = text.trim();
    let seconds = match text.parse::<u64>() {
        Ok(n) => Some(n),
        Err(_) => platform::template::parse_duration(text).ok().map(|d| d.as_secs()),
    };
    match seconds {
        Some(0) | None => {
            Err(format!("{flag}: {text:?} is not a duration above 0 such as 90s, 30m, 2h or 1h30m"))
        }
        Some(n) => u32::try_from(n).map_err(|_| format!("{flag}: {text:?} is too long")),
    }
}

/// Reads `--prometheus`: empty for none, else an http(s) base URL without query or fragment,
/// kept without its trailing slash so API paths can follow it.
pub(crate) fn prometheus_url(text: &str) -> Result<String, String> {
    let text = text.trim();
    let Ok(url) = reqwest::Url::parse(text) else {
        return Err(format!("{text:?} is not a URL such as http://prometheus.monitoring:9090"));
    };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{text:?} is not an http or https URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?} has a query or fragment; give the server's base URL"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Reads `--public-url`: an http(s) origin (no path, query or fragment), such as
/// https://raydar.example.com.
fn public_url(text: &str) -> Result<reqwest::Url, String> {
    let text = text.trim();
    let url = reqwest::Url::parse(text)
        .map_err(|_| format!("{text:?} is not a URL such as https://raydar.example.com"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{text:?} is not an http or https URL with a host"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{text:?} has a path, query or fragment; raydar is served at the root of its address"
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        Config::from_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn dev_mode_listens_on_loopback_only() {
        assert!(parse(&["--auth", "dev", "--addr", "127.0.0.1:3000"]).is_ok());
        assert!(parse(&["--auth", "dev", "--addr", "[::1]:3000"]).is_ok());
        let e = parse(&["--auth", "dev", "--addr", "0.0.0.0:3000"]).unwrap_err();
        assert!(e.contains("loopback only") && e.contains("0.0.0.0:3000"), "{e}");
    }

    #[test]
    fn one_context_unless_a_file_lists_them() {
        let one = parse(&["--auth", "dev", "--namespaces", "team-a"]).unwrap();
        assert_eq!(one.contexts.len(), 1);
        assert_eq!(one.contexts[0].name, crate::contexts::HOME);
        assert_eq!(one.contexts[0].scope, Scope::Namespaces(vec!["team-a".into()]));
        let e = parse(&["--auth", "dev", "--contexts", "/nonexistent/contexts.yaml"]).unwrap_err();
        assert!(
            e.starts_with("--contexts: cannot read the contexts file /nonexistent/contexts.yaml"),
            "{e}"
        );
    }

    #[test]
    fn idle_reclaim_acts_unless_told_to_only_show_or_not() {
        assert_eq!(parse(&["--auth", "dev"]).unwrap().idle_reclaim, IdleReclaim::On);
        let dry = parse(&["--auth", "dev", "--idle-reclaim", "dry-run"]).unwrap();
        assert_eq!(dry.idle_reclaim, IdleReclaim::DryRun);
        let e = parse(&["--auth", "dev", "--idle-reclaim", "maybe"]).unwrap_err();
        assert!(e.contains("--idle-reclaim") && e.contains("dry-run"), "{e}");
    }

    #[test]
    fn proxy_mode_needs_the_proxy_addresses() {
        let e = parse(&["--auth", "proxy"]).unwrap_err();
        assert!(e.contains("--trusted-proxies"), "{e}");
        let e = parse(&["--auth", "proxy", "--trusted-proxies", "10.0.0.0/40"]).unwrap_err();
        assert!(e.contains("--trusted-proxies") && e.contains("0 to 32"), "{e}");
        let config = parse(&[
            "--auth",
            "proxy",
            "--trusted-proxies",
            "10.0.0.0/8, ::1",
            "--user-header",
            "X-Auth-Request-User",
        ])
        .unwrap();
        let Authn::Proxy(proxy) = config.authn else { panic!("proxy mode") };
        assert_eq!(proxy.trusted.len(), 2);
        assert_eq!(proxy.user.as_str(), "x-auth-request-user");
        assert_eq!(proxy.groups_prefix, "", "groups as sent unless a prefix is asked for");
        assert!(config.served_as.anywhere(), "the proxy chooses the host");
    }

    #[test]
    fn a_public_url_is_an_origin() {
        let proxy = ["--auth", "proxy", "--trusted-proxies", "10.0.0.0/8"];
        let with = |url: &str| parse(&[&proxy[..], &["--public-url", url]].concat());
        assert!(!with("https://raydar.example.com").unwrap().served_as.anywhere());
        let e = with("https://raydar.example.com/console").unwrap_err();
        assert!(e.contains("--public-url") && e.contains("path"), "{e}");
        let e = with("raydar.example.com").unwrap_err();
        assert!(e.contains("--public-url") && e.contains("https://raydar.example.com"), "{e}");
        let prefixed = parse(&[&proxy[..], &["--proxy-groups-prefix", "oidc:"]].concat()).unwrap();
        let Authn::Proxy(proxy) = prefixed.authn else { panic!("proxy mode") };
        assert_eq!(proxy.groups_prefix, "oidc:");
        assert!(!parse(&["--auth", "dev"]).unwrap().served_as.anywhere(), "dev: loopback names");
    }

    #[test]
    fn gpu_settings_have_defaults_and_name_the_flag_when_wrong() {
        let config = parse(&["--auth", "dev"]).unwrap();
        assert_eq!(config.gpus, GpuSettings::default());
        let config = parse(&[
            "--auth",
            "dev",
            "--gpu-idle-after",
            "90s",
            "--gpu-interval",
            "2",
            "--dcgm-reach",
            "pod",
        ])
        .unwrap();
        assert_eq!(
            (config.gpus.idle_after_s, config.gpus.interval_s, config.gpus.reach),
            (90, 2, ExporterReach::PodIp)
        );
        assert_eq!(parse_duration("--x", "2h"), Ok(7200));
        let e = parse(&["--auth", "dev", "--gpu-idle-after", "soon"]).unwrap_err();
        assert!(e.contains("--gpu-idle-after") && e.contains("30m"), "{e}");
        let e = parse(&["--auth", "dev", "--gpu-idle-below", "120"]).unwrap_err();
        assert!(e.contains("--gpu-idle-below") && e.contains("0 to 100"), "{e}");
        let e = parse(&["--auth", "dev", "--dcgm-namespace", "GPU_ops"]).unwrap_err();
        assert!(e.contains("--dcgm-namespace"), "{e}");
        let config =
            parse(&["--auth", "dev", "--prometheus", "http://prometheus.monitoring:9090/"])
                .unwrap();
        assert_eq!(config.gpus.prometheus.as_deref(), Some("http://prometheus.monitoring:9090"));
        let config =
            parse(&["--auth", "dev", "--prometheus", "https://metrics.example.com/prom/"]).unwrap();
        assert_eq!(config.gpus.prometheus.as_deref(), Some("https://metrics.example.com/prom"));
        for wrong in ["prometheus:9090", "ftp://prometheus", "http://prometheus:9090/?query=up"] {
            let e = parse(&["--auth", "dev", "--prometheus", wrong]).unwrap_err();
            assert!(e.starts_with("--prometheus") && e.contains(wrong), "{e}");
        }
    }

    #[test]
    fn dev_mode_has_its_user_and_groups() {
        let config =
            parse(&["--auth", "dev", "--dev-user", "alice", "--dev-groups", "team-a,ml"]).unwrap();
        let Authn::Dev(user) = config.authn else { panic!("dev mode") };
        assert_eq!((user.name.as_str(), user.team()), ("alice", "team-a".to_owned()));
    }

    #[test]
    fn durations_are_platforms_or_plain_seconds() {
        assert_eq!(parse_duration("--gpu-idle-after", "1h30m"), Ok(5400));
        assert_eq!(parse_duration("--gpu-interval", "15"), Ok(15));
        let e = parse_duration("--gpu-interval", "0s").unwrap_err();
        assert!(e.starts_with("--gpu-interval") && e.contains("above 0"), "{e}");
        let config = parse(&["--auth", "dev", "--gpu-idle-after", "1h30m"]).unwrap();
        assert_eq!(config.gpus.idle_after_s, 5400);
    }

    #[test]
    fn a_wrong_value_names_the_flag_and_its_variable() {
        let e = parse(&["--auth", "dev", "--log-streams", "none"]).unwrap_err();
        assert_eq!(e, "--log-streams/RAYDAR_LOG_STREAMS: \"none\" is not a whole number above 0");
        let e = parse(&["--auth", "sso"]).unwrap_err();
        assert!(e.contains("--auth") && e.contains("proxy") && e.contains("dev"), "{e}");
        let e = parse(&["--auth", "dev", "--no-such-flag"]).unwrap_err();
        assert!(e.contains("--no-such-flag"), "{e}");
    }

    #[test]
    fn help_groups_flags_by_concern_with_their_variables() {
        let help = Flags::command().render_long_help().to_string();
        for heading in ["Serving:", "Identity:", "Limits:", "Ray:", "GPU metrics:"] {
            assert!(help.contains(heading), "{heading} in\n{help}");
        }
        assert!(help.contains("RAYDAR_GPU_IDLE_AFTER") && help.contains("RAYDAR_TRUSTED_PROXIES"));
        Flags::command().debug_assert();
    }
}
