//! RFC 2136 updates to real BIND 9: success, serial, and each failure's distinct error.

use std::time::Duration;

use switchyard_core::config::RecordType;
use switchyard_core::id::ZoneName;
use switchyard_providers::{ProviderError, RetryPolicy, Rfc2136Provider, Transport, TsigFailure};

use crate::harness::{DnsServer, ZONE, dig_short, soa_serial};
use crate::{change, sorted};

const TIMEOUT: Duration = Duration::from_secs(2);

fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        attempts_max: 2,
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(100),
    }
}

#[tokio::test]
async fn bind_update_replaces_rrsets_whole_and_bumps_the_serial() {
    let bind = DnsServer::bind();
    let provider = Rfc2136Provider::new(bind.addr(), bind.update_key(), TIMEOUT).unwrap();
    let zone = ZoneName::new(ZONE);
    assert_eq!(
        dig_short(bind.port, "www.test.example.", "A"),
        sorted(&["192.0.2.1"])
    );
    let serial_before = soa_serial(bind.port).unwrap();

    let report = provider
        .push(
            &zone,
            &[
                change("www", RecordType::A, &["192.0.2.10", "192.0.2.11"]),
                change("www", RecordType::Aaaa, &["2001:db8::10"]),
                change("api", RecordType::A, &["198.51.100.7"]),
            ],
        )
        .await
        .expect("update accepted");
    assert_eq!((report.rrsets, report.records, report.attempts), (3, 4, 1));
    assert_eq!(report.transport, Some(Transport::Udp));
    assert_eq!(
        dig_short(bind.port, "www.test.example.", "A"),
        sorted(&["192.0.2.10", "192.0.2.11"]),
        "the old 192.0.2.1 is gone: the RRset was replaced, not added to"
    );
    assert_eq!(
        dig_short(bind.port, "www.test.example.", "AAAA"),
        sorted(&["2001:db8::10"])
    );
    assert_eq!(
        dig_short(bind.port, "api.test.example.", "A"),
        sorted(&["198.51.100.7"])
    );
    let serial_after = soa_serial(bind.port).unwrap();
    assert!(
        serial_after > serial_before,
        "{serial_before} -> {serial_after}"
    );

    provider
        .push(
            &zone,
            &[
                change("www", RecordType::A, &["192.0.2.12"]),
                change("api", RecordType::A, &[]),
            ],
        )
        .await
        .expect("second update accepted");
    assert_eq!(
        dig_short(bind.port, "www.test.example.", "A"),
        sorted(&["192.0.2.12"])
    );
    assert!(
        dig_short(bind.port, "api.test.example.", "A").is_empty(),
        "emptied RRset deleted"
    );
    assert!(soa_serial(bind.port).unwrap() > serial_after);
}

#[tokio::test]
async fn bind_large_update_goes_over_tcp_in_one_message() {
    let bind = DnsServer::bind();
    let provider = Rfc2136Provider::new(bind.addr(), bind.update_key(), TIMEOUT).unwrap();
    let zone = ZoneName::new(ZONE);
    let addresses: Vec<String> = (0..500)
        .map(|n| format!("10.1.{}.{}", n / 250, n % 250 + 1))
        .collect();
    let changes: Vec<_> = addresses
        .iter()
        .enumerate()
        .map(|(n, address)| change(&format!("host{n}"), RecordType::A, &[address.as_str()]))
        .collect();
    let serial_before = soa_serial(bind.port).unwrap();
    let report = provider
        .push(&zone, &changes)
        .await
        .expect("large update accepted");
    assert_eq!(
        (report.transport, report.messages),
        (Some(Transport::Tcp), 1)
    );
    assert!(report.message_bytes > 512);
    assert_eq!(
        dig_short(bind.port, "host0.test.example.", "A"),
        sorted(&["10.1.0.1"])
    );
    assert_eq!(
        dig_short(bind.port, "host499.test.example.", "A"),
        sorted(&["10.1.1.250"])
    );
    // One message: BIND bumps the serial once per update.
    assert_eq!(soa_serial(bind.port).unwrap(), serial_before + 1);
}

