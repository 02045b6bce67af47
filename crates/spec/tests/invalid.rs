//! The corpus of invalid files in `testdata/invalid/`: each `NAME.yaml` is checked and its
//! diagnostics, rendered as the CLI prints them, must equal `NAME.expected` exactly.
//!
//! Files named `config-*` are cluster configurations; files named `runbook-*` are runbooks,
//! checked against `testdata/cluster.yaml`. Run with `UPDATE_EXPECT=1` to rewrite the expected
//! files after a deliberate change, then review the diff.

use std::path::{Path, PathBuf};

use switchyard_spec::{Diagnostic, load_config, load_runbook};

/// Paths are relative to the crate, so the expected output does not depend on the checkout.
fn corpus() -> Vec<PathBuf> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .map(|path| Path::new("testdata/invalid").join(path.file_name().unwrap()))
        .collect();
    files.sort();
    files
}

fn render(diagnostics: &[Diagnostic]) -> String {
    let mut text: String = diagnostics
        .iter()
        .map(|diagnostic| format!("{diagnostic}\n"))
        .collect();
    if text.is_empty() {
        text.push_str("(no diagnostics)\n");
    }
    text
}

#[test]
fn every_invalid_file_gives_exactly_the_expected_diagnostics() {
    // Cargo runs integration tests in the crate directory, which the relative paths need.
    let cluster = load_config(Path::new("testdata/cluster.yaml")).unwrap();
    assert_eq!(render(&cluster.diagnostics), "(no diagnostics)\n");
    let cluster = cluster.value.unwrap();

    let update = std::env::var_os("UPDATE_EXPECT").is_some_and(|value| value == "1");
    let files = corpus();
    let mut mismatches = Vec::new();
    let mut with_errors = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let (diagnostics, has_value) = if name.starts_with("config-") {
            let loaded = load_config(file).unwrap();
            (loaded.diagnostics, loaded.value.is_some())
        } else if name.starts_with("runbook-") {
            let loaded = load_runbook(file, &cluster).unwrap();
            (loaded.diagnostics, loaded.value.is_some())
        } else {
            panic!("{name}: corpus files are named config-* or runbook-*");
        };
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        assert_eq!(
            has_value,
            errors == 0,
            "{name}: a value exactly when there is no error"
        );
        assert!(
            !diagnostics.is_empty(),
            "{name} is valid: it does not belong in the corpus"
        );
        if errors > 0 {
            with_errors += 1;
        }
        let actual = render(&diagnostics);
        let expected_path = file.with_extension("expected");
        if update {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            mismatches.push(format!(
                "--- {}\n+++ actual\n{}",
                expected_path.display(),
                diff(&expected, &actual)
            ));
        }
    }
    assert!(
        with_errors >= 30,
        "only {with_errors} invalid files in the corpus"
    );
    assert!(
        mismatches.is_empty(),
        "{} file(s) differ (UPDATE_EXPECT=1 rewrites them):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// A line diff good enough to read a mismatch: lines only in one side, marked - and +.
fn diff(expected: &str, actual: &str) -> String {
    let expected: Vec<&str> = expected.lines().collect();
    let actual: Vec<&str> = actual.lines().collect();
    let mut out = String::new();
    for line in &expected {
        if !actual.contains(line) {
            out.push_str(&format!("-{line}\n"));
        }
    }
    for line in &actual {
        if !expected.contains(line) {
            out.push_str(&format!("+{line}\n"));
        }
    }
    out
}

#[test]
fn every_expected_file_has_its_yaml() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/invalid");
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        if path
            .extension()
            .is_some_and(|extension| extension == "expected")
        {
            assert!(
                path.with_extension("yaml").exists(),
                "{} is orphaned",
                path.display()
            );
        }
    }
}
