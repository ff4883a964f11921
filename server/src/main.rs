//! raydar-server: see the crate docs for what it does and how it is laid out.

use anyhow::Context;
use raydar_server::config::LogFormat;
use raydar_server::security::Authn;
use raydar_server::telemetry;
use raydar_server::{Config, Plane};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

fn main() -> anyhow::Result<()> {
    raydar_server::memory::limit_arenas();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    let config = Config::from_command_line();
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,kube_client::client::builder=off"));
    let logs = match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer().boxed(),
        // Fields at the top level beside the message, as log pipelines index them.
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .boxed(),
    };
    let traces = match telemetry::endpoint() {
        None => None,
        Some(_) => Some(telemetry::provider().map_err(anyhow::Error::msg)?),
    };
    let exported =
        traces.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(telemetry::tracer(p)));
    tracing_subscriber::registry().with(filter).with(logs).with(exported).init();
    if let Some(endpoint) = telemetry::endpoint() {
        tracing::info!("traces go to {endpoint} (OTLP/HTTP)");
    }

    // Each Kubernetes cluster served, home first; one that cannot be configured stops the start
    // (a file that names a context its kubeconfig lacks is a mistake to fix, not to run with).
    let mut planes = Vec::with_capacity(config.contexts.len());
    for context in &config.contexts {
        let kube_config = context.client_config().await.map_err(anyhow::Error::msg)?;
        let apiserver = kube_config.cluster_url.to_string();
        let kube = kube::Client::try_from(kube_config).map_err(raydar_server::Error::KubeConfig)?;
        tracing::info!(context = %context.name, %apiserver, "serving this Kubernetes cluster");
        planes.push(Plane {
            name: context.name.clone(),
            scope: context.scope.clone(),
            kube,
            apiserver,
            gpus: context.gpu_settings(&config.gpus),
        });
    }
    match &config.authn {
        Authn::Dev(user) => {
            tracing::warn!(user = %user.name, groups = ?user.groups, "dev mode: everyone who connects is this user (loopback only)")
        }
        Authn::Proxy(proxy) => {
            tracing::info!(trusted = ?proxy.trusted, header = %proxy.user, "identity from the authenticating proxy")
        }
    }
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| raydar_server::Error::Listen { addr: config.addr, source })?;
    let addr = listener.local_addr().context("listening socket has no address")?;
    tracing::info!("raydar listening on http://{addr}");

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let (planes, supervisors) = raydar_server::start_planes(&config, planes, shutdown.clone())?;
    // Health, readiness and metrics are the home plane's.
    let home = planes[0].1.clone();
    if let Some(addr) = config.metrics_addr {
        let ops = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| raydar_server::Error::Listen { addr, source })?;
        tracing::info!("health, readiness and metrics on http://{addr} (no identity)");
        tokio::spawn(raydar_server::run_ops(ops, home, shutdown.clone()));
    }
    raydar_server::run_planes(listener, planes, supervisors, shutdown)
        .await
        .context("serving HTTP")?;
    if let Some(traces) = traces {
        telemetry::shutdown(traces).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: closing event streams, finishing open requests");
    shutdown.cancel();
}
