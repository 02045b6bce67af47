//! The DNS metric families: queries the embedded server answered, pushes to external providers,
//! the serial served, and verification time.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use switchyard_providers::{EmbeddedDns, ProviderError};

/// Labels of a push count: the provider id and the outcome (`ok` or an error kind).
type PushLabels = [(&'static str, String); 2];
type ZoneLabels = [(&'static str, String); 1];

/// The DNS metric families. Clones share the same families.
#[derive(Clone, Debug)]
pub struct DnsMetrics {
    /// The running embedded server, read at every scrape for its query counts.
    pub(super) server: Arc<ServerSlot>,
    /// Pushes to external providers, by provider and outcome.
    pub(super) updates_pushed: Family<PushLabels, Counter>,
    /// The SOA serial each embedded zone serves on this node.
    pub(super) zone_serial: Family<ZoneLabels, Gauge>,
    /// How long verifications made by this node took.
    pub(super) verification_seconds: Histogram,
}

/// Where the serving task publishes its server for the query-count collector. Weak, so that the
/// metrics never keep a stopped server alive.
#[derive(Debug, Default)]
pub(super) struct ServerSlot(RwLock<Weak<EmbeddedDns>>);

impl ServerSlot {
    pub(super) fn set(&self, server: &Arc<EmbeddedDns>) {
        *self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::downgrade(server);
    }

    fn get(&self) -> Option<Arc<EmbeddedDns>> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .upgrade()
    }
}

/// Encodes the embedded server's own query counters at scrape time, so the metric is exact
/// rather than a periodic copy.
#[derive(Debug)]
struct QueryCollector(Arc<ServerSlot>);

impl Collector for QueryCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = self
            .0
            .get()
            .map(|server| server.query_counts())
            .unwrap_or_default();
        let counter = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "dns_queries",
            "DNS queries the embedded server answered, by zone (`-` outside every zone) and response code",
            None,
            counter.metric_type(),
        )?;
        for count in counts {
            let labels: [(&str, String); 2] = [
                (
                    "zone",
                    count
                        .zone
                        .map_or_else(|| "-".to_owned(), |zone| zone.to_string()),
                ),
                ("rcode", count.rcode),
            ];
            ConstCounter::new(count.count).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

pub fn register(registry: &mut Registry) -> DnsMetrics {
    let metrics = DnsMetrics {
        server: Arc::new(ServerSlot::default()),
        updates_pushed: Family::default(),
        zone_serial: Family::default(),
        verification_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
    };
    registry.register_collector(Box::new(QueryCollector(metrics.server.clone())));
    registry.register(
        "dns_updates_pushed",
        "Pushes of a zone's RRsets to an external DNS provider, by provider and outcome",
        metrics.updates_pushed.clone(),
    );
    registry.register(
        "dns_zone_serial",
        "SOA serial this node's embedded server serves, by zone",
        metrics.zone_serial.clone(),
    );
    registry.register(
        "dns_verification_seconds",
        "Time a DNS verification made by this node took, until every server converged or the timeout",
        metrics.verification_seconds.clone(),
    );
    metrics
}

impl DnsMetrics {
    /// Counts one push of `provider`, successful or failed.
    pub fn count_push(&self, provider: &str, outcome: Result<(), &ProviderError>) {
        let outcome = match outcome {
            Ok(()) => "ok",
            Err(error) => outcome_of(error),
        };
        self.updates_pushed
            .get_or_create(&[
                ("provider", provider.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
    }

    pub fn observe_verification(&self, elapsed: Duration) {
        self.verification_seconds.observe(elapsed.as_secs_f64());
    }
}

/// A short, stable label for a push failure (never its message, which names servers and keys).
pub fn outcome_of(error: &ProviderError) -> &'static str {
    match error {
        ProviderError::TsigKeyRead { .. }
        | ProviderError::TsigKeyParse { .. }
        | ProviderError::TsigAlgorithmUnsupported { .. } => "key_error",
        ProviderError::TsigAuthFailed { .. } => "tsig_auth_failed",
        ProviderError::UpdateRefused { .. } => "refused",
        ProviderError::ZoneNotServed { .. } => "zone_not_served",
        ProviderError::UpdateFailed { .. } => "update_failed",
        ProviderError::Unreachable { .. } => "unreachable",
        ProviderError::Timeout { .. } => "timeout",
        ProviderError::MalformedResponse { .. } => "malformed_response",
        ProviderError::InvalidName { .. }
        | ProviderError::NameOutsideZone { .. }
        | ProviderError::AddressFamilyMismatch { .. }
        | ProviderError::Encode { .. } => "invalid_change",
        ProviderError::Bind { .. } => "bind_failed",
        ProviderError::Injected { .. } => "injected",
    }
}
