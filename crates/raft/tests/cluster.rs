//! In-process clusters over real HTTP on 127.0.0.1: bootstrap, replication, forwarding,
//! transport authentication, and catching up through a snapshot after a restart.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use switchyard_core::config::{
    ClusterConfig, DetectionPolicy, Node, RaftTimings, SafetyRules, Site,
};
use switchyard_core::state::{Actor, Command, CommandKind, Outcome, State};
use switchyard_core::{NodeId, PrincipalName, SiteId, Timestamp};
use switchyard_raft::{MemberStatus, ProposeError, RaftNode, RaftNodeConfig, Role, Secret};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const SECRET: &str = "test-cluster-secret";
const DEADLINE: Duration = Duration::from_secs(30);

fn cluster_config(addrs: &[SocketAddr], snapshot_every: u64) -> ClusterConfig {
    let nodes = addrs
        .iter()
        .enumerate()
        .map(|(position, addr)| Node {
            id: NodeId(position as u64 + 1),
            site: SiteId::new(format!("site{}", position + 1)),
            raft_addr: *addr,
            api_addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            dns_addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            voter: true,
        })
        .collect::<Vec<_>>();
    ClusterConfig {
        name: "test".to_owned(),
        secret_file: PathBuf::from("/nonexistent"),
        sites: nodes
            .iter()
            .map(|node| Site {
                id: node.site.clone(),
                witness: false,
            })
            .collect(),
        nodes,
        // LAN timings, lenient because the test machine is shared.
        raft: RaftTimings {
            heartbeat_interval: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(300),
            election_timeout_max: Duration::from_millis(600),
            snapshot_every,
        },
        detection: DetectionPolicy::default(),
        services: Vec::new(),
        providers: Vec::new(),
        zones: Vec::new(),
        safety: SafetyRules::default(),
        principals: Vec::new(),
    }
}

fn annotation(text: String) -> Command {
    Command {
        time: Timestamp(1_000),
        actor: Actor::Principal(PrincipalName::new("ops")),
        kind: CommandKind::Annotate { text },
    }
}

/// One running node: the Raft member and the HTTP server carrying its RPCs.
struct Running {
    node: RaftNode,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
    /// Holds a clone of the node, and so its store, until it ends or is aborted.
    bootstrap: JoinHandle<()>,
}

struct TestCluster {
    config: ClusterConfig,
    _dir: TempDir,
    data_dirs: Vec<PathBuf>,
    nodes: Vec<Option<Running>>,
}

