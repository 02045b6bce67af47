//! One check at a time against a real local server: every way a probe can fail, and succeed.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use switchyard_core::config::{HealthCheck, Rcode};
use switchyard_probe::{Checker, ProbeFailure};

use crate::support::*;

const TIMEOUT: Duration = Duration::from_secs(2);

#[tokio::test]
async fn http_check_sends_method_path_and_host_header() {
    let server = http_server(200, "fine").await;
    let mut check = http_check();
    check.method = "head".to_owned();
    check.host = Some("www.example.test".to_owned());
    let observation = probe(&target(server.address, HealthCheck::Http(check)), TIMEOUT).await;
    assert_eq!(observation.error, None);
    assert!(observation.ok);
    let requests = server.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let head = requests[0].to_ascii_lowercase();
    assert!(head.starts_with("head /health http/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nhost: www.example.test\r\n"), "{head}");
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
}

#[tokio::test]
async fn http_check_without_host_sends_the_address() {
    let server = http_server(204, "").await;
    let mut check = http_check();
    check.expected_status = vec![200, 204];
    let observation = probe(&target(server.address, HealthCheck::Http(check)), TIMEOUT).await;
    assert_eq!(observation.error, None);
    let head = server.requests.lock().unwrap()[0].to_ascii_lowercase();
    assert!(
        head.contains(&format!("\r\nhost: {}\r\n", server.address)),
        "{head}"
    );
}

