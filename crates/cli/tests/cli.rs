//! The `switchyard` binary's offline commands, run as a user would: exit codes, `validate`
//! output on good and bad input, and snapshots of `plan` for every example runbook.
//!
//! Snapshots live in `tests/snapshots/`; `UPDATE_EXPECT=1 cargo test -p switchyard-cli` rewrites
//! them after a deliberate change, for review in the diff.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn switchyard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("run switchyard")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_accepts_every_example_config_with_every_runbook() {
    for config in ["configs/demo.yaml", "configs/three-sites.yaml"] {
        let mut args = vec!["validate", "--config", config];
        let runbooks = [
            "runbooks/evacuate-site.yaml",
            "runbooks/failback-site.yaml",
            "runbooks/service-failover.yaml",
        ];
        args.extend(runbooks);
        let output = switchyard(&args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{config}: {}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
        assert!(
            text(&output.stdout).starts_with("ok: "),
            "{}",
            text(&output.stdout)
        );
    }
    let output = switchyard(&["validate", "--config", "configs/two-dc-witness.yaml"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
}

#[test]
fn validate_reports_problems_with_positions_and_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("bad.yaml");
    let demo = std::fs::read_to_string(root().join("configs/demo.yaml")).expect("demo config");
    std::fs::write(
        &config,
        demo.replacen("probe_interval: 500ms", "probe_interval: soon", 1),
    )
    .expect("write");
    let config = config.to_string_lossy().into_owned();
    let output = switchyard(&["validate", "--config", &config]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("{config}:")),
        "diagnostic names the file: {stderr}"
    );
    assert!(stderr.contains(": error: "), "{stderr}");

    let output = switchyard(&["validate", "--config", &config, "--output", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["valid"], false);
    let diagnostic = &report["files"][0]["diagnostics"][0];
    assert!(
        diagnostic["line"].as_u64().is_some_and(|line| line > 0),
        "{report}"
    );
    assert!(
        diagnostic["column"]
            .as_u64()
            .is_some_and(|column| column > 0),
        "{report}"
    );
}

#[test]
fn usage_and_io_errors_exit_2() {
    let output = switchyard(&["validate", "--config", "no/such/file.yaml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("no/such/file.yaml"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(
        switchyard(&["validate"]).status.code(),
        Some(2),
        "missing --config is a usage error"
    );
    assert_eq!(switchyard(&["frobnicate"]).status.code(), Some(2));
    let output = switchyard(&[
        "plan",
        "--config",
        "configs/demo.yaml",
        "--runbook",
        "no-such-runbook",
        "--site",
        "alpha",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("no runbook `no-such-runbook`"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn plan_output_of_every_example_matches_its_snapshot() {
    let cases = [
        ("configs/demo.yaml", "evacuate-site", "alpha"),
        ("configs/demo.yaml", "failback-site", "alpha"),
        ("configs/demo.yaml", "service-failover", "beta"),
        ("configs/three-sites.yaml", "evacuate-site", "fra"),
    ];
    for (config, runbook, site) in cases {
        let output = switchyard(&[
            "plan",
            "--config",
            config,
            "--runbook",
            runbook,
            "--site",
            site,
        ]);
        let stem = Path::new(config)
            .file_stem()
            .and_then(|stem| stem.to_str())
            .expect("stem");
        let snapshot = root().join(format!(
            "crates/cli/tests/snapshots/plan-{stem}-{runbook}-{site}.txt"
        ));
        let actual = format!("exit {:?}\n{}", output.status.code(), text(&output.stdout));
        expect_test::expect_file![snapshot].assert_eq(&actual);
    }
}

#[test]
fn plan_json_is_machine_readable_and_side_effect_free() {
    let output = switchyard(&[
        "plan",
        "--config",
        "configs/demo.yaml",
        "--runbook",
        "runbooks/evacuate-site.yaml",
        "--site",
        "alpha",
        "--output",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON plan");
    assert_eq!(plan["runbook"], "evacuate-site");
    assert_eq!(plan["parameters"]["site"], "alpha");
    let diff = plan["dns_diff"].as_array().expect("dns diff");
    assert!(!diff.is_empty(), "evacuating alpha changes DNS answers");
    for change in diff {
        let after = change["after"].as_array().expect("after");
        assert!(
            !after.iter().any(|address| address == "127.0.1.1"),
            "alpha's address leaves every answer: {change}"
        );
    }
}

#[test]
fn plan_refuses_to_remove_the_last_site() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runbook = dir.path().join("empty-www.yaml");
    std::fs::write(
        &runbook,
        "# Drill fixture: routes www nowhere, which the safety rules must refuse.\n\
         name: empty-www\ndescription: route www nowhere\ntriggers: [ { manual: {} } ]\n\
         steps:\n  - shift_traffic: { id: nowhere, services: [www], to: [] }\n",
    )
    .expect("write runbook");
    let output = switchyard(&[
        "plan",
        "--config",
        "configs/demo.yaml",
        "--runbook",
        &runbook.to_string_lossy(),
        "--site",
        "alpha",
    ]);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains("rule min_sites_in_rotation"),
        "the refusing rule is named: {stdout}"
    );
}

#[test]
fn the_demo_fails_over_fails_back_and_leaves_nothing_behind() {
    let output = switchyard(&["demo"]);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    for expected in [
        "site alpha is lost",
        "(automatic, pre-approved, trigger site_lost)",
        "DNS changed on every authoritative server",
        "vs rto 1m met",
        "failback execution",
    ] {
        assert!(
            stdout.contains(expected),
            "the demo narrates `{expected}`:\n{stdout}"
        );
    }
    let cleaned = stdout
        .lines()
        .find_map(|line| line.strip_prefix("cleaned up: every demo process stopped, "));
    let dir = cleaned
        .and_then(|rest| rest.strip_suffix(" removed"))
        .expect("the demo says what it removed");
    assert!(!Path::new(dir).exists(), "{dir} is removed");
}
