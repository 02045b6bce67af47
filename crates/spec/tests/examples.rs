//! The example files in `configs/` and `runbooks/`: every one is valid, and every mapping in
//! them rejects a key that the language does not know.

use std::path::{Path, PathBuf};

use switchyard_core::config::ClusterConfig;
use switchyard_spec::yaml::{self, Kind, Node, Pos};
use switchyard_spec::{load_config, load_runbook, parse_config, parse_runbook};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `.yaml` files of a folder of the repository, sorted.
fn yaml_files(folder: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repository().join(folder))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .collect();
    files.sort();
    files
}

fn config(name: &str) -> ClusterConfig {
    let loaded = load_config(&repository().join("configs").join(name)).unwrap();
    assert_eq!(loaded.diagnostics, [], "{name}");
    loaded.value.unwrap()
}

#[test]
fn every_config_is_valid_without_warnings() {
    let files = yaml_files("configs");
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        let loaded = load_config(&file).unwrap();
        let rendered: Vec<String> = loaded.diagnostics.iter().map(ToString::to_string).collect();
        assert!(
            rendered.is_empty(),
            "{}:\n{}",
            file.display(),
            rendered.join("\n")
        );
        assert!(loaded.value.is_some());
    }
}

#[test]
fn every_runbook_is_valid_against_every_config() {
    let runbooks = yaml_files("runbooks");
    assert!(runbooks.len() >= 3, "{runbooks:?}");
    for config_name in ["demo.yaml", "three-sites.yaml", "two-dc-witness.yaml"] {
        let config = config(config_name);
        for file in &runbooks {
            let loaded = load_runbook(file, &config).unwrap();
            let rendered: Vec<String> =
                loaded.diagnostics.iter().map(ToString::to_string).collect();
            assert!(
                rendered.is_empty(),
                "{} against {config_name}:\n{}",
                file.display(),
                rendered.join("\n")
            );
            assert!(loaded.value.is_some());
        }
    }
}

#[test]
fn demo_config_has_the_promised_shape() {
    let demo = config("demo.yaml");
    assert_eq!(demo.name, "demo");
    assert_eq!(
        demo.secret_file,
        repository().join("configs/demo-cluster.secret")
    );
    let secret = std::fs::read_to_string(&demo.secret_file).unwrap();
    assert!(secret.trim_end().len() >= 32 && !secret.trim_end().contains('\n'));
    let sites: Vec<&str> = demo.sites.iter().map(|site| site.id.as_str()).collect();
    assert_eq!(sites, ["alpha", "beta", "gamma"]);
    let raft: Vec<String> = demo
        .nodes
        .iter()
        .map(|node| node.raft_addr.to_string())
        .collect();
    assert_eq!(raft, ["127.0.0.1:7101", "127.0.0.1:7102", "127.0.0.1:7103"]);
    assert!(demo.nodes.iter().all(|node| node.voter));
    let www = demo.service(&"www".into()).unwrap();
    let ids: Vec<&str> = www
        .endpoints
        .iter()
        .map(|endpoint| endpoint.id.as_str())
        .collect();
    assert_eq!(ids, ["www/alpha/1", "www/beta/1", "www/gamma/1"]);
    let zone = &demo.zones[0];
    assert_eq!(zone.name.as_str(), "demo.test.");
    let nameservers: Vec<String> = zone.nameservers.iter().map(ToString::to_string).collect();
    assert_eq!(
        nameservers,
        ["127.0.0.1:5301", "127.0.0.1:5302", "127.0.0.1:5303"]
    );
    assert_eq!(demo.providers[0].id.as_str(), "embedded");
    assert_eq!(demo.detection.probe_interval.as_millis(), 500);
    assert_eq!(demo.detection.failover_cooldown.as_secs(), 60);
    assert_eq!(demo.principals.len(), 5);
}

