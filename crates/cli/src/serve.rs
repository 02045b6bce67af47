//! `switchyard serve`: run one controller node in the foreground.

use std::path::PathBuf;

use anyhow::Context as _;
use switchyard_core::id::NodeId;
use switchyard_server::{LogFormat, ServeOptions};
use tokio_util::sync::CancellationToken;

use crate::{Outcome, UsageError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster configuration file, the same on every node.
    #[arg(long, short = 'c', env = "SWITCHYARD_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// This node's id in the configuration.
    #[arg(long, env = "SWITCHYARD_NODE", value_name = "ID")]
    node: u64,
    /// Where this node keeps its Raft log, vote, snapshots and state [default: ./data/node-ID].
    #[arg(long, env = "SWITCHYARD_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Stop when standard input closes: lets a parent process (the demo) take its nodes down
    /// with it even if the parent is killed.
    #[arg(long, hide = true)]
    stop_when_stdin_closes: bool,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormatArg::Text)]
    log_format: LogFormatArg,
    /// Log filter (RUST_LOG syntax); RUST_LOG wins when set.
    #[arg(long, default_value = "info,openraft=warn")]
    log_level: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

pub fn run(args: Args) -> Result<Outcome, UsageError> {
    let format = match args.log_format {
        LogFormatArg::Text => LogFormat::Text,
        LogFormatArg::Json => LogFormat::Json,
    };
    switchyard_server::init_logging(format, &args.log_level);
    let data_dir = args
        .data_dir
        .unwrap_or_else(|| PathBuf::from(format!("data/node-{}", args.node)));
    let options = ServeOptions {
        config: args.config,
        node: NodeId(args.node),
        data_dir,
        shutdown: CancellationToken::new(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    if args.stop_when_stdin_closes {
        let shutdown = options.shutdown.clone();
        runtime.spawn(async move {
            use tokio::io::AsyncReadExt as _;
            let mut stdin = tokio::io::stdin();
            let mut buffer = [0_u8; 64];
            while matches!(stdin.read(&mut buffer).await, Ok(read) if read > 0) {}
            tracing::info!("standard input closed: stopping");
            shutdown.cancel();
        });
    }
    runtime.block_on(switchyard_server::serve(options))?;
    Ok(Outcome::Success)
}
