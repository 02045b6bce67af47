//! RFC 2136 updates to real Knot DNS: success, serial, and the errors Knot's answers map to.

use std::time::Duration;

use switchyard_core::config::RecordType;
use switchyard_core::id::ZoneName;
use switchyard_providers::{ProviderError, Rfc2136Provider, TsigFailure};

use crate::harness::{DnsServer, ZONE, dig_short, soa_serial};
use crate::{change, sorted};

const TIMEOUT: Duration = Duration::from_secs(2);

#[tokio::test]
async fn knot_update_replaces_rrsets_and_bumps_the_serial() {
    let knot = DnsServer::knot();
    let provider = Rfc2136Provider::new(knot.addr(), knot.update_key(), TIMEOUT).unwrap();
    let serial_before = soa_serial(knot.port).unwrap();
    provider
        .push(
            &ZoneName::new(ZONE),
            &[change("www", RecordType::A, &["192.0.2.20", "192.0.2.21"])],
        )
        .await
        .unwrap_or_else(|error| panic!("update refused: {error}\n{}", knot.log()));
    assert_eq!(
        dig_short(knot.port, "www.test.example.", "A"),
        sorted(&["192.0.2.20", "192.0.2.21"])
    );
    assert!(soa_serial(knot.port).unwrap() > serial_before);
}

#[tokio::test]
async fn knot_wrong_secret_is_tsig_auth_failed() {
    let knot = DnsServer::knot();
    let key = knot
        .update_key()
        .with_secret(b"not-the-secret-at-all".to_vec());
    let provider = Rfc2136Provider::new(knot.addr(), key, TIMEOUT).unwrap();
    let error = provider
        .push(
            &ZoneName::new(ZONE),
            &[change("www", RecordType::A, &["192.0.2.66"])],
        )
        .await
        .expect_err("wrong secret");
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
    assert_eq!(
        dig_short(knot.port, "www.test.example.", "A"),
        sorted(&["192.0.2.1"])
    );
}

#[tokio::test]
async fn knot_key_without_update_rights_is_refused() {
    let knot = DnsServer::knot();
    let provider = Rfc2136Provider::new(knot.addr(), knot.readonly_key(), TIMEOUT).unwrap();
    let error = provider
        .push(
            &ZoneName::new(ZONE),
            &[change("www", RecordType::A, &["192.0.2.66"])],
        )
        .await
        .expect_err("key without update rights");
    match &error {
        // Knot denies by ACL with NOTAUTH and TSIG error BADKEY.
        ProviderError::UpdateRefused { rcode, .. } => assert_eq!(rcode, "NOTAUTH/BADKEY"),
        other => panic!("expected UpdateRefused, got {other:?}"),
    }
}

#[tokio::test]
async fn knot_zone_not_served_is_distinct() {
    let knot = DnsServer::knot();
    let provider = Rfc2136Provider::new(knot.addr(), knot.update_key(), TIMEOUT).unwrap();
    let mut other = change("www", RecordType::A, &["192.0.2.66"]);
    other.name = "www.other.example.".to_owned();
    let error = provider
        .push(&ZoneName::new("other.example."), &[other])
        .await
        .expect_err("zone not served");
    match &error {
        ProviderError::ZoneNotServed { rcode, .. } => assert_eq!(rcode, "NOTAUTH"),
        other => panic!("expected ZoneNotServed, got {other:?}"),
    }
}
