//! Tiny servers on 127.0.0.1 ephemeral ports for the probe tests, and helpers to build targets.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};
use switchyard_core::config::{DnsCheck, HealthCheck, HttpCheck, Rcode, RecordType};
use switchyard_core::{EndpointId, ServiceId, SiteId};
use switchyard_probe::{Checker, Observation, Target};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

pub const LOCALHOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

pub fn target(address: SocketAddr, check: HealthCheck) -> Target {
    Target {
        endpoint: EndpointId::new("www/site-a/1"),
        service: ServiceId::new("www"),
        site: SiteId::new("site-a"),
        address,
        check,
    }
}

pub fn http_check() -> HttpCheck {
    HttpCheck {
        method: "GET".to_owned(),
        path: "/health".to_owned(),
        expected_status: vec![200],
        body_contains: None,
        host: None,
        tls: false,
        tls_verify: true,
    }
}

pub fn dns_check(expected_rcode: Rcode, expected_answer: Option<Vec<IpAddr>>) -> DnsCheck {
    DnsCheck {
        name: "www.example.test".to_owned(),
        record_type: RecordType::A,
        expected_rcode,
        expected_answer,
    }
}

/// Prepares and runs one check with a fresh checker.
pub async fn probe(target: &Target, timeout: Duration) -> Observation {
    probe_with(&mut Checker::default(), target, timeout).await
}

pub async fn probe_with(checker: &mut Checker, target: &Target, timeout: Duration) -> Observation {
    let check = checker.prepare(target).expect("check prepares");
    let observation = check.run(timeout).await;
    assert_eq!(observation.ok, observation.error.is_none());
    observation
}

/// What the HTTP responder answers; `status` can be changed while it runs.
#[derive(Debug)]
pub struct HttpResponder {
    pub address: SocketAddr,
    pub status: AtomicU16,
    body: String,
    /// The request heads received, in order.
    pub requests: Mutex<Vec<String>>,
}

/// A plain HTTP/1.1 server that answers every request with `status` and `body`, then closes.
pub async fn http_server(status: u16, body: &str) -> Arc<HttpResponder> {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let responder = Arc::new(HttpResponder {
        address: listener.local_addr().unwrap(),
        status: AtomicU16::new(status),
        body: body.to_owned(),
        requests: Mutex::new(Vec::new()),
    });
    let serving = Arc::clone(&responder);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let serving = Arc::clone(&serving);
            tokio::spawn(async move { serve_http(stream, &serving).await });
        }
    });
    responder
}

async fn serve_http<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, responder: &HttpResponder) {
    let Some(head) = read_head(&mut stream).await else {
        return;
    };
    responder.requests.lock().unwrap().push(head);
    let status = responder.status.load(Ordering::SeqCst);
    let response = format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
        responder.body.len(),
        responder.body
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Reads up to the end of the request head (bounded at 16 KiB).
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while head.len() < 16 * 1024 {
        let read = stream.read(&mut buffer).await.ok()?;
        if read == 0 {
            return None;
        }
        head.extend_from_slice(&buffer[..read]);
        if head.windows(4).any(|window| window == b"\r\n\r\n") {
            return Some(String::from_utf8_lossy(&head).into_owned());
        }
    }
    None
}

/// An HTTPS server with a fresh self-signed certificate for `localhost` and 127.0.0.1.
pub async fn tls_server(body: &str) -> Arc<HttpResponder> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let responder = Arc::new(HttpResponder {
        address: listener.local_addr().unwrap(),
        status: AtomicU16::new(200),
        body: body.to_owned(),
        requests: Mutex::new(Vec::new()),
    });
    let serving = Arc::clone(&responder);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let serving = Arc::clone(&serving);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that rejects our certificate aborts the handshake: nothing to serve.
                if let Ok(stream) = acceptor.accept(stream).await {
                    serve_http(stream, &serving).await;
                }
            });
        }
    });
    responder
}

/// A server that accepts connections and never says anything, holding them open.
pub async fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    address
}

/// An address where nothing listens: bound once to reserve a free port, then closed.
pub async fn refused_address() -> SocketAddr {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    listener.local_addr().unwrap()
}

/// A black hole for TCP: a listener with a full accept queue that never accepts. Linux drops
/// further SYNs, so a connect neither succeeds nor is refused. Keep the returned value alive.
pub struct BlackHole {
    pub address: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
}

pub async fn black_hole() -> BlackHole {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind((LOCALHOST, 0).into()).unwrap();
    let listener = socket.listen(1).unwrap();
    let address = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    // Bounded: the queue of a backlog-1 listener holds two connections; stop at the first
    // connect that hangs, which proves the hole is closed.
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(address)).await {
            Ok(Ok(stream)) => fillers.push(stream),
            Ok(Err(error)) => panic!("filling the accept queue failed: {error}"),
            Err(_) => {
                return BlackHole {
                    address,
                    _listener: listener,
                    _fillers: fillers,
                };
            }
        }
    }
    panic!("the accept queue never filled up");
}

/// A DNS server on UDP that answers every query with `rcode` and A records for `answer`.
pub async fn dns_server(rcode: ResponseCode, answer: Vec<std::net::Ipv4Addr>) -> SocketAddr {
    let socket = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let address = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 4096];
        while let Ok((length, peer)) = socket.recv_from(&mut buffer).await {
            let Ok(query) = Message::from_vec(&buffer[..length]) else {
                continue;
            };
            let mut response =
                Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
            response.metadata.authoritative = true;
            response.metadata.response_code = rcode;
            for question in &query.queries {
                response.add_query(question.clone());
                for address in &answer {
                    response.add_answer(Record::from_rdata(
                        question.name().clone(),
                        60,
                        RData::A(A(*address)),
                    ));
                }
            }
            let _ = socket.send_to(&response.to_vec().unwrap(), peer).await;
        }
    });
    address
}
