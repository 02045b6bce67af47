//! Asking a DNS server with the real `dig` (Debian's dnsutils), as an operator would.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The `dig` program; panics with what to install when it is missing, so the test fails loudly.
pub fn dig_program() -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let candidate = Path::new(dir).join("dig");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`dig` not found: install dnsutils (apt-get install -y dnsutils)");
}

/// Runs `dig @server ARGS` (one try, one second) and returns its standard output.
pub async fn dig(server: SocketAddr, args: &[&str]) -> String {
    let output = tokio::process::Command::new(dig_program())
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .args(["+time=1", "+tries=1"])
        .args(args)
        .output()
        .await
        .expect("run dig");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The sorted addresses `dig +short` gets for `name`'s A record from `server`.
pub async fn a_records(server: SocketAddr, name: &str) -> Vec<String> {
    let mut addresses: Vec<String> = dig(server, &["+short", name, "A"])
        .await
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with(';'))
        .map(str::to_owned)
        .collect();
    addresses.sort();
    addresses
}
