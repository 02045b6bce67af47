//! A webhook receiver for executor tests: records every call with its idempotency key and
//! answers with a status the test chooses.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;

/// One call the receiver saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookCall {
    pub path: String,
    pub idempotency_key: Option<String>,
    pub body: String,
}

#[derive(Debug, Default)]
struct Shared {
    calls: Mutex<Vec<WebhookCall>>,
    status: AtomicU16,
}

/// A receiver on a loopback port; it stops when dropped.
#[derive(Debug)]
pub struct WebhookReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    /// Starts a receiver answering `status` to every call.
    pub async fn start(status: u16) -> Self {
        let shared = Arc::new(Shared {
            calls: Mutex::default(),
            status: AtomicU16::new(status),
        });
        let router = Router::new()
            .fallback(any(record))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind webhook receiver");
        let addr = listener.local_addr().expect("receiver address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { addr, shared, task }
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_status(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    pub fn calls(&self) -> Vec<WebhookCall> {
        self.shared.calls.lock().expect("calls lock").clone()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    shared.calls.lock().expect("calls lock").push(WebhookCall {
        path: uri.path().to_owned(),
        idempotency_key,
        body,
    });
    StatusCode::from_u16(shared.status.load(Ordering::SeqCst))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
