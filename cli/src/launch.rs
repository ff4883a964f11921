//! `raydar render` and `raydar up`: a template and `--set` values through the platform's template
//! engine into a RayCluster manifest, printed, or dry-run and applied as the kubeconfig's user.

use kube::api::{Patch, PatchParams};
use kube::ResourceExt;
use platform::capacity::Capacity;
use platform::kuberay::RayCluster;
use platform::template::{
    manifest_yaml, render as render_manifest, Identity, LaunchRequest, RayClusterTemplate,
    Timestamp, ANNOTATION_EXPIRES_AT, ANNOTATION_OWNER, LABEL_TEMPLATE,
};
use serde::Serialize;
use serde_json::Value;

use crate::args::{GlobalArgs, Output, RenderArgs, TemplateArgs, UpArgs};
use crate::capacity;
use crate::error::{Error, Result};
use crate::kuberay;
use crate::kubernetes::{context_namespace, Kubernetes};
use crate::list::ClusterRow;
use crate::output::{print_json, print_text};
use crate::templates::TemplateSource;
use crate::wait::{self, Goal};

pub use platform::template::FIELD_MANAGER;

/// The owner `render` writes when no `--user` is given: nothing is created, so nobody is
/// authenticated; `up` always asks the apiserver instead.
pub const PLACEHOLDER_USER: &str = "placeholder-render-only";

/// What `up` did, as `-o json` prints it.
#[derive(Debug, Serialize)]
pub struct UpReport {
    /// `created`, `configured` (it existed, launched the same way, and changed) or `unchanged`.
    pub action: &'static str,
    /// The cluster after the apply, or once Ready with `--wait`.
    pub cluster: ClusterRow,
    /// Whether its pods fitted the nodes and quota as it was launched.
    pub capacity: Capacity,
}

/// `raydar render`: prints the manifest; reads the cluster only for a template given by name.
pub async fn render(global: &GlobalArgs, args: &RenderArgs) -> Result<()> {
    let source = TemplateSource::from_arg(&args.template.template);
    let connect = || Kubernetes::connect(global.context.as_deref(), global.request_timeout);
    // The cluster, when it is read anyway or capacity is asked for.
    let mut cluster = None;
    let template = match source.read_file() {
        Some(file) => file?,
        None => {
            let kubernetes = connect().await?;
            let template = source.load(&kubernetes).await?;
            cluster = Some(kubernetes);
            template
        }
    };
    if cluster.is_none() && args.capacity {
        cluster = Some(connect().await?);
    }
    let namespace = match &args.template.namespace {
        Some(ns) => ns.clone(),
        None => context_namespace(global.context.as_deref()),
    };
    let user = args.user.clone().filter(|u| !u.trim().is_empty());
    let placeholder = user.is_none();
    let identity = Identity {
        user: user.unwrap_or_else(|| PLACEHOLDER_USER.to_owned()),
        team: args.template.team.clone().unwrap_or_default(),
    };
    let manifest = render_with(
        &template,
        &args.template,
        &args.name,
        &namespace,
        &identity,
        Timestamp::now(),
    )?;
    let capacity = match &cluster {
        Some(kubernetes) => Some(capacity::judge(kubernetes, &namespace, &manifest).await),
        None => None,
    };
    const NOTE: &str =
        "preview only: the owner is a placeholder; `raydar up` sets it to the user the apiserver names";
    match global.output {
        // The manifest alone on stdout, for scripts; the rest is said on stderr.
        Output::Json => {
            if placeholder {
                eprintln!("note: {NOTE}");
            }
            if let Some(capacity) = &capacity {
                eprint!("{}", capacity::lines(capacity, "note: "));
            }
            print_json(&manifest);
        }
        // Comments at the top keep it a manifest kubectl applies.
        Output::Text => {
            let mut header = if placeholder { format!("# {NOTE}\n") } else { String::new() };
            if let Some(capacity) = &capacity {
                header.push_str(&capacity::lines(capacity, "# "));
            }
            print_text(&format!("{header}{}", manifest_yaml(&manifest)));
        }
    }
    Ok(())
}

