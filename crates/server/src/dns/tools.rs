//! DNS helpers for the `switchyard` command, which may not depend on the providers crate itself:
//! direct queries to every authoritative server and the report of what each serves.

pub use switchyard_providers::{RrsetCheck, ServerRole, VerifyReport, soa_serial, verify};