impl TestCluster {
    async fn new(size: usize, snapshot_every: u64) -> (TestCluster, Vec<TcpListener>) {
        let mut listeners = Vec::new();
        for _ in 0..size {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.expect("bind"));
        }
        let addrs: Vec<SocketAddr> = listeners
            .iter()
            .map(|listener| listener.local_addr().expect("local addr"))
            .collect();
        let dir = TempDir::new().expect("tempdir");
        let data_dirs = (1..=size)
            .map(|id| dir.path().join(format!("node{id}")))
            .collect();
        let cluster = TestCluster {
            config: cluster_config(&addrs, snapshot_every),
            _dir: dir,
            data_dirs,
            nodes: (0..size).map(|_| None).collect(),
        };
        (cluster, listeners)
    }

    fn addr(&self, id: u64) -> SocketAddr {
        self.config.nodes[id as usize - 1].raft_addr
    }

    /// Starts node `id` serving on `listener`, and lets it bootstrap in the background.
    async fn start(&mut self, id: u64, listener: TcpListener) {
        let node = RaftNode::start(RaftNodeConfig {
            node_id: NodeId(id),
            cluster: self.config.clone(),
            data_dir: self.data_dirs[id as usize - 1].clone(),
            secret: Secret::new(SECRET).expect("secret"),
        })
        .await
        .expect("start node");
        let (stop, stopped) = oneshot::channel();
        let router = node.rpc_router();
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
        let bootstrapper = node.clone();
        let bootstrap = tokio::spawn(async move {
            bootstrapper.bootstrap_if_fresh().await.expect("bootstrap");
        });
        self.nodes[id as usize - 1] = Some(Running {
            node,
            stop,
            server,
            bootstrap,
        });
    }

    async fn restart(&mut self, id: u64) {
        let listener = TcpListener::bind(self.addr(id)).await.expect("rebind");
        self.start(id, listener).await;
    }

    async fn stop(&mut self, id: u64) {
        let running = self.nodes[id as usize - 1].take().expect("node running");
        running.bootstrap.abort();
        let _ = running.bootstrap.await;
        running.node.shutdown().await.expect("shutdown");
        let _ = running.stop.send(());
        running.server.await.expect("server task");
    }

    fn node(&self, id: u64) -> &RaftNode {
        &self.nodes[id as usize - 1]
            .as_ref()
            .expect("node running")
            .node
    }

    fn running(&self) -> impl Iterator<Item = &RaftNode> {
        self.nodes.iter().flatten().map(|running| &running.node)
    }

    /// Waits until every running node names the same leader, and returns it.
    async fn leader(&self) -> u64 {
        let start = Instant::now();
        loop {
            let leaders: Vec<_> = self.running().map(|node| node.status().leader).collect();
            if let Some(Some(leader)) = leaders.first()
                && leaders.iter().all(|seen| seen == &Some(*leader))
                && self.node(leader.0).status().role == Role::Leader
            {
                return leader.0;
            }
            assert!(start.elapsed() < DEADLINE, "no agreed leader: {leaders:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every running node has applied `index`.
    async fn applied_everywhere(&self, index: u64) {
        let start = Instant::now();
        for node in self.running() {
            let mut applied = node.subscribe_applied();
            let remaining = DEADLINE.saturating_sub(start.elapsed());
            tokio::time::timeout(remaining, applied.wait_for(|applied| *applied >= index))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "node {} did not apply {index}: {:?}",
                        node.node_id(),
                        node.status()
                    )
                })
                .expect("applied channel open");
        }
    }
}

