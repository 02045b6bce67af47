//! A cluster of real `switchyard serve` processes on 127.0.0.1, each with its own data directory.

use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use switchyard_api::{Client, Status};

use crate::wait::wait_until;

/// The token of the test principal that holds every role.
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// Tokens of single-role test principals: (token, role).
pub const ROLE_TOKENS: [(&str, &str); 5] = [
    ("test-viewer-token", "viewer"),
    ("test-operator-token", "operator"),
    ("test-approver-token", "approver"),
    ("test-auditor-token", "auditor"),
    (ADMIN_TOKEN, "admin"),
];
const SECRET: &str = "integration-test-cluster-secret-0123456789";

#[derive(Clone, Debug)]
pub struct ClusterOptions {
    pub nodes: usize,
    /// `raft.snapshot_every`.
    pub snapshot_every: u64,
    /// Give every site an HTTP endpoint of service `www` (at `127.0.N.1` for site N, see
    /// [`TestCluster::endpoint`]) and serve zone `test.example.` (record `www`, A, ttl 5s,
    /// fail-open) from the embedded DNS, with fast detection timings. Without it the cluster has
    /// no services and no zones.
    pub with_service: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            nodes: 3,
            snapshot_every: 1000,
            with_service: false,
        }
    }
}

#[derive(Debug)]
struct NodeSlot {
    id: u64,
    api_port: u16,
    raft_port: u16,
    dns_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// Real node processes; every one still running is killed when this is dropped.
#[derive(Debug)]
pub struct TestCluster {
    dir: tempfile::TempDir,
    config: PathBuf,
    nodes: Vec<NodeSlot>,
    /// The `www` endpoint of each site, site N at index N-1 (only `with_service`).
    endpoints: Vec<SocketAddr>,
}

fn free_port_on(address: &str) -> u16 {
    let listener =
        TcpListener::bind((address, 0)).expect("bind an ephemeral port on a loopback address");
    listener.local_addr().expect("local address").port()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl TestCluster {
    /// Writes a configuration for `options.nodes` nodes, one per site, and starts none yet.
    pub fn new(options: ClusterOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("switchyard-it-")
            .tempdir()
            .expect("temp dir");
        let mut yaml = String::new();
        // Each cluster gets its own name, so the data directories of two clusters are told apart.
        let name = dir
            .path()
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("it")
            .to_lowercase();
        let _ = writeln!(
            yaml,
            "cluster:\n  name: {name}\n  secret_file: cluster.secret"
        );
        let _ = writeln!(yaml, "sites:");
        for id in 1..=options.nodes {
            let _ = writeln!(yaml, "  - {{ id: site{id} }}");
        }
        let _ = writeln!(yaml, "nodes:");
        let mut nodes = Vec::new();
        for id in 1..=options.nodes as u64 {
            let (raft, api, dns) = (free_port(), free_port(), free_port());
            let _ = writeln!(
                yaml,
                "  - {{ id: {id}, site: site{id}, raft_addr: 127.0.0.1:{raft}, api_addr: 127.0.0.1:{api}, dns_addr: 127.0.0.1:{dns} }}"
            );
            let data_dir = dir.path().join(format!("node-{id}"));
            let log = dir.path().join(format!("node-{id}.log"));
            nodes.push(NodeSlot {
                id,
                api_port: api,
                raft_port: raft,
                dns_port: dns,
                data_dir,
                log,
                child: None,
            });
        }
        let _ = writeln!(
            yaml,
            "raft:\n  heartbeat_interval: 100ms\n  election_timeout_min: 600ms\n  election_timeout_max: 1200ms\n  snapshot_every: {}",
            options.snapshot_every
        );
        let mut endpoints = Vec::new();
        if options.with_service {
            let _ = writeln!(
                yaml,
                "detection:\n  probe_interval: 500ms\n  probe_timeout: 250ms\n  confirm_interval: 100ms\n  \
                 rise: 2\n  fall: 3\n  hold: 1s\n  recover_hold: 2s\n  observer_sites_min: 1\n  failover_cooldown: 1m"
            );
            let _ = writeln!(
                yaml,
                "services:\n  - id: www\n    check: {{ http: {{ path: /healthz, expected_status: [200], body_contains: ok }} }}\n    endpoints:"
            );
            for id in 1..=options.nodes {
                let address = format!("127.0.{id}.1");
                let port = free_port_on(&address);
                let _ = writeln!(
                    yaml,
                    "      - {{ site: site{id}, address: {address}, port: {port} }}"
                );
                endpoints.push(
                    format!("{address}:{port}")
                        .parse()
                        .expect("endpoint address"),
                );
            }
            let _ = writeln!(
                yaml,
                "zones:\n  - name: test.example.\n    provider: embedded\n    records:\n      \
                 - {{ name: www, type: A, ttl: 5s, service: www, fail_mode: open }}"
            );
        } else {
            let _ = writeln!(yaml, "services: []\nzones: []");
        }
        let _ = writeln!(yaml, "principals:");
        for (token, role) in ROLE_TOKENS {
            let _ = writeln!(
                yaml,
                "  - {{ name: test-{role}, token_sha256: {}, roles: [{role}] }}",
                sha256_hex(token)
            );
        }
        fs::write(dir.path().join("cluster.secret"), SECRET).expect("write secret");
        let config = dir.path().join("cluster.yaml");
        fs::write(&config, yaml).expect("write config");
        Self {
            dir,
            config,
            nodes,
            endpoints,
        }
    }

    /// The `www` endpoint of site `site` (1-based), for a cluster made `with_service`.
    pub fn endpoint(&self, site: usize) -> SocketAddr {
        self.endpoints[site - 1]
    }

    /// The embedded DNS address of node `id`.
    pub fn dns_addr(&self, id: u64) -> SocketAddr {
        let slot = self.nodes.iter().find(|node| node.id == id).expect("node");
        SocketAddr::from(([127, 0, 0, 1], slot.dns_port))
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn node_ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|node| node.id).collect()
    }

    fn slot(&mut self, id: u64) -> &mut NodeSlot {
        self.nodes
            .iter_mut()
            .find(|node| node.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Starts (or restarts, with its data directory) node `id`.
    pub fn start(&mut self, id: u64) {
        let config = self.config.clone();
        let slot = self.slot(id);
        assert!(slot.child.is_none(), "node {id} is already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&slot.log)
            .expect("open node log");
        let child = Command::new(crate::switchyard_bin())
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--node")
            .arg(id.to_string())
            .arg("--data-dir")
            .arg(&slot.data_dir)
            .env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn switchyard serve");
        slot.child = Some(child);
    }

    pub fn start_all(&mut self) {
        for id in self.node_ids() {
            self.start(id);
        }
    }

    /// `kill -9` node `id` and reap it.
    pub fn kill(&mut self, id: u64) {
        let slot = self.slot(id);
        let mut child = slot
            .child
            .take()
            .unwrap_or_else(|| panic!("node {id} is not running"));
        child.kill().expect("SIGKILL the node");
        child.wait().expect("reap the node");
    }

    /// SIGTERM node `id` and wait for it to exit; returns whether it exited successfully.
    pub fn terminate(&mut self, id: u64) -> bool {
        let slot = self.slot(id);
        let mut child = slot
            .child
            .take()
            .unwrap_or_else(|| panic!("node {id} is not running"));
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        child.wait().expect("reap the node").success()
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.nodes
            .iter()
            .any(|node| node.id == id && node.child.is_some())
    }

    /// The node's log so far, for failure messages.
    pub fn log(&self, id: u64) -> String {
        let slot = self.nodes.iter().find(|node| node.id == id).expect("node");
        fs::read_to_string(&slot.log).unwrap_or_default()
    }

    pub fn api_url(&self, id: u64) -> String {
        let slot = self.nodes.iter().find(|node| node.id == id).expect("node");
        format!("http://127.0.0.1:{}", slot.api_port)
    }

    pub fn raft_url(&self, id: u64) -> String {
        let slot = self.nodes.iter().find(|node| node.id == id).expect("node");
        format!("http://127.0.0.1:{}", slot.raft_port)
    }

    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.nodes
            .iter()
            .find(|node| node.id == id)
            .expect("node")
            .data_dir
            .clone()
    }

    /// Waits until node `id` answers its health check.
    pub async fn wait_healthy(&self, id: u64, timeout: Duration) {
        let client = self.admin(id);
        wait_until(&format!("node {id} to answer /v1/health"), timeout, || {
            let client = client.clone();
            async move { client.health().await.ok() }
        })
        .await;
    }

    pub fn client(&self, id: u64, token: Option<&str>) -> Client {
        Client::new(
            self.api_url(id),
            token.map(str::to_owned),
            Duration::from_secs(10),
        )
    }

    pub fn admin(&self, id: u64) -> Client {
        self.client(id, Some(ADMIN_TOKEN))
    }

    /// Waits until every running node agrees on one leader, and returns it.
    pub async fn wait_for_leader(&self, timeout: Duration) -> u64 {
        let running: Vec<u64> = self
            .nodes
            .iter()
            .filter(|node| node.child.is_some())
            .map(|node| node.id)
            .collect();
        wait_until("every running node to agree on a leader", timeout, || {
            let clients: Vec<Client> = running.iter().map(|id| self.admin(*id)).collect();
            let running = running.clone();
            async move {
                let mut leader = None;
                for client in clients {
                    let status: Status = client.status(false).await.ok()?;
                    let seen = status.leader?.node.0;
                    if leader.is_some_and(|known| known != seen) {
                        return None;
                    }
                    leader = Some(seen);
                }
                leader.filter(|id| running.contains(id))
            }
        })
        .await
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for slot in &mut self.nodes {
            if let Some(mut child) = slot.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl TestCluster {
    /// Serves every site's `www` endpoint (a cluster made `with_service`), one `HttpService`
    /// per site, site N at index N-1.
    pub async fn serve_endpoints(&self) -> Vec<crate::HttpService> {
        let mut services = Vec::new();
        for site in 1..=self.endpoints.len() {
            services.push(
                crate::HttpService::start(self.endpoint(site))
                    .await
                    .expect("start the site's www endpoint"),
            );
        }
        services
    }

    /// Stores a runbook through node `node` (a follower forwards it), retrying until the
    /// replicated configuration it is validated against exists.
    pub async fn apply_runbook(&self, node: u64, source: &str) -> serde_json::Value {
        let client = self.client(node, Some("test-operator-token"));
        let body = serde_json::json!({ "source": source });
        wait_until(
            "the runbook to be accepted",
            Duration::from_secs(30),
            || {
                let client = client.clone();
                let body = body.clone();
                async move {
                    client
                        .call::<_, serde_json::Value>(
                            reqwest::Method::POST,
                            "/v1/runbooks",
                            Some(&body),
                        )
                        .await
                        .ok()
                }
            },
        )
        .await
    }
}

/// A 3-node cluster `with_service`, its endpoints served, a leader elected and `runbook` stored.
pub async fn cluster_with_services(runbook: &str) -> (TestCluster, Vec<crate::HttpService>) {
    let mut cluster = TestCluster::new(ClusterOptions {
        with_service: true,
        ..ClusterOptions::default()
    });
    let services = cluster.serve_endpoints().await;
    cluster.start_all();
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    cluster.apply_runbook(2, runbook).await;
    (cluster, services)
}
