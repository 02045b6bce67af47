//! Per-service failover scenarios: sites with two services, `www` and `api`, where only one
//! service's endpoints go down in a site that is otherwise fine.

use expect_test::{Expect, expect};

use crate::config::{ClusterConfig, Endpoint, HealthCheck, Service};
use crate::id::{EndpointId, ServiceId, SiteId};
use crate::time::Timestamp;

use super::detector_test::{Scenario, cluster, policy, site};
use super::*;

/// Sites a, b, c with one node each (1, 2, 3) and one `www` and one `api` endpoint each.
fn two_services() -> ClusterConfig {
    let mut config = cluster(
        &[site("a", &[1], 1), site("b", &[2], 1), site("c", &[3], 1)],
        policy(),
    );
    let api = ServiceId::new("api");
    let endpoints = ["a", "b", "c"]
        .iter()
        .map(|name| Endpoint {
            id: EndpointId::of(&api, &SiteId::new(*name), 1),
            site: SiteId::new(*name),
            address: "127.0.0.1".parse().expect("a valid address"),
            port: 81,
            weight: 1,
        })
        .collect();
    config.services.push(Service {
        id: api,
        check: HealthCheck::Tcp,
        endpoints,
    });
    config
}

fn service_state(scenario: &Scenario, service: &str, site: &str) -> ServiceState {
    scenario
        .detector
        .service(&ServiceId::new(service), &SiteId::new(site))
        .map(|status| status.state)
        .expect("the service has endpoints in the site")
}

fn check(scenario: &Scenario, expect: Expect) {
    let mut text = scenario.log.join("\n");
    text.push('\n');
    expect.assert_eq(&text);
}