/// The manifest for the command line's template arguments: `--set` values are sent as text,
/// as a form sends them, and the template's parameter types decide what they become.
pub fn render_with(
    template: &RayClusterTemplate,
    args: &TemplateArgs,
    name: &str,
    namespace: &str,
    identity: &Identity,
    now: Timestamp,
) -> Result<Value> {
    let request = LaunchRequest {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        parameters: args.set.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect(),
        pipeline: None,
        lease: false,
    };
    Ok(render_manifest(template, &request, identity, now)?)
}

/// `raydar up`.
pub async fn up(kubernetes: &Kubernetes, args: &UpArgs, output: Output) -> Result<()> {
    let namespace = kubernetes.namespace(args.template.namespace.as_deref());
    let name = &args.name;
    let id = format!("{namespace}/{name}");
    let template = TemplateSource::from_arg(&args.template.template).load(kubernetes).await?;
    let identity = Identity {
        user: kubernetes.user().await?,
        team: args.template.team.clone().unwrap_or_default(),
    };
    // Every field error is reported before anything is sent.
    let mut manifest =
        render_with(&template, &args.template, name, &namespace, &identity, Timestamp::now())?;

    let api = kuberay::api(&kubernetes.client, Some(&namespace));
    let existing = kubernetes
        .call(&format!("reading RayCluster {id}"), api.get_opt(name))
        .await?
        .map(kuberay::ray_cluster);
    if let Some(existing) = &existing {
        check_relaunch(existing, &id, template.template_name(), &identity.user)?;
        keep_expiry(&mut manifest, existing);
    }
    // Without force: fields another manager owns are a conflict to report, not to take over.
    // (Between the read above and the apply, another launcher could create the same name; the
    // apply would then take their cluster's unowned fields. The window is a round trip.)
    let params = PatchParams::apply(FIELD_MANAGER);
    let patch = Patch::Apply(&manifest);
    kubernetes
        .call(
            &format!("checking RayCluster {id} (server-side dry-run)"),
            api.patch(name, &PatchParams { dry_run: true, ..params.clone() }, &patch),
        )
        .await?;
    // Said before the apply, so a launch that will wait says why at once.
    let capacity = capacity::judge(kubernetes, &namespace, &manifest).await;
    if output == Output::Text {
        print_text(&capacity::lines(&capacity, ""));
    }
    let applied = kuberay::ray_cluster(
        kubernetes
            .call(&format!("applying RayCluster {id}"), api.patch(name, &params, &patch))
            .await?,
    );
    let action = match &existing {
        None => "created",
        Some(old) if old.resource_version() == applied.resource_version() => "unchanged",
        Some(_) => "configured",
    };
    if output == Output::Text {
        print_text(&format!(
            "RayCluster {id} {action} from template {} (owner {})\n",
            template.template_name(),
            identity.user
        ));
    }
    let mut cluster = ClusterRow::new(&applied);
    if args.wait {
        if let Some(ready) =
            wait::until(kubernetes, &namespace, name, Goal::Ready, args.timeout).await?
        {
            cluster = ready;
        }
        if output == Output::Text {
            print_text(&format!("RayCluster {id} is Ready: workers {} ready\n", cluster.workers()));
        }
    }
    if output == Output::Json {
        print_json(&UpReport { action, cluster, capacity });
    }
    Ok(())
}

/// `up` of a name that exists re-applies only a cluster the same user launched from the same
/// template; anything else is someone else's, and not to be overwritten.
fn check_relaunch(existing: &RayCluster, id: &str, template: &str, user: &str) -> Result<()> {
    if existing.metadata.deletion_timestamp.is_some() {
        return Err(Error::Precondition(format!(
            "RayCluster {id} is being deleted; wait for it to go (`raydar down --wait`), then launch again"
        )));
    }
    let owner = existing.annotations().get(ANNOTATION_OWNER).map_or("", String::as_str);
    let from = existing.labels().get(LABEL_TEMPLATE).map_or("", String::as_str);
    if owner == user && from == template {
        return Ok(());
    }
    let shown = |s: &str| if s.is_empty() { "none".to_owned() } else { s.to_owned() };
    Err(Error::Precondition(format!(
        "RayCluster {id} already exists and was not launched by {user} from template {template} \
         (owner: {}, template: {}); choose another name",
        shown(owner),
        shown(from)
    )))
}

