//! `raydar extend` and `raydar protect`: a Ray cluster's lifetime as its annotations say it
//! (`raydar.dev/expires-at`, `raydar.dev/protect`), changed by a JSON merge patch as the
//! kubeconfig's user, so Kubernetes RBAC decides who may. How far an extension may go is
//! platform's rule ([`platform::lifecycle::extended`]), the one raydar's server applies to
//! `PATCH /api/v1/clusters/{ns}/{name}`, and the refusals say it in the server's words.

use std::time::Duration;

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::ResourceExt;
use platform::lifecycle::{extended, human, Lifetime};
use platform::template::{
    format_duration, parse_duration, RayClusterTemplate, Timestamp, ANNOTATION_EXPIRES_AT,
    ANNOTATION_PROTECT, FIELD_MANAGER, LABEL_TEMPLATE,
};
use serde::Serialize;
use serde_json::{json, Value};

use crate::args::{ExtendArgs, Output, ProtectArgs};
use crate::error::{Error, Result};
use crate::kuberay;
use crate::kubernetes::Kubernetes;
use crate::list::unix_now;
use crate::output::{print_json, print_text};
use crate::templates;

/// What `extend` did, as `-o json` prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtendReport {
    /// Namespace of the cluster.
    pub namespace: String,
    /// Name of the cluster.
    pub name: String,
    /// When it was to end (RFC 3339).
    pub previous_expires_at: String,
    /// When it ends now (RFC 3339).
    pub expires_at: String,
}

/// What `protect` did, as `-o json` prints it.
#[derive(Debug, Serialize)]
pub struct ProtectReport {
    /// Namespace of the cluster.
    pub namespace: String,
    /// Name of the cluster.
    pub name: String,
    /// Whether it is protected now.
    pub protected: bool,
    /// Whether the annotation changed; false when it already was as asked.
    pub changed: bool,
}

/// Tries of `extend`'s read, decide and write before a conflict is reported.
const ATTEMPTS: u32 = 4;

/// What one try of `extend` wrote.
struct Extension {
    /// The end it had (Unix seconds).
    from: i64,
    /// The end it has now (Unix seconds).
    until: i64,
    /// When the new end was worked out (Unix seconds).
    now: i64,
}

/// `raydar extend`.
pub async fn extend(kubernetes: &Kubernetes, args: &ExtendArgs, output: Output) -> Result<()> {
    let namespace = kubernetes.namespace(args.namespace.as_deref());
    let name = &args.name;
    let id = format!("{namespace}/{name}");
    let api = kuberay::api(&kubernetes.client, Some(&namespace));
    // KubeRay writes the status of a starting or scaling cluster often, and each write is a new
    // resourceVersion, so most conflicts are not another extension. A try after a conflict reads
    // the cluster again and works the new end out from what it read: a concurrent extension is
    // built on, never undone.
    let mut attempt = 1;
    let done = loop {
        match extend_once(kubernetes, &api, name, &id, args.by).await {
            Err(Error::Refused { code: 409, .. }) if attempt < ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => break other?,
        }
    };
    let until = rfc3339(done.until, &id)?;
    match output {
        Output::Json => print_json(&ExtendReport {
            namespace,
            name: name.clone(),
            previous_expires_at: rfc3339(done.from, &id)?,
            expires_at: until,
        }),
        Output::Text => print_text(&format!(
            "RayCluster {id} now expires at {until} (in {})\n",
            human(done.until - done.now)
        )),
    }
    Ok(())
}