#[test]
fn one_service_down_in_a_fine_site_is_unhealthy_after_hold_then_recovers() {
    let mut scenario = Scenario::with_config(&two_services());
    scenario.down(1_000, &[1, 3], "www/b/1");
    // Half of b's endpoints are down: under the default fraction (1.0) b is no suspect.
    scenario.run_until(2_900);
    assert_eq!(scenario.log, Vec::<String>::new(), "nothing before hold");
    assert_eq!(
        scenario.detector.next_service_transition(
            &ServiceId::new("www"),
            &SiteId::new("b"),
            Timestamp(2_900)
        ),
        Err(Blocked::HoldPending {
            until: Timestamp(3_000)
        })
    );
    scenario.run_until(3_000);
    assert_eq!(
        service_state(&scenario, "www", "b"),
        ServiceState::Unhealthy
    );
    assert_eq!(service_state(&scenario, "api", "b"), ServiceState::Healthy);
    assert_eq!(scenario.state("b"), SiteState::Healthy);

    scenario.up(10_000, &[1, 3], "www/b/1");
    scenario.run_until(14_900);
    assert_eq!(
        service_state(&scenario, "www", "b"),
        ServiceState::Unhealthy
    );
    scenario.run_until(15_000);
    assert_eq!(service_state(&scenario, "www", "b"), ServiceState::Healthy);
    check(
        &scenario,
        expect![[r#"
            ServiceUnhealthy service www in b healthy -> unhealthy at 3000ms: consensus=down since=1000ms observers=[-a(n1) 1/1 down {www/b/1}, -c(n3) 1/1 down {www/b/1}] first_failure=1000ms controller_reachable=true
            ServiceRecovered service www in b unhealthy -> healthy at 15000ms: consensus=up since=10000ms observers=[+a(n1) 0/1 down, +c(n3) 0/1 down] controller_reachable=true
        "#]],
    );
}

#[test]
fn a_flapping_service_never_becomes_unhealthy() {
    let mut scenario = Scenario::with_config(&two_services());
    for round in 0..10 {
        let start = 1_000 + round * 3_000;
        scenario.down(start, &[1, 3], "www/b/1");
        scenario.up(start + 1_900, &[1, 3], "www/b/1");
    }
    scenario.run_until(40_000);
    assert_eq!(scenario.log, Vec::<String>::new());
    assert_eq!(service_state(&scenario, "www", "b"), ServiceState::Healthy);
}

#[test]
fn one_observer_alone_cannot_make_a_service_unhealthy() {
    let mut scenario = Scenario::with_config(&two_services());
    scenario.down(1_000, &[1], "www/b/1");
    scenario.run_until(10_000);
    assert_eq!(scenario.log, Vec::<String>::new());
    let status = scenario
        .detector
        .service(&ServiceId::new("www"), &SiteId::new("b"))
        .expect("www has endpoints in b");
    assert_eq!(status.consensus, Consensus::Undecided);
}

#[test]
fn a_whole_site_loss_is_a_site_event_and_no_service_event() {
    let mut scenario = Scenario::with_config(&two_services());
    scenario.down(1_000, &[1, 3], "www/b/1");
    scenario.down(1_000, &[1, 3], "api/b/1");
    scenario.run_until(10_000);
    let names: Vec<&str> = scenario
        .log
        .iter()
        .map(|line| line.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(names, ["SiteSuspected", "SiteLost"]);
    assert_eq!(scenario.state("b"), SiteState::Lost);
    assert_eq!(service_state(&scenario, "www", "b"), ServiceState::Healthy);
    assert_eq!(service_state(&scenario, "api", "b"), ServiceState::Healthy);
    assert_eq!(
        scenario.detector.next_service_transition(
            &ServiceId::new("www"),
            &SiteId::new("b"),
            Timestamp(10_000)
        ),
        Err(Blocked::SiteNotHealthy)
    );
}

#[test]
fn a_service_down_everywhere_but_one_site_keeps_its_last_site() {
    let mut scenario = Scenario::with_config(&two_services());
    scenario.down(1_000, &[1, 3], "www/b/1");
    scenario.run_until(3_000);
    assert_eq!(
        service_state(&scenario, "www", "b"),
        ServiceState::Unhealthy
    );
    scenario.down(4_000, &[1, 2], "www/c/1");
    scenario.run_until(6_000);
    assert_eq!(
        service_state(&scenario, "www", "c"),
        ServiceState::Unhealthy
    );
    // www is now served from a only: a seeing it down too leaves it serving.
    scenario.down(7_000, &[2, 3], "www/a/1");
    scenario.run_until(12_000);
    assert_eq!(service_state(&scenario, "www", "a"), ServiceState::Healthy);
    assert_eq!(
        scenario.detector.next_service_transition(
            &ServiceId::new("www"),
            &SiteId::new("a"),
            Timestamp(12_000)
        ),
        Err(Blocked::LastServingSite)
    );
}

#[test]
fn a_stale_or_premature_service_transition_is_refused() {
    let mut scenario = Scenario::with_config(&two_services());
    scenario.down(1_000, &[1, 3], "www/b/1");
    let (www, b) = (ServiceId::new("www"), SiteId::new("b"));
    scenario.run_until(2_900);
    let due = scenario
        .detector
        .next_service_transition(&www, &b, Timestamp(3_000))
        .expect("due at 3000 ms");
    let mut early = due.clone();
    early.at = Timestamp(2_500);
    assert_eq!(
        scenario
            .detector
            .apply(&DetectionInput::ServiceTransition(early)),
        Err(Rejection::ServiceNotDue {
            service: www.clone(),
            site: b.clone(),
            blocked: Blocked::HoldPending {
                until: Timestamp(3_000)
            }
        })
    );
    let events = scenario
        .detector
        .apply(&DetectionInput::ServiceTransition(due.clone()))
        .expect("accepted");
    assert_eq!(events, [DetectionEvent::ServiceUnhealthy(due.clone())]);
    assert_eq!(
        scenario
            .detector
            .apply(&DetectionInput::ServiceTransition(due)),
        Err(Rejection::ServiceStale {
            service: www,
            site: b,
            current: ServiceState::Unhealthy,
            proposed_from: ServiceState::Healthy
        })
    );
}
