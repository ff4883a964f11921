//! The router: Leptos pages and server functions, the REST API, the push stream, static files.

use std::sync::Arc;
use std::time::Duration;

use app::api::ssr::{ClusterDirectory, Directory};
use app::api::{ClusterList, LaunchForms, Session};
use app::{shell, App};
use axum::body::Body;
use platform::ClusterDetail;
use std::collections::HashMap;

use axum::extract::{DefaultBodyLimit, FromRef, Path, State};
use axum::handler::Handler;
use axum::http::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use leptos::config::LeptosOptions;
use leptos::prelude::{provide_context, use_context};
use leptos_axum::{
    generate_route_list, handle_server_fns_with_context, LeptosRoutes, ResponseOptions,
};
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::audit::Audit;
use crate::auth::{self, Access, Ask, Authn, Grants, User};
use crate::clusters::Clusters;
use crate::gpus::{self, GpuMetrics};
use crate::guard::{self, ActionLimit, CsrfKey};
use crate::launch::{self, Launcher};
use crate::logs::{self, LogStreams};
use crate::overview::{self, Overviews};
use crate::ray::{self, Dashboards};
use crate::templates::Templates;
use crate::{push, rest, Config};

/// What every handler can reach: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Leptos settings: site root and output names.
    pub leptos: LeptosOptions,
    /// The watched RayClusters.
    pub clusters: Clusters,
    /// The watched RayClusterTemplates.
    pub templates: Templates,
    /// Launches and deletes RayClusters in Kubernetes.
    pub launcher: Launcher,
    /// Reads Ray dashboards.
    pub dashboards: Dashboards,
    /// Ray pods, events and Ray's view, for cluster pages.
    pub overviews: Overviews,
    /// Live job and pod logs, one upstream per log shared by its viewers.
    pub logs: LogStreams,
    /// GPU metrics: dcgm-exporter scrapes, their history, Ray's metrics.
    pub gpus: GpuMetrics,
    /// Where identities come from.
    pub authn: Arc<Authn>,
    /// Kubernetes as each user: their clients and what they may do.
    pub access: Access,
    /// Signs the CSRF tokens of pages.
    pub csrf: CsrfKey,
    /// Actions per user per minute.
    pub actions: ActionLimit,
    /// Records who did what.
    pub audit: Audit,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

impl AppState {
    /// State for `config`, reading clusters from `clusters` and templates from `templates`,
    /// launching through `launcher`. Ray dashboards are read as `config` says, through the
    /// launcher's client when by the apiserver's proxy, each call within 10 s, 4 at once per cluster.
    pub fn new(
        config: &Config,
        clusters: Clusters,
        templates: Templates,
        launcher: Launcher,
    ) -> Self {
        let dashboards = Dashboards::new(
            config.ray_dashboard.clone(),
            launcher.client.clone(),
            Duration::from_secs(10),
            4,
        );
        let leptos = LeptosOptions::builder()
            // tools/site.sh (and the Makefile) set the output name when building the server; tests built by plain
            // cargo serve pages without the browser bundle, under the same name.
            .output_name(option_env!("LEPTOS_OUTPUT_NAME").unwrap_or("raydar"))
            .site_root(config.site_root.to_string_lossy().to_string())
            .site_pkg_dir("pkg")
            .site_addr(config.addr)
            .build();
        let overviews = Overviews::start(
            launcher.client.clone(),
            dashboards.clone(),
            "the Kubernetes apiserver".into(),
        );
        let logs = LogStreams::new(config.log_streams, config.log_buffer_lines, logs::LINGER);
        let gpus = GpuMetrics::start(
            launcher.client.clone(),
            config.gpus.clone(),
            config.ray_dashboard.clone(),
            overviews.clone(),
            "the Kubernetes apiserver".into(),
        );
        let access = Access::new(launcher.client.clone());
        let audit = Audit::new(launcher.client.clone());
        Self {
            leptos,
            clusters,
            templates,
            launcher,
            dashboards,
            overviews,
            logs,
            gpus,
            authn: Arc::new(config.authn.clone()),
            access,
            csrf: CsrfKey::generate(),
            actions: ActionLimit::new(config.action_rate),
            audit,
        }
    }

    /// What pages and server functions find in context: the directory, who is asking (and their
    /// CSRF token), and the page's Content-Security-Policy with this response's script nonce.
    fn provide(&self) -> impl Fn() + Clone + Send + 'static {
        let directory = Directory(Arc::new(self.clone()));
        let csrf = self.csrf.clone();
        move || {
            provide_context(directory.clone());
            let parts = use_context::<axum::http::request::Parts>();
            if let Some(user) = parts.as_ref().and_then(|p| p.extensions.get::<User>()) {
                provide_context(Session {
                    user: user.name.clone(),
                    team: user.team(),
                    csrf: csrf.token(user),
                });
            }
            if let (Some(nonce), Some(response)) =
                (leptos::nonce::use_nonce(), use_context::<ResponseOptions>())
            {
                if let Ok(policy) = axum::http::HeaderValue::from_str(&guard::page_policy(&nonce)) {
                    response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, policy);
                }
            }
        }
    }
}

/// The requester's [`Grants`], worked out before a page renders (rendering cannot wait on
/// Kubernetes); pages read them from the request.
async fn with_grants(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    mut request: Request<Body>,
    next: Next,
) -> Response {
    let grants = state.access.grants(&user, state.clusters.namespaces()).await;
    request.extensions_mut().insert(grants);
    next.run(request).await
}

