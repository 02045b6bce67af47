//! Small syntax checks and formatting shared by both languages: domain names, URLs, durations.

use std::fmt;
use std::time::Duration;

/// Why a domain name is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameProblem {
    NoTrailingDot,
    EmptyLabel,
    LongLabel,
    LongName,
    BadCharacter,
    HyphenAtEdge,
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameProblem::NoTrailingDot => "it must end with a dot",
            NameProblem::EmptyLabel => "it has an empty label",
            NameProblem::LongLabel => "a label is longer than 63 characters",
            NameProblem::LongName => "it is longer than 253 characters",
            NameProblem::BadCharacter => {
                "labels use letters, digits, `-` and `_` (and `*` alone as the first label)"
            }
            NameProblem::HyphenAtEdge => "a label starts or ends with `-`",
        })
    }
}

/// Checks a fully qualified domain name such as `demo.test.` (the root `.` is not accepted).
pub(crate) fn check_fqdn(name: &str) -> Result<(), NameProblem> {
    let Some(body) = name.strip_suffix('.') else {
        return Err(NameProblem::NoTrailingDot);
    };
    if body.len() > 253 {
        return Err(NameProblem::LongName);
    }
    for (index, label) in body.split('.').enumerate() {
        if label.is_empty() {
            return Err(NameProblem::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(NameProblem::LongLabel);
        }
        if label == "*" && index == 0 {
            continue;
        }
        if !label
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        {
            return Err(NameProblem::BadCharacter);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(NameProblem::HyphenAtEdge);
        }
    }
    Ok(())
}

/// Whether `url` starts like an http or https URL with a host.
pub(crate) fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|rest| {
        !rest.is_empty() && !rest.starts_with('/') && !rest.chars().any(char::is_whitespace)
    })
}

/// Principal names: letters, digits, `.`, `_`, `-`, `@`; 1 to 128 characters.
pub(crate) fn is_principal_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-' | b'@'))
}

/// A duration the way a person writes it in the files: `500ms`, `2s`, `10m`, `1h`.
pub(crate) fn fmt_duration(duration: Duration) -> String {
    if !duration.subsec_nanos().is_multiple_of(1_000_000) {
        return humantime::format_duration(duration).to_string();
    }
    let millis = duration.as_millis();
    if millis == 0 {
        return "0s".to_owned();
    }
    if !millis.is_multiple_of(1000) {
        return format!("{millis}ms");
    }
    let seconds = millis / 1000;
    if seconds.is_multiple_of(3600) {
        format!("{}h", seconds / 3600)
    } else if seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fqdn_rules() {
        assert_eq!(check_fqdn("demo.test."), Ok(()));
        assert_eq!(check_fqdn("*.demo.test."), Ok(()));
        assert_eq!(check_fqdn("demo.test"), Err(NameProblem::NoTrailingDot));
        assert_eq!(check_fqdn("."), Err(NameProblem::EmptyLabel));
        assert_eq!(check_fqdn("a..b."), Err(NameProblem::EmptyLabel));
        assert_eq!(check_fqdn("a b."), Err(NameProblem::BadCharacter));
        assert_eq!(check_fqdn("-a."), Err(NameProblem::HyphenAtEdge));
        assert_eq!(
            check_fqdn(&format!("{}.", "a".repeat(64))),
            Err(NameProblem::LongLabel)
        );
    }

    #[test]
    fn durations_read_back_as_written() {
        assert_eq!(fmt_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(fmt_duration(Duration::from_secs(30)), "30s");
        assert_eq!(fmt_duration(Duration::from_secs(600)), "10m");
        assert_eq!(fmt_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(fmt_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn urls() {
        assert!(is_http_url("http://127.0.0.1:8081"));
        assert!(is_http_url("https://example.test/x"));
        assert!(!is_http_url("ftp://x"));
        assert!(!is_http_url("http://"));
        assert!(!is_http_url("http:// x"));
    }
}
