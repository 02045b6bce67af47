//! Applying routing changes and pinned RRsets: the second half of the pair check on the safety
//! rules, and the answers in force that every DNS server and verification use.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Outcome, Rejection, State};
use crate::config::{ClusterConfig, RecordType};
use crate::detection::SiteState;
use crate::id::{SiteId, ZoneName};
use crate::routing::{Routing, RoutingChange, Rrset, RrsetKey};
use crate::runbook::RecordValues;

/// Most records one `set_records` command may list.
pub const SET_RECORDS_MAX: usize = 64;
/// Most values one pinned RRset may hold.
pub const PIN_VALUES_MAX: usize = 64;

/// The routing in force, the sites it must avoid, the pinned RRsets, and the log index of the
/// last change to any of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingState {
    pub routing: Routing,
    /// Sites currently `lost`: never routed to.
    pub lost: BTreeSet<SiteId>,
    /// Log index of the last accepted routing change or `set_records` (0 before any): the zones'
    /// SOA serial.
    pub changed_index: u64,
    /// RRsets set explicitly by `set_records`. A pin overrides what the routing derives for its
    /// record, whatever later routing changes do, until a `set_records` with an empty `values`
    /// list removes it. Absent from snapshots taken before pins existed.
    #[serde(default, with = "pin_list")]
    pub pins: BTreeMap<RrsetKey, Rrset>,
}

/// Pins as a list of `[key, rrset]` pairs: JSON object keys must be strings, and an RRset's key
/// is a struct.
mod pin_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::routing::{Rrset, RrsetKey};

    pub fn serialize<S: Serializer>(
        pins: &BTreeMap<RrsetKey, Rrset>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(pins)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<RrsetKey, Rrset>, D::Error> {
        Vec::<(RrsetKey, Rrset)>::deserialize(deserializer).map(|pairs| pairs.into_iter().collect())
    }
}

impl RoutingState {
    pub(super) fn note_site_state(&mut self, index: u64, site: &SiteId, state: SiteState) {
        let changed = if state == SiteState::Lost {
            self.lost.insert(site.clone())
        } else {
            self.lost.remove(site)
        };
        // Pins drop a lost site's addresses (see `answers`), so with pins the answers, and the
        // serial that tells servers to reload, move with the lost sites.
        if changed && !self.pins.is_empty() {
            self.changed_index = index;
        }
    }

    /// The answers in force for every record of every zone: what the routing derives, with each
    /// pinned RRset in place of the derived one. A pin whose record is no longer in `config` is
    /// not served. Every DNS server, provider push and verification reads answers from here.
    ///
    /// Never route to a lost site holds for pins too: a pinned address of an endpoint in a lost
    /// site is left out, and a pin left with no address gives way to the routing.
    pub fn answers(&self, config: &ClusterConfig) -> BTreeMap<RrsetKey, Rrset> {
        let mut answers = self.routing.answers(config);
        let lost_addresses: BTreeSet<IpAddr> = config
            .services
            .iter()
            .flat_map(|service| service.endpoints.iter())
            .filter(|endpoint| self.lost.contains(&endpoint.site))
            .map(|endpoint| endpoint.address)
            .collect();
        for (key, pin) in &self.pins {
            let values: BTreeSet<IpAddr> =
                pin.values.difference(&lost_addresses).copied().collect();
            if let (Some(answer), false) = (answers.get_mut(key), values.is_empty()) {
                *answer = Rrset {
                    ttl: pin.ttl,
                    values,
                };
            }
        }
        answers
    }
}

/// Why a `set_records` command was refused; the whole command changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum RecordsRejection {
    #[error("unknown zone `{zone}`")]
    UnknownZone { zone: ZoneName },
    #[error("no record is listed")]
    NoRecords,
    #[error("{count} records are listed, more than the {max} allowed")]
    TooManyRecords { count: usize, max: usize },
    #[error("zone `{zone}` has no {} record named `{name}`", record_type.as_str())]
    UnknownRecord {
        zone: ZoneName,
        name: String,
        record_type: RecordType,
    },
    #[error("record `{name}` {} is listed twice", record_type.as_str())]
    DuplicateRecord {
        name: String,
        record_type: RecordType,
    },
    #[error("{value} cannot be in an {} record (`{name}`)", record_type.as_str())]
    ValueTypeMismatch {
        name: String,
        record_type: RecordType,
        value: IpAddr,
    },
    #[error("record `{name}` lists {count} values, more than the {max} allowed")]
    TooManyValues {
        name: String,
        count: usize,
        max: usize,
    },
}

