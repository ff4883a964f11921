//! The router: Leptos pages and server functions, the REST API, the push stream, static files.

use std::sync::Arc;
use std::time::Duration;

use app::api::ssr::{ClusterDirectory, Directory};
use app::api::{ClusterList, LaunchForms};
use platform::ClusterDetail;
use app::{shell, App};
use axum::body::Body;
use axum::extract::{FromRef, State};
use axum::http::Request;
use axum::response::IntoResponse;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, handle_server_fns_with_context, LeptosRoutes};
use axum::http::{header, HeaderValue};
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::clusters::Clusters;
use crate::launch::{self, Launcher};
use crate::logs::{self, LogStreams};
use crate::templates::Templates;
use crate::overview::{self, Overviews};
use crate::ray::{self, Dashboards};
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
    pub fn new(config: &Config, clusters: Clusters, templates: Templates, launcher: Launcher) -> Self {
        let dashboards =
            Dashboards::new(config.ray_dashboard.clone(), launcher.client.clone(), Duration::from_secs(10), 4);
        let leptos = LeptosOptions::builder()
            // tools/site.sh (and the Makefile) set the output name when building the server; tests built by plain
            // cargo serve pages without the browser bundle, under the same name.
            .output_name(option_env!("LEPTOS_OUTPUT_NAME").unwrap_or("raydar"))
            .site_root(config.site_root.to_string_lossy().to_string())
            .site_pkg_dir("pkg")
            .site_addr(config.addr)
            .build();
        let overviews = Overviews::start(launcher.client.clone(), dashboards.clone(), "the Kubernetes apiserver".into());
        let logs = LogStreams::new(config.log_streams, config.log_buffer_lines, logs::LINGER);
        Self { leptos, clusters, templates, launcher, dashboards, overviews, logs }
    }

    fn provide(&self) -> impl Fn() + Clone + Send + 'static {
        let directory = Directory(Arc::new(self.clone()));
        move || provide_context(directory.clone())
    }
}

/// What pages read: the watched clusters and templates, and the requester.
impl ClusterDirectory for AppState {
    fn cluster_list(&self) -> ClusterList {
        self.clusters.snapshot()
    }

    fn cluster_detail(&self, namespace: &str, name: &str) -> Option<ClusterDetail> {
        self.clusters.detail(namespace, name)
    }

    fn launch_forms(&self) -> LaunchForms {
        let identity = &self.launcher.identity;
        LaunchForms {
            templates: self.templates.forms(),
            owner: identity.user.clone(),
            team: identity.team.clone(),
            // The kubeconfig context's namespace, as kubectl would use it.
            namespace: self.launcher.client.default_namespace().to_owned(),
        }
    }
}

/// Every route raydar serves.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let api = Router::new()
        .route(
            "/clusters",
            get(rest::list_clusters)
                .post(launch::create_cluster)
                .layer(DefaultBodyLimit::max(launch::MAX_BODY)),
        )
        .route("/clusters/events", get(push::cluster_events))
        .route(
            "/clusters/{namespace}/{name}",
            get(rest::get_cluster)
                .delete(launch::delete_cluster)
                .patch(launch::change_cluster)
                .layer(DefaultBodyLimit::max(launch::MAX_BODY)),
        )
        // GET only: every other method is 405 here, before anything could reach Ray.
        .route("/clusters/{namespace}/{name}/ray/{*path}", get(ray::read_dashboard))
        .route("/clusters/{namespace}/{name}/jobs/{job_id}/logs", get(logs::job_log))
        .route("/clusters/{namespace}/{name}/jobs/{job_id}/logs/stream", get(logs::job_log_stream))
        .route("/clusters/{namespace}/{name}/pods/{pod}/logs", get(logs::pod_log))
        .route("/clusters/{namespace}/{name}/pods/{pod}/logs/stream", get(logs::pod_log_stream))
        .route("/clusters/{namespace}/{name}/overview", get(overview::read_overview))
        .route("/templates", get(rest::list_templates))
        .route("/openapi.json", get(rest::openapi));
    // The browser bundle: served from the .br/.gz files the build wrote (tools/precompress.mjs),
    // smaller than compressing on the fly. Names carry no hash, so browsers revalidate.
    let pkg_dir = std::path::Path::new(&*state.leptos.site_root).join(&*state.leptos.site_pkg_dir);
    let pkg = Router::new()
        .fallback_service(ServeDir::new(pkg_dir).precompressed_br().precompressed_gzip())
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-cache")));
    Router::new()
        .nest("/api/v1", api)
        .nest("/pkg", pkg)
        .route("/healthz", get(rest::healthz))
        .route("/readyz", get(rest::readyz))
        .route("/metrics", get(rest::metrics))
        .route("/_sfn/{*fn_name}", post(server_fn).get(server_fn))
        .leptos_routes_with_context(&state, routes, state.provide(), {
            let options = state.leptos.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Compresses pages, wasm, JS and JSON; never the event stream, which would then be held
        // back until a compression block fills.
        .layer(CompressionLayer::new())
        .with_state(state)
}

async fn server_fn(State(state): State<AppState>, request: Request<Body>) -> impl IntoResponse {
    handle_server_fns_with_context(state.provide(), request).await
}
