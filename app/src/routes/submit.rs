//! The form on a cluster's page that submits a Ray job to it: a KubeRay RayJob made as the user
//! (`POST /api/v1/clusters/{ns}/{name}/jobs`), so Kubernetes RBAC decides and raydar still only
//! reads the cluster's Ray dashboard.

use leptos::prelude::*;

/// What the last submission came to.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))] // submitted only from a browser
enum Outcome {
    /// Submitted: the Ray job's id (what its log is read by) and the RayJob's name.
    Submitted {
        job_id: String,
        rayjob: String,
    },
    Refused(String),
}

/// The runtime environment as typed, parsed: nothing, or a JSON object (what Ray takes).
fn runtime_env(text: &str) -> Result<Option<serde_json::Value>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(env @ serde_json::Value::Object(_)) => Ok(Some(env)),
        Ok(_) => {
            Err("Runtime environment: must be a JSON object, e.g. {\"pip\": [\"torch\"]}".into())
        }
        Err(e) => Err(format!("Runtime environment: not JSON ({e})")),
    }
}

/// The body of a submission.
fn request(entrypoint: &str, env: Option<serde_json::Value>) -> String {
    let mut body = serde_json::json!({ "entrypoint": entrypoint });
    if let Some(env) = env {
        body["runtimeEnv"] = env;
    }
    body.to_string()
}

/// "Submit a job": an entrypoint and, folded away, Ray's runtime environment; then a link to the
/// submitted job's log, or Kubernetes' (or raydar's) reason for refusing it.
#[component]
pub fn SubmitJob(namespace: String, name: String) -> impl IntoView {
    let entrypoint = RwSignal::new(String::new());
    let env = RwSignal::new(String::new());
    let sending = RwSignal::new(false);
    let outcome = RwSignal::new(None::<Outcome>);
    let path = format!("/api/v1/clusters/{namespace}/{name}/jobs");
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if sending.get_untracked() {
            return;
        }
        let command = entrypoint.get_untracked();
        if command.trim().is_empty() {
            outcome.set(Some(Outcome::Refused(
                "Entrypoint: say what to run, e.g. python train.py".into(),
            )));
            return;
        }
        let body = match env.with_untracked(|e| runtime_env(e)) {
            Ok(env) => request(&command, env),
            Err(why) => return outcome.set(Some(Outcome::Refused(why))),
        };
        sending.set(true);
        outcome.set(None);
        let path = path.clone();
        leptos::task::spawn_local(async move {
            #[cfg(feature = "hydrate")]
            {
                let said = match crate::http::send("POST", &path, Some(body)).await {
                    Ok(answer) if answer.ok() => Outcome::Submitted {
                        job_id: answer.body["jobId"].as_str().unwrap_or_default().to_owned(),
                        rayjob: answer.body["name"].as_str().unwrap_or_default().to_owned(),
                    },
                    Ok(answer) => Outcome::Refused(answer.message()),
                    Err(why) => Outcome::Refused(why),
                };
                outcome.set(Some(said));
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = (path, body);
            sending.set(false);
        });
    };
    let job_page = move |job_id: &str| format!("/clusters/{namespace}/{name}/jobs/{job_id}");
    view! {
        <section class="submit-job">
            <h2>"Submit a job"</h2>
            <form on:submit=submit>
                <div class="field">
                    <label for="entrypoint">"Entrypoint"</label>
                    <input id="entrypoint" name="entrypoint" required autocomplete="off"
                        placeholder="python train.py --epochs 3"
                        prop:value=entrypoint on:input=move |ev| entrypoint.set(event_target_value(&ev))/>
                </div>
                <details class="field">
                    <summary>"Runtime environment (optional)"</summary>
                    <textarea name="runtime-env" rows="3"
                        placeholder="{\"working_dir\": \"s3://bucket/code.zip\", \"pip\": [\"torch\"]}"
                        prop:value=env on:input=move |ev| env.set(event_target_value(&ev))></textarea>
                </details>
                <button type="submit" disabled=move || sending.get()>
                    {move || if sending.get() { "Submitting…" } else { "Submit" }}
                </button>
            </form>
            {move || outcome.get().map(|said| match said {
                Outcome::Submitted { job_id, rayjob } => view! {
                    <p class="submitted" role="status">
                        "Submitted as RayJob " <code>{rayjob}</code> "; KubeRay hands it to Ray, then its log is "
                        <a href=job_page(&job_id)>{job_id.clone()}</a> "."
                    </p>
                }.into_any(),
                Outcome::Refused(why) => view! { <p class="error" role="alert">{why}</p> }.into_any(),
            })}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_environment_is_a_json_object_or_nothing() {
        assert_eq!(runtime_env("  "), Ok(None));
        let env = runtime_env(r#"{"pip": ["torch"]}"#).unwrap().unwrap();
        assert_eq!(
            request("python t.py", Some(env)),
            r#"{"entrypoint":"python t.py","runtimeEnv":{"pip":["torch"]}}"#
        );
        assert!(runtime_env("[1]").unwrap_err().contains("must be a JSON object"));
        assert!(runtime_env("{pip").unwrap_err().starts_with("Runtime environment: not JSON"));
        assert_eq!(request("ls", None), r#"{"entrypoint":"ls"}"#);
    }
}
