//! The detection metric families on `/metrics`: probe durations and failures, verdict flips,
//! each site's state and the age of each endpoint's last successful probe.

use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use switchyard_core::detection::{Detector, SiteState};
use switchyard_probe::{EndpointStatus, Observation, Target, Verdict};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `http`, `tcp` or `dns`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// `http`, `tcp` or `dns`.
    pub kind: String,
    /// The failure's short name (`timeout`, `connection_refused`, `status`, ...).
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FlipLabels {
    /// `up` or `down`: the new verdict.
    pub verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SiteLabels {
    pub site: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: String,
    pub site: String,
    pub service: String,
}

fn probe_histogram() -> Histogram {
    // 1 ms to about 4 s: loopback answers in a millisecond, a black-holed probe waits for its
    // whole timeout.
    Histogram::new(exponential_buckets(0.001, 2.0, 13))
}

/// The detection metric families, cheap to clone (every family is shared).
#[derive(Clone, Debug)]
pub struct DetectionMetrics {
    /// `switchyard_probe_duration_seconds{kind}`: every probe, successful or not.
    pub probe_duration: Family<KindLabels, Histogram, fn() -> Histogram>,
    /// `switchyard_probe_failures_total{kind,reason}`.
    pub probe_failures: Family<FailureLabels, Counter>,
    /// `switchyard_verdict_flips_total{verdict}`: this node's verdict flips.
    pub verdict_flips: Family<FlipLabels, Counter>,
    /// `switchyard_site_state{site}`: the site's state on this node's replica, as a code
    /// (see [`site_state_code`]).
    pub site_state: Family<SiteLabels, Gauge>,
    /// `switchyard_probe_last_success_age_seconds{endpoint,site,service}`: seconds since the
    /// start of this node's last successful probe of the endpoint; absent until one succeeds.
    pub probe_last_success_age: Family<EndpointLabels, Gauge<f64, AtomicU64>>,
}

impl Default for DetectionMetrics {
    fn default() -> Self {
        Self {
            probe_duration: Family::new_with_constructor(probe_histogram),
            probe_failures: Family::default(),
            verdict_flips: Family::default(),
            site_state: Family::default(),
            probe_last_success_age: Family::default(),
        }
    }
}

/// The numeric code of a site state in `switchyard_site_state`: 0 healthy, 1 suspect, 2 lost,
/// 3 services_down, 4 recovering. Alert on `switchyard_site_state == 2`.
pub fn site_state_code(state: SiteState) -> i64 {
    match state {
        SiteState::Healthy => 0,
        SiteState::Suspect => 1,
        SiteState::Lost => 2,
        SiteState::ServicesDown => 3,
        SiteState::Recovering => 4,
    }
}

impl DetectionMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "probe_duration_seconds",
            "Duration of health probes by check kind",
            metrics.probe_duration.clone(),
        );
        registry.register(
            "probe_failures",
            "Failed health probes by check kind and reason",
            metrics.probe_failures.clone(),
        );
        registry.register(
            "verdict_flips",
            "This node's verdict flips on endpoints, by new verdict",
            metrics.verdict_flips.clone(),
        );
        registry.register(
            "site_state",
            "Site state on this node's replica: 0 healthy, 1 suspect, 2 lost, 3 services_down, 4 recovering",
            metrics.site_state.clone(),
        );
        registry.register(
            "probe_last_success_age_seconds",
            "Seconds since this node's last successful probe of the endpoint",
            metrics.probe_last_success_age.clone(),
        );
        metrics
    }

    /// Records one probe (called by the prober's observation hook).
    pub fn observe(&self, target: &Target, observation: &Observation) {
        let kind = target.check.kind().to_owned();
        self.probe_duration
            .get_or_create(&KindLabels { kind: kind.clone() })
            .observe(observation.latency.as_secs_f64());
        if let Some(failure) = &observation.error {
            self.probe_failures
                .get_or_create(&FailureLabels {
                    kind,
                    reason: failure.kind().to_owned(),
                })
                .inc();
        }
    }

    pub fn flipped(&self, verdict: Verdict) {
        self.verdict_flips
            .get_or_create(&FlipLabels {
                verdict: verdict.as_str().to_owned(),
            })
            .inc();
    }

    /// Sets every site's state gauge from this node's replica.
    pub fn set_site_states(&self, detector: &Detector) {
        for (site, status) in detector.sites() {
            self.site_state
                .get_or_create(&SiteLabels {
                    site: site.to_string(),
                })
                .set(site_state_code(status.state));
        }
    }

    /// Sets the last-success ages from the prober's snapshot.
    pub fn set_success_ages(&self, endpoints: &[EndpointStatus], now: SystemTime) {
        for status in endpoints {
            let Some(last_success) = status.last_success else {
                continue;
            };
            let age = now
                .duration_since(last_success)
                .map(|age| age.as_secs_f64())
                .unwrap_or(0.0);
            self.probe_last_success_age
                .get_or_create(&EndpointLabels {
                    endpoint: status.endpoint.to_string(),
                    site: status.site.to_string(),
                    service: status.service.to_string(),
                })
                .set(age);
        }
    }
}
