//! A real BIND 9 primary (Debian's `bind9`) for tests, serving zone `ext.example.` on a
//! loopback port and accepting RFC 2136 updates signed with a key made by `tsig-keygen`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::TestCluster;

/// A real BIND 9 primary for zone `ext.example.` on a loopback port, accepting updates signed
/// with key `upd` (in `key_file`); killed on drop.
#[derive(Debug)]
pub struct Bind {
    port: u16,
    dir: PathBuf,
    child: Option<std::process::Child>,
}

const EXT_ZONE_FILE: &str = "$TTL 300
@ IN SOA ns1.ext.example. hostmaster.ext.example. 1 3600 600 86400 60
@ IN NS ns1.ext.example.
ns1 IN A 127.0.0.1
";

/// The path of `program`; panics naming the Debian package to install when it is missing, so a
/// test that needs it fails loudly instead of passing.
pub fn require(program: &str, package: &str) -> PathBuf {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        let candidate = Path::new(dir).join(program);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{program}` not found: install {package} (apt-get install -y {package})");
}

fn free_udp_tcp_port() -> u16 {
    // Bounded: a clash between the UDP and TCP port spaces is rare.
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("udp addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port for udp and tcp");
}

impl Bind {
    /// Writes the key (`<dir>/upd.key`), zone and configuration, and starts `named`.
    pub fn start(dir: &Path) -> Self {
        let keygen = require("tsig-keygen", "bind9-utils");
        let output = Command::new(keygen)
            .args(["-a", "hmac-sha256", "upd"])
            .output()
            .expect("run tsig-keygen");
        assert!(output.status.success(), "tsig-keygen failed");
        std::fs::write(dir.join("upd.key"), &output.stdout).expect("write key");
        std::fs::write(dir.join("ext.example.db"), EXT_ZONE_FILE).expect("write zone");
        let mut bind = Self {
            port: free_udp_tcp_port(),
            dir: dir.to_owned(),
            child: None,
        };
        bind.run();
        bind
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Starts `named` on this server's port (again, after `stop`, with its journal).
    pub fn run(&mut self) {
        let dir = self.dir.display();
        let config = format!(
            r#"include "{dir}/upd.key";
options {{
  directory "{dir}";
  pid-file none;
  session-keyfile none;
  listen-on port {port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  recursion no;
  notify no;
  dnssec-validation no;
}};
controls {{ }};
zone "ext.example." {{
  type primary;
  file "{dir}/ext.example.db";
  update-policy {{ grant upd zonesub ANY; }};
}};
"#,
            port = self.port
        );
        let config_path = self.dir.join("named.conf");
        std::fs::write(&config_path, config).expect("write named.conf");
        let log = std::fs::File::create(self.dir.join("named.log")).expect("named log");
        let child = Command::new(require("named", "bind9"))
            .args(["-g", "-n", "1", "-c"])
            .arg(&config_path)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start named");
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("named.log")).unwrap_or_default()
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Adds an RFC 2136 provider pointing at `bind` and zone `ext.example.` served by it to the
/// configuration the harness wrote (before any node starts).
pub fn add_bind_zone(cluster: &TestCluster, bind: &Bind) {
    let path = cluster.config_path();
    let yaml = std::fs::read_to_string(path).expect("read config");
    let addition = format!(
        "  - name: ext.example.\n    provider: bind\n    nameservers: [{addr}]\n    records:\n      \
         - {{ name: www, type: A, ttl: 30s, service: www, fail_mode: open }}\n\
         providers:\n  - id: bind\n    rfc2136: {{ server: {addr}, tsig_key_file: bind/upd.key, timeout: 1s }}\n\
         principals:",
        addr = bind.addr()
    );
    assert!(
        yaml.contains("\nprincipals:"),
        "unexpected harness config:\n{yaml}"
    );
    std::fs::write(
        path,
        yaml.replacen("\nprincipals:", &format!("\n{addition}"), 1),
    )
    .expect("write config");
}
