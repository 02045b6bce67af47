//! Test harness: real BIND 9 and Knot DNS servers on loopback high ports, each with a generated
//! configuration, zone and TSIG keys in a temporary directory, and the real `dig`.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchyard_providers::TsigKey;

pub const ZONE: &str = "test.example.";

/// The path of `program`, or a panic naming the Debian package that provides it: these tests
/// must fail, never pass silently, where the real servers are missing.
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
    panic!(
        "`{program}` not found: install the Debian package `{package}` (apt-get install -y {package})"
    );
}

/// A loopback port free for both UDP and TCP at the time of the call.
pub fn free_port() -> u16 {
    // Bounded: the kernel hands out ephemeral ports; a clash on TCP is rare.
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("udp addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port for udp and tcp");
}

/// Runs the real `dig` against 127.0.0.1:`port` and returns its standard output.
pub fn dig(port: u16, args: &[&str]) -> String {
    let program = require("dig", "dnsutils");
    let output = Command::new(program)
        .arg("@127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .args(["+time=2", "+tries=1"])
        .args(args)
        .output()
        .expect("run dig");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `dig +short NAME TYPE`, one answer per line, sorted.
pub fn dig_short(port: u16, name: &str, record_type: &str) -> Vec<String> {
    let mut lines: Vec<String> = dig(port, &["+short", name, record_type])
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with(';'))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// The SOA serial `dig` sees.
pub fn soa_serial(port: u16) -> Option<u32> {
    dig_short(port, ZONE, "SOA")
        .first()
        .and_then(|soa| soa.split_whitespace().nth(2).map(str::to_owned))
        .and_then(|serial| serial.parse().ok())
}

/// Waits until the server answers the SOA of the test zone. `Err` with the log when the process
/// exited first (its port was taken meanwhile, say); panics after 20 s.
fn wait_ready(port: u16, child: &mut Child, log: &Path, name: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{name} exited with {status} before serving:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            ));
        }
        if soa_serial(port).is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!(
        "{name} did not serve {ZONE} within 20 s:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Starts `command_for(port)` on a free port until it serves, trying three ports at most.
fn start(name: &str, log: &Path, command_for: impl Fn(u16) -> Command) -> (Child, u16) {
    let mut failures = Vec::new();
    for _ in 0..3 {
        let port = free_port();
        let log_file = std::fs::File::create(log).expect("log file");
        let mut child = command_for(port)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|error| panic!("start {name}: {error}"));
        match wait_ready(port, &mut child, log, name) {
            Ok(()) => return (child, port),
            Err(failure) => failures.push(failure),
        }
    }
    panic!(
        "{name} failed to start three times:\n{}",
        failures.join("\n")
    );
}

const ZONE_FILE: &str = "$TTL 300
@ IN SOA ns1.test.example. hostmaster.test.example. 1 3600 600 86400 60
@ IN NS ns1.test.example.
ns1 IN A 127.0.0.1
www IN A 192.0.2.1
";

/// Writes a key file with `tsig-keygen` and returns its path.
fn keygen(dir: &Path, name: &str, algorithm: &str) -> PathBuf {
    let program = require("tsig-keygen", "bind9-utils");
    let output = Command::new(program)
        .args(["-a", algorithm, name])
        .output()
        .expect("run tsig-keygen");
    assert!(output.status.success(), "tsig-keygen failed");
    let path = dir.join(format!("{name}.key"));
    std::fs::write(&path, &output.stdout).expect("write key file");
    path
}

/// A real DNS server process under test, killed on drop.
#[derive(Debug)]
pub struct DnsServer {
    pub port: u16,
    /// Key allowed to update the test zone.
    pub update_key: PathBuf,
    /// Key the server knows but that may not update the zone.
    pub readonly_key: PathBuf,
    child: Option<Child>,
    log: PathBuf,
    /// Kept for its lifetime: removing it deletes the server's files.
    _dir: tempfile::TempDir,
}

impl DnsServer {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn update_key(&self) -> TsigKey {
        TsigKey::load(&self.update_key).expect("load update key")
    }

    pub fn readonly_key(&self) -> TsigKey {
        TsigKey::load(&self.readonly_key).expect("load read-only key")
    }

    /// Stops the server (SIGKILL) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Real BIND 9 (`named -g`), zone `test.example.` updatable with key `upd` (hmac-sha256).
    pub fn bind() -> Self {
        let named = require("named", "bind9");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path();
        let update_key = keygen(path, "upd", "hmac-sha256");
        let readonly_key = keygen(path, "ro", "hmac-sha256");
        std::fs::write(path.join("test.example.db"), ZONE_FILE).expect("zone file");
        let config_for = |port: u16| {
            format!(
                r#"include "{upd}";
include "{ro}";
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
zone "test.example." {{
  type primary;
  file "{dir}/test.example.db";
  update-policy {{ grant upd zonesub ANY; }};
}};
"#,
                upd = update_key.display(),
                ro = readonly_key.display(),
                dir = path.display(),
            )
        };
        let config_path = path.join("named.conf");
        let log = path.join("named.log");
        let (child, port) = start("named", &log, |port| {
            std::fs::write(&config_path, config_for(port)).expect("named.conf");
            let mut command = Command::new(&named);
            // -g: foreground, log to stderr; -n 1: one worker thread, enough on loopback.
            command.args(["-g", "-n", "1", "-c"]).arg(&config_path);
            command
        });
        Self {
            port,
            update_key,
            readonly_key,
            child: Some(child),
            log,
            _dir: dir,
        }
    }

    /// Real Knot DNS (`knotd`), zone `test.example.` updatable with key `upd` (hmac-sha256);
    /// key `ro` is allowed zone transfers only.
    pub fn knot() -> Self {
        let knotd = require("knotd", "knot");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path();
        let update_key = keygen(path, "upd", "hmac-sha256");
        let readonly_key = keygen(path, "ro", "hmac-sha256");
        let secret = |file: &Path| {
            let text = std::fs::read_to_string(file).expect("key file");
            text.split('"')
                .nth(3)
                .expect("secret in tsig-keygen output")
                .to_owned()
        };
        std::fs::write(path.join("test.example.zone"), ZONE_FILE).expect("zone file");
        let (upd, ro) = (secret(&update_key), secret(&readonly_key));
        let config_for = |port: u16| {
            format!(
                r#"server:
    listen: 127.0.0.1@{port}
    rundir: "{dir}"
    pidfile: "{dir}/knot.pid"
log:
  - target: stderr
    any: info
database:
    storage: "{dir}"
key:
  - id: upd
    algorithm: hmac-sha256
    secret: {upd}
  - id: ro
    algorithm: hmac-sha256
    secret: {ro}
acl:
  - id: update_acl
    key: upd
    action: update
  - id: transfer_acl
    key: ro
    action: transfer
template:
  - id: default
    storage: "{dir}"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: test.example.
    acl: [update_acl, transfer_acl]
"#,
                dir = path.display(),
            )
        };
        let config_path = path.join("knot.conf");
        let log = path.join("knot.log");
        let (child, port) = start("knotd", &log, |port| {
            std::fs::write(&config_path, config_for(port)).expect("knot.conf");
            let mut command = Command::new(&knotd);
            command.arg("-c").arg(&config_path);
            command
        });
        Self {
            port,
            update_key,
            readonly_key,
            child: Some(child),
            log,
            _dir: dir,
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
