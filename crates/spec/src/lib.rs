//! Parses and validates cluster configurations and runbooks.
//!
//! Text goes through three stages: YAML text → a node tree with positions ([`yaml`], built by
//! serde-saphyr) → checked values of `switchyard_core` ([`ClusterConfig`], [`Runbook`]).
//! Every problem found on the way is a [`Diagnostic`] with its file, line and column, and all
//! of them are reported at once: the readers record a problem and go on with the rest.
#![forbid(unsafe_code)]

mod config;
mod diagnostic;
mod error;
pub mod keys;
mod names;
mod reader;
mod runbook;
pub mod yaml;

use std::path::Path;

use switchyard_core::config::ClusterConfig;
use switchyard_core::runbook::Runbook;

pub use diagnostic::{Diagnostic, Severity};
pub use error::LoadError;

use diagnostic::Sink;
use reader::Cx;

/// The outcome of reading one file.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded<T> {
    /// The checked value; `None` exactly when some diagnostic is an error.
    pub value: Option<T>,
    /// Every problem found, errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl<T> Loaded<T> {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Reads and checks a cluster configuration file. Only a file that cannot be read at all is an
/// error; anything wrong inside it is a diagnostic.
pub fn load_config(path: &Path) -> Result<Loaded<ClusterConfig>, LoadError> {
    let bytes = read(path)?;
    Ok(match decode(path, &bytes) {
        Ok(text) => parse_config(path, text),
        Err(loaded) => loaded,
    })
}

/// Checks the text of a cluster configuration; `file` is used in diagnostics and to resolve
/// relative paths (such as `secret_file`) against its directory.
pub fn parse_config(file: &Path, text: &str) -> Loaded<ClusterConfig> {
    let base = file.parent().unwrap_or(Path::new(""));
    parse(file, text, keys::CONFIG_KEYS, |cx, root| {
        config::read(cx, root, base)
    })
}

/// Reads and checks a runbook file against the configuration of the cluster it will run on.
pub fn load_runbook(path: &Path, config: &ClusterConfig) -> Result<Loaded<Runbook>, LoadError> {
    let bytes = read(path)?;
    Ok(match decode(path, &bytes) {
        Ok(text) => parse_runbook(path, text, config),
        Err(loaded) => loaded,
    })
}

/// Checks the text of a runbook against `config`; `file` is used in diagnostics.
pub fn parse_runbook(file: &Path, text: &str, config: &ClusterConfig) -> Loaded<Runbook> {
    parse(file, text, keys::RUNBOOK_KEYS, |cx, root| {
        runbook::read(cx, root, config)
    })
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The file as UTF-8, or a diagnostic at the first byte that is not.
fn decode<'b, T>(path: &Path, bytes: &'b [u8]) -> Result<&'b str, Loaded<T>> {
    std::str::from_utf8(bytes).map_err(|error| {
        let valid = &bytes[..error.valid_up_to()];
        let line = valid.iter().filter(|byte| **byte == b'\n').count() + 1;
        let line_start = valid
            .iter()
            .rposition(|byte| *byte == b'\n')
            .map_or(0, |at| at + 1);
        let column = String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count()
            + 1;
        let mut sink = Sink::new(path);
        sink.error(yaml::Pos { line, column }, "the file is not valid UTF-8")
            .hint("save the file as UTF-8");
        Loaded {
            value: None,
            diagnostics: sink.finish(),
        }
    })
}

fn parse<T>(
    file: &Path,
    text: &str,
    keys: &'static [keys::KeyDoc],
    read: impl FnOnce(&mut Cx, &yaml::Node) -> Option<T>,
) -> Loaded<T> {
    let mut cx = Cx::new(file, keys);
    let value = match yaml::parse(text) {
        Ok(root) => read(&mut cx, &root),
        Err(error) => {
            cx.sink.error(error.pos, error.message);
            None
        }
    };
    let has_errors = cx.sink.has_errors();
    if value.is_none() && !has_errors {
        // Every reader records why it returns nothing; reaching this is a bug in a reader, but
        // the promise "no value without an error" must hold even then.
        cx.sink.error(
            yaml::Pos::START,
            "internal error: the file could not be read but no problem was recorded",
        );
    }
    Loaded {
        value: if has_errors { None } else { value },
        diagnostics: cx.sink.finish(),
    }
}
