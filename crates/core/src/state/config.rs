//! The replicated configuration: applied once by the first leader, and again whenever a leader's
//! configuration file differs from it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Outcome, Rejection, State};
use crate::config::ClusterConfig;
use crate::detection::Detector;
use crate::routing::Routing;

/// The configuration in force and where it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigState {
    pub config: ClusterConfig,
    /// `config_digest(config)`: nodes compare it with their own file's.
    pub digest: String,
    /// Log index of the command that applied it.
    pub index: u64,
}

/// SHA-256 (lowercase hex) of the configuration's JSON form.
pub fn config_digest(config: &ClusterConfig) -> String {
    // Serialising plain data with derived impls cannot fail; if it did, the replica must stop.
    let json = serde_json::to_vec(config).expect("configuration serialises to JSON");
    Sha256::digest(&json)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl State {
    pub(super) fn apply_config(
        &mut self,
        index: u64,
        config: &ClusterConfig,
        digest: &str,
    ) -> Outcome {
        let actual = config_digest(config);
        if actual != digest {
            return Outcome::Rejected(Rejection::ConfigDigestMismatch {
                claimed: digest.to_owned(),
                actual,
            });
        }
        if self
            .config
            .as_ref()
            .is_some_and(|current| current.digest == actual)
        {
            return Outcome::Accepted;
        }
        // Detection restarts from the new topology; verdicts flow again within a probe interval.
        self.detector = Some(Detector::new(config));
        let fresh = Routing::initial(config);
        let routing = &mut self.routing.routing;
        routing
            .services
            .retain(|service, _| fresh.services.contains_key(service));
        for (service, sites) in fresh.services {
            routing.services.entry(service).or_insert(sites);
        }
        self.config = Some(ConfigState {
            config: config.clone(),
            digest: actual,
            index,
        });
        Outcome::Accepted
    }
}
