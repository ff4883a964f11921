//! The Kubernetes clusters one raydar serves, as `--contexts FILE` lists them: each a context of
//! a kubeconfig, or the cluster raydar runs in, under a name that pages, the API (`?context=`)
//! and the CLI use. Without the file, raydar serves one: the cluster its kubeconfig (or its
//! ServiceAccount) points at.
//!
//! ```yaml
//! contexts:
//!   - name: train-east            # a DNS label; the first listed is the home context
//!     kubeconfig: /etc/raydar/east.kubeconfig   # default: KUBECONFIG, ~/.kube/config
//!     context: east-admin         # the kubeconfig's context; default: its current one
//!     namespaces: [team-a]        # default: --namespaces
//!     prometheus: http://prometheus.east:9090   # its GPU readings; "" scrapes its
//!                                 # dcgm-exporters; default: --prometheus
//!   - name: serve-west
//!     inCluster: true             # raydar's own ServiceAccount, where it runs
//! ```
//!
//! Each context's GPUs are read there: its own dcgm-exporters (through its apiserver), or the
//! Prometheus its entry names, so the fleet page adds up each cluster's own.
//!
//! The home context is the one a request without `?context=` is served by, and the one whose
//! apiserver reviews bearer tokens. [`Fleet`] is what spans them: the list of all of them
//! (`context=*`) and `GET /api/v1/contexts`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::Deserialize;

use crate::api::gpus::Gpus;
use crate::config::{GpuSettings, Scope};
use crate::security::Access;
use crate::sources::{Clusters, RayJobs, RayPods};

/// Most contexts one file may list: each one runs every watch raydar has.
pub const MAX_CONTEXTS: usize = 32;

/// One Kubernetes cluster raydar serves, as the file lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// How pages, the API and the CLI name it.
    pub name: String,
    /// Where its client configuration comes from.
    pub reach: ContextReach,
    /// The namespaces watched there: its own list, or `--namespaces`.
    pub scope: Scope,
    /// Where its GPU readings come from.
    pub gpus: GpuReadings,
}

/// Where a context's GPU readings come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum GpuReadings {
    /// As the flags say (`--prometheus`, else its dcgm-exporters).
    #[default]
    Flags,
    /// Its own dcgm-exporters, whatever `--prometheus` says.
    Exporters,
    /// The Prometheus at this base URL, which scrapes its dcgm-exporters.
    Prometheus(String),
}

impl Context {
    /// The GPU settings of this context: `flags`, with its own source of readings.
    pub fn gpu_settings(&self, flags: &GpuSettings) -> GpuSettings {
        let prometheus = match &self.gpus {
            GpuReadings::Flags => flags.prometheus.clone(),
            GpuReadings::Exporters => None,
            GpuReadings::Prometheus(url) => Some(url.clone()),
        };
        GpuSettings { prometheus, ..flags.clone() }
    }
}

/// Where a context's client configuration comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContextReach {
    /// A kubeconfig (`None`: KUBECONFIG or `~/.kube/config`) and one of its contexts (`None`:
    /// its current one).
    Kubeconfig { path: Option<PathBuf>, context: Option<String> },
    /// The ServiceAccount of the pod raydar runs in.
    InCluster,
    /// What `kube::Config::infer` finds: the only context when no file is given.
    Inferred,
}

/// The file's shape; unknown keys are refused, so a typo is not silently ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    contexts: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Entry {
    name: String,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    namespaces: Option<Vec<String>>,
    #[serde(default)]
    in_cluster: bool,
    prometheus: Option<String>,
}

