//! Whether a page's pushes arrive, and what the page says while they do not.

use leptos::prelude::*;

/// Whether the page is receiving changes. Server and browser both start at `Connecting`, so the
/// server-rendered text matches the hydrated one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamState {
    /// Rendered, not yet subscribed.
    Connecting,
    /// Changes arrive as they happen.
    Live,
    /// The stream dropped; the browser is reconnecting and the list may be stale.
    Reconnecting,
}

impl StreamState {
    /// What the page says about the stream.
    pub fn label(self) -> &'static str {
        match self {
            Self::Connecting => "connecting…",
            Self::Live => "live",
            Self::Reconnecting => "reconnecting…",
        }
    }
}

/// Said while a page's stream reconnects.
#[component]
pub fn Reconnecting(stream: RwSignal<StreamState>) -> impl IntoView {
    move || {
        (stream.get() == StreamState::Reconnecting).then(|| {
            view! { <p class="error" role="alert">"Reconnecting: what is shown may be out of date."</p> }
        })
    }
}
