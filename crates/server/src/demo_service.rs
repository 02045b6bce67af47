//! A stand-in application for the demo: answers every HTTP request with `200 ok` on the given
//! addresses, so that each demo site has services to probe, and to kill.

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::Router;
use tokio_util::sync::CancellationToken;

/// Serves `200 ok` on every address until `shutdown` is cancelled.
pub async fn serve_ok(addresses: &[SocketAddr], shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut servers = tokio::task::JoinSet::new();
    for address in addresses {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}: is another demo running?"))?;
        let router = Router::new().fallback(|| async { "ok" });
        let stop = shutdown.clone();
        servers.spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
    }
    while let Some(joined) = servers.join_next().await {
        joined
            .context("demo service task")?
            .context("demo service")?;
    }
    Ok(())
}
