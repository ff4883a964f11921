//! Settings, from flags or the environment (flags win).

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::HeaderName;

use crate::auth::{Authn, Cidr, ProxyHeaders, User};
use crate::ray::Reach;

/// How raydar-server runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen (`--addr`, `RAYDAR_ADDR`; default 127.0.0.1:3000).
    pub addr: SocketAddr,
    /// Folder of the built site: `pkg/` with the wasm, JS and CSS (`--site-root`,
    /// `LEPTOS_SITE_ROOT`; default `target/site`, where tools/site.sh puts it).
    pub site_root: PathBuf,
    /// Where identities come from (`--auth`, `RAYDAR_AUTH`): `proxy` (the default) believes the
    /// identity headers of an authenticating proxy at `--trusted-proxies`; `dev` makes everyone
    /// `--dev-user` (in `--dev-groups`) and listens on loopback only.
    pub authn: Authn,
    /// Launches, changes and teardowns one user may make per minute (`--action-rate`,
    /// `RAYDAR_ACTION_RATE`; default 30).
    pub action_rate: u32,
    /// How Ray dashboards are reached (`--ray-dashboard`, `RAYDAR_RAY_DASHBOARD`: `proxy`, the
    /// default, through the apiserver; `service`, in the cluster; or a URL template).
    pub ray_dashboard: Reach,
    /// Most logs followed live at once, each one upstream stream shared by its viewers
    /// (`--log-streams`, `RAYDAR_LOG_STREAMS`; default 64).
    pub log_streams: usize,
    /// Lines kept of each followed log for viewers that join late or fall behind
    /// (`--log-buffer-lines`, `RAYDAR_LOG_BUFFER_LINES`; default 10000).
    pub log_buffer_lines: usize,
    /// Where GPU metrics come from and what counts as idle ([`GpuSettings`]).
    pub gpus: GpuSettings,
}

/// GPU metrics: which dcgm-exporters to scrape, or which Prometheus to ask; how often, and the
/// idle rule.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuSettings {
    /// A Prometheus server that scrapes the dcgm-exporters (`--prometheus`, `RAYDAR_PROMETHEUS`,
    /// its base URL like `http://prometheus.monitoring:9090`). When set, raydar asks it instead
    /// of scraping the exporters itself, and fills its history from it at start.
    pub prometheus: Option<String>,
    /// Namespace of the dcgm-exporter pods (`--dcgm-namespace`, `RAYDAR_DCGM_NAMESPACE`; default
    /// `gpu-operator`, where NVIDIA's GPU Operator runs them).
    pub namespace: String,
    /// Their label selector (`--dcgm-selector`, `RAYDAR_DCGM_SELECTOR`; default
    /// `app=nvidia-dcgm-exporter`, the GPU Operator's).
    pub selector: String,
    /// Their metrics port (`--dcgm-port`, `RAYDAR_DCGM_PORT`; default 9400).
    pub port: u16,
    /// How they are reached (`--dcgm-reach`, `RAYDAR_DCGM_REACH`): `proxy` (the default) through
    /// the apiserver's pod proxy, `pod` straight to the pod IP from inside the cluster.
    pub reach: ExporterReach,
    /// Seconds between scrapes, or queries of Prometheus (`--gpu-interval`,
    /// `RAYDAR_GPU_INTERVAL`; default 15).
    pub interval_s: u32,
    /// A GPU under this utilization, percent, is idle (`--gpu-idle-below`,
    /// `RAYDAR_GPU_IDLE_BELOW`; default 10).
    pub idle_below: f64,
    /// A cluster whose GPUs have all been idle this long is flagged (`--gpu-idle-after`,
    /// `RAYDAR_GPU_IDLE_AFTER`, like `30m`, `2h` or `90s`; default 30m).
    pub idle_after_s: u32,
}

/// How raydar reaches a dcgm-exporter pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExporterReach {
    /// `/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/metrics` on the apiserver.
    ApiserverProxy,
    /// `http://{pod IP}:{port}/metrics`.
    PodIp,
}

impl Default for GpuSettings {
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

/// Reads `--prometheus`: empty for none, else an http(s) base URL without query or fragment,
/// kept without its trailing slash so API paths can follow it.
fn prometheus_url(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let wrong = |why: &str| Err(format!("--prometheus/RAYDAR_PROMETHEUS: {text:?} {why}"));
    let Ok(url) = reqwest::Url::parse(text) else {
        return wrong("is not a URL such as http://prometheus.monitoring:9090");
    };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return wrong("is not an http or https URL with a host");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return wrong("has a query or fragment; give the server's base URL");
    }
    Ok(Some(url.as_str().trim_end_matches('/').to_owned()))
}