#[tokio::test]
async fn bind_wrong_secret_is_tsig_auth_failed_and_never_shows_the_secret() {
    let bind = DnsServer::bind();
    let good = bind.update_key();
    let wrong_secret = b"this-is-not-the-secret-0123456789".to_vec();
    let key = good.with_secret(wrong_secret.clone());
    let provider = Rfc2136Provider::new(bind.addr(), key, TIMEOUT).unwrap();
    let error = provider
        .push(
            &ZoneName::new(ZONE),
            &[change("www", RecordType::A, &["192.0.2.66"])],
        )
        .await
        .expect_err("wrong secret must fail");
    assert!(
        matches!(
            error,
            ProviderError::TsigAuthFailed {
                failure: TsigFailure::BadSignature,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.is_transient());
    assert_eq!(
        dig_short(bind.port, "www.test.example.", "A"),
        sorted(&["192.0.2.1"])
    );

    // Neither the secret in use nor the server's real one appears anywhere we print.
    let real_secret = std::fs::read_to_string(&bind.update_key).unwrap();
    let real_secret = real_secret.split('"').nth(3).unwrap().to_owned();
    let wrong_text = String::from_utf8(wrong_secret).unwrap();
    let good_provider = Rfc2136Provider::new(bind.addr(), good, TIMEOUT).unwrap();
    for printed in [
        error.to_string(),
        format!("{error:?}"),
        format!("{provider:?}"),
        format!("{good_provider:?}"),
    ] {
        assert!(!printed.contains(&real_secret), "secret leaked: {printed}");
        assert!(!printed.contains(&wrong_text), "secret leaked: {printed}");
        assert!(
            !printed.contains("truncated HMAC"),
            "hickory's confusing text: {printed}"
        );
    }
    assert!(
        error.to_string().contains("tsig authentication failed"),
        "{error}"
    );
}

#[tokio::test]
async fn bind_key_without_update_rights_is_refused() {
    let bind = DnsServer::bind();
    let provider = Rfc2136Provider::new(bind.addr(), bind.readonly_key(), TIMEOUT).unwrap();
    let error = provider
        .push(
            &ZoneName::new(ZONE),
            &[change("www", RecordType::A, &["192.0.2.66"])],
        )
        .await
        .expect_err("key without rights must fail");
    match &error {
        ProviderError::UpdateRefused { rcode, key, .. } => {
            assert_eq!((rcode.as_str(), key.as_str()), ("REFUSED", "ro"));
        }
        other => panic!("expected UpdateRefused, got {other:?}"),
    }
    assert_eq!(
        dig_short(bind.port, "www.test.example.", "A"),
        sorted(&["192.0.2.1"])
    );
}

#[tokio::test]
async fn bind_zone_not_served_is_distinct() {
    let bind = DnsServer::bind();
    let provider = Rfc2136Provider::new(bind.addr(), bind.update_key(), TIMEOUT).unwrap();
    let zone = ZoneName::new("other.example.");
    let mut other = change("www", RecordType::A, &["192.0.2.66"]);
    other.name = "www.other.example.".to_owned();
    let error = provider
        .push(&zone, &[other])
        .await
        .expect_err("zone not served");
    match &error {
        ProviderError::ZoneNotServed { rcode, .. } => assert_eq!(rcode, "NOTAUTH"),
        other => panic!("expected ZoneNotServed, got {other:?}"),
    }
}

#[tokio::test]
async fn bind_stopped_server_is_unreachable_after_bounded_retries() {
    let mut bind = DnsServer::bind();
    let provider = Rfc2136Provider::new(bind.addr(), bind.update_key(), Duration::from_millis(500))
        .unwrap()
        .with_retry(quick_retry());
    bind.stop();
    let started = std::time::Instant::now();
    let error = provider
        .push(
            &ZoneName::new(ZONE),
            &[change("www", RecordType::A, &["192.0.2.66"])],
        )
        .await
        .expect_err("stopped server");
    match &error {
        ProviderError::Unreachable { attempts, .. } | ProviderError::Timeout { attempts, .. } => {
            assert_eq!(*attempts, 2)
        }
        other => panic!("expected Unreachable or Timeout, got {other:?}"),
    }
    assert!(error.is_transient());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "bounded: {:?}",
        started.elapsed()
    );
}
