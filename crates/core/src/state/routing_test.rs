//! Pinned RRsets (`set_records`) in the state machine: apply, refusals, the SOA serial, pins over
//! routing, unpinning, and replicas agreeing.

use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::config::RecordType;
use crate::detection::SiteState;
use crate::id::{ServiceId, SiteId};
use crate::routing::{Routing, RoutingChange};
use crate::state::test_config;

const WWW: &str = "www.test.example.";

fn command(kind: CommandKind) -> Command {
    Command {
        time: Timestamp(1),
        actor: Actor::System,
        kind,
    }
}

/// A state with the test configuration applied at index 1.
fn configured() -> State {
    let mut state = State::default();
    let config = test_config();
    let digest = config_digest(&config);
    let applied = state.apply(
        1,
        1,
        &command(CommandKind::ConfigApplied {
            config: Box::new(config),
            digest,
        }),
    );
    assert_eq!(applied.outcome, Outcome::Accepted);
    state
}

fn record(name: &str, record_type: RecordType, values: &[&str]) -> RecordValues {
    RecordValues {
        name: name.to_owned(),
        record_type,
        ttl: Duration::from_secs(30),
        values: values
            .iter()
            .map(|value| value.parse().expect("address"))
            .collect(),
    }
}

fn set(zone: &str, records: Vec<RecordValues>) -> CommandKind {
    CommandKind::SetRecords {
        zone: ZoneName::new(zone),
        records,
        reason: "drill".to_owned(),
    }
}

fn away(site: &str) -> CommandKind {
    CommandKind::Routing {
        change: RoutingChange::AwayFrom {
            services: vec![ServiceId::new("www")],
            site: SiteId::new(site),
        },
        reason: "drill".to_owned(),
    }
}

/// The addresses `www` answers with in `state`, as text, with their TTL in seconds.
fn www(state: &State) -> (Vec<String>, u64) {
    let config = &state.config().expect("configured").config;
    let answers = state.routing().answers(config);
    let rrset = answers
        .iter()
        .find(|(key, _)| key.name == WWW)
        .map(|(_, rrset)| rrset)
        .expect("www has an answer");
    let values = rrset.values.iter().map(IpAddr::to_string).collect();
    (values, rrset.ttl.as_secs())
}

fn rejection(outcome: Outcome) -> RecordsRejection {
    match outcome {
        Outcome::Rejected(Rejection::Records(rejection)) => rejection,
        other => panic!("expected a set_records rejection, got {other:?}"),
    }
}

#[test]
fn a_pin_overrides_the_routing_and_moves_the_serial() {
    let mut state = configured();
    assert_eq!(
        www(&state),
        (
            vec!["127.0.1.1".into(), "127.0.2.1".into(), "127.0.3.1".into()],
            5
        )
    );
    let applied = state.apply(
        2,
        1,
        &command(set(
            "test.example.",
            vec![record("www", RecordType::A, &["192.0.2.7"])],
        )),
    );
    assert_eq!(applied.outcome, Outcome::Accepted);
    assert_eq!(state.routing().changed_index, 2, "the SOA serial moves");
    assert_eq!(www(&state), (vec!["192.0.2.7".into()], 30));
    assert_eq!(
        state.routing().routing,
        Routing::initial(&test_config()),
        "a pin leaves the routing itself alone"
    );
    let summary = &state.audit().entries()[1].summary;
    assert_eq!(
        summary,
        "set records in test.example.: www A [192.0.2.7] (drill)"
    );
}

#[test]
fn a_pin_outlives_later_routing_changes_until_empty_values_remove_it() {
    let mut state = configured();
    let pin = set(
        "test.example.",
        vec![record("www", RecordType::A, &["192.0.2.7"])],
    );
    assert_eq!(state.apply(2, 1, &command(pin)).outcome, Outcome::Accepted);
    assert_eq!(
        state.apply(3, 1, &command(away("alpha"))).outcome,
        Outcome::Accepted
    );
    assert_eq!(state.routing().changed_index, 3);
    assert_eq!(
        www(&state),
        (vec!["192.0.2.7".into()], 30),
        "a later shift_traffic leaves the pin in force"
    );
    let unpin = set("test.example.", vec![record("www", RecordType::A, &[])]);
    assert_eq!(
        state.apply(4, 1, &command(unpin)).outcome,
        Outcome::Accepted
    );
    assert_eq!(state.routing().changed_index, 4);
    assert!(state.routing().pins.is_empty());
    assert_eq!(
        www(&state),
        (vec!["127.0.2.1".into(), "127.0.3.1".into()], 5),
        "unpinned, the answer follows the routing again, alpha's shift included"
    );
    assert_eq!(
        state.audit().entries()[3].summary,
        "set records in test.example.: www A unpinned (drill)"
    );
}