/// Reads a duration written `90s`, `30m`, `2h` or in plain seconds.
pub fn parse_duration(flag: &str, text: &str) -> Result<u32, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((i, 's')) => (&text[..i], 1),
        Some((i, 'm')) => (&text[..i], 60),
        Some((i, 'h')) => (&text[..i], 3600),
        _ => (text, 1),
    };
    match number.trim().parse::<u32>() {
        Ok(n) if n > 0 => {
            n.checked_mul(unit).ok_or_else(|| format!("{flag}: {text:?} is too long"))
        }
        _ => Err(format!("{flag}: {text:?} is not a duration above 0 such as 90s, 30m or 2h")),
    }
}

const USAGE: &str = "usage: raydar-server [--addr HOST:PORT] [--site-root DIR]
                     [--auth proxy --trusted-proxies CIDR,.. | --auth dev [--dev-user USER] [--dev-groups G,..]]
                     [--ray-dashboard proxy|service|URL] [--log-streams N] [--log-buffer-lines N]
                     [--dcgm-namespace NS] [--dcgm-selector LABELS] [--dcgm-port N] [--dcgm-reach proxy|pod]
                     [--prometheus URL]
                     [--gpu-interval SECONDS] [--gpu-idle-below PERCENT] [--gpu-idle-after DURATION]

