//! The reference documentation lists every key the parser accepts, with its type, default and
//! meaning: the tables in the docs are generated from `keys.rs` and must match it exactly.
//! Run with `UPDATE_EXPECT=1` to regenerate them after changing the key table.

use std::path::{Path, PathBuf};

use switchyard_spec::keys::{CONFIG_KEYS, KeyDoc, RUNBOOK_KEYS, reference_table};

const BEGIN: &str = "<!-- keys:begin -->\n";
const END: &str = "<!-- keys:end -->";

fn doc(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(name)
}

fn check(name: &str, keys: &[KeyDoc]) {
    let path = doc(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find(BEGIN).expect("the keys:begin marker") + BEGIN.len();
    let end = text.find(END).expect("the keys:end marker");
    let table = reference_table(keys);
    if std::env::var_os("UPDATE_EXPECT").is_some_and(|value| value == "1") {
        let updated = format!("{}{table}{}", &text[..start], &text[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    for key in keys {
        assert!(
            text.contains(&format!("| `{}` |", key.path)),
            "{name} does not document `{}` (UPDATE_EXPECT=1 regenerates the table)",
            key.path
        );
    }
    assert_eq!(
        &text[start..end],
        table,
        "{name} is out of date with keys.rs (UPDATE_EXPECT=1 regenerates the table)"
    );
}

#[test]
fn config_reference_documents_every_key() {
    check("config-reference.md", CONFIG_KEYS);
}

#[test]
fn runbook_reference_documents_every_key() {
    check("runbook-reference.md", RUNBOOK_KEYS);
}