/// The contexts `text` (the file at `path`, named in messages) lists, each watching `scope`
/// unless it lists namespaces of its own. A refusal names the entry and field that are wrong and
/// what is allowed.
pub fn parse(path: &Path, text: &str, scope: &Scope) -> Result<Vec<Context>, String> {
    let file: File =
        serde_saphyr::from_str(text).map_err(|e| format!("{}: {e}", path.display()))?;
    let at = |i: usize, field: &str| format!("{}: contexts[{i}].{field}", path.display());
    if file.contexts.is_empty() {
        return Err(format!("{}: contexts: list at least one Kubernetes cluster", path.display()));
    }
    if file.contexts.len() > MAX_CONTEXTS {
        return Err(format!(
            "{}: contexts: {} listed, at most {MAX_CONTEXTS}",
            path.display(),
            file.contexts.len()
        ));
    }
    let mut contexts: Vec<Context> = Vec::with_capacity(file.contexts.len());
    for (i, entry) in file.contexts.into_iter().enumerate() {
        if let Some(problem) = platform::template::value::namespace_problem(&entry.name) {
            return Err(format!("{} {problem}", at(i, "name")));
        }
        if let Some(first) = contexts.iter().position(|c| c.name == entry.name) {
            return Err(format!(
                "{}: {:?} is already the name of contexts[{first}]",
                at(i, "name"),
                entry.name
            ));
        }
        let reach = match entry.in_cluster {
            true if entry.kubeconfig.is_some() || entry.context.is_some() => {
                return Err(format!(
                "{}: inCluster uses raydar's own ServiceAccount; leave out kubeconfig and context",
                at(i, "inCluster")
            ))
            }
            true => ContextReach::InCluster,
            false => ContextReach::Kubeconfig {
                path: entry.kubeconfig,
                context: match entry.context {
                    Some(c) if c.trim().is_empty() => {
                        return Err(format!("{}: must not be empty", at(i, "context")))
                    }
                    c => c,
                },
            },
        };
        let scope = match entry.namespaces {
            None => scope.clone(),
            Some(listed) if listed.is_empty() => {
                return Err(format!(
                "{}: list at least one namespace, or leave it out to watch what --namespaces says",
                at(i, "namespaces")
            ))
            }
            Some(mut listed) => {
                for (j, ns) in listed.iter().enumerate() {
                    if let Some(problem) = platform::template::value::namespace_problem(ns) {
                        return Err(format!("{}[{j}] {problem}", at(i, "namespaces")));
                    }
                }
                listed.sort();
                listed.dedup();
                Scope::Namespaces(listed)
            }
        };
        let gpus = match entry.prometheus {
            None => GpuReadings::Flags,
            Some(url) if url.trim().is_empty() => GpuReadings::Exporters,
            Some(url) => GpuReadings::Prometheus(
                crate::config::prometheus_url(&url)
                    .map_err(|e| format!("{} {e}", at(i, "prometheus")))?,
            ),
        };
        contexts.push(Context { name: entry.name, reach, scope, gpus });
    }
    Ok(contexts)
}

/// Reads and parses the file at `path` ([`parse`]).
pub fn read(path: &Path, scope: &Scope) -> Result<Vec<Context>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the contexts file {}: {e}", path.display()))?;
    parse(path, &text, scope)
}

/// The one context of a raydar started without a contexts file: what the environment points at.
pub fn inferred(scope: &Scope) -> Vec<Context> {
    vec![Context {
        name: HOME.to_owned(),
        reach: ContextReach::Inferred,
        scope: scope.clone(),
        gpus: GpuReadings::Flags,
    }]
}

/// The name of the context of a raydar started without a contexts file.
pub const HOME: &str = "default";

impl Context {
    /// Its client configuration; the error names the context and says what is wrong.
    pub async fn client_config(&self) -> Result<kube::Config, String> {
        let named = |e: &dyn std::fmt::Display| format!("context {:?}: {e}", self.name);
        match &self.reach {
            ContextReach::Inferred => kube::Config::infer().await.map_err(|e| {
                format!(
                    "cannot find a Kubernetes configuration: {e} (set KUBECONFIG, run inside a \
                     cluster, or list clusters with --contexts)"
                )
            }),
            ContextReach::InCluster => kube::Config::incluster().map_err(|e| named(&e)),
            ContextReach::Kubeconfig { path, context } => {
                let kubeconfig = match path {
                    Some(path) => Kubeconfig::read_from(path),
                    None => Kubeconfig::read(),
                }
                .map_err(|e| named(&e))?;
                let options = KubeConfigOptions { context: context.clone(), ..Default::default() };
                kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| named(&e))
            }
        }
    }
}

