//! Widgets more than one page shows.
//!
//! # Layout
//! - [`stream`]: whether a page's pushes arrive ([`stream::StreamState`]), and the notice while
//!   they do not.
//! - [`failure`]: [`failure::AppError`], the one error a page shows, and the error boundary's
//!   notice of it.

pub mod failure;
pub mod stream;
