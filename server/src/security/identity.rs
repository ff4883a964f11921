//! Who is asking: a bearer token the apiserver vouches for ([`super::tokens`]), an
//! authenticating proxy's identity headers, believed from its addresses only, or dev mode's one
//! user.
//!
//! raydar has no accounts of its own. Identity comes from an authenticating proxy in front of it
//! (oauth2-proxy style headers: user, email, groups; names configurable), and is believed only
//! when the request comes from one of the configured proxy addresses. For local use, dev mode
//! gives every request one configured identity, and serves loopback only.
//!
//! What a user may do is never decided here but by Kubernetes, asked as the user
//! ([`super::access`]).
//!
//! Identity headers sent by a client that is not a trusted proxy are ignored (the request is
//! unauthenticated), and `Impersonate-*` headers of any request are dropped before a handler
//! sees them. The proxy's groups get a configurable prefix before raydar acts as them (as the
//! apiserver's `--oidc-groups-prefix` does), so a group of the sign-in provider cannot be taken
//! for one that RBAC bindings name; and a proxy that names one of Kubernetes' own users or groups
//! (`system:…`, such as `system:masters`) is refused outright, prefix or not.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::tokens::{self, TokenError, TokenReviews};
use crate::error::ApiError;

/// The person behind a request, as the authenticating proxy (or dev mode) says.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct User {
    /// The user name Kubernetes knows them by (`alice`, `alice@example.com`).
    pub name: String,
    /// Their email, when the proxy sends one.
    pub email: Option<String>,
    /// The groups Kubernetes is asked as: the proxy's, behind the configured prefix.
    pub groups: Vec<String>,
    /// The team raydar labels what they launch with: their first group as the proxy sends it
    /// (no prefix: a label value cannot hold one), and not one of Kubernetes' own; or empty.
    team: String,
    /// Came with a bearer token rather than from the proxy or dev mode: the request carries no
    /// credential a browser adds by itself, so it needs no CSRF token.
    pub by_token: bool,
}

impl User {
    /// A user in `groups` as sent; Kubernetes is asked as them in the same groups with `prefix`.
    pub fn new(name: String, email: Option<String>, groups: Vec<String>, prefix: &str) -> User {
        let team = groups.iter().find(|g| !g.starts_with(SYSTEM)).cloned().unwrap_or_default();
        let groups = groups.into_iter().map(|g| format!("{prefix}{g}")).collect();
        User { name, email, groups, team, by_token: false }
    }

    /// The user a bearer token belongs to, as the apiserver named them (their groups as they
    /// are: Kubernetes gave them).
    pub fn from_token(name: String, groups: Vec<String>) -> User {
        User { by_token: true, ..User::new(name, None, groups, "") }
    }

    /// The team raydar labels what they launch with (see the field).
    pub fn team(&self) -> String {
        self.team.clone()
    }

    /// A user of that name, in no group (tests).
    #[cfg(test)]
    pub fn named(name: &str) -> User {
        User::new(name.into(), None, vec![], "")
    }

    /// The identity templates render owner and team labels from.
    pub fn identity(&self) -> platform::template::Identity {
        platform::template::Identity { user: self.name.clone(), team: self.team() }
    }
}

/// Where identities come from.
#[derive(Clone, Debug)]
pub enum Authn {
    /// Behind an authenticating proxy: identity headers, believed from these sources only.
    Proxy(ProxyHeaders),
    /// Local development: every request is this user. Serves on loopback only (see
    /// [`crate::Config::from_args`]).
    Dev(User),
}

/// The authenticating proxy's addresses and header names.
#[derive(Clone, Debug)]
pub struct ProxyHeaders {
    /// Peers whose identity headers are believed.
    pub trusted: Vec<Cidr>,
    /// The user name (default `X-Forwarded-User`).
    pub user: HeaderName,
    /// The email (default `X-Forwarded-Email`).
    pub email: HeaderName,
    /// The groups, comma-separated (default `X-Forwarded-Groups`).
    pub groups: HeaderName,
    /// Put before each group from the proxy (`oidc:`; default none).
    pub groups_prefix: String,
}

