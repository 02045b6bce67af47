//! The one error of this crate: a file that could not be read at all.
//!
//! Everything wrong *inside* a file is a [`crate::Diagnostic`], a value, not an error.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
