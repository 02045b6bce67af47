//! Parses and validates cluster configurations and runbooks.
#![forbid(unsafe_code)]