/// A cluster's lifetime counts from its first launch: launching it again keeps its expiry.
fn keep_expiry(manifest: &mut Value, existing: &RayCluster) {
    let Some(expires_at) = existing.annotations().get(ANNOTATION_EXPIRES_AT) else { return };
    if let Some(slot) = manifest.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut)
    {
        if slot.contains_key(ANNOTATION_EXPIRES_AT) {
            slot.insert(ANNOTATION_EXPIRES_AT.to_owned(), Value::from(expires_at.as_str()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use platform::template::parse_template;

    use super::*;

    fn repo(path: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
    }

    fn cpu_small() -> RayClusterTemplate {
        parse_template(&std::fs::read_to_string(repo("deploy/templates/cpu-small.yaml")).unwrap())
            .unwrap()
    }

    fn template_args(set: &[(&str, &str)]) -> TemplateArgs {
        TemplateArgs {
            template: "cpu-small".into(),
            set: set.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            namespace: None,
            team: None,
        }
    }

    fn alice() -> Identity {
        Identity { user: "alice@example.com".into(), team: "ml-research".into() }
    }

    /// The CLI renders exactly what the platform's reviewed golden manifest says.
    #[test]
    fn renders_the_platforms_golden_manifest() {
        let now: Timestamp = "2025-06-01T12:00:00Z".parse().unwrap();
        let manifest = render_with(
            &cpu_small(),
            &template_args(&[]),
            "cpu-small-demo",
            "ml-research",
            &alice(),
            now,
        )
        .unwrap();
        let golden: Value = serde_saphyr::from_str(
            &std::fs::read_to_string(repo("platform/tests/golden/cpu-small.yaml")).unwrap(),
        )
        .unwrap();
        assert_eq!(manifest, golden);
    }

    #[test]
    fn set_values_are_typed_by_the_template() {
        let now = Timestamp::UNIX_EPOCH;
        let manifest = render_with(
            &cpu_small(),
            &template_args(&[("workers", "3")]),
            "demo",
            "ml",
            &alice(),
            now,
        )
        .unwrap();
        assert_eq!(manifest["spec"]["workerGroupSpecs"][0]["replicas"], 3);
        let error = render_with(
            &cpu_small(),
            &template_args(&[("workers", "abc")]),
            "demo",
            "ml",
            &alice(),
            now,
        )
        .unwrap_err();
        assert_eq!(error.lines(), vec![r#"workers: must be an integer from 0 to 4, got "abc""#]);
    }

    fn existing(owner: &str, template: &str, expires: &str) -> RayCluster {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {
                "name": "demo", "namespace": "ml",
                "labels": {"raydar.dev/template": template},
                "annotations": {"raydar.dev/owner": owner, "raydar.dev/expires-at": expires}
            },
            "spec": {"headGroupSpec": {}}
        }))
        .unwrap()
    }

    #[test]
    fn relaunch_only_of_own_cluster_from_same_template_and_keeps_expiry() {
        let mine = existing("alice@example.com", "cpu-small", "2025-01-01T00:00:00Z");
        check_relaunch(&mine, "ml/demo", "cpu-small", "alice@example.com").unwrap();
        for (owner, template) in
            [("bob", "cpu-small"), ("alice@example.com", "gpu-single-node"), ("", "")]
        {
            let theirs = existing(owner, template, "");
            let error =
                check_relaunch(&theirs, "ml/demo", "cpu-small", "alice@example.com").unwrap_err();
            assert!(error.to_string().contains("already exists"), "{error}");
        }
        let mut manifest = render_with(
            &cpu_small(),
            &template_args(&[]),
            "demo",
            "ml",
            &alice(),
            Timestamp::UNIX_EPOCH,
        )
        .unwrap();
        keep_expiry(&mut manifest, &mine);
        assert_eq!(
            manifest["metadata"]["annotations"][ANNOTATION_EXPIRES_AT],
            "2025-01-01T00:00:00Z"
        );
    }
}