/// Kubernetes' own users and groups (`system:masters`, `system:serviceaccount:…`): never from a
/// proxy.
const SYSTEM: &str = "system:";

/// Why a request has no user.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    /// No identity, or identity from a peer that is not the proxy.
    Unauthenticated,
    /// The proxy names a user or group raydar never acts as.
    System(String),
}

impl ProxyHeaders {
    /// oauth2-proxy's header names, trusting `trusted`.
    pub fn oauth2_proxy(trusted: Vec<Cidr>) -> Self {
        ProxyHeaders {
            trusted,
            user: HeaderName::from_static("x-forwarded-user"),
            email: HeaderName::from_static("x-forwarded-email"),
            groups: HeaderName::from_static("x-forwarded-groups"),
            groups_prefix: String::new(),
        }
    }

    /// The user the headers name, if the peer is trusted, a user is named, and neither they nor
    /// their groups are Kubernetes' own.
    fn user(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Result<User, Refused> {
        let trusted = peer.is_some_and(|peer| self.trusted.iter().any(|c| c.contains(peer)));
        if !trusted {
            return Err(Refused::Unauthenticated);
        }
        let text = |name: &HeaderName| {
            headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
        };
        let name = text(&self.user).ok_or(Refused::Unauthenticated)?.to_owned();
        let email = text(&self.email).map(str::to_owned);
        let groups: Vec<String> = headers
            .get_all(&self.groups)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect();
        if name.starts_with(SYSTEM) {
            return Err(Refused::System(format!("the user {name:?}")));
        }
        if let Some(group) = groups.iter().find(|g| g.starts_with(SYSTEM)) {
            return Err(Refused::System(format!("the group {group:?}")));
        }
        Ok(User::new(name, email, groups, &self.groups_prefix))
    }
}

/// An address range, `10.0.0.0/8` or `::1/128` (a bare address is the range of just it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR[/PREFIX]`; the error says what is allowed.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or ADDRESS/PREFIX range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix =
            match prefix {
                None => max,
                Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| {
                    format!("{text:?}: the prefix must be a number from 0 to {max}")
                })?,
            };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` is in the range (an IPv4 address also as its IPv6-mapped form).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Paths anyone may ask for: a load balancer's and kubelet's probes carry no identity.
pub(super) const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// What [`authenticate`] reads.
#[derive(Clone)]
pub struct Identify {
    /// Where people's identities come from.
    pub authn: Arc<Authn>,
    /// Bearer tokens' users.
    pub tokens: TokenReviews,
}

/// Middleware: puts the requester's [`User`] into the request, or answers 401.
///
/// A bearer token is checked with the apiserver unless a trusted proxy names the person (a proxy
/// may pass its own sign-in token along); a token refused is 401, never another identity. A page
/// request without identity gets a short HTML page saying sign-in is required; anything else
/// gets the API's JSON error.
pub async fn authenticate(
    State(identify): State<Identify>,
    mut request: Request,
    next: Next,
) -> Response {
    // Never let a client's impersonation headers get further, whoever it is.
    let forged: Vec<HeaderName> = request
        .headers()
        .keys()
        .filter(|k| k.as_str().starts_with("impersonate-"))
        .cloned()
        .collect();
    for name in forged {
        request.headers_mut().remove(name);
    }
    let path = request.uri().path().to_owned();
    if OPEN_PATHS.contains(&path.as_str()) {
        return next.run(request).await;
    }
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let person = match &*identify.authn {
        Authn::Dev(user) => Ok(user.clone()),
        Authn::Proxy(proxy) => proxy.user(peer, request.headers()),
    };
    let from_proxy = matches!(*identify.authn, Authn::Proxy(_)) && person.is_ok();
    let user = match tokens::bearer(request.headers()).filter(|_| !from_proxy) {
        None => person,
        Some(Err(malformed)) => return ApiError::unauthorized(malformed).into_response(),
        Some(Ok(token)) => match identify.tokens.user(token).await {
            Ok(user) => Ok(user),
            Err(TokenError::Refused(why)) => {
                tracing::info!(%path, "refused a bearer token: {why}");
                return ApiError::unauthorized(why).into_response();
            }
            Err(TokenError::Unchecked(why)) => return ApiError::unavailable(why).into_response(),
        },
    };
    match user {
        Ok(user) => {
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        Err(Refused::Unauthenticated) => unauthenticated(request.headers()),
        Err(Refused::System(who)) => {
            tracing::warn!(%who, %path, "refused: the proxy named one of Kubernetes' own users or groups");
            ApiError::forbidden(format!(
                "raydar never acts as Kubernetes' own users and groups (system:…), and the \
                 authenticating proxy named {who}"
            ))
            .into_response()
        }
    }
}

fn unauthenticated(headers: &HeaderMap) -> Response {
    let wants_page = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_page {
        let page = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in required · raydar</title></head>\
            <body><h1>Sign-in required</h1><p>raydar shows Ray clusters to signed-in people only, and this request \
            came without a sign-in. Open raydar through your organisation's sign-in address (its authenticating \
            proxy), not directly.</p></body></html>";
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))],
            page,
        )
            .into_response();
    }
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "sign-in required: the request carries no identity from raydar's authenticating proxy",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy() -> ProxyHeaders {
        ProxyHeaders::oauth2_proxy(vec![
            Cidr::parse("10.0.0.0/8").unwrap(),
            Cidr::parse("::1").unwrap(),
        ])
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn ranges_match_their_addresses_only() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()), "IPv4-mapped IPv6");
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("192.0.2.1".parse().unwrap()));
        assert!(!Cidr::parse("::1").unwrap().contains("::2".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").unwrap_err().contains("0 to 32"));
        assert!(Cidr::parse("proxy.local").unwrap_err().contains("not an IP address"));
    }

    #[test]
    fn identity_headers_count_from_a_trusted_proxy_only() {
        let h = headers(&[
            ("x-forwarded-user", "alice"),
            ("x-forwarded-email", "alice@example.com"),
            ("x-forwarded-groups", "team-a, ml ,"),
        ]);
        let alice = proxy().user(Some("10.9.9.9".parse().unwrap()), &h).unwrap();
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
        assert_eq!(alice.groups, ["team-a", "ml"]);
        assert_eq!(alice.team(), "team-a");
        let unauthenticated = Err(Refused::Unauthenticated);
        assert_eq!(
            proxy().user(Some("192.168.1.5".parse().unwrap()), &h),
            unauthenticated,
            "untrusted peer"
        );
        assert_eq!(proxy().user(None, &h), unauthenticated, "unknown peer");
        assert_eq!(
            proxy().user(Some("::1".parse().unwrap()), &headers(&[("x-forwarded-email", "a@b")])),
            unauthenticated,
            "no user"
        );
    }

    #[test]
    fn groups_get_the_prefix_and_kubernetes_own_names_are_refused() {
        let prefixed = ProxyHeaders { groups_prefix: "oidc:".into(), ..proxy() };
        let peer = Some("10.0.0.1".parse().unwrap());
        let alice = prefixed
            .user(peer, &headers(&[("x-forwarded-user", "alice"), ("x-forwarded-groups", "ml,b")]))
            .unwrap();
        assert_eq!(alice.groups, ["oidc:ml", "oidc:b"]);
        assert_eq!(alice.team(), "ml", "a label value, without the prefix");
        for (user, groups, named) in [
            ("mallory", "team-a,system:masters", r#"the group "system:masters""#),
            ("system:admin", "", r#"the user "system:admin""#),
            ("system:serviceaccount:kube-system:default", "", "the user"),
        ] {
            let h = headers(&[("x-forwarded-user", user), ("x-forwarded-groups", groups)]);
            for proxy in [proxy(), prefixed.clone()] {
                match proxy.user(peer, &h) {
                    Err(Refused::System(who)) => assert!(who.starts_with(named), "{who}"),
                    other => panic!("{user} {groups}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn the_team_is_the_first_group_not_of_kubernetes() {
        let groups = vec!["system:authenticated".into(), "team-b".into()];
        assert_eq!(User::new("bob".into(), None, groups, "").team(), "team-b");
        assert_eq!(User::named("bob").team(), "");
    }
}