/// One read of the cluster and its template, and one write of the end they allow.
async fn extend_once(
    kubernetes: &Kubernetes,
    api: &kube::Api<DynamicObject>,
    name: &str,
    id: &str,
    by: Duration,
) -> Result<Extension> {
    let cluster = existing(kubernetes, api, name, id).await?;
    let from = expiry(&cluster, id)?;
    let template_name = template_of(&cluster, id)?;
    let template = templates::installed(kubernetes, template_name).await?;
    let max_lifetime = limit(template.as_ref(), template_name, id)?;
    let now = unix_now();
    let until = extended(Some(from), by, max_lifetime, now).map_err(|why| {
        Error::Precondition(format!(
            "cannot extend RayCluster {id} by {}: {why}",
            format_duration(by)
        ))
    })?;
    // With the resourceVersion read, a change made since is a 409, not something this write
    // silently undoes.
    let patch = expiry_patch(cluster.resource_version().as_deref(), &rfc3339(until, id)?);
    kubernetes
        .call(
            &format!("extending RayCluster {id}"),
            api.patch(name, &patch_params(), &Patch::Merge(&patch)),
        )
        .await?;
    Ok(Extension { from, until, now })
}

/// `raydar protect`.
pub async fn protect(kubernetes: &Kubernetes, args: &ProtectArgs, output: Output) -> Result<()> {
    let namespace = kubernetes.namespace(args.namespace.as_deref());
    let name = &args.name;
    let id = format!("{namespace}/{name}");
    let api = kuberay::api(&kubernetes.client, Some(&namespace));
    let cluster = existing(kubernetes, &api, name, &id).await?;
    let protect = !args.off;
    let current = cluster.annotations().get(ANNOTATION_PROTECT).map(String::as_str);
    // No resourceVersion: setting or removing one key loses no concurrent change.
    let changed = if protect { current != Some("true") } else { current.is_some() };
    if changed {
        let action = match protect {
            true => format!("protecting RayCluster {id}"),
            false => format!("lifting the protection of RayCluster {id}"),
        };
        let patch = protect_patch(protect);
        kubernetes.call(&action, api.patch(name, &patch_params(), &Patch::Merge(&patch))).await?;
    }
    match output {
        Output::Json => print_json(&ProtectReport {
            namespace,
            name: name.clone(),
            protected: protect,
            changed,
        }),
        Output::Text => {
            let lifetime = Lifetime::of(cluster.metadata.annotations.as_ref());
            print_text(&format!(
                "{}\n",
                protection_said(&id, protect, changed, lifetime.expires_at, unix_now())
            ));
        }
    }
    Ok(())
}

/// The RayCluster to change: one that exists and is not being deleted.
async fn existing(
    kubernetes: &Kubernetes,
    api: &kube::Api<DynamicObject>,
    name: &str,
    id: &str,
) -> Result<DynamicObject> {
    match kubernetes.call(&format!("reading RayCluster {id}"), api.get_opt(name)).await? {
        None => Err(Error::Precondition(format!("no RayCluster {id}; `raydar ls` lists them"))),
        Some(cluster) if cluster.metadata.deletion_timestamp.is_some() => {
            Err(Error::Precondition(format!("RayCluster {id} is being deleted")))
        }
        Some(cluster) => Ok(cluster),
    }
}

/// When the cluster ends (Unix seconds); one that never ends has nothing to extend.
fn expiry(cluster: &DynamicObject, id: &str) -> Result<i64> {
    let annotations = cluster.metadata.annotations.as_ref();
    if let Some(expires_at) = Lifetime::of(annotations).expires_at {
        return Ok(expires_at);
    }
    // Platform reads a garbled time as no expiry; the message says which of the two it is.
    let why = match annotations.and_then(|a| a.get(ANNOTATION_EXPIRES_AT)) {
        None => {
            format!("it has no expiry ({ANNOTATION_EXPIRES_AT}), so there is nothing to extend")
        }
        Some(text) => format!(
            "its expiry ({ANNOTATION_EXPIRES_AT}) {text:?} is not an RFC 3339 time, so raydar \
             never expires it and there is nothing to extend"
        ),
    };
    Err(Error::Precondition(format!("cannot extend RayCluster {id}: {why}")))
}

/// The name of the template the cluster was launched from, whose policy bounds its lifetime.
fn template_of<'a>(cluster: &'a DynamicObject, id: &str) -> Result<&'a str> {
    match cluster.labels().get(LABEL_TEMPLATE).map(String::as_str) {
        Some(name) if !name.is_empty() => Ok(name),
        _ => Err(Error::Precondition(format!(
            "cannot extend RayCluster {id}: it has no template ({LABEL_TEMPLATE} label), so its \
             maximum lifetime is unknown"
        ))),
    }
}

