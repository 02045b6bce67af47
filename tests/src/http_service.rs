//! A tiny HTTP service for detection tests: answers every request with 200 and body `ok` on one
//! address, and can be stopped (connections then fail with "refused") and restarted on the
//! same address.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Largest request head read before answering; the probes send a few hundred bytes.
const REQUEST_HEAD_MAX: usize = 16 * 1024;
/// How long a connection may take to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

/// An in-process HTTP service on one address. Dropping it stops it.
#[derive(Debug)]
pub struct HttpService {
    addr: SocketAddr,
    /// The accept loop while running; aborting it drops the listener and every connection.
    task: Option<JoinHandle<()>>,
}

impl HttpService {
    /// Starts serving on `addr` (a loopback address).
    pub async fn start(addr: SocketAddr) -> io::Result<Self> {
        let mut service = Self { addr, task: None };
        service.restart().await?;
        Ok(service)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn is_running(&self) -> bool {
        self.task.is_some()
    }

    /// Stops listening and closes every open connection; returns once the port is closed.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // The listener is dropped when the aborted task finishes.
            let _ = task.await;
        }
    }

    /// Serves again on the same address (a no-op while running).
    pub async fn restart(&mut self) -> io::Result<()> {
        if self.task.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.addr).await?;
        self.task = Some(tokio::spawn(serve(listener)));
        Ok(())
    }
}

impl Drop for HttpService {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn serve(listener: TcpListener) {
    // Owned by this task, so aborting it aborts every connection too.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(answer(stream));
                }
                Err(error) => {
                    // Out of descriptors or similar: back off briefly, keep serving.
                    eprintln!("http service: accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Reads the request head (up to the blank line) and answers 200 `ok`.
async fn answer(mut stream: TcpStream) {
    let mut head = Vec::with_capacity(512);
    let mut buffer = [0_u8; 1024];
    let read_head = async {
        while !head.windows(4).any(|window| window == b"\r\n\r\n") {
            if head.len() > REQUEST_HEAD_MAX {
                return false;
            }
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return false,
                Ok(read) => head.extend_from_slice(&buffer[..read]),
            }
        }
        true
    };
    if let Ok(true) = tokio::time::timeout(REQUEST_TIMEOUT, read_head).await {
        let _ = stream.write_all(RESPONSE).await;
        let _ = stream.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: SocketAddr) -> io::Result<String> {
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
            .await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok(response)
    }

    #[tokio::test]
    async fn serves_ok_stops_and_restarts_on_the_same_address() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port");
        let mut service = HttpService::start(addr).await.expect("start");
        let response = get(service.addr()).await.expect("get");
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(response.ends_with("\r\n\r\nok"), "{response}");
        service.stop().await;
        assert!(!service.is_running());
        let refused = get(service.addr()).await;
        assert_eq!(
            refused.expect_err("stopped").kind(),
            io::ErrorKind::ConnectionRefused
        );
        service.restart().await.expect("restart");
        assert!(
            get(service.addr())
                .await
                .expect("get again")
                .ends_with("ok")
        );
    }
}
