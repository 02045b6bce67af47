//! Diagnostics: one problem found in a file, with its exact place and an optional hint.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::yaml::Pos;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The file is invalid: no value is produced.
    Error,
    /// The file is valid but probably not what its author meant.
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem in one file. Line and column are 1-based and count characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// A suggestion on how to fix it, when one helps.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: error: message`, then `\n  = hint: ...` when there is a hint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.severity,
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  = hint: {hint}")?;
        }
        Ok(())
    }
}

/// Collects the diagnostics of one file while it is read and checked.
#[derive(Debug)]
pub(crate) struct Sink {
    file: PathBuf,
    diagnostics: Vec<Diagnostic>,
}

impl Sink {
    pub(crate) fn new(file: &Path) -> Self {
        Self {
            file: file.to_path_buf(),
            diagnostics: Vec::new(),
        }
    }

    pub(crate) fn error(&mut self, pos: Pos, message: impl Into<String>) -> Report<'_> {
        self.push(Severity::Error, pos, message.into())
    }

    pub(crate) fn warning(&mut self, pos: Pos, message: impl Into<String>) -> Report<'_> {
        self.push(Severity::Warning, pos, message.into())
    }

    fn push(&mut self, severity: Severity, pos: Pos, message: String) -> Report<'_> {
        self.diagnostics.push(Diagnostic {
            severity,
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
            message,
            hint: None,
        });
        let last = self.diagnostics.len() - 1;
        Report {
            diagnostic: &mut self.diagnostics[last],
        }
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The diagnostics in file order (stable for problems at the same place).
    pub(crate) fn finish(mut self) -> Vec<Diagnostic> {
        self.diagnostics
            .sort_by_key(|diagnostic| (diagnostic.line, diagnostic.column));
        self.diagnostics
    }
}

/// A diagnostic just reported, to which a hint may be added.
pub(crate) struct Report<'a> {
    diagnostic: &'a mut Diagnostic,
}

impl Report<'_> {
    pub(crate) fn hint(self, hint: impl Into<String>) {
        self.diagnostic.hint = Some(hint.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_a_compiler() {
        let mut sink = Sink::new(Path::new("configs/x.yaml"));
        sink.warning(Pos { line: 3, column: 1 }, "second");
        sink.error(Pos { line: 2, column: 7 }, "first")
            .hint("do this");
        let diagnostics = sink.finish();
        assert_eq!(
            diagnostics[0].to_string(),
            "configs/x.yaml:2:7: error: first\n  = hint: do this"
        );
        assert_eq!(
            diagnostics[1].to_string(),
            "configs/x.yaml:3:1: warning: second"
        );
        assert_eq!(
            serde_json::to_string(&diagnostics[1]).unwrap(),
            r#"{"severity":"warning","file":"configs/x.yaml","line":3,"column":1,"message":"second","hint":null}"#
        );
    }
}
