//! Day-2 actions on a cluster, shared by the list and the cluster's page: tear down (after a
//! confirmation that names the cluster), suspend or resume, scale a worker group. Each is a
//! `#[lazy]` split point: its code (and the fetch plumbing) arrives on first use, so the list
//! page's first load does not carry it.

use leptos::lazy;

/// Asks the user to confirm, naming the cluster, then deletes it from the Kubernetes cluster
/// called `context` (empty: the page's). `Ok(false)` when the user cancels; a cluster that is
/// already gone counts as torn down.
#[lazy]
pub async fn tear_down(namespace: String, name: String, context: String) -> Result<bool, String> {
    #[cfg(feature = "hydrate")]
    {
        let (on, context) = match context.is_empty() {
            true => (String::new(), crate::api::PageContext::current()),
            false => (format!(" on {context}"), context),
        };
        let question = format!(
            "Tear down RayCluster {namespace}/{name}{on}?\n\nIts head and worker pods are deleted, and \
             with them every job running on it. This cannot be undone."
        );
        let confirmed =
            web_sys::window().and_then(|w| w.confirm_with_message(&question).ok()).unwrap_or(false);
        if !confirmed {
            return Ok(false);
        }
        let url =
            crate::api::rest::in_context(crate::api::rest::cluster(&namespace, &name), &context);
        let answer = crate::http::send("DELETE", &url, None).await?;
        if answer.ok() {
            Ok(true)
        } else {
            Err(answer.message())
        }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        Err(format!("tearing down {namespace}/{name} ({context}) is a browser action"))
    }
}

/// Sends a day-2 change (`{"suspend": bool}` or `{"scale": {"group", "replicas"}}`) as JSON text,
/// to the Kubernetes cluster of the page.
#[lazy]
pub async fn change(namespace: String, name: String, change: String) -> Result<(), String> {
    #[cfg(feature = "hydrate")]
    {
        let url = crate::api::rest::cluster(&namespace, &name);
        let url = crate::api::rest::in_context(url, &crate::api::PageContext::current());
        let answer = crate::http::send("PATCH", &url, Some(change)).await?;
        if answer.ok() {
            Ok(())
        } else {
            Err(answer.message())
        }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        Err(format!("changing {namespace}/{name} ({change}) is a browser action"))
    }
}