#[test]
fn evacuate_site_reads_as_written() {
    let demo = config("demo.yaml");
    let loaded = load_runbook(&repository().join("runbooks/evacuate-site.yaml"), &demo).unwrap();
    let runbook = loaded.value.unwrap();
    assert!(runbook.pre_approved);
    assert_eq!(runbook.rto.unwrap().as_secs(), 60);
    assert_eq!(runbook.steps.len(), 2);
    assert_eq!(runbook.steps[0].timeout.as_secs(), 10);
    assert_eq!(runbook.steps[0].retries, 2);
    assert_eq!(runbook.steps[1].action.kind(), "verify_dns");
    assert_eq!(runbook.rollback[0].id.as_str(), "restore");
    assert_eq!(runbook.rollback[0].timeout.as_secs(), 30);
}

/// Where to insert an unknown key into each mapping of a file, and where that key then is.
struct Insertion {
    at: Pos,
    text: String,
    expected: Pos,
}

/// Every schema mapping of the tree (free-form ones like `parameters` are entered, not tested).
fn insertions(node: &Node, source: &str, free_form: bool, out: &mut Vec<Insertion>) {
    match &node.kind {
        Kind::Map(entries) => {
            if !free_form {
                let opening = char_at(source, node.pos);
                if opening == Some('{') {
                    let after = Pos {
                        line: node.pos.line,
                        column: node.pos.column + 1,
                    };
                    out.push(Insertion {
                        at: after,
                        text: "zz_unknown: 1, ".into(),
                        expected: after,
                    });
                } else if let Some((first, _)) = entries.first() {
                    out.push(Insertion {
                        at: first.pos,
                        text: format!("zz_unknown: 1\n{}", " ".repeat(first.pos.column - 1)),
                        expected: first.pos,
                    });
                }
            }
            for (key, value) in entries {
                let name = key.scalar_text().unwrap_or_default();
                match name.as_str() {
                    // Free-form mappings: any key is a parameter name, header or JSON field.
                    "headers" | "body" => {}
                    "parameters" => insertions(value, source, true, out),
                    _ => insertions(value, source, false, out),
                }
            }
        }
        Kind::Seq(items) => {
            for item in items {
                insertions(item, source, false, out);
            }
        }
        _ => {}
    }
}

fn char_at(source: &str, pos: Pos) -> Option<char> {
    source
        .lines()
        .nth(pos.line - 1)?
        .chars()
        .nth(pos.column - 1)
}

fn insert(source: &str, at: Pos, text: &str) -> String {
    let mut result = String::new();
    for (index, line) in source.split_inclusive('\n').enumerate() {
        if index + 1 == at.line {
            let split = line
                .char_indices()
                .nth(at.column - 1)
                .map_or(line.len(), |(offset, _)| offset);
            result.push_str(&line[..split]);
            result.push_str(text);
            result.push_str(&line[split..]);
        } else {
            result.push_str(line);
        }
    }
    result
}

#[test]
fn unknown_keys_are_rejected_in_every_mapping() {
    let demo = config("demo.yaml");
    let mut files: Vec<(PathBuf, bool)> = yaml_files("configs")
        .into_iter()
        .map(|file| (file, true))
        .collect();
    files.extend(yaml_files("runbooks").into_iter().map(|file| (file, false)));
    let mut tested = 0;
    for (file, is_config) in files {
        let source = std::fs::read_to_string(&file).unwrap();
        let root = yaml::parse(&source).unwrap();
        let mut points = Vec::new();
        insertions(&root, &source, false, &mut points);
        assert!(!points.is_empty());
        for point in points {
            let mutated = insert(&source, point.at, &point.text);
            let diagnostics = if is_config {
                parse_config(&file, &mutated).diagnostics
            } else {
                parse_runbook(&file, &mutated, &demo).diagnostics
            };
            let found = diagnostics.iter().any(|diagnostic| {
                diagnostic.is_error()
                    && (diagnostic.line, diagnostic.column)
                        == (point.expected.line, point.expected.column)
                    && diagnostic.message.starts_with("unknown")
                    && diagnostic.message.contains("`zz_unknown`")
            });
            let rendered: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            assert!(
                found,
                "{} with a key inserted at {}:{}:\n{mutated}\n{}",
                file.display(),
                point.expected.line,
                point.expected.column,
                rendered.join("\n")
            );
            tested += 1;
        }
    }
    // Every list item and every nested mapping of six files: far more than a handful.
    assert!(tested > 100, "only {tested} mappings tested");
}
