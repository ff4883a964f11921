//! The one error a page shows, [`AppError`], and how an error boundary shows it ([`notice`]).

use leptos::prelude::*;

/// What went wrong for a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppError {
    /// The page's data could not be loaded: what, and why (the server's words).
    Load {
        /// What the page was loading, as the notice names it ("the cluster").
        what: &'static str,
        /// Why not.
        why: String,
    },
}

impl AppError {
    /// A failed load of `what`.
    pub fn load(what: &'static str) -> impl Fn(ServerFnError) -> AppError {
        move |e| AppError::Load { what, why: e.to_string() }
    }

    /// The HTTP status the failure stands for.
    pub fn status_code(&self) -> u16 {
        match self {
            AppError::Load { .. } => 503,
        }
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::Load { what, why } => write!(f, "Could not load {what}: {why}"),
        }
    }
}

impl std::error::Error for AppError {}

/// The error boundary's notice: each error, said as an alert.
pub fn notice(errors: ArcRwSignal<Errors>) -> impl IntoView {
    move || {
        errors.with(|errors| {
            errors
                .iter()
                .map(|(_, e)| view! { <p class="error" role="alert">{e.to_string()}</p> })
                .collect_view()
        })
    }
}
