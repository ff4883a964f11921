//! Settings, from flags or the environment (flags win).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::ray::Reach;

/// How raydar-server runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen (`--addr`, `RAYDAR_ADDR`; default 127.0.0.1:3000).
    pub addr: SocketAddr,
    /// Folder of the built site: `pkg/` with the wasm, JS and CSS (`--site-root`,
    /// `LEPTOS_SITE_ROOT`; default `target/site`, where tools/site.sh puts it).
    pub site_root: PathBuf,
    /// Pre-authentication dev mode: the user every launch is made for and labelled with as owner
    /// (`--dev-user`, `RAYDAR_DEV_USER`; default `developer`). Never read from a request; the
    /// security issue replaces it with the identity of the authenticating proxy.
    pub dev_user: String,
    /// Pre-authentication dev mode: the team of [`Config::dev_user`] (`--dev-team`,
    /// `RAYDAR_DEV_TEAM`; default `dev`).
    pub dev_team: String,
    /// How Ray dashboards are reached (`--ray-dashboard`, `RAYDAR_RAY_DASHBOARD`: `proxy`, the
    /// default, through the apiserver; `service`, in the cluster; or a URL template).
    pub ray_dashboard: Reach,
    /// Most logs followed live at once, each one upstream stream shared by its viewers
    /// (`--log-streams`, `RAYDAR_LOG_STREAMS`; default 64).
    pub log_streams: usize,
    /// Lines kept of each followed log for viewers that join late or fall behind
    /// (`--log-buffer-lines`, `RAYDAR_LOG_BUFFER_LINES`; default 10000).
    pub log_buffer_lines: usize,
}

const USAGE: &str = "usage: raydar-server [--addr HOST:PORT] [--site-root DIR] [--dev-user USER] [--dev-team TEAM]
                     [--ray-dashboard proxy|service|URL] [--log-streams N] [--log-buffer-lines N]

Watches KubeRay RayClusters in every namespace of the Kubernetes cluster named by the current
kubeconfig context (KUBECONFIG), or the cluster it runs in, and serves raydar on HOST:PORT.

  --addr HOST:PORT   where to listen (env RAYDAR_ADDR; default 127.0.0.1:3000)
  --site-root DIR    built site with pkg/ (env LEPTOS_SITE_ROOT; default target/site)
  --dev-user USER    pre-authentication dev mode: who every launch is made for, the owner label
                     of what raydar creates (env RAYDAR_DEV_USER; default developer)
  --dev-team TEAM    the dev user's team (env RAYDAR_DEV_TEAM; default dev)
  --ray-dashboard HOW  how Ray dashboards are reached, read-only: proxy (through the apiserver's
                     service proxy, the default), service (KubeRay's head service, from inside the
                     cluster) or a URL template with {namespace} and {name} (env RAYDAR_RAY_DASHBOARD)
  --log-streams N    most logs followed live at once, each shared by all its viewers; a new one
                     beyond is refused (env RAYDAR_LOG_STREAMS; default 64)
  --log-buffer-lines N  lines kept of each followed log for late or slow viewers (env
                     RAYDAR_LOG_BUFFER_LINES; default 10000)";

impl Config {
    /// Reads flags (`args` without the program name) over environment variables over defaults.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut addr = env("RAYDAR_ADDR").unwrap_or_else(|| "127.0.0.1:3000".into());
        let mut site_root = env("LEPTOS_SITE_ROOT").unwrap_or_else(|| "target/site".into());
        let mut dev_user = env("RAYDAR_DEV_USER").unwrap_or_else(|| "developer".into());
        let mut dev_team = env("RAYDAR_DEV_TEAM").unwrap_or_else(|| "dev".into());
        let mut ray_dashboard = env("RAYDAR_RAY_DASHBOARD").unwrap_or_else(|| "proxy".into());
        let mut log_streams = env("RAYDAR_LOG_STREAMS").unwrap_or_else(|| "64".into());
        let mut log_buffer_lines = env("RAYDAR_LOG_BUFFER_LINES").unwrap_or_else(|| "10000".into());
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"));
            match arg.as_str() {
                "--addr" => addr = value("--addr")?,
                "--site-root" => site_root = value("--site-root")?,
                "--dev-user" => dev_user = value("--dev-user")?,
                "--dev-team" => dev_team = value("--dev-team")?,
                "--ray-dashboard" => ray_dashboard = value("--ray-dashboard")?,
                "--log-streams" => log_streams = value("--log-streams")?,
                "--log-buffer-lines" => log_buffer_lines = value("--log-buffer-lines")?,
                "-h" | "--help" => return Err(USAGE.into()),
                other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
            }
        }
        let addr = addr
            .parse()
            .map_err(|e| format!("--addr/RAYDAR_ADDR: {addr:?} is not HOST:PORT with a numeric host ({e})"))?;
        if dev_user.trim().is_empty() {
            return Err(format!("--dev-user/RAYDAR_DEV_USER must not be empty\n\n{USAGE}"));
        }
        let ray_dashboard = Reach::parse(&ray_dashboard)?;
        let count = |flag: &str, text: &str| match text.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{flag}: {text:?} is not a whole number above 0\n\n{USAGE}")),
        };
        let log_streams = count("--log-streams/RAYDAR_LOG_STREAMS", &log_streams)?;
        let log_buffer_lines = count("--log-buffer-lines/RAYDAR_LOG_BUFFER_LINES", &log_buffer_lines)?;
        Ok(Self { addr, site_root: site_root.into(), dev_user, dev_team, ray_dashboard, log_streams, log_buffer_lines })
    }
}
