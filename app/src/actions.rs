//! Day-2 actions on a cluster, shared by the list and the cluster's page: tear down (after a
//! confirmation that names the cluster), suspend or resume, scale a worker group. Each is a
//! `#[lazy]` split point: its code (and the fetch plumbing) arrives on first use, so the list
//! page's first load does not carry it.

use leptos::lazy;

/// Asks the user to confirm, naming the cluster, then deletes it. `Ok(false)` when the user
/// cancels; a cluster that is already gone counts as torn down.
#[lazy]
pub async fn tear_down(namespace: String, name: String) -> Result<bool, String> {
    #[cfg(feature = "hydrate")]
    {
        let question = format!(
            "Tear down RayCluster {namespace}/{name}?\n\nIts head and worker pods are deleted, and \
             with them every job running on it. This cannot be undone."
        );
        let confirmed =
            web_sys::window().and_then(|w| w.confirm_with_message(&question).ok()).unwrap_or(false);
        if !confirmed {
            return Ok(false);
        }
        let answer =
            crate::http::send("DELETE", &crate::api::rest::cluster(&namespace, &name), None)
                .await?;
        if answer.ok() {
            Ok(true)
        } else {
            Err(answer.message())
        }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        Err(format!("tearing down {namespace}/{name} is a browser action"))
    }
}

/// Sends a day-2 change (`{"suspend": bool}` or `{"scale": {"group", "replicas"}}`) as JSON text.
#[lazy]
pub async fn change(namespace: String, name: String, change: String) -> Result<(), String> {
    #[cfg(feature = "hydrate")]
    {
        let answer =
            crate::http::send("PATCH", &crate::api::rest::cluster(&namespace, &name), Some(change))
                .await?;
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
