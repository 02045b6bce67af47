//! The integration test binary: one binary, so that tests share a harness and run in parallel.

mod api;
mod cluster;
mod detection;
mod dns;
mod executions;
mod executor;
mod failover;
mod service_failover;
mod set_records;
mod tidy;
