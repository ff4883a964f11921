//! Every route raydar serves and the layers around them: the JSON API under `/api/v1` (with its
//! OpenAPI description, collected from the handlers as they are routed), the Leptos pages and
//! server functions, the browser bundle, health, readiness and metrics.
//!
//! Every route but `/healthz` and `/readyz` needs an identity ([`identity::authenticate`]);
//! writes need the page's origin and CSRF token ([`csrf`]).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRef};
use axum::http::{header, HeaderValue, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;
use tower::ServiceExt;

use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use futures::future::BoxFuture;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::pages::{self, Pages};
use crate::api::{
    actions, clusters, contexts, doc, gpus, history, jobs, leases, logs, ops, ray, rayjobs, starts,
    templates,
};
use crate::error::{self, ApiError};
use crate::security::{access, csrf, headers, host, identity, streams, Identify};
use crate::state::AppState;
use crate::{metrics, telemetry};

/// Largest request body raydar accepts: a launch request is a few hundred bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// The API under `/api/v1` and its OpenAPI description, made from the same list of handlers.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::<AppState>::with_openapi(doc::ApiDoc::openapi())
        .routes(routes!(clusters::list, actions::launch))
        .routes(routes!(clusters::events))
        .routes(routes!(clusters::get, actions::tear_down, actions::change))
        .routes(routes!(clusters::overview))
        .routes(routes!(clusters::overview_events))
        .routes(routes!(jobs::list, rayjobs::submit))
        .routes(routes!(rayjobs::list, rayjobs::run))
        .routes(routes!(rayjobs::events))
        .routes(routes!(rayjobs::get))
        .routes(routes!(jobs::get))
        .routes(routes!(logs::job_log))
        .routes(routes!(logs::job_stream))
        .routes(routes!(logs::pod_log))
        .routes(routes!(logs::pod_stream))
        .routes(routes!(gpus::cluster))
        .routes(routes!(gpus::cluster_events))
        .routes(routes!(gpus::chart))
        .routes(routes!(gpus::fleet))
        .routes(routes!(starts::starts))
        .routes(routes!(gpus::fleet_events))
        .routes(routes!(templates::list))
        .routes(routes!(leases::renew, leases::release))
        .routes(routes!(history::list))
        .routes(routes!(history::record))
        .routes(routes!(history::job_log))
        .routes(routes!(history::job_log_stream))
        .routes(routes!(ops::session))
        .routes(routes!(contexts::list))
        .split_for_parts();
    // A dashboard path has slashes of its own: routed as a wildcard, described as one parameter.
    // GET only: every other method is 405 here, before anything could reach Ray.
    let router = router.route("/clusters/{namespace}/{name}/ray/{*path}", get(ray::read));
    doc.merge(RayDoc::openapi());
    let doc = with_api_prefix(doc);
    let served = Arc::new(doc.clone());
    let router = router
        .route("/openapi.json", get(move || async move { Json(served.as_ref().clone()) }))
        .fallback(|| async {
            ApiError::not_found("no such API route; GET /api/v1/openapi.json lists them")
        });
    (router, doc)
}

/// The Ray read's description, from its handler's attribute.
#[derive(OpenApi)]
#[openapi(paths(ray::read))]
struct RayDoc;

/// The description with every path under `/api/v1`, where the API is served.
fn with_api_prefix(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let paths = std::mem::take(&mut doc.paths.paths);
    doc.paths.paths =
        paths.into_iter().map(|(path, item)| (format!("/api/v1{path}"), item)).collect();
    doc
}

/// The handler of `/`, the list: rendered as leptos_axum renders the routed pages (whole, then
/// sent), with app::ListApp as the document's body.
fn list_page(
    state: &AppState,
    context: impl Fn() + Clone + Send + Sync + 'static,
) -> impl Fn(Request<Body>) -> BoxFuture<'static, Response> + Clone + Send + Sync + 'static {
    let options = state.leptos.clone();
    leptos_axum::render_app_async_with_context(context, move || app::list_shell(options.clone()))
}