/// Every Kubernetes cluster this raydar serves, home first, for what spans them; set once every
/// plane has started (empty until then).
#[derive(Clone, Default)]
pub struct Fleet(Arc<OnceLock<Vec<FleetPlane>>>);

/// What the fleet reads of one plane: its clusters, Ray pods, RayJobs and GPUs, and its answers
/// to who may see them.
#[derive(Clone)]
pub struct FleetPlane {
    pub name: String,
    pub clusters: Clusters,
    pub pods: RayPods,
    pub rayjobs: RayJobs,
    pub gpus: Gpus,
    pub access: Access,
}

impl FleetPlane {
    /// Who may see what on it: asked of its apiserver, or, while its watch of clusters says it
    /// does not answer, only what it last said, so that what spans every Kubernetes cluster does
    /// not wait out each question's timeout on one that drops packets.
    pub fn access_now(&self) -> Access {
        match self.clusters.stale() {
            Some(_) => self.access.remembered(),
            None => self.access.clone(),
        }
    }
}

impl Fleet {
    /// Sets the planes, once; a second call is ignored.
    pub fn set(&self, planes: Vec<FleetPlane>) {
        let _ = self.0.set(planes);
    }

    /// The planes, home first.
    pub fn planes(&self) -> &[FleetPlane] {
        self.0.get().map_or(&[], Vec::as_slice)
    }