#[tokio::test]
async fn http_status_mismatch_is_reported_with_both_sides() {
    let server = http_server(503, "down for maintenance").await;
    let observation = probe(
        &target(server.address, HealthCheck::Http(http_check())),
        TIMEOUT,
    )
    .await;
    assert!(!observation.ok);
    assert_eq!(
        observation.error,
        Some(ProbeFailure::Status {
            got: 503,
            expected: vec![200]
        })
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = http_server(302, "").await;
    let observation = probe(
        &target(server.address, HealthCheck::Http(http_check())),
        TIMEOUT,
    )
    .await;
    assert_eq!(
        observation.error,
        Some(ProbeFailure::Status {
            got: 302,
            expected: vec![200]
        })
    );
}

#[tokio::test]
async fn http_body_must_contain_the_expected_text() {
    let server = http_server(200, "{\"status\":\"degraded\"}").await;
    let mut check = http_check();
    check.body_contains = Some("\"status\":\"ok\"".to_owned());
    let missing = probe(
        &target(server.address, HealthCheck::Http(check.clone())),
        TIMEOUT,
    )
    .await;
    assert_eq!(
        missing.error,
        Some(ProbeFailure::BodyMismatch {
            expected: "\"status\":\"ok\"".to_owned(),
            bytes_read: 21
        })
    );
    check.body_contains = Some("degraded".to_owned());
    let present = probe(&target(server.address, HealthCheck::Http(check)), TIMEOUT).await;
    assert_eq!(present.error, None);
}

#[tokio::test]
async fn http_body_is_searched_only_up_to_the_limit() {
    let body = format!("{}needle", "x".repeat(2000));
    let server = http_server(200, &body).await;
    let mut check = http_check();
    check.body_contains = Some("needle".to_owned());
    let target = target(server.address, HealthCheck::Http(check));
    let limited = probe_with(&mut Checker::new(1024), &target, TIMEOUT).await;
    assert_eq!(
        limited.error,
        Some(ProbeFailure::BodyMismatch {
            expected: "needle".to_owned(),
            bytes_read: 1024
        })
    );
    let unlimited = probe(&target, TIMEOUT).await;
    assert_eq!(unlimited.error, None);
}

#[tokio::test]
async fn tls_self_signed_certificate_fails_verification_and_passes_without_it() {
    let server = tls_server("ok").await;
    let mut check = http_check();
    check.tls = true;
    check.body_contains = Some("ok".to_owned());
    let verified = probe(
        &target(server.address, HealthCheck::Http(check.clone())),
        TIMEOUT,
    )
    .await;
    match &verified.error {
        Some(ProbeFailure::Tls { message }) => {
            assert!(message.contains("certificate"), "{message}");
        }
        other => panic!("expected a tls failure, got {other:?}"),
    }
    assert!(
        verified
            .error
            .as_ref()
            .unwrap()
            .to_string()
            .starts_with("tls handshake failed: ")
    );
    assert!(server.requests.lock().unwrap().is_empty());

    check.tls_verify = false;
    let unverified = probe(&target(server.address, HealthCheck::Http(check)), TIMEOUT).await;
    assert_eq!(unverified.error, None);
    assert_eq!(server.requests.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn tls_with_a_host_name_connects_to_the_endpoint_and_sends_the_name() {
    let server = tls_server("ok").await;
    let mut check = http_check();
    check.tls = true;
    check.host = Some("localhost".to_owned());
    let verified = probe(
        &target(server.address, HealthCheck::Http(check.clone())),
        TIMEOUT,
    )
    .await;
    assert!(
        matches!(verified.error, Some(ProbeFailure::Tls { .. })),
        "{:?}",
        verified.error
    );
    check.tls_verify = false;
    let unverified = probe(&target(server.address, HealthCheck::Http(check)), TIMEOUT).await;
    assert_eq!(unverified.error, None);
    let head = server.requests.lock().unwrap()[0].to_ascii_lowercase();
    assert!(head.contains("\r\nhost: localhost\r\n"), "{head}");
}

#[tokio::test]
async fn refused_connections_fail_fast_for_tcp_and_http() {
    let address = refused_address().await;
    let tcp = probe(&target(address, HealthCheck::Tcp), TIMEOUT).await;
    assert_eq!(tcp.error, Some(ProbeFailure::ConnectionRefused));
    let http = probe(&target(address, HealthCheck::Http(http_check())), TIMEOUT).await;
    assert_eq!(http.error, Some(ProbeFailure::ConnectionRefused));
    assert_eq!(http.error.unwrap().to_string(), "connection refused");
}

#[tokio::test]
async fn tcp_connect_to_a_listener_succeeds() {
    let server = http_server(200, "").await;
    let observation = probe(&target(server.address, HealthCheck::Tcp), TIMEOUT).await;
    assert_eq!(observation.error, None);
}

#[tokio::test]
async fn black_holed_tcp_times_out_within_the_probe_timeout() {
    let hole = black_hole().await;
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let observation = probe(&target(hole.address, HealthCheck::Tcp), timeout).await;
    let elapsed = started.elapsed();
    assert_eq!(
        observation.error,
        Some(ProbeFailure::Timeout { after: timeout })
    );
    assert!(elapsed >= timeout, "{elapsed:?}");
    assert!(elapsed < timeout + Duration::from_secs(1), "{elapsed:?}");
    assert!(observation.latency >= timeout);
}

#[tokio::test]
async fn silent_http_server_times_out_within_the_probe_timeout() {
    let address = silent_server().await;
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let observation = probe(&target(address, HealthCheck::Http(http_check())), timeout).await;
    let elapsed = started.elapsed();
    assert_eq!(
        observation.error,
        Some(ProbeFailure::Timeout { after: timeout })
    );
    assert_eq!(
        observation.error.unwrap().to_string(),
        "timed out after 300ms"
    );
    assert!(elapsed < timeout + Duration::from_secs(1), "{elapsed:?}");
}

#[tokio::test]
async fn dns_expected_answer_passes() {
    let server = dns_server(ResponseCode::NoError, vec![Ipv4Addr::new(127, 0, 0, 7)]).await;
    let check = dns_check(Rcode::Noerror, Some(vec![IpAddr::from([127, 0, 0, 7])]));
    let observation = probe(&target(server, HealthCheck::Dns(check)), TIMEOUT).await;
    assert_eq!(observation.error, None);
}

#[tokio::test]
async fn dns_wrong_answer_is_reported_with_both_sets() {
    let server = dns_server(
        ResponseCode::NoError,
        vec![Ipv4Addr::new(127, 0, 0, 9), Ipv4Addr::new(127, 0, 0, 7)],
    )
    .await;
    let check = dns_check(Rcode::Noerror, Some(vec![IpAddr::from([127, 0, 0, 7])]));
    let observation = probe(&target(server, HealthCheck::Dns(check)), TIMEOUT).await;
    assert_eq!(
        observation.error,
        Some(ProbeFailure::DnsAnswer {
            got: vec![IpAddr::from([127, 0, 0, 7]), IpAddr::from([127, 0, 0, 9])],
            expected: vec![IpAddr::from([127, 0, 0, 7])],
        })
    );
}

#[tokio::test]
async fn dns_wrong_rcode_is_reported() {
    let server = dns_server(ResponseCode::NXDomain, vec![]).await;
    let check = dns_check(Rcode::Noerror, None);
    let observation = probe(&target(server, HealthCheck::Dns(check)), TIMEOUT).await;
    assert_eq!(
        observation.error,
        Some(ProbeFailure::DnsRcode {
            got: 3,
            expected: Rcode::Noerror
        })
    );
    assert_eq!(
        observation.error.unwrap().to_string(),
        "dns rcode nxdomain, expected noerror"
    );
}

#[tokio::test]
async fn dns_expected_nxdomain_passes() {
    let server = dns_server(ResponseCode::NXDomain, vec![]).await;
    let check = dns_check(Rcode::Nxdomain, None);
    let observation = probe(&target(server, HealthCheck::Dns(check)), TIMEOUT).await;
    assert_eq!(observation.error, None);
}

#[tokio::test]
async fn dns_without_a_server_is_refused() {
    let socket = tokio::net::UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let address = socket.local_addr().unwrap();
    drop(socket);
    let check = dns_check(Rcode::Noerror, None);
    let observation = probe(&target(address, HealthCheck::Dns(check)), TIMEOUT).await;
    assert_eq!(observation.error, Some(ProbeFailure::ConnectionRefused));
}

#[tokio::test]
async fn invalid_configuration_is_an_error_at_prepare_time() {
    let mut check = http_check();
    check.method = "GE T".to_owned();
    let error = Checker::default()
        .prepare(&target(refused_address().await, HealthCheck::Http(check)))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "endpoint www/site-a/1: invalid http method \"GE T\""
    );
}
