//! One request, one response over UDP or TCP, with a deadline: the transport of signed updates.
//!
//! Updates do not go through hickory's client streams because those verify the TSIG of the
//! response before returning it: a server that rejects our signature answers with an unsigned
//! NOTAUTH/BADSIG, which hickory then reports as a confusing "truncated HMACs" protocol error and
//! drops the response code. Reading the raw response ourselves lets us report what the server
//! really said, and still verify the signature of every success with hickory's `TSigVerifier`.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

/// Why an exchange produced no response.
#[derive(Debug)]
pub(crate) enum ExchangeError {
    /// The server refused the connection or the network reported it unreachable.
    Unreachable(io::Error),
    /// No response before the deadline.
    Timeout,
}

/// The largest UDP datagram accepted.
const UDP_RECEIVE_MAX: usize = 65_535;

/// Sends `request` (whose first two bytes are the message id) over UDP and returns the first
/// datagram from `server` that carries the same id.
pub(crate) async fn udp(
    server: SocketAddr,
    request: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, ExchangeError> {
    let deadline = Instant::now() + timeout;
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(ExchangeError::Unreachable)?;
    // A connected socket receives only from `server`, and reports ICMP port-unreachable as
    // `ConnectionRefused`, which is how a stopped server on the same host shows up.
    socket
        .connect(server)
        .await
        .map_err(ExchangeError::Unreachable)?;
    socket
        .send(request)
        .await
        .map_err(ExchangeError::Unreachable)?;
    let mut buffer = vec![0; UDP_RECEIVE_MAX];
    // Bounded: every iteration waits on the same deadline.
    loop {
        let received = tokio::time::timeout_at(deadline, socket.recv(&mut buffer))
            .await
            .map_err(|_| ExchangeError::Timeout)?
            .map_err(ExchangeError::Unreachable)?;
        if received >= 2 && buffer[..2] == request[..2] {
            buffer.truncate(received);
            return Ok(buffer);
        }
    }
}

/// Sends `request` over a new TCP connection (two-byte length prefix) and reads one response.
pub(crate) async fn tcp(
    server: SocketAddr,
    request: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, ExchangeError> {
    let length = u16::try_from(request.len()).map_err(|_| {
        ExchangeError::Unreachable(io::Error::new(
            io::ErrorKind::InvalidInput,
            "message longer than 65535 bytes",
        ))
    })?;
    let exchange = async {
        let mut stream = TcpStream::connect(server).await?;
        stream.set_nodelay(true)?;
        let mut framed = Vec::with_capacity(request.len() + 2);
        framed.extend_from_slice(&length.to_be_bytes());
        framed.extend_from_slice(request);
        stream.write_all(&framed).await?;
        let mut length = [0; 2];
        stream.read_exact(&mut length).await?;
        let mut response = vec![0; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut response).await?;
        if response.get(..2) != request.get(..2) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "response id does not match the request",
            ));
        }
        Ok::<_, io::Error>(response)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ExchangeError::Timeout)?
        .map_err(ExchangeError::Unreachable)
}