/// The template's maximum lifetime (`spec.policy.maxLifetime`): without one, no extension can
/// be said to be within it.
fn limit(template: Option<&RayClusterTemplate>, name: &str, id: &str) -> Result<Duration> {
    let refused =
        |why: String| Error::Precondition(format!("cannot extend RayCluster {id}: {why}"));
    let Some(template) = template else {
        return Err(refused(format!(
            "its template {name} is not installed, so its maximum lifetime is unknown"
        )));
    };
    match template.spec.policy.max_lifetime.as_deref().map(|text| (text, parse_duration(text))) {
        Some((_, Ok(max))) if !max.is_zero() => Ok(max),
        Some((text, _)) => Err(refused(format!(
            "template {name} sets a maximum lifetime raydar cannot use ({text:?})"
        ))),
        None => Err(refused(format!("template {name} sets no maximum lifetime"))),
    }
}

/// Unix seconds as the annotation writes them: RFC 3339, to the second, in UTC.
fn rfc3339(seconds: i64, id: &str) -> Result<String> {
    Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .map_err(|e| Error::Precondition(format!("cannot extend RayCluster {id}: {e}")))
}

/// The merge patch of `extend`: the new expiry, on the version read.
fn expiry_patch(resource_version: Option<&str>, expires_at: &str) -> Value {
    let mut metadata = json!({"annotations": {ANNOTATION_EXPIRES_AT: expires_at}});
    if let Some(version) = resource_version {
        metadata["resourceVersion"] = json!(version);
    }
    json!({ "metadata": metadata })
}

/// The merge patch of `protect`: the annotation set, or removed (null) with `--off`.
fn protect_patch(protect: bool) -> Value {
    let value = if protect { json!("true") } else { Value::Null };
    json!({"metadata": {"annotations": {ANNOTATION_PROTECT: value}}})
}

/// Writes as raydar's field manager, so `managedFields` says which tool changed the annotation.
fn patch_params() -> PatchParams {
    PatchParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PatchParams::default() }
}

