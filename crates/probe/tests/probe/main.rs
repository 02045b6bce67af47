//! Probes against real servers on 127.0.0.1: HTTP, TLS, TCP and DNS checks, and the scheduler.
#![forbid(unsafe_code)]

mod checks;
mod scheduler;
mod support;