/// A permutation of `1..=size` from `seed`, printed so a failing order can be replayed.
fn start_order(size: u64, seed: u64) -> Vec<u64> {
    let mut order: Vec<u64> = (1..=size).collect();
    let mut value = seed | 1;
    for position in (1..order.len()).rev() {
        // xorshift64: enough to shuffle three nodes.
        value ^= value << 13;
        value ^= value >> 7;
        value ^= value << 17;
        order.swap(position, (value % (position as u64 + 1)) as usize);
    }
    order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_bootstrap_replicate_and_authenticate() {
    let seed = std::env::var("SWITCHYARD_TEST_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock after epoch")
                .as_nanos() as u64
        });
    let order = start_order(3, seed);
    println!("SWITCHYARD_TEST_SEED={seed} start order {order:?}");
    let (mut cluster, listeners) = TestCluster::new(3, 1000).await;
    let mut listeners: Vec<Option<TcpListener>> = listeners.into_iter().map(Some).collect();
    for id in order {
        let listener = listeners[id as usize - 1].take().expect("listener");
        cluster.start(id, listener).await;
    }

    let leader = cluster.leader().await;
    let mut last = 0;
    for number in 0..50 {
        let applied = cluster
            .node(leader)
            .propose(annotation(format!("note {number}")))
            .await
            .expect("propose through the leader");
        assert_eq!(applied.outcome, Outcome::Accepted);
        assert!(applied.index > last);
        last = applied.index;
    }
    cluster.applied_everywhere(last).await;
    let states: Vec<State> = cluster
        .running()
        .map(|node| node.read_state(State::clone))
        .collect();
    assert_eq!(states[0].annotations().count(), 50);
    assert_eq!(states[0].audit().verify(), Ok(()));
    assert!(states.iter().all(|state| state == &states[0]));
    let heads: Vec<String> = states
        .iter()
        .map(|state| state.audit().head().to_owned())
        .collect();
    assert!(heads.iter().all(|head| head == &heads[0]), "{heads:?}");

    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    match cluster
        .node(follower)
        .propose(annotation("via follower".to_owned()))
        .await
    {
        Err(ProposeError::ForwardToLeader { leader: named }) => {
            assert_eq!(named, Some(NodeId(leader)));
        }
        other => panic!("follower accepted a write: {other:?}"),
    }
    assert!(matches!(
        cluster.node(follower).ensure_linearizable().await,
        Err(ProposeError::ForwardToLeader { .. })
    ));
    // `propose_anywhere` forwards a follower's command to the leader over `/raft/propose`.
    let forwarded = cluster
        .node(follower)
        .propose_anywhere(annotation("forwarded by a follower".to_owned()))
        .await
        .expect("forwarded propose");
    assert_eq!(forwarded.outcome, Outcome::Accepted);
    assert!(forwarded.index > last);
    cluster.applied_everywhere(forwarded.index).await;
    assert!(cluster.node(leader).read_state(|state| {
        state
            .annotations()
            .any(|note| note.text == "forwarded by a follower")
    }));
    cluster
        .node(leader)
        .ensure_linearizable()
        .await
        .expect("leader read");

    let status = cluster.node(leader).status();
    assert_eq!(status.members.len(), 3);
    for member in &status.members {
        if member.node_id.0 != leader {
            assert!(member.last_contact_ms.is_some(), "{member:?}");
            assert_eq!(
                member.matched_index,
                Some(status.last_log_index.expect("log"))
            );
        }
    }

    // The transport refuses strangers and misdirected requests.
    let client = reqwest::Client::new();
    let url = format!("http://{}/raft/bootstrap-probe", cluster.addr(follower));
    let body = serde_json::json!({ "cluster_name": "test" });
    let post = |secret: Option<&str>, to: u64| {
        let mut request = client
            .post(&url)
            .header("x-switchyard-from", leader.to_string())
            .header("x-switchyard-to", to.to_string())
            .json(&body);
        if let Some(secret) = secret {
            request = request.bearer_auth(secret);
        }
        request.send()
    };
    let status_of = |response: reqwest::Response| response.status().as_u16();
    assert_eq!(status_of(post(None, follower).await.expect("send")), 401);
    assert_eq!(
        status_of(post(Some("wrong-secret"), follower).await.expect("send")),
        401
    );
    assert_eq!(
        status_of(post(Some(SECRET), leader).await.expect("send")),
        421
    );
    let answer = post(Some(SECRET), follower).await.expect("send");
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(
        answer.headers()["x-switchyard-node"]
            .to_str()
            .expect("ascii"),
        follower.to_string()
    );
    let probe: switchyard_raft::ProbeResponse = answer.json().await.expect("json");
    assert!(!probe.fresh);

    for id in 1..=3 {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarted_node_catches_up_through_a_snapshot() {
    let (mut cluster, listeners) = TestCluster::new(3, 20).await;
    for (position, listener) in listeners.into_iter().enumerate() {
        cluster.start(position as u64 + 1, listener).await;
    }
    let leader = cluster.leader().await;
    let lagging = (1..=3).find(|id| *id != leader).expect("a follower");
    let first = cluster
        .node(leader)
        .propose(annotation("before the stop".to_owned()))
        .await
        .expect("propose");
    cluster.applied_everywhere(first.index).await;
    let lagging_last_log = cluster.node(lagging).status().last_log_index.expect("log");
    cluster.stop(lagging).await;

    let mut last = first.index;
    for number in 0..100 {
        last = cluster
            .node(leader)
            .propose(annotation(format!("while {lagging} is down: {number}")))
            .await
            .expect("propose with two of three")
            .index;
    }
    // Snapshots are built and the log purged in the background after the writes: wait for it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let leader_status = cluster.node(leader).status();
        if leader_status
            .purged_index
            .is_some_and(|purged| purged > lagging_last_log)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "leader never purged past {lagging_last_log}: {leader_status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    cluster.restart(lagging).await;
    cluster.applied_everywhere(last).await;
    let status = cluster.node(lagging).status();
    let snapshot = status
        .snapshot_index
        .expect("lagging node holds a snapshot");
    assert!(
        snapshot > lagging_last_log,
        "snapshot {snapshot} should cover entries it never received ({lagging_last_log}): {status:?}"
    );
    let head = cluster
        .node(leader)
        .read_state(|state| state.audit().head().to_owned());
    let lagging_state = cluster.node(lagging).read_state(State::clone);
    assert_eq!(lagging_state.audit().head(), head);
    assert_eq!(lagging_state.audit().verify(), Ok(()));
    assert_eq!(lagging_state.annotations().count(), 101);

    for id in 1..=3 {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_majority_bootstraps_and_the_late_node_catches_up() {
    let (mut cluster, listeners) = TestCluster::new(3, 1000).await;
    let mut listeners: Vec<Option<TcpListener>> = listeners.into_iter().map(Some).collect();
    for id in [1, 2] {
        let listener = listeners[id as usize - 1].take().expect("listener");
        cluster.start(id, listener).await;
    }
    let leader = cluster.leader().await;
    let applied = cluster
        .node(leader)
        .propose(annotation("two of three".to_owned()))
        .await
        .expect("a majority commits");
    let late = listeners[2].take().expect("listener");
    cluster.start(3, late).await;
    cluster.applied_everywhere(applied.index).await;
    let head = cluster
        .node(leader)
        .read_state(|state| state.audit().head().to_owned());
    assert_eq!(
        cluster
            .node(3)
            .read_state(|state| state.audit().head().to_owned()),
        head
    );
    for id in 1..=3 {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_lowest_node_rejoins_instead_of_bootstrapping_again() {
    let (mut cluster, listeners) = TestCluster::new(3, 1000).await;
    for (position, listener) in listeners.into_iter().enumerate() {
        cluster.start(position as u64 + 1, listener).await;
    }
    let leader = cluster.leader().await;
    let mut last = 0;
    for number in 0..10 {
        last = cluster
            .node(leader)
            .propose(annotation(format!("note {number}")))
            .await
            .expect("propose")
            .index;
    }
    cluster.applied_everywhere(last).await;
    let members_before = cluster.node(leader).status().members;

    cluster.stop(1).await;
    std::fs::remove_dir_all(&cluster.data_dirs[0]).expect("wipe node 1");
    cluster.restart(1).await;
    // Node 1 is fresh and the lowest voter, but its peers are not fresh: it must not
    // initialize a second cluster, and the existing leader brings it up to date.
    cluster.applied_everywhere(last).await;
    let leader = cluster.leader().await;
    let after = cluster
        .node(leader)
        .propose(annotation("after the wipe".to_owned()))
        .await
        .expect("propose after the wipe");
    cluster.applied_everywhere(after.index).await;
    let states: Vec<State> = cluster
        .running()
        .map(|node| node.read_state(State::clone))
        .collect();
    assert!(states.iter().all(|state| state == &states[0]));
    assert_eq!(states[0].annotations().count(), 11);
    let ids = |members: &[MemberStatus]| {
        members
            .iter()
            .map(|member| (member.node_id, member.voter))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&cluster.node(leader).status().members),
        ids(&members_before)
    );
    for id in 1..=3 {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_data_dir_of_another_cluster_is_refused() {
    let (mut cluster, listeners) = TestCluster::new(1, 1000).await;
    let listener = listeners.into_iter().next().expect("listener");
    cluster.start(1, listener).await;
    cluster.stop(1).await;
    let mut other = cluster.config.clone();
    other.name = "other".to_owned();
    let error = RaftNode::start(RaftNodeConfig {
        node_id: NodeId(1),
        cluster: other,
        data_dir: cluster.data_dirs[0].clone(),
        secret: Secret::new(SECRET).expect("secret"),
    })
    .await
    .expect_err("foreign data dir");
    let message = error.to_string();
    assert!(
        matches!(error, switchyard_raft::RaftError::ForeignDataDir { .. }),
        "{message}"
    );
    assert!(
        message.contains(&cluster.data_dirs[0].display().to_string()),
        "{message}"
    );
    assert!(
        message.contains("\"test\"") && message.contains("\"other\""),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_whole_cluster_restart_rebuilds_the_same_state() {
    // snapshot_every 15 with 40 writes: each node restarts from a snapshot plus a log tail.
    let (mut cluster, listeners) = TestCluster::new(3, 15).await;
    for (position, listener) in listeners.into_iter().enumerate() {
        cluster.start(position as u64 + 1, listener).await;
    }
    let leader = cluster.leader().await;
    let mut last = 0;
    for number in 0..40 {
        last = cluster
            .node(leader)
            .propose(annotation(format!("note {number}")))
            .await
            .expect("propose")
            .index;
    }
    cluster.applied_everywhere(last).await;
    let before = cluster.node(leader).read_state(State::clone);
    for id in 1..=3 {
        cluster.stop(id).await;
    }
    for id in [3, 1, 2] {
        cluster.restart(id).await;
    }
    let leader = cluster.leader().await;
    // Rebuilt from snapshot and log, every replica equals the state before the restart.
    cluster.applied_everywhere(last).await;
    for node in cluster.running() {
        let state = node.read_state(State::clone);
        assert_eq!(state, before, "node {}", node.node_id());
    }
    let after = cluster
        .node(leader)
        .propose(annotation("after the restart".to_owned()))
        .await
        .expect("propose after restart");
    assert!(after.index > last);
    cluster.applied_everywhere(after.index).await;
    let state = cluster.node(leader).read_state(State::clone);
    assert_eq!(state.annotations().count(), 41);
    assert_eq!(state.audit().verify(), Ok(()));
    assert_eq!(
        state.audit().entries()[39].hash,
        before.audit().head(),
        "the chain continues from the head before the restart"
    );
    for id in 1..=3 {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_data_dir_in_use_is_refused() {
    let (mut cluster, listeners) = TestCluster::new(1, 1000).await;
    let listener = listeners.into_iter().next().expect("listener");
    cluster.start(1, listener).await;
    let error = RaftNode::start(RaftNodeConfig {
        node_id: NodeId(1),
        cluster: cluster.config.clone(),
        data_dir: cluster.data_dirs[0].clone(),
        secret: Secret::new(SECRET).expect("secret"),
    })
    .await
    .expect_err("second node on the same data dir");
    assert!(
        matches!(error, switchyard_raft::RaftError::StoreInUse { .. }),
        "{error}"
    );
    // wait_fatal stays pending while the core runs, and resolves once it has stopped.
    let node = cluster.node(1).clone();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), node.wait_fatal())
            .await
            .is_err()
    );
    cluster.stop(1).await;
    let reason = tokio::time::timeout(DEADLINE, node.wait_fatal())
        .await
        .expect("resolves after shutdown");
    assert!(reason.contains("stopped"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_majority_writes_fail_with_no_quorum_then_recover() {
    let (mut cluster, listeners) = TestCluster::new(3, 1000).await;
    for (position, listener) in listeners.into_iter().enumerate() {
        cluster.start(position as u64 + 1, listener).await;
    }
    let leader = cluster.leader().await;
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    for id in &followers {
        cluster.stop(*id).await;
    }
    let started = Instant::now();
    let result = cluster
        .node(leader)
        .propose(annotation("alone".to_owned()))
        .await;
    assert!(
        matches!(result, Err(ProposeError::NoQuorum { .. })),
        "{result:?}"
    );
    assert!(started.elapsed() < switchyard_raft::COMMIT_TIMEOUT + Duration::from_secs(2));
    let read = cluster.node(leader).ensure_linearizable().await;
    assert!(
        matches!(
            read,
            Err(ProposeError::NoQuorum { .. } | ProposeError::ForwardToLeader { .. })
        ),
        "{read:?}"
    );
    for id in &followers {
        cluster.restart(*id).await;
    }
    let leader = cluster.leader().await;
    let applied = cluster
        .node(leader)
        .propose(annotation("majority back".to_owned()))
        .await
        .expect("writes work again");
    cluster.applied_everywhere(applied.index).await;
    for id in 1..=3 {
        cluster.stop(id).await;
    }
}
