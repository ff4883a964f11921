//! Who is asking and what they may do, and what a browser may be tricked into.
//!
//! # Layout
//! - [`host`]: the names raydar answers under (DNS rebinding).
//! - [`identity`]: the requester, from an authenticating proxy's headers (or dev mode).
//! - [`tokens`]: machines' identity: bearer tokens, checked with the apiserver (TokenReview).
//! - [`access`]: what Kubernetes lets them see and do: impersonating clients, access reviews,
//!   grants, the read checks of routes.
//! - [`csrf`]: same-origin writes with a per-user token.
//! - [`headers`]: security headers and pages' Content-Security-Policy.
//! - [`limit`]: actions per user per minute.
//! - [`streams`]: open event streams, in all and per person.
//! - [`audit`]: who did what: a log line and an Event on the RayCluster for every action.

pub mod access;
pub mod audit;
pub mod csrf;
pub mod headers;
pub mod host;
pub mod identity;
pub mod limit;
pub mod streams;
pub mod tokens;

pub use access::{Access, Ask, Grants};
pub use audit::{Action, Audit};
pub use csrf::CsrfKey;
pub use host::ServedAs;
pub use identity::{Authn, Cidr, Identify, ProxyHeaders, User};
pub use limit::ActionLimit;
pub use streams::StreamLimit;
pub use tokens::TokenReviews;
