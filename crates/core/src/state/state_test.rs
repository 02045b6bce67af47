//! The state machine's configuration and routing commands: the apply half of the pair checks.

use std::collections::BTreeSet;
use std::time::Duration;

use super::*;
use crate::config::{
    DetectionPolicy, Endpoint, FailMode, HealthCheck, Node, RaftTimings, Record, RecordType,
    SafetyRules, Service, Site, Zone,
};
use crate::id::{EndpointId, ServiceId, SiteId, ZoneName};
use crate::routing::{RoutingChange, SafetyViolation};

pub(crate) fn config() -> ClusterConfig {
    let service = ServiceId::new("www");
    let sites = ["alpha", "beta", "gamma"];
    ClusterConfig {
        name: "test".to_owned(),
        secret_file: "secret".into(),
        sites: sites
            .iter()
            .map(|id| Site {
                id: SiteId::new(*id),
                witness: false,
            })
            .collect(),
        nodes: (1..=3)
            .map(|id| Node {
                id: NodeId(id),
                site: SiteId::new(sites[id as usize - 1]),
                raft_addr: format!("127.0.0.1:{}", 7100 + id).parse().expect("address"),
                api_addr: format!("127.0.0.1:{}", 7200 + id).parse().expect("address"),
                dns_addr: format!("127.0.0.1:{}", 5300 + id).parse().expect("address"),
                voter: true,
            })
            .collect(),
        raft: RaftTimings::default(),
        detection: DetectionPolicy::default(),
        services: vec![Service {
            id: service.clone(),
            check: HealthCheck::Tcp,
            endpoints: sites
                .iter()
                .enumerate()
                .map(|(n, site)| Endpoint {
                    id: EndpointId::of(&service, &SiteId::new(*site), 1),
                    site: SiteId::new(*site),
                    address: format!("127.0.{}.1", n + 1).parse().expect("address"),
                    port: 80,
                    weight: 1,
                })
                .collect(),
        }],
        providers: Vec::new(),
        zones: vec![Zone {
            name: ZoneName::new("test.example."),
            provider: "embedded".into(),
            records: vec![Record {
                name: "www".to_owned(),
                record_type: RecordType::A,
                ttl: Duration::from_secs(5),
                service,
                fail_mode: Some(FailMode::Open),
            }],
            nameservers: Vec::new(),
            resolvers: Vec::new(),
        }],
        safety: SafetyRules::default(),
        principals: Vec::new(),
    }
}

fn command(kind: CommandKind) -> Command {
    Command {
        time: Timestamp(1),
        actor: Actor::System,
        kind,
    }
}

fn apply_config(state: &mut State, index: u64) -> Outcome {
    let config = config();
    let digest = config_digest(&config);
    state
        .apply(
            index,
            1,
            &command(CommandKind::ConfigApplied {
                config: Box::new(config),
                digest,
            }),
        )
        .outcome
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

fn sites_in_rotation(state: &State) -> BTreeSet<SiteId> {
    state.routing().routing.sites_of(&ServiceId::new("www"))
}

#[test]
fn nothing_is_judged_before_a_configuration_is_applied() {
    let mut state = State::default();
    assert_eq!(
        state.apply(1, 1, &command(away("alpha"))).outcome,
        Outcome::Rejected(Rejection::NoConfig)
    );
    assert!(state.detector().is_none());
    assert_eq!(apply_config(&mut state, 2), Outcome::Accepted);
    assert!(state.detector().is_some());
    assert_eq!(
        sites_in_rotation(&state).len(),
        3,
        "every site with endpoints starts in rotation"
    );
    assert_eq!(state.config().map(|config| config.index), Some(2));
}

#[test]
fn a_configuration_whose_digest_does_not_match_is_refused() {
    let mut state = State::default();
    let outcome = state
        .apply(
            1,
            1,
            &command(CommandKind::ConfigApplied {
                config: Box::new(config()),
                digest: "0".repeat(64),
            }),
        )
        .outcome;
    assert!(
        matches!(
            outcome,
            Outcome::Rejected(Rejection::ConfigDigestMismatch { .. })
        ),
        "{outcome:?}"
    );
    assert!(state.config().is_none());
}

#[test]
fn routing_changes_apply_until_the_safety_rule_refuses_the_last_site() {
    let mut state = State::default();
    apply_config(&mut state, 1);
    assert_eq!(
        state.apply(2, 1, &command(away("alpha"))).outcome,
        Outcome::Accepted
    );
    assert_eq!(
        state.apply(3, 1, &command(away("beta"))).outcome,
        Outcome::Accepted
    );
    assert_eq!(state.routing().changed_index, 3);

    // Proposed when it was still safe, applied when it no longer is: refused here, naming the rule.
    let refused = state.apply(4, 1, &command(away("gamma")));
    let Outcome::Rejected(rejection) = &refused.outcome else {
        panic!("expected a refusal: {refused:?}")
    };
    assert_eq!(
        rejection,
        &Rejection::Safety(vec![SafetyViolation::TooFewSites {
            service: ServiceId::new("www"),
            remaining: 0,
            min: 1
        }])
    );
    assert!(
        rejection.to_string().contains("rule min_sites_in_rotation"),
        "{rejection}"
    );
    assert_eq!(
        sites_in_rotation(&state),
        BTreeSet::from([SiteId::new("gamma")]),
        "a refusal changes nothing"
    );
    assert_eq!(
        state.routing().changed_index,
        3,
        "the serial moves only on accepted changes"
    );
    assert!(
        state
            .audit()
            .entries()
            .last()
            .is_some_and(|entry| entry.summary.starts_with("rejected: "))
    );
}

#[test]
fn replicas_applying_the_same_commands_agree_and_survive_a_snapshot() {
    let log = [
        command(CommandKind::ConfigApplied {
            config: Box::new(config()),
            digest: config_digest(&config()),
        }),
        command(away("alpha")),
        command(CommandKind::Annotate {
            text: "drill".to_owned(),
        }),
        command(away("beta")),
        command(away("gamma")),
    ];
    let mut left = State::default();
    let mut right = State::default();
    for (position, entry) in log.iter().enumerate() {
        let index = position as u64 + 1;
        assert_eq!(left.apply(index, 1, entry), right.apply(index, 1, entry));
    }
    assert_eq!(left, right);
    let snapshot = serde_json::to_string(&left).expect("serialise");
    let restored: State = serde_json::from_str(&snapshot).expect("deserialise");
    assert_eq!(restored, left);
}
