//! Property tests: on any input, mutated examples or random YAML, checking never panics and
//! gives either a value or at least one error, never both and never neither.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use switchyard_core::config::ClusterConfig;
use switchyard_spec::keys::{CONFIG_KEYS, RUNBOOK_KEYS};
use switchyard_spec::{Loaded, parse_config, parse_runbook};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every example file: (text, whether it is a configuration).
fn examples() -> &'static [(String, bool)] {
    static EXAMPLES: OnceLock<Vec<(String, bool)>> = OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let mut examples = Vec::new();
        for (folder, is_config) in [("configs", true), ("runbooks", false)] {
            let mut files: Vec<PathBuf> = std::fs::read_dir(repository().join(folder))
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .filter(|path| {
                    path.extension()
                        .is_some_and(|extension| extension == "yaml")
                })
                .collect();
            files.sort();
            for file in files {
                examples.push((std::fs::read_to_string(file).unwrap(), is_config));
            }
        }
        examples
    })
}

fn demo() -> &'static ClusterConfig {
    static DEMO: OnceLock<ClusterConfig> = OnceLock::new();
    DEMO.get_or_init(|| {
        let text = std::fs::read_to_string(repository().join("configs/demo.yaml")).unwrap();
        parse_config(Path::new("demo.yaml"), &text).value.unwrap()
    })
}

fn assert_consistent<T>(loaded: &Loaded<T>, text: &str) {
    let rendered: Vec<String> = loaded.diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(
        loaded.value.is_some(),
        !loaded.has_errors(),
        "a value exactly when there is no error:\n{text}\n{}",
        rendered.join("\n")
    );
    for diagnostic in &loaded.diagnostics {
        assert!(
            diagnostic.line >= 1 && diagnostic.column >= 1,
            "{diagnostic}"
        );
        assert!(
            !diagnostic.message.starts_with("internal error"),
            "{diagnostic}\n{text}"
        );
    }
}

/// Checks `text` as a configuration and as a runbook; a configuration that comes out valid is
/// also used to check every example runbook, so odd but valid configurations are exercised.
fn check(text: &str) {
    let config = parse_config(Path::new("fuzz.yaml"), text);
    assert_consistent(&config, text);
    let runbook = parse_runbook(Path::new("fuzz.yaml"), text, demo());
    assert_consistent(&runbook, text);
    if let Some(config) = &config.value {
        for (example, is_config) in examples() {
            if !is_config {
                assert_consistent(
                    &parse_runbook(Path::new("r.yaml"), example, config),
                    example,
                );
            }
        }
    }
}

/// Fragments that tend to break YAML or the readers in interesting ways.
const SNIPPETS: &[&str] = &[
    ":",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "#",
    "&a ",
    "*a",
    "<<: *a\n",
    "\t",
    "'",
    "\"",
    "${",
    "${site}",
    "}",
    "!!int ",
    "!!str ",
    "~",
    "null",
    "0",
    "-1",
    "1e999",
    ".nan",
    "99999999999999999999",
    "\n  zz: 1\n",
    "\n- ",
    "? ",
    "|\n",
    ">\n",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "\u{feff}",
    "é",
    "0.0.0.0:0",
    "::1",
    "fail_mode: closed",
    "witness: true",
    "to: []",
    "on_failure: rollback",
];

#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, byte: u8 },
    Delete { at: usize, length: usize },
    Insert { at: usize, snippet: usize },
    DeleteLine { line: usize },
    SwapLines { a: usize, b: usize },
    DuplicateLine { line: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        (any::<usize>(), 1..16usize).prop_map(|(at, length)| Mutation::Delete { at, length }),
        (any::<usize>(), 0..SNIPPETS.len())
            .prop_map(|(at, snippet)| Mutation::Insert { at, snippet }),
        any::<usize>().prop_map(|line| Mutation::DeleteLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
    ]
}

fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for mutation in mutations {
        if bytes.is_empty() {
            break;
        }
        let length = bytes.len();
        match *mutation {
            Mutation::Flip { at, byte } => bytes[at % length] = byte,
            Mutation::Delete { at, length: count } => {
                let start = at % length;
                bytes.drain(start..(start + count).min(length));
            }
            Mutation::Insert { at, snippet } => {
                let at = at % (length + 1);
                bytes.splice(at..at, SNIPPETS[snippet].bytes());
            }
            Mutation::DeleteLine { line } | Mutation::DuplicateLine { line } => {
                let mut lines: Vec<Vec<u8>> = bytes
                    .split(|byte| *byte == b'\n')
                    .map(<[u8]>::to_vec)
                    .collect();
                let index = line % lines.len();
                if matches!(mutation, Mutation::DeleteLine { .. }) {
                    lines.remove(index);
                } else {
                    let copy = lines[index].clone();
                    lines.insert(index, copy);
                }
                bytes = lines.join(&b'\n');
            }
            Mutation::SwapLines { a, b } => {
                let mut lines: Vec<Vec<u8>> = bytes
                    .split(|byte| *byte == b'\n')
                    .map(<[u8]>::to_vec)
                    .collect();
                let count = lines.len();
                lines.swap(a % count, b % count);
                bytes = lines.join(&b'\n');
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Key names of both languages (the last segment of every documented path), plus noise.
fn key_names() -> Vec<String> {
    let mut names: Vec<String> = CONFIG_KEYS
        .iter()
        .chain(RUNBOOK_KEYS)
        .map(|doc| {
            let last = doc.path.rsplit('.').next().unwrap_or(doc.path);
            last.trim_end_matches("[]").to_owned()
        })
        .filter(|name| name != "*")
        .collect();
    names.sort();
    names.dedup();
    names.extend(["zz".to_owned(), "Id".to_owned(), String::new()]);
    names
}

fn scalar() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (0..5u64).prop_map(Value::from),
        any::<f64>().prop_map(
            |number| serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number)
        ),
        prop::sample::select(vec![
            "1s",
            "500ms",
            "0s",
            "10m",
            "alpha",
            "beta",
            "witness",
            "www",
            "api",
            "embedded",
            "demo.test.",
            "demo.test",
            "127.0.0.1:7101",
            "127.0.1.1",
            "::1",
            "${site}",
            "${x}",
            "${",
            "open",
            "closed",
            "halt",
            "rollback",
            "A",
            "AAAA",
            "/healthz",
            "GET",
            "viewer",
            "",
        ])
        .prop_map(|text| Value::String(text.to_owned())),
        "[a-z0-9.:${}/ -]{0,12}".prop_map(Value::String),
    ]
}

fn value(names: Vec<String>) -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    scalar().prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(names.clone()), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mutated_examples_never_panic(
        example in 0..16usize,
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let examples = examples();
        let (text, _) = &examples[example % examples.len()];
        check(&apply(text, &mutations));
    }

    #[test]
    fn random_yaml_never_panics(tree in value(key_names()), block in any::<bool>()) {
        let text = if block {
            serde_saphyr::to_string(&tree).unwrap()
        } else {
            serde_json::to_string(&tree).unwrap()
        };
        check(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check(&text);
    }
}

#[test]
fn mutations_change_the_text() {
    let text = "a: 1\nb: 2\n";
    assert_eq!(apply(text, &[Mutation::DeleteLine { line: 0 }]), "b: 2\n");
    assert_eq!(
        apply(text, &[Mutation::SwapLines { a: 0, b: 1 }]),
        "b: 2\na: 1\n"
    );
    assert_eq!(
        apply(text, &[Mutation::Flip { at: 0, byte: b'c' }]),
        "c: 1\nb: 2\n"
    );
}
