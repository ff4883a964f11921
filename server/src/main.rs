//! raydar-server: see the crate docs for what it does and how it is laid out.

use anyhow::Context;
use raydar_server::auth::Authn;
use raydar_server::launch::Launcher;
use raydar_server::{clusters, router, serve, templates, AppState, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,kube_client::client::builder=off")),
        )
        .init();
    let config = match Config::from_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(usage) => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };

    let kube_config = kube::Config::infer().await.context(
        "cannot find a Kubernetes configuration: set KUBECONFIG or run inside a cluster",
    )?;
    let apiserver = kube_config.cluster_url.to_string();
    let client = kube::Client::try_from(kube_config).map_err(raydar_server::Error::KubeConfig)?;
    let (clusters, watch) = clusters::watch(client.clone(), apiserver.clone());
    let (templates, template_watch) = templates::watch(client.clone(), apiserver.clone());
    match &config.authn {
        Authn::Dev(user) => {
            tracing::warn!(user = %user.name, groups = ?user.groups, "dev mode: everyone who connects is this user (loopback only)")
        }
        Authn::Proxy(proxy) => {
            tracing::info!(trusted = ?proxy.trusted, header = %proxy.user, "identity from the authenticating proxy")
        }
    }
    let launcher = Launcher::new(client);

    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| raydar_server::Error::Listen { addr: config.addr, source })?;
    let addr = listener.local_addr().context("listening socket has no address")?;
    tracing::info!(%apiserver, "raydar listening on http://{addr}");

    let shutdown = shutdown_signal();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let stopped = |mut rx: tokio::sync::watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    let watch_task = tokio::spawn(watch.run(stopped(stop_rx.clone())));
    let template_task = tokio::spawn(template_watch.run(stopped(stop_rx)));
    serve(listener, router(AppState::new(&config, clusters, templates, launcher)), shutdown)
        .await
        .context("serving HTTP")?;
    drop(stop_tx);
    let _ = watch_task.await;
    let _ = template_task.await;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
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
    tracing::info!("shutting down");
}
