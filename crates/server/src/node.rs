//! `switchyard serve`: start one node, keep it running until SIGTERM or SIGINT, stop cleanly.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use switchyard_core::config::ClusterConfig;
use switchyard_core::id::NodeId;
use switchyard_raft::{RaftNode, RaftNodeConfig, Secret};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use futures::FutureExt as _;

use crate::api::{self, AppState};
use crate::metrics::Metrics;
use crate::{detection, dns, executor, leader, logging};

/// How often the log formatter's view of the Raft term is refreshed.
const TERM_REFRESH_INTERVAL: Duration = Duration::from_millis(200);

/// What the parts of a running node share.
#[derive(Clone, Debug)]
pub struct NodeContext {
    pub node: NodeId,
    /// This node's configuration file. Decisions use the replicated one (`State::config`).
    pub config: ClusterConfig,
    pub raft: RaftNode,
    /// Cancelled when the node stops; every task watches it.
    pub shutdown: CancellationToken,
}

#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub config: PathBuf,
    pub node: NodeId,
    /// Where this node keeps its Raft log, vote, snapshots and state.
    pub data_dir: PathBuf,
    /// Cancelled to stop the node; `serve` also stops on SIGTERM and SIGINT.
    pub shutdown: CancellationToken,
}

/// Runs a node until shutdown. Returns an error, with context, when it cannot start.
pub async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let loaded = switchyard_spec::load_config(&options.config)
        .with_context(|| format!("cannot load configuration {}", options.config.display()))?;
    for diagnostic in &loaded.diagnostics {
        tracing::warn!("{diagnostic}");
    }
    let Some(config) = loaded.value else {
        let errors: Vec<String> = loaded.diagnostics.iter().map(ToString::to_string).collect();
        bail!(
            "configuration {} is invalid:\n{}",
            options.config.display(),
            errors.join("\n")
        );
    };
    let Some(node) = config.node(options.node).cloned() else {
        let known: Vec<String> = config
            .nodes
            .iter()
            .map(|node| node.id.to_string())
            .collect();
        bail!(
            "node {} is not in {} (its nodes are {})",
            options.node,
            options.config.display(),
            known.join(", ")
        );
    };
    logging::set_node(node.id.0);
    std::fs::create_dir_all(&options.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            options.data_dir.display()
        )
    })?;
    let secret = Secret::load(&config.secret_file).with_context(|| {
        format!(
            "cannot read the cluster secret {}",
            config.secret_file.display()
        )
    })?;

    let raft_listener = TcpListener::bind(node.raft_addr).await.with_context(|| {
        format!(
            "cannot listen for node-to-node traffic on {}",
            node.raft_addr
        )
    })?;
    let api_listener = TcpListener::bind(node.api_addr)
        .await
        .with_context(|| format!("cannot listen for the API on {}", node.api_addr))?;

    let raft = RaftNode::start(RaftNodeConfig {
        node_id: node.id,
        cluster: config.clone(),
        data_dir: options.data_dir.clone(),
        secret,
    })
    .await
    .context("cannot start raft")?;

    let shutdown = options.shutdown.clone();
    let mut tasks = tokio::task::JoinSet::new();
    let context = NodeContext {
        node: node.id,
        config: config.clone(),
        raft: raft.clone(),
        shutdown: shutdown.clone(),
    };
    let mut registry = prometheus_client::registry::Registry::with_prefix("switchyard");
    let detection_metrics = detection::register(&mut registry);
    let dns_metrics = dns::register(&mut registry);
    let metrics = Metrics::new(registry);
    detection::spawn(&context, detection_metrics, &mut tasks);
    dns::spawn(&context, dns_metrics, &mut tasks);
    executor::spawn(&context, &mut tasks);
    tasks.spawn(
        leader::keep_config_applied(raft.clone(), config.clone(), node.id, shutdown.clone())
            .map(Ok),
    );
    let rpc_router = raft.rpc_router();
    let stop = shutdown.clone();
    tasks.spawn(async move {
        axum::serve(raft_listener, rpc_router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .context("raft listener")
    });
    let api_router = api::router(AppState::new(
        node.id,
        config.clone(),
        raft.clone(),
        metrics,
    ));
    let stop = shutdown.clone();
    tasks.spawn(async move {
        axum::serve(api_listener, api_router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .context("api listener")
    });
    let bootstrap = raft.clone();
    let stop = shutdown.clone();
    tasks.spawn(async move {
        tokio::select! {
            result = bootstrap.bootstrap_if_fresh() => result.context("bootstrap"),
            () = stop.cancelled() => Ok(()),
        }
    });
    let watched = raft.clone();
    let stop = shutdown.clone();
    tasks.spawn(async move {
        let mut interval = tokio::time::interval(TERM_REFRESH_INTERVAL);
        while !stop.is_cancelled() {
            tokio::select! {
                _ = interval.tick() => logging::set_term(watched.status().term),
                () = stop.cancelled() => {}
            }
        }
        Ok(())
    });
    tracing::info!(
        cluster = %config.name,
        site = %node.site,
        raft = %node.raft_addr,
        api = %node.api_addr,
        data_dir = %options.data_dir.display(),
        "node started"
    );

    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signal.cancel();
    });
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined
            .map_err(|error| anyhow!("task panicked: {error}"))
            .and_then(|result| result);
        if let Err(error) = result {
            if failure.is_none() {
                tracing::error!("{error:#}; stopping the node");
                failure = Some(error);
            }
            shutdown.cancel();
        }
    }
    tracing::info!("stopping raft");
    raft.shutdown().await.context("raft shutdown")?;
    tracing::info!("node stopped");
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

async fn wait_for_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!("cannot watch SIGTERM ({error}); only SIGINT stops the node");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
