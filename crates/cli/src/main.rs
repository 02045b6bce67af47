//! The `switchyard` command.
#![forbid(unsafe_code)]
fn main() {}
