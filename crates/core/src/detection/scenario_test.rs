//! Longer detection scenarios written as scripts in `testdata/detection/*.txt`, each with its
//! expected facts in the matching `.out` file (`UPDATE_EXPECT=1` rewrites them).
//!
//! Script lines (`#` starts a comment):
//!
//! ```text
//! sites a=1,2:2 b=3:1 w=4:witness   # site=node ids:endpoint count (or witness); first line
//! policy hold=2000 recover_hold=5000 observer_sites_min=1 fraction=1 strict=false
//! down 1000 1,3 www/b/1             # at 1000 ms, nodes 1 and 3 see www/b/1 down
//! up 5000 1,3 www/b/1
//! contact 6000 2 unreachable        # or reachable
//! run 12000                         # tick every 100 ms up to 12000, settling what is due
//! state                             # print every site's state
//! ```

use std::time::Duration;

use expect_test::{ExpectFile, expect_file};

use crate::config::DetectionPolicy;

use super::Verdict;
use super::detector_test::{Scenario, SiteSpec, policy};

fn number(line: usize, text: &str) -> u64 {
    text.parse()
        .unwrap_or_else(|_| panic!("line {line}: `{text}` is not a number"))
}

fn nodes(line: usize, text: &str) -> Vec<u64> {
    text.split(',').map(|node| number(line, node)).collect()
}

fn parse_sites(line: usize, words: &[&str]) -> Vec<SiteSpec> {
    words
        .iter()
        .map(|word| {
            let (name, rest) = word
                .split_once('=')
                .unwrap_or_else(|| panic!("line {line}: expected site=nodes:endpoints"));
            let (node_list, endpoints) = rest
                .split_once(':')
                .unwrap_or_else(|| panic!("line {line}: expected site=nodes:endpoints"));
            let witness = endpoints == "witness";
            SiteSpec {
                name: name.to_owned(),
                witness,
                nodes: nodes(line, node_list),
                endpoints: if witness {
                    0
                } else {
                    usize::try_from(number(line, endpoints)).expect("a small count")
                },
            }
        })
        .collect()
}

fn parse_policy(line: usize, words: &[&str]) -> DetectionPolicy {
    let mut policy = policy();
    for word in words {
        let (key, value) = word
            .split_once('=')
            .unwrap_or_else(|| panic!("line {line}: expected key=value"));
        match key {
            "hold" => policy.hold = Duration::from_millis(number(line, value)),
            "recover_hold" => policy.recover_hold = Duration::from_millis(number(line, value)),
            "cooldown" => policy.failover_cooldown = Duration::from_millis(number(line, value)),
            "observer_sites_min" => {
                policy.observer_sites_min = u32::try_from(number(line, value)).expect("small")
            }
            "fraction" => {
                policy.endpoints_down_fraction = value
                    .parse()
                    .unwrap_or_else(|_| panic!("line {line}: bad fraction"))
            }
            "strict" => policy.lost_requires_controller_down = value == "true",
            other => panic!("line {line}: unknown policy key `{other}`"),
        }
    }
    policy
}

/// Runs a script and returns the facts it produced, one per line.
fn run_script(script: &str) -> String {
    let mut sites: Option<Vec<SiteSpec>> = None;
    let mut policy_override: Option<DetectionPolicy> = None;
    let mut scenario: Option<Scenario> = None;
    for (index, raw) in script.lines().enumerate() {
        let line = index + 1;
        let text = raw.split('#').next().unwrap_or("").trim();
        let words: Vec<&str> = text.split_whitespace().collect();
        let Some((command, arguments)) = words.split_first() else {
            continue;
        };
        match *command {
            "sites" => sites = Some(parse_sites(line, arguments)),
            "policy" => policy_override = Some(parse_policy(line, arguments)),
            _ => {
                let scenario = scenario.get_or_insert_with(|| {
                    let sites = sites
                        .as_deref()
                        .unwrap_or_else(|| panic!("line {line}: `sites` must come first"));
                    Scenario::new(sites, policy_override.clone().unwrap_or_else(policy))
                });
                match (*command, arguments) {
                    ("down" | "up", [at, node_list, endpoint]) => {
                        let verdict = if *command == "down" {
                            Verdict::Down
                        } else {
                            Verdict::Up
                        };
                        for node in nodes(line, node_list) {
                            scenario.verdict(number(line, at), node, endpoint, verdict);
                        }
                    }
                    ("contact", [at, node, reachability]) => scenario.contact(
                        number(line, at),
                        number(line, node),
                        *reachability == "reachable",
                    ),
                    ("run", [to]) => scenario.run_until(number(line, to)),
                    ("state", []) => {
                        let states: Vec<String> = scenario
                            .detector
                            .sites()
                            .iter()
                            .map(|(site, status)| format!("{site}={}", status.state))
                            .collect();
                        let line = format!("state at {}ms: {}", scenario.now, states.join(" "));
                        scenario.log.push(line);
                    }
                    _ => panic!("line {line}: cannot read `{text}`"),
                }
            }
        }
    }
    let mut output = scenario
        .map(|scenario| scenario.log)
        .unwrap_or_default()
        .join("\n");
    output.push('\n');
    output
}

fn check(script: &str, expected: ExpectFile) {
    expected.assert_eq(&run_script(script));
}

#[test]
fn two_datacenters_and_a_witness_lose_one_datacenter_and_get_it_back() {
    check(
        include_str!("../../testdata/detection/two_datacenters_and_a_witness.txt"),
        expect_file!["../../testdata/detection/two_datacenters_and_a_witness.out"],
    );
}

#[test]
fn half_the_endpoints_down_is_no_loss_under_the_default_fraction() {
    check(
        include_str!("../../testdata/detection/partial_outage_fraction.txt"),
        expect_file!["../../testdata/detection/partial_outage_fraction.out"],
    );
}

#[test]
fn half_the_endpoints_down_is_a_loss_under_a_half_fraction() {
    check(
        include_str!("../../testdata/detection/partial_outage_half.txt"),
        expect_file!["../../testdata/detection/partial_outage_half.out"],
    );
}

#[test]
fn a_lost_site_that_fails_again_while_recovering_is_lost_again_after_hold() {
    check(
        include_str!("../../testdata/detection/recovery_aborted.txt"),
        expect_file!["../../testdata/detection/recovery_aborted.out"],
    );
}

#[test]
fn the_witness_alone_cannot_decide_after_a_datacenter_is_lost() {
    let output = run_script(include_str!(
        "../../testdata/detection/two_datacenters_and_a_witness.txt"
    ));
    assert!(!output.contains("SiteLost dc1"), "{output}");
    assert!(output.contains("SiteLost dc2"), "{output}");
}