Watches KubeRay RayClusters in every namespace of the Kubernetes cluster named by the current
kubeconfig context (KUBECONFIG), or the cluster it runs in, and serves raydar on HOST:PORT.

  --addr HOST:PORT   where to listen (env RAYDAR_ADDR; default 127.0.0.1:3000)
  --site-root DIR    built site with pkg/ (env LEPTOS_SITE_ROOT; default target/site)
  --auth proxy|dev   where identities come from (env RAYDAR_AUTH; default proxy):
                     proxy: an authenticating proxy (oauth2-proxy) in front sends who is asking in
                     headers, believed only from --trusted-proxies;
                     dev: everyone who connects is --dev-user; loopback addresses only
  --trusted-proxies CIDR,..  the authenticating proxy's addresses (env RAYDAR_TRUSTED_PROXIES)
  --user-header NAME, --email-header NAME, --groups-header NAME
                     the proxy's identity headers (env RAYDAR_USER_HEADER, RAYDAR_EMAIL_HEADER,
                     RAYDAR_GROUPS_HEADER; default X-Forwarded-User, -Email, -Groups)
  --dev-user USER    dev mode's user (env RAYDAR_DEV_USER; default developer)
  --dev-groups G,..  dev mode's groups; the first is the team (env RAYDAR_DEV_GROUPS; default dev)
  --action-rate N    launches, changes and teardowns per user per minute (env RAYDAR_ACTION_RATE;
                     default 30)
  --ray-dashboard HOW  how Ray dashboards are reached, read-only: proxy (through the apiserver's
                     service proxy, the default), service (KubeRay's head service, from inside the
                     cluster) or a URL template with {namespace} and {name} (env RAYDAR_RAY_DASHBOARD)
  --log-streams N    most logs followed live at once, each shared by all its viewers; a new one
                     beyond is refused (env RAYDAR_LOG_STREAMS; default 64)
  --log-buffer-lines N  lines kept of each followed log for late or slow viewers (env
                     RAYDAR_LOG_BUFFER_LINES; default 10000)
  --dcgm-namespace NS, --dcgm-selector LABELS, --dcgm-port N
                     where the dcgm-exporter pods are, scraped for GPU metrics (env
                     RAYDAR_DCGM_NAMESPACE, RAYDAR_DCGM_SELECTOR, RAYDAR_DCGM_PORT; default
                     gpu-operator, app=nvidia-dcgm-exporter, 9400: NVIDIA's GPU Operator)
  --dcgm-reach proxy|pod  through the apiserver's pod proxy (default) or straight to the pod IP
                     from inside the cluster (env RAYDAR_DCGM_REACH)
  --prometheus URL   ask this Prometheus server, which scrapes the dcgm-exporters, instead of
                     scraping them (env RAYDAR_PROMETHEUS; e.g. http://prometheus.monitoring:9090)
  --gpu-interval SECONDS  between GPU scrapes or queries (env RAYDAR_GPU_INTERVAL; default 15)
  --gpu-idle-below PERCENT  a GPU under this utilization is idle (env RAYDAR_GPU_IDLE_BELOW;
                     default 10)
  --gpu-idle-after DURATION  a cluster whose GPUs have all been idle this long is flagged, e.g.
                     30m, 2h, 90s (env RAYDAR_GPU_IDLE_AFTER; default 30m)";

impl Config {
    /// Reads flags (`args` without the program name) over environment variables over defaults.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let setting = |k: &str, default: &str| env(k).unwrap_or_else(|| default.into());
        let mut addr = setting("RAYDAR_ADDR", "127.0.0.1:3000");
        let mut site_root = setting("LEPTOS_SITE_ROOT", "target/site");
        let mut auth = setting("RAYDAR_AUTH", "proxy");
        let mut trusted = setting("RAYDAR_TRUSTED_PROXIES", "");
        let mut user_header = setting("RAYDAR_USER_HEADER", "X-Forwarded-User");
        let mut email_header = setting("RAYDAR_EMAIL_HEADER", "X-Forwarded-Email");
        let mut groups_header = setting("RAYDAR_GROUPS_HEADER", "X-Forwarded-Groups");
        let mut dev_user = setting("RAYDAR_DEV_USER", "developer");
        let mut dev_groups = setting("RAYDAR_DEV_GROUPS", "dev");
        let mut action_rate = setting("RAYDAR_ACTION_RATE", "30");
        let mut ray_dashboard = setting("RAYDAR_RAY_DASHBOARD", "proxy");
        let mut log_streams = setting("RAYDAR_LOG_STREAMS", "64");
        let mut log_buffer_lines = setting("RAYDAR_LOG_BUFFER_LINES", "10000");
        let defaults = GpuSettings::default();
        let mut dcgm_namespace = setting("RAYDAR_DCGM_NAMESPACE", &defaults.namespace);
        let mut dcgm_selector = setting("RAYDAR_DCGM_SELECTOR", &defaults.selector);
        let mut dcgm_port = setting("RAYDAR_DCGM_PORT", "9400");
        let mut dcgm_reach = setting("RAYDAR_DCGM_REACH", "proxy");
        let mut gpu_interval = setting("RAYDAR_GPU_INTERVAL", "15");
        let mut prometheus = setting("RAYDAR_PROMETHEUS", "");
        let mut gpu_idle_below = setting("RAYDAR_GPU_IDLE_BELOW", "10");
        let mut gpu_idle_after = setting("RAYDAR_GPU_IDLE_AFTER", "30m");
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value =
                |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"));
            match arg.as_str() {
                "--addr" => addr = value("--addr")?,
                "--site-root" => site_root = value("--site-root")?,
                "--auth" => auth = value("--auth")?,
                "--trusted-proxies" => trusted = value("--trusted-proxies")?,
                "--user-header" => user_header = value("--user-header")?,
                "--email-header" => email_header = value("--email-header")?,
                "--groups-header" => groups_header = value("--groups-header")?,
                "--dev-user" => dev_user = value("--dev-user")?,
                "--dev-groups" => dev_groups = value("--dev-groups")?,
                "--action-rate" => action_rate = value("--action-rate")?,
                "--ray-dashboard" => ray_dashboard = value("--ray-dashboard")?,
                "--log-streams" => log_streams = value("--log-streams")?,
                "--log-buffer-lines" => log_buffer_lines = value("--log-buffer-lines")?,
                "--dcgm-namespace" => dcgm_namespace = value("--dcgm-namespace")?,
                "--dcgm-selector" => dcgm_selector = value("--dcgm-selector")?,
                "--dcgm-port" => dcgm_port = value("--dcgm-port")?,
                "--dcgm-reach" => dcgm_reach = value("--dcgm-reach")?,
                "--gpu-interval" => gpu_interval = value("--gpu-interval")?,
                "--prometheus" => prometheus = value("--prometheus")?,
                "--gpu-idle-below" => gpu_idle_below = value("--gpu-idle-below")?,
                "--gpu-idle-after" => gpu_idle_after = value("--gpu-idle-after")?,
                "-h" | "--help" => return Err(USAGE.into()),
                other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
            }
        }
        let addr: SocketAddr = addr.parse().map_err(|e| {
            format!("--addr/RAYDAR_ADDR: {addr:?} is not HOST:PORT with a numeric host ({e})")
        })?;
        let list = |text: &str| {
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let authn = match auth.as_str() {
            "dev" => {
                if !addr.ip().is_loopback() {
                    return Err(format!(
                        "--auth dev makes everyone who connects {dev_user:?}, so it listens on loopback only: \
                         --addr {addr} is not a loopback address (use 127.0.0.1 or [::1], or --auth proxy \
                         behind an authenticating proxy)"
                    ));
                }
                if dev_user.trim().is_empty() {
                    return Err(format!("--dev-user/RAYDAR_DEV_USER must not be empty\n\n{USAGE}"));
                }
                Authn::Dev(User {
                    name: dev_user.trim().to_owned(),
                    email: None,
                    groups: list(&dev_groups),
                })
            }
            "proxy" => {
                let trusted = list(&trusted)
                    .iter()
                    .map(|c| Cidr::parse(c))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("--trusted-proxies/RAYDAR_TRUSTED_PROXIES: {e}"))?;
                if trusted.is_empty() {
                    return Err(format!(
                        "--auth proxy needs --trusted-proxies (env RAYDAR_TRUSTED_PROXIES): the addresses of the \
                         authenticating proxy whose identity headers raydar may believe, such as 127.0.0.1/32 \
                         for a proxy beside it; for local use without one, --auth dev\n\n{USAGE}"
                    ));
                }
                let header = |flag: &str, name: &str| {
                    HeaderName::try_from(name.trim().to_ascii_lowercase())
                        .map_err(|_| format!("{flag}: {name:?} is not an HTTP header name"))
                };
                Authn::Proxy(ProxyHeaders {
                    trusted,
                    user: header("--user-header", &user_header)?,
                    email: header("--email-header", &email_header)?,
                    groups: header("--groups-header", &groups_header)?,
                })
            }
            other => {
                return Err(format!("--auth/RAYDAR_AUTH: {other:?} is not proxy or dev\n\n{USAGE}"))
            }
        };
        let ray_dashboard = Reach::parse(&ray_dashboard)?;
        let count = |flag: &str, text: &str| match text.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{flag}: {text:?} is not a whole number above 0\n\n{USAGE}")),
        };
        let log_streams = count("--log-streams/RAYDAR_LOG_STREAMS", &log_streams)?;
        let log_buffer_lines =
            count("--log-buffer-lines/RAYDAR_LOG_BUFFER_LINES", &log_buffer_lines)?;
        let action_rate = u32::try_from(count("--action-rate/RAYDAR_ACTION_RATE", &action_rate)?)
            .map_err(|_| "--action-rate/RAYDAR_ACTION_RATE: too large".to_owned())?;
        let gpus = GpuSettings {
            prometheus: prometheus_url(&prometheus)?,
            namespace: match platform::template::value::namespace_problem(dcgm_namespace.trim()) {
                None => dcgm_namespace.trim().to_owned(),
                Some(problem) => return Err(format!("--dcgm-namespace/RAYDAR_DCGM_NAMESPACE: {problem}")),
            },
            selector: dcgm_selector.trim().to_owned(),
            port: match dcgm_port.trim().parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => return Err(format!("--dcgm-port/RAYDAR_DCGM_PORT: {dcgm_port:?} is not a port (1 to 65535)")),
            },
            reach: match dcgm_reach.as_str() {
                "proxy" => ExporterReach::ApiserverProxy,
                "pod" => ExporterReach::PodIp,
                other => return Err(format!("--dcgm-reach/RAYDAR_DCGM_REACH: {other:?} is not proxy or pod")),
            },
            interval_s: parse_duration("--gpu-interval/RAYDAR_GPU_INTERVAL", &gpu_interval)?,
            idle_below: match gpu_idle_below.trim().parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => p,
                _ => return Err(format!("--gpu-idle-below/RAYDAR_GPU_IDLE_BELOW: {gpu_idle_below:?} is not a percentage (0 to 100)")),
            },
            idle_after_s: parse_duration("--gpu-idle-after/RAYDAR_GPU_IDLE_AFTER", &gpu_idle_after)?,
        };
        if gpus.selector.is_empty() {
            return Err("--dcgm-selector/RAYDAR_DCGM_SELECTOR must not be empty: it picks the dcgm-exporter pods".into());
        }
        Ok(Self {
            addr,
            site_root: site_root.into(),
            authn,
            action_rate,
            ray_dashboard,
            log_streams,
            log_buffer_lines,
            gpus,
        })
    }
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
}