/// Every route raydar serves, with `state`.
pub fn router(state: AppState) -> Router {
    let (api, _) = api();
    let api = api.layer(middleware::from_fn(error::json_errors));
    // The browser bundle: served from the .br/.gz files the build wrote (tools/precompress.mjs),
    // smaller than compressing on the fly. Names carry no hash, so browsers revalidate.
    let pkg_dir = std::path::Path::new(&*state.leptos.site_root).join(&*state.leptos.site_pkg_dir);
    let pkg = Router::new()
        .fallback_service(ServeDir::new(pkg_dir).precompressed_br().precompressed_gzip())
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ));
    // Pages and server functions render from the requester's grants, worked out first.
    let page_context = <Pages as axum::extract::FromRef<AppState>>::from_ref(&state).provide();
    let grants = (state.access.clone(), state.clusters.clone());
    // `/`, the list, is rendered as the app without its router (app::ListApp), so that the
    // page most visits start at loads the least code; every other page as the routed app.
    let page_routes: Vec<_> =
        generate_route_list(app::App).into_iter().filter(|route| route.path() != "/").collect();
    let pages = Router::new()
        .route("/_sfn/{*fn_name}", post(pages::server_fn).get(pages::server_fn))
        .leptos_routes_with_context(&state, page_routes, page_context.clone(), {
            let options = state.leptos.clone();
            move || app::shell(options.clone())
        })
        .route(
            "/",
            get(list_page(&state, page_context)).layer(middleware::from_fn_with_state(
                state.fleet.clone(),
                pages::with_every_context,
            )),
        )
        .route_layer(middleware::from_fn_with_state(grants, access::with_grants));
    Router::new()
        .nest("/api/v1", api)
        .nest("/pkg", pkg)
        .merge(pages)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(app::shell))
        // Innermost first: event streams are counted and writes checked for origin and token
        // once the requester is known; every answer, a 401 too, carries the security headers.
        .layer(middleware::from_fn_with_state(state.streams.clone(), streams::count_streams))
        .layer(middleware::from_fn_with_state(state.csrf.clone(), csrf::same_origin_writes))
        .layer(middleware::from_fn_with_state(Identify::from_ref(&state), identity::authenticate))
        .layer(middleware::from_fn_with_state(state.served_as.clone(), host::served_host))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(headers::security_headers))
        // Compresses pages, wasm, JS and JSON; never the event stream, which would then be held
        // back until a compression block fills.
        .layer(CompressionLayer::new())
        // Outermost: every answer is timed and traced, a refusal by a layer above too.
        .layer(middleware::from_fn(telemetry::traced_requests))
        .layer(middleware::from_fn_with_state(state.requests.clone(), metrics::time_requests))
        .with_state(state)
}

/// The routes of the planes raydar serves (Kubernetes clusters, [`crate::Plane`]), the home one
/// first: a request is answered by the plane its `context` query parameter names, by the home
/// plane when it names none. `context=*` is for the lists ([`LISTS`]), which the home plane
/// answers over every plane; elsewhere it is a 400, and a
/// name no plane has a 404, each with the security headers every answer carries.
///
/// Two requests name their plane otherwise. The list page (`/`) naming none lists every plane,
/// when there are several: one console over them. A page's server functions (`/_sfn/…`, whose
/// URLs are fixed) are answered for the plane of the page that calls them (its `Referer`, which
/// raydar's `Referrer-Policy: same-origin` keeps for its own pages); everything else a page
/// reads or writes names the plane itself.
pub fn planes_router(planes: Vec<(String, AppState)>) -> Router {
    let routers: Vec<(String, Router)> =
        planes.into_iter().map(|(name, state)| (name, router(state))).collect();
    let routers = Arc::new(routers);
    let dispatch = tower::service_fn(move |mut request: Request<Body>| {
        let routers = routers.clone();
        async move {
            let path = request.uri().path();
            let wanted = match context_of(request.uri()) {
                None if path == "/" && routers.len() > 1 => {
                    every_context(&mut request);
                    Some(clusters::ALL_CONTEXTS.to_owned())
                }
                None if path.starts_with("/_sfn/") => referring_context(&request),
                wanted => wanted.map(str::to_owned),
            };
            let path = request.uri().path();
            let home = || routers.first().map(|(_, router)| router);
            let plane =
                match wanted.as_deref() {
                    None => home(),
                    Some(clusters::ALL_CONTEXTS) if LISTS.contains(&path) => home(),
                    Some(clusters::ALL_CONTEXTS) => return Ok(ApiError::bad_request(
                        "context=* is for the lists (/, GET /api/v1/clusters, /api/v1/rayjobs and \
                         their events, GET /api/v1/history/clusters); name one Kubernetes cluster \
                         here",
                    )
                    .into_response()),
                    Some(name) => routers.iter().find(|(known, _)| known == name).map(|(_, r)| r),
                };
            match plane {
                Some(router) => router.clone().oneshot(request).await,
                None => Ok(ApiError::not_found(format!(
                    "no Kubernetes cluster is called {:?} here",
                    wanted.unwrap_or_default()
                ))
                .into_response()),
            }
        }
    });
    Router::new().fallback_service(dispatch).layer(middleware::from_fn(headers::security_headers))
}