/// The grants of the request being rendered: none when the middleware did not run.
fn grants() -> Grants {
    use_context::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<Grants>().cloned())
        .unwrap_or_default()
}

/// Route layer: reading anything of a cluster (its summary, pods, events, Ray's view, job logs)
/// needs the right to list RayClusters in its namespace.
async fn cluster_read(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(params): Path<HashMap<String, String>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let namespace = params.get("namespace").cloned().unwrap_or_default();
    if !state.access.may(&user, &Ask::rayclusters("list", &namespace)).await {
        return auth::may_not_read(&user, "RayClusters", &namespace);
    }
    next.run(request).await
}

/// Route layer: a pod's log needs the right to read pods' logs in its namespace.
async fn pod_log_read(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(params): Path<HashMap<String, String>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let namespace = params.get("namespace").cloned().unwrap_or_default();
    if !state.access.may(&user, &Ask::pod_logs(&namespace)).await {
        return auth::may_not_read(&user, "pod logs", &namespace);
    }
    next.run(request).await
}

/// What pages read: the watched clusters and templates, as far as the requester may see them.
impl ClusterDirectory for AppState {
    fn cluster_list(&self) -> ClusterList {
        let grants = grants();
        let mut list = self.clusters.snapshot();
        grants.apply(&mut list.clusters);
        list
    }

    fn cluster_detail(&self, namespace: &str, name: &str) -> Option<ClusterDetail> {
        let grants = grants();
        if !grants.read.contains(namespace) {
            return None;
        }
        let mut detail = self.clusters.detail(namespace, name)?;
        detail.may_change = grants.change.contains(namespace);
        detail.summary.may_delete = grants.delete.contains(namespace);
        Some(detail)
    }

    fn fleet(&self) -> platform::utilization::Fleet {
        gpus::fleet_for(self, &grants().read)
    }

    fn launch_forms(&self) -> LaunchForms {
        let session = use_context::<Session>();
        LaunchForms {
            templates: self.templates.forms(),
            owner: session.as_ref().map(|s| s.user.clone()).unwrap_or_default(),
            team: session.map(|s| s.team).unwrap_or_default(),
            // The kubeconfig context's namespace, as kubectl would use it.
            namespace: self.launcher.client.default_namespace().to_owned(),
        }
    }
}

/// Every route raydar serves. Every one but `/healthz` and `/readyz` needs an identity
/// ([`auth::authenticate`]); writes need the page's origin and CSRF token ([`guard`]).
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let read = || middleware::from_fn_with_state(state.clone(), cluster_read);
    let api = Router::new()
        .route("/clusters", get(rest::list_clusters).post(launch::create_cluster))
        .route("/clusters/events", get(push::cluster_events))
        .route(
            "/clusters/{namespace}/{name}",
            get(rest::get_cluster.layer(read())).delete(launch::delete_cluster).patch(launch::change_cluster),
        )
        // GET only: every other method is 405 here, before anything could reach Ray.
        .route("/clusters/{namespace}/{name}/ray/{*path}", get(ray::read_dashboard).route_layer(read()))
        .route("/clusters/{namespace}/{name}/jobs/{job_id}/logs", get(logs::job_log).route_layer(read()))
        .route("/clusters/{namespace}/{name}/jobs/{job_id}/logs/stream", get(logs::job_log_stream).route_layer(read()))
        .route("/clusters/{namespace}/{name}/overview", get(overview::read_overview).route_layer(read()))
        .route("/clusters/{namespace}/{name}/gpus", get(gpus::cluster_gpus).route_layer(read()))
        .route("/clusters/{namespace}/{name}/gpus/{chart}", get(gpus::cluster_chart).route_layer(read()))
        .route("/gpus", get(gpus::fleet))
        .merge(
            Router::new()
                .route("/clusters/{namespace}/{name}/pods/{pod}/logs", get(logs::pod_log))
                .route("/clusters/{namespace}/{name}/pods/{pod}/logs/stream", get(logs::pod_log_stream))
                .route_layer(middleware::from_fn_with_state(state.clone(), pod_log_read)),
        )
        .route("/templates", get(rest::list_templates))
        .route("/openapi.json", get(rest::openapi))
        .route("/session", get(rest::session));
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
    let pages = Router::new()
        .route("/_sfn/{*fn_name}", post(server_fn).get(server_fn))
        .leptos_routes_with_context(&state, routes, state.provide(), {
            let options = state.leptos.clone();
            move || shell(options.clone())
        })
        .route_layer(middleware::from_fn_with_state(state.clone(), with_grants));
    Router::new()
        .nest("/api/v1", api)
        .nest("/pkg", pkg)
        .merge(pages)
        .route("/healthz", get(rest::healthz))
        .route("/readyz", get(rest::readyz))
        .route("/metrics", get(rest::metrics))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Innermost first: writes are checked for origin and token once the requester is known;
        // every answer, a 401 too, carries the security headers.
        .layer(middleware::from_fn_with_state(state.csrf.clone(), guard::same_origin_writes))
        .layer(middleware::from_fn_with_state(state.authn.clone(), auth::authenticate))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(guard::security_headers))
        // Compresses pages, wasm, JS and JSON; never the event stream, which would then be held
        // back until a compression block fills.
        .layer(CompressionLayer::new())
        .with_state(state)
}

/// Largest request body raydar accepts: a launch request is a few hundred bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// Serves `router` on `listener` with each connection's peer address, which identity from an
/// authenticating proxy is checked against.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

async fn server_fn(State(state): State<AppState>, request: Request<Body>) -> impl IntoResponse {
    handle_server_fns_with_context(state.provide(), request).await
}
