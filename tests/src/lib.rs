//! Shared harness for the integration tests: spawning `switchyard` processes and real programs.
#![forbid(unsafe_code)]