/// What `protect` did, in a sentence; lifting it also says when raydar reclaims the cluster.
fn protection_said(
    id: &str,
    protect: bool,
    changed: bool,
    expires_at: Option<i64>,
    now: i64,
) -> String {
    const RECLAIMS: &str = "expiry, idle GPUs, pipeline leases";
    match (protect, changed) {
        (true, true) => format!(
            "RayCluster {id} is now protected: raydar never reclaims it ({RECLAIMS}) until `raydar protect --off`"
        ),
        (true, false) => format!(
            "RayCluster {id} was already protected: raydar never reclaims it ({RECLAIMS})"
        ),
        (false, false) => format!("RayCluster {id} was not protected; nothing changed"),
        (false, true) => {
            let when = match expires_at {
                Some(at) if at <= now => format!(
                    "; its lifetime ended at {}, so raydar reclaims it soon (`raydar extend` gives it more time)",
                    Timestamp::from_second(at).map(|t| t.to_string()).unwrap_or_default()
                ),
                Some(at) => format!(
                    "; it expires at {} (in {})",
                    Timestamp::from_second(at).map(|t| t.to_string()).unwrap_or_default(),
                    human(at - now)
                ),
                None => String::new(),
            };
            format!("RayCluster {id} is no longer protected: raydar may reclaim it again ({RECLAIMS}){when}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "ml/demo";

    fn cluster(labels: Value, annotations: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {
                "name": "demo", "namespace": "ml", "resourceVersion": "42",
                "labels": labels, "annotations": annotations
            },
            "spec": {"headGroupSpec": {}}
        }))
        .unwrap()
    }

    fn template(policy: Value) -> RayClusterTemplate {
        serde_json::from_value(json!({
            "apiVersion": "raydar.dev/v1alpha1", "kind": "RayClusterTemplate",
            "metadata": {"name": "cpu-small"},
            "spec": {"policy": policy, "rayClusterSpec": {}}
        }))
        .unwrap()
    }

    fn said(result: Result<impl std::fmt::Debug>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn the_expiry_is_read_and_its_absence_said() {
        let at = cluster(json!({}), json!({ANNOTATION_EXPIRES_AT: "2026-12-06T22:00:00Z"}));
        assert_eq!(expiry(&at, ID).unwrap(), 1_796_594_400);
        assert_eq!(
            said(expiry(&cluster(json!({}), json!({})), ID)),
            "cannot extend RayCluster ml/demo: it has no expiry (raydar.dev/expires-at), so there is nothing to extend"
        );
        let garbled = cluster(json!({}), json!({ANNOTATION_EXPIRES_AT: "tomorrow"}));
        let error = said(expiry(&garbled, ID));
        assert!(
            error.contains(r#""tomorrow" is not an RFC 3339 time"#)
                && error.ends_with("nothing to extend"),
            "{error}"
        );
    }

    #[test]
    fn the_limit_is_the_templates_maximum_lifetime() {
        let with = cluster(json!({LABEL_TEMPLATE: "cpu-small"}), json!({}));
        assert_eq!(template_of(&with, ID).unwrap(), "cpu-small");
        assert!(said(template_of(&cluster(json!({}), json!({})), ID)).ends_with(
            "it has no template (raydar.dev/template label), so its maximum lifetime is unknown"
        ));

        let twelve_hours = template(json!({"maxLifetime": "12h"}));
        assert_eq!(
            limit(Some(&twelve_hours), "cpu-small", ID).unwrap(),
            Duration::from_secs(12 * 3_600)
        );
        assert_eq!(
            said(limit(None, "cpu-small", ID)),
            "cannot extend RayCluster ml/demo: its template cpu-small is not installed, so its maximum lifetime is unknown"
        );
        assert_eq!(
            said(limit(Some(&template(json!({}))), "cpu-small", ID)),
            "cannot extend RayCluster ml/demo: template cpu-small sets no maximum lifetime"
        );
        for bad in ["soon", "0"] {
            let error = said(limit(Some(&template(json!({"maxLifetime": bad}))), "cpu-small", ID));
            assert!(error.contains("sets a maximum lifetime raydar cannot use"), "{error}");
        }
    }

    #[test]
    fn patches_carry_the_version_read_and_null_removes_protection() {
        assert_eq!(
            expiry_patch(Some("42"), "2026-12-07T01:00:00Z"),
            json!({"metadata": {
                "resourceVersion": "42",
                "annotations": {"raydar.dev/expires-at": "2026-12-07T01:00:00Z"}
            }})
        );
        assert_eq!(
            protect_patch(true),
            json!({"metadata": {"annotations": {"raydar.dev/protect": "true"}}})
        );
        assert_eq!(
            protect_patch(false),
            json!({"metadata": {"annotations": {"raydar.dev/protect": null}}})
        );
        assert_eq!(rfc3339(1_796_594_400, ID).unwrap(), "2026-12-06T22:00:00Z");
    }

    #[test]
    fn lifting_protection_says_when_raydar_reclaims_it() {
        let now = 1_796_594_400;
        assert_eq!(
            protection_said(ID, false, true, Some(now + 7_800), now),
            "RayCluster ml/demo is no longer protected: raydar may reclaim it again (expiry, \
             idle GPUs, pipeline leases); it expires at 2026-12-07T00:10:00Z (in 2h10m)"
        );
        let expired = protection_said(ID, false, true, Some(now - 60), now);
        assert!(expired.contains("its lifetime ended at 2026-12-06T21:59:00Z"), "{expired}");
        assert!(protection_said(ID, true, true, None, now).contains("is now protected"));
        assert!(protection_said(ID, true, false, None, now).contains("was already protected"));
        assert_eq!(
            protection_said(ID, false, false, None, now),
            "RayCluster ml/demo was not protected; nothing changed"
        );
    }
}