pub(super) fn summary(change: &RoutingChange, reason: &str) -> String {
    let described = match change {
        RoutingChange::AwayFrom { services, site } => {
            format!("{} away from {site}", join(services))
        }
        RoutingChange::Restore { services, site } => {
            format!("{} restored to {site}", join(services))
        }
        RoutingChange::To { services, sites } => format!("{} to [{}]", join(services), join(sites)),
    };
    format!("routing: {described} ({reason})")
}

pub(super) fn summary_records(zone: &ZoneName, records: &[RecordValues], reason: &str) -> String {
    let described: Vec<String> = records
        .iter()
        .map(|record| {
            let values = if record.values.is_empty() {
                "unpinned".to_owned()
            } else {
                format!("[{}]", join(&record.values))
            };
            format!("{} {} {values}", record.name, record.record_type.as_str())
        })
        .collect();
    format!("set records in {zone}: {} ({reason})", described.join(", "))
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pins `records` set in `zone` (`None` for a record to unpin), checked against `config`.
fn checked_pins(
    config: &ClusterConfig,
    zone: &ZoneName,
    records: &[RecordValues],
) -> Result<Vec<(RrsetKey, Option<Rrset>)>, RecordsRejection> {
    let Some(configured) = config.zone(zone) else {
        return Err(RecordsRejection::UnknownZone { zone: zone.clone() });
    };
    if records.is_empty() {
        return Err(RecordsRejection::NoRecords);
    }
    if records.len() > SET_RECORDS_MAX {
        return Err(RecordsRejection::TooManyRecords {
            count: records.len(),
            max: SET_RECORDS_MAX,
        });
    }
    let mut pins: Vec<(RrsetKey, Option<Rrset>)> = Vec::with_capacity(records.len());
    for values in records {
        let name = values.name.to_ascii_lowercase();
        let Some(record) = configured.records.iter().find(|record| {
            record.name.eq_ignore_ascii_case(&name) && record.record_type == values.record_type
        }) else {
            return Err(RecordsRejection::UnknownRecord {
                zone: zone.clone(),
                name: values.name.clone(),
                record_type: values.record_type,
            });
        };
        let key = RrsetKey {
            zone: zone.clone(),
            name: record.fqdn(zone),
            record_type: record.record_type,
        };
        if pins.iter().any(|(other, _)| other == &key) {
            return Err(RecordsRejection::DuplicateRecord {
                name: values.name.clone(),
                record_type: values.record_type,
            });
        }
        if values.values.len() > PIN_VALUES_MAX {
            return Err(RecordsRejection::TooManyValues {
                name: values.name.clone(),
                count: values.values.len(),
                max: PIN_VALUES_MAX,
            });
        }
        if let Some(value) = values
            .values
            .iter()
            .find(|value| !values.record_type.matches(**value))
        {
            return Err(RecordsRejection::ValueTypeMismatch {
                name: values.name.clone(),
                record_type: values.record_type,
                value: *value,
            });
        }
        let pin = (!values.values.is_empty()).then(|| Rrset {
            ttl: values.ttl,
            values: values.values.iter().copied().collect(),
        });
        pins.push((key, pin));
    }
    Ok(pins)
}

impl State {
    pub(super) fn apply_routing(&mut self, index: u64, change: &RoutingChange) -> Outcome {
        let Some(config) = self.config.as_ref() else {
            return Outcome::Rejected(Rejection::NoConfig);
        };
        let state = &mut self.routing;
        match state
            .routing
            .with_change(&config.config, change, &state.lost)
        {
            Ok(next) => {
                state.routing = next;
                state.changed_index = index;
                Outcome::Accepted
            }
            Err(violations) => Outcome::Rejected(Rejection::Safety(violations)),
        }
    }

    /// Pins (or, with empty `values`, unpins) every listed RRset, or refuses them all.
    pub(super) fn apply_set_records(
        &mut self,
        index: u64,
        zone: &ZoneName,
        records: &[RecordValues],
    ) -> Outcome {
        let Some(config) = self.config.as_ref() else {
            return Outcome::Rejected(Rejection::NoConfig);
        };
        let pins = match checked_pins(&config.config, zone, records) {
            Ok(pins) => pins,
            Err(rejection) => return Outcome::Rejected(Rejection::Records(rejection)),
        };
        let state = &mut self.routing;
        for (key, pin) in pins {
            match pin {
                Some(rrset) => state.pins.insert(key, rrset),
                None => state.pins.remove(&key),
            };
        }
        state.changed_index = index;
        Outcome::Accepted
    }
}