/// What `context=*` may be given to: the list, its page and its push stream, history's list, and
/// the RayJobs and their push stream.
const LISTS: [&str; 6] = [
    "/",
    "/api/v1/clusters",
    "/api/v1/clusters/events",
    "/api/v1/history/clusters",
    "/api/v1/rayjobs",
    "/api/v1/rayjobs/events",
];

/// `request` (the list page) as if it asked for every plane: `context=*` added to its query.
fn every_context(request: &mut Request<Body>) {
    let uri = request.uri();
    let query = match uri.query() {
        Some(query) => format!("{query}&context=*"),
        None => "context=*".to_owned(),
    };
    if let Ok(uri) = format!("{}?{query}", uri.path()).parse() {
        *request.uri_mut() = uri;
    }
}

/// The `context` of the page `request` was made from (its same-origin `Referer`), if it names
/// one plane.
fn referring_context(request: &Request<Body>) -> Option<String> {
    let referer = request.headers().get(header::REFERER)?.to_str().ok()?;
    let page: axum::http::Uri = referer.parse().ok()?;
    context_of(&page).filter(|c| *c != clusters::ALL_CONTEXTS).map(str::to_owned)
}

/// The `context` query parameter of `uri`, if it has one. Context names are DNS labels, which
/// need no percent-decoding (an encoded one names no context), and `*` may come encoded.
fn context_of(uri: &axum::http::Uri) -> Option<&str> {
    let value = uri.query()?.split('&').find_map(|pair| pair.strip_prefix("context="))?;
    Some(if value.eq_ignore_ascii_case("%2A") { clusters::ALL_CONTEXTS } else { value })
}

/// Health, readiness and metrics alone, answered without identity: what `--metrics-addr`
/// serves, for Prometheus and the kubelet's probes, which no proxy signs in. Nothing there
/// names a person or a cluster.
pub fn ops_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .layer(middleware::from_fn(headers::security_headers))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown`: then no new connection is taken, each open one
/// ends after the request it is answering, and this returns once every connection has closed.
///
/// axum's own `serve`, but for one setting it does not expose: hyper's limit on how long a
/// client may take to send a request's headers (`header_timeout`; without a timer set, hyper has
/// none). A client that trickles its headers holds one socket for that long and nothing else.
/// Requests carry the client's address as [`ConnectInfo`], as with axum's.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    header_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    // Closing tells every connection to finish; `done` is closed once every connection has.
    let (closing, closed) = watch::channel(());
    let (done, running) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors, or a connection reset before it was taken: wait a
                // moment rather than spin.
                Err(e) => {
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = router.clone().map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(client));
            request.map(Body::new)
        });
        let (http, mut closed, running) = (http.clone(), closed.clone(), running.clone());
        tokio::spawn(async move {
            let service = TowerToHyperService::new(service);
            let connection = http.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = closed.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(running);
        });
    }
    drop((listener, closing, running));
    done.closed().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, referer: Option<&str>) -> Request<Body> {
        let mut request = Request::builder().uri(uri);
        if let Some(referer) = referer {
            request = request.header(header::REFERER, referer);
        }
        request.body(Body::empty()).unwrap()
    }

    #[test]
    fn the_list_page_naming_no_kubernetes_cluster_asks_for_all_of_them() {
        let mut list = request("/?team=a", None);
        every_context(&mut list);
        assert_eq!(list.uri().to_string(), "/?team=a&context=*");
        assert_eq!(context_of(list.uri()), Some(clusters::ALL_CONTEXTS));
        let mut bare = request("/", None);
        every_context(&mut bare);
        assert_eq!(context_of(bare.uri()), Some(clusters::ALL_CONTEXTS));
        assert_eq!(context_of(&"/?context=%2a".parse().unwrap()), Some(clusters::ALL_CONTEXTS));
    }

    #[test]
    fn a_server_function_is_answered_for_the_kubernetes_cluster_of_its_page() {
        let of = |referer| referring_context(&request("/_sfn/cluster", referer));
        assert_eq!(of(Some("http://raydar/clusters/ml/a?context=west")).as_deref(), Some("west"));
        assert_eq!(of(Some("http://raydar/clusters/ml/a")), None, "the home one");
        assert_eq!(of(Some("http://raydar/?context=*")), None, "all: the home one");
        assert_eq!(of(None), None);
    }
}
