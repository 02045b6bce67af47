//! Log set-up: text or JSON lines, each carrying the node id and the current Raft term.
//!
//! The term changes while the node runs, so it cannot live in a span fixed at start-up; the
//! formatter reads it from an atomic that the node updates from Raft's metrics.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

static NODE: AtomicU64 = AtomicU64::new(0);
static TERM: AtomicU64 = AtomicU64::new(0);

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the global subscriber. `filter` is an `EnvFilter` directive such as `info` or
/// `switchyard=debug,openraft=warn`; `RUST_LOG`, when set, wins.
pub fn init_logging(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    // A second initialisation (tests that start several nodes in one process) keeps the first.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(NodeFormat { format })
        .try_init();
}

pub(crate) fn set_node(node: u64) {
    NODE.store(node, Ordering::Relaxed);
}

pub(crate) fn set_term(term: u64) {
    TERM.store(term, Ordering::Relaxed);
}

struct NodeFormat {
    format: LogFormat,
}

impl<S, N> FormatEvent<S, N> for NodeFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        let time = humantime::format_rfc3339_millis(SystemTime::now());
        let node = NODE.load(Ordering::Relaxed);
        let term = TERM.load(Ordering::Relaxed);
        match self.format {
            LogFormat::Text => {
                write!(
                    writer,
                    "{time} {:>5} node={node} term={term} {}: ",
                    metadata.level(),
                    metadata.target()
                )?;
                ctx.format_fields(writer.by_ref(), event)?;
                writeln!(writer)
            }
            LogFormat::Json => {
                let mut fields = JsonFields(serde_json::Map::new());
                event.record(&mut fields);
                let line = serde_json::json!({
                    "time": time.to_string(),
                    "level": metadata.level().as_str(),
                    "node": node,
                    "term": term,
                    "target": metadata.target(),
                    "fields": fields.0,
                });
                writeln!(writer, "{line}")
            }
        }
    }
}

struct JsonFields(serde_json::Map<String, serde_json::Value>);

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), format!("{value:?}").into());
    }
}