#[test]
fn set_records_refuses_unknown_zones_records_and_mismatched_values() {
    let mut state = configured();
    let cases = [
        (
            set(
                "nowhere.example.",
                vec![record("www", RecordType::A, &["192.0.2.7"])],
            ),
            "unknown zone `nowhere.example.`",
        ),
        (
            set(
                "test.example.",
                vec![record("mail", RecordType::A, &["192.0.2.7"])],
            ),
            "zone `test.example.` has no A record named `mail`",
        ),
        (
            set(
                "test.example.",
                vec![record("www", RecordType::Aaaa, &["2001:db8::1"])],
            ),
            "zone `test.example.` has no AAAA record named `www`",
        ),
        (
            set(
                "test.example.",
                vec![record("www", RecordType::A, &["2001:db8::1"])],
            ),
            "2001:db8::1 cannot be in an A record (`www`)",
        ),
        (
            set(
                "test.example.",
                vec![
                    record("www", RecordType::A, &["192.0.2.7"]),
                    record("WWW", RecordType::A, &["192.0.2.8"]),
                ],
            ),
            "record `WWW` A is listed twice",
        ),
        (set("test.example.", Vec::new()), "no record is listed"),
    ];
    for (offset, (kind, message)) in cases.into_iter().enumerate() {
        let outcome = state.apply(2 + offset as u64, 1, &command(kind)).outcome;
        let refused = Rejection::Records(rejection(outcome));
        assert_eq!(refused.to_string(), format!("set_records: {message}"));
    }
    let many = (0..=PIN_VALUES_MAX)
        .map(|n| format!("192.0.2.{n}"))
        .collect::<Vec<_>>();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let outcome = state
        .apply(
            10,
            1,
            &command(set(
                "test.example.",
                vec![record("www", RecordType::A, &many)],
            )),
        )
        .outcome;
    assert_eq!(
        rejection(outcome),
        RecordsRejection::TooManyValues {
            name: "www".to_owned(),
            count: PIN_VALUES_MAX + 1,
            max: PIN_VALUES_MAX
        }
    );
    assert!(state.routing().pins.is_empty(), "a refusal pins nothing");
    assert_eq!(state.routing().changed_index, 0, "nor moves the serial");
    assert!(
        state.audit().entries()[1..]
            .iter()
            .all(|entry| entry.summary.starts_with("rejected: set_records: "))
    );
}

#[test]
fn set_records_needs_a_configuration() {
    let mut state = State::default();
    let outcome = state
        .apply(
            1,
            1,
            &command(set(
                "test.example.",
                vec![record("www", RecordType::A, &["192.0.2.7"])],
            )),
        )
        .outcome;
    assert_eq!(outcome, Outcome::Rejected(Rejection::NoConfig));
}

#[test]
fn replicas_agree_on_pins_and_old_snapshots_load_without_them() {
    let log = [
        away("alpha"),
        set(
            "test.example.",
            vec![record("www", RecordType::A, &["192.0.2.7", "192.0.2.8"])],
        ),
        set(
            "test.example.",
            vec![record("mail", RecordType::A, &["192.0.2.9"])],
        ),
        away("beta"),
        set("test.example.", vec![record("www", RecordType::A, &[])]),
        set(
            "test.example.",
            vec![record("www", RecordType::A, &["192.0.2.1"])],
        ),
    ];
    let mut left = configured();
    let mut right = configured();
    for (position, kind) in log.into_iter().enumerate() {
        let index = position as u64 + 2;
        let entry = command(kind);
        assert_eq!(left.apply(index, 1, &entry), right.apply(index, 1, &entry));
    }
    assert_eq!(left, right);
    assert_eq!(www(&left), (vec!["192.0.2.1".into()], 30));
    let snapshot = serde_json::to_string(&left).expect("serialise");
    let restored: State = serde_json::from_str(&snapshot).expect("deserialise");
    assert_eq!(restored, left);

    // A snapshot from before pins existed has no `pins` field in its routing.
    let mut old = serde_json::to_value(configured()).expect("serialise");
    let removed = old["routing"]
        .as_object_mut()
        .and_then(|routing| routing.remove("pins"));
    assert_eq!(removed, Some(serde_json::json!([])));
    let loaded: State = serde_json::from_value(old).expect("an old snapshot loads");
    assert!(loaded.routing().pins.is_empty());
}

#[test]
fn a_pin_whose_record_left_the_configuration_is_not_served() {
    let mut state = configured();
    let pin = set(
        "test.example.",
        vec![record("www", RecordType::A, &["192.0.2.7"])],
    );
    assert_eq!(state.apply(2, 1, &command(pin)).outcome, Outcome::Accepted);
    let mut config = test_config();
    config.zones[0].records.clear();
    let answers = state.routing().answers(&config);
    assert!(answers.is_empty(), "{answers:?}");
}

#[test]
fn a_pinned_address_of_a_lost_site_is_never_served() {
    let mut state = configured();
    let pin = set(
        "test.example.",
        vec![record("www", RecordType::A, &["127.0.1.1", "127.0.2.1"])],
    );
    assert_eq!(state.apply(2, 1, &command(pin)).outcome, Outcome::Accepted);
    assert_eq!(
        www(&state).0,
        vec!["127.0.1.1".to_owned(), "127.0.2.1".to_owned()]
    );

    // alpha (127.0.1.1) is lost: the pin keeps only beta, and the serial moves so servers reload.
    state
        .routing
        .note_site_state(7, &SiteId::new("alpha"), SiteState::Lost);
    assert_eq!(www(&state).0, vec!["127.0.2.1".to_owned()]);
    assert_eq!(state.routing().changed_index, 7);

    // beta is lost too: nothing of the pin is left, so the routing answers again.
    state
        .routing
        .note_site_state(8, &SiteId::new("beta"), SiteState::Lost);
    assert_eq!(
        www(&state).0.len(),
        3,
        "the routing itself was never changed"
    );
}
