//! Tidy checks over the source tree: file headers, `unsafe` bans, the crate dependency rules of
//! DESIGN.md, and that `docs/ARCHITECTURE.md` names exactly the crates that exist.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir()
            && path
                .file_name()
                .is_some_and(|name| name != "target" && name != "testdata")
        {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

fn crates() -> BTreeSet<String> {
    fs::read_dir(workspace_root().join("crates"))
        .expect("crates/ exists")
        .flatten()
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_rust_file_opens_with_a_doc_comment() {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    let missing: Vec<String> = files
        .iter()
        .filter(|path| {
            !fs::read_to_string(path)
                .unwrap_or_default()
                .starts_with("//!")
        })
        .map(|path| {
            path.strip_prefix(&root)
                .unwrap_or(path)
                .display()
                .to_string()
        })
        .collect();
    assert!(
        missing.is_empty(),
        "files without a leading `//!` line saying what they are for: {missing:#?}"
    );
}

#[test]
fn every_crate_root_forbids_unsafe_code() {
    let root = workspace_root();
    let mut offenders = Vec::new();
    for name in crates() {
        for entry in ["src/lib.rs", "src/main.rs"] {
            let path = root.join("crates").join(&name).join(entry);
            if let Ok(text) = fs::read_to_string(&path)
                && !text.contains("#![forbid(unsafe_code)]")
            {
                offenders.push(path.display().to_string());
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "crate roots without #![forbid(unsafe_code)]: {offenders:?}"
    );
}

/// The `[dependencies]` (not dev) of a crate whose names start with `prefix`.
fn dependencies(manifest: &str, prefix: &str) -> BTreeSet<String> {
    let mut in_dependencies = false;
    let mut found = BTreeSet::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if in_dependencies
            && let Some((name, _)) = line.split_once('=')
            && name.trim().starts_with(prefix)
        {
            found.insert(name.trim().to_owned());
        }
    }
    found
}

#[test]
fn crate_dependencies_point_toward_core() {
    // From DESIGN.md's crate table: which of our crates each crate may depend on.
    let allowed = |name: &str| -> &[&str] {
        match name {
            "core" => &[],
            "spec" | "raft" | "probe" | "providers" | "api" | "sim" => &["switchyard-core"],
            "report" => &["switchyard-core", "switchyard-api"],
            "server" => &[
                "switchyard-core",
                "switchyard-spec",
                "switchyard-raft",
                "switchyard-probe",
                "switchyard-providers",
                "switchyard-api",
                "switchyard-report",
            ],
            "cli" => &[
                "switchyard-core",
                "switchyard-spec",
                "switchyard-api",
                "switchyard-server",
                "switchyard-report",
            ],
            _ => &["switchyard-core"],
        }
    };
    let root = workspace_root();
    let mut offenders = Vec::new();
    for name in crates() {
        let manifest = fs::read_to_string(root.join("crates").join(&name).join("Cargo.toml"))
            .expect("manifest");
        for dependency in dependencies(&manifest, "switchyard-") {
            if !allowed(&name).contains(&dependency.as_str()) {
                offenders.push(format!("{name} -> {dependency}"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "dependencies against DESIGN.md's crate table: {offenders:?}"
    );
}

#[test]
fn core_stays_pure() {
    let manifest =
        fs::read_to_string(workspace_root().join("crates/core/Cargo.toml")).expect("manifest");
    for banned in [
        "tokio",
        "reqwest",
        "serde_yaml",
        "serde-saphyr",
        "rand",
        "hickory",
    ] {
        assert!(
            dependencies(&manifest, banned).is_empty(),
            "core must not depend on {banned}"
        );
    }
}

#[test]
fn architecture_code_map_names_exactly_the_crates() {
    let architecture = fs::read_to_string(workspace_root().join("docs/ARCHITECTURE.md"))
        .expect("docs/ARCHITECTURE.md");
    let listed: BTreeSet<String> = architecture
        .lines()
        .filter_map(|line| line.strip_prefix("### `crates/"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_owned)
        .collect();
    assert_eq!(
        listed,
        crates(),
        "docs/ARCHITECTURE.md's Code Map (`### `crates/NAME`` headings) must list every crate"
    );
}
