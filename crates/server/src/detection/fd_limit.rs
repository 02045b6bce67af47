//! Raising this process's soft limit on open files to its hard limit: the prober holds one
//! socket per endpoint in flight, and a black-holed site keeps every one of its probes open for
//! the whole `probe_timeout`, so the usual soft limit of 1024 is too low for large clusters.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit in force after.
/// Failing to raise it is not fatal: probes beyond the limit fail and show in the metrics.
pub fn raise_nofile_soft_limit() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return limit.current;
    }
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::info!(
                from = ?limit.current,
                to = ?limit.maximum,
                "raised the soft limit on open files for probing"
            );
            limit.maximum
        }
        Err(error) => {
            tracing::warn!(
                %error,
                current = ?limit.current,
                "cannot raise the soft limit on open files; large clusters may run out of sockets"
            );
            limit.current
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let after = raise_nofile_soft_limit();
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(after, limit.current);
        assert_eq!(limit.current, limit.maximum);
    }
}