    /// What history calls the plane `name` (a row's name of its Kubernetes cluster): `''` for
    /// the home one, as every row was before there were several.
    pub fn history_name<'a>(&self, name: &'a str) -> &'a str {
        match self.planes().first() {
            Some(home) if home.name != name => name,
            _ => "",
        }
    }

    /// The plane history calls `context`, if raydar serves it.
    pub fn by_history_name(&self, context: &str) -> Option<&FleetPlane> {
        match context {
            "" => self.planes().first(),
            name => self.planes().iter().find(|p| p.name == name),
        }
    }

    /// How a row shows history's `context`: by its plane's name when raydar serves several,
    /// empty when it serves one.
    pub fn shown(&self, context: &str) -> String {
        match self.planes() {
            [_, _, ..] if context.is_empty() => self.planes()[0].name.clone(),
            [_, _, ..] => context.to_owned(),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Vec<Context>, String> {
        parse(Path::new("contexts.yaml"), text, &Scope::All)
    }

    #[test]
    fn lists_kubeconfig_contexts_and_the_cluster_raydar_runs_in() {
        let contexts = parsed(
            "contexts:\n\
             - name: train-east\n  kubeconfig: /etc/east\n  context: east-admin\n  namespaces: [b, a, a]\n\
             - name: serve-west\n  inCluster: true\n\
             - name: lab\n",
        )
        .unwrap();
        assert_eq!(
            contexts,
            vec![
                Context {
                    name: "train-east".into(),
                    reach: ContextReach::Kubeconfig {
                        path: Some("/etc/east".into()),
                        context: Some("east-admin".into())
                    },
                    scope: Scope::Namespaces(vec!["a".into(), "b".into()]),
                    gpus: GpuReadings::Flags,
                },
                Context {
                    name: "serve-west".into(),
                    reach: ContextReach::InCluster,
                    scope: Scope::All,
                    gpus: GpuReadings::Flags,
                },
                Context {
                    name: "lab".into(),
                    reach: ContextReach::Kubeconfig { path: None, context: None },
                    scope: Scope::All,
                    gpus: GpuReadings::Flags,
                },
            ]
        );
    }

    #[test]
    fn a_context_without_namespaces_watches_what_the_flag_says() {
        let team = Scope::Namespaces(vec!["team-a".into()]);
        let contexts = parse(
            Path::new("c.yaml"),
            "contexts: [{name: one}, {name: two, namespaces: [x]}]",
            &team,
        )
        .unwrap();
        assert_eq!(contexts[0].scope, team);
        assert_eq!(contexts[1].scope, Scope::Namespaces(vec!["x".into()]));
    }

    #[test]
    fn each_context_reads_its_gpus_where_its_entry_says() {
        let contexts = parsed(
            "contexts:\n\
             - {name: flags}\n\
             - {name: scraped, prometheus: ''}\n\
             - {name: asked, prometheus: 'http://prometheus.west:9090/'}\n",
        )
        .unwrap();
        let flags =
            GpuSettings { prometheus: Some("http://flags:9090".into()), ..GpuSettings::default() };
        let sources: Vec<Option<String>> =
            contexts.iter().map(|c| c.gpu_settings(&flags).prometheus).collect();
        assert_eq!(
            sources,
            [Some("http://flags:9090".into()), None, Some("http://prometheus.west:9090".into())]
        );
        assert_eq!(contexts[2].gpu_settings(&flags).interval_s, flags.interval_s);
    }

    #[test]
    fn refusals_name_the_entry_the_field_and_what_is_allowed() {
        let refused = |text: &str, says: &str| {
            let e = parsed(text).unwrap_err();
            assert!(e.contains(says), "{text:?} gave {e:?}, not {says:?}");
        };
        refused("contexts: []", "contexts: list at least one Kubernetes cluster");
        refused("contexts: [{name: East_1}]", "contexts[0].name must be at most 63 characters");
        refused(
            "contexts: [{name: a}, {name: a}]",
            "contexts[1].name: \"a\" is already the name of contexts[0]",
        );
        refused(
            "contexts: [{name: a, inCluster: true, context: x}]",
            "contexts[0].inCluster: inCluster uses",
        );
        refused("contexts: [{name: a, context: ' '}]", "contexts[0].context: must not be empty");
        refused(
            "contexts: [{name: a, namespaces: []}]",
            "contexts[0].namespaces: list at least one",
        );
        refused(
            "contexts: [{name: a, namespaces: [ok, Bad]}]",
            "contexts[0].namespaces[1] must be",
        );
        refused("contexts: [{name: a, server: https://x}]", "unknown field");
        refused(
            "contexts: [{name: a, prometheus: 'prometheus:9090'}]",
            "contexts[0].prometheus \"prometheus:9090\" is not an http or https URL",
        );
        refused("clusters: []", "contexts.yaml:");
        let many = (0..=MAX_CONTEXTS).map(|i| format!("{{name: c{i}}}")).collect::<Vec<_>>();
        refused(&format!("contexts: [{}]", many.join(", ")), "at most 32");
    }

    #[tokio::test]
    async fn a_context_missing_from_the_kubeconfig_is_named() {
        let dir = std::env::temp_dir().join(format!("raydar-contexts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n\
             users: [{name: u, user: {token: t}}]\ncontexts: [{name: here, context: {cluster: c, user: u}}]\n\
             current-context: here\n",
        )
        .unwrap();
        let at = |context: Option<&str>| Context {
            name: "east".into(),
            reach: ContextReach::Kubeconfig {
                path: Some(path.clone()),
                context: context.map(str::to_owned),
            },
            scope: Scope::All,
            gpus: GpuReadings::Flags,
        };
        let found = at(None).client_config().await.unwrap();
        assert_eq!(found.cluster_url.to_string(), "https://127.0.0.1:1/");
        let e = at(Some("there")).client_config().await.unwrap_err();
        assert!(e.starts_with("context \"east\": ") && e.contains("there"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
