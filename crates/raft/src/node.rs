//! [`RaftNode`]: one controller's Raft member, its store, transport and bootstrap.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    CheckIsLeaderError, ClientWriteError, Fatal, InitializeError, RaftError as OpenRaftError,
};
use openraft::{BasicNode, Config, Raft, ServerState, SnapshotPolicy};
use serde::Serialize;
use switchyard_core::NodeId;
use switchyard_core::config::ClusterConfig;
use switchyard_core::state::{Applied, Command, State};
use tokio::sync::watch;

use crate::network::{self, Contacts, NetworkFactory, RpcState, Secret};
use crate::store::{ClusterIdentity, LogStore, StateMachineStore, Store};
use crate::{ProposeError, RaftError, TypeConfig};

/// How long a proposal or a linearizable read may wait for a majority before `NoQuorum`.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a forwarded proposal may take: the leader's own commit timeout plus the round trip.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(6);
/// Probe rounds before bootstrap gives up (backoff grows to one second: about ten minutes).
const BOOTSTRAP_ROUNDS_MAX: u32 = 600;
/// How long the bootstrapping node waits to win the first election before adding learners.
const FIRST_LEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `start` waits for another holder of the store file to let go of it.
const STORE_BUSY_WAIT: Duration = Duration::from_secs(3);
/// Name of the store file inside the data directory.
pub const STORE_FILE: &str = "raft.redb";

#[derive(Clone, Debug)]
pub struct RaftNodeConfig {
    pub node_id: NodeId,
    pub cluster: ClusterConfig,
    /// Directory holding this node's `raft.redb`; created if missing.
    pub data_dir: PathBuf,
    pub secret: Secret,
}

/// One Raft member. Cheap to clone: all clones share the same node.
#[derive(Clone, Debug)]
pub struct RaftNode {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: NodeId,
    cluster: ClusterConfig,
    raft: Raft<TypeConfig>,
    store: Store,
    state_machine: StateMachineStore,
    secret: Secret,
    client: reqwest::Client,
    contacts: Contacts,
    /// Whether the store was fresh when the node started: only then may it bootstrap.
    fresh_at_start: bool,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode")
            .field("node_id", &self.node_id)
            .field("cluster", &self.cluster.name)
            .field("fresh_at_start", &self.fresh_at_start)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Shutdown,
}

/// A snapshot of this node's view of the Raft group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RaftStatus {
    pub node_id: NodeId,
    pub role: Role,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub last_applied_index: Option<u64>,
    /// Last log index covered by this node's latest snapshot.
    pub snapshot_index: Option<u64>,
    /// Last log index removed from this node's log.
    pub purged_index: Option<u64>,
    /// Every member of the current membership, voters and learners.
    pub members: Vec<MemberStatus>,
    /// Set when the Raft core stopped; the node must then be taken out of service.
    pub fatal: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberStatus {
    pub node_id: NodeId,
    /// Raft address.
    pub addr: String,
    pub voter: bool,
    /// Highest log index known replicated to it (reported by the leader only).
    pub matched_index: Option<u64>,
    /// Milliseconds since this node last exchanged an authenticated RPC with it (`None` for
    /// itself or a peer never heard from).
    pub last_contact_ms: Option<u64>,
}

fn raft_config(cluster: &ClusterConfig) -> Result<Config, RaftError> {
    let millis = |duration: Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    let timings = &cluster.raft;
    let config = Config {
        cluster_name: cluster.name.clone(),
        heartbeat_interval: millis(timings.heartbeat_interval),
        election_timeout_min: millis(timings.election_timeout_min),
        election_timeout_max: millis(timings.election_timeout_max),
        // A snapshot chunk may cross a WAN link: give it as long as an election may take.
        // A chunk's answer waits for the install when it is the last one (decode the state and
        // sync it to disk): an election timeout is too short for a large state on a slow link,
        // and a chunk that always times out would restart the transfer forever.
        install_snapshot_timeout: millis(timings.election_timeout_max).max(30_000),
        snapshot_policy: SnapshotPolicy::LogsSinceLast(timings.snapshot_every),
        // Keep a little log after each snapshot so a briefly lagging follower catches up from
        // the log rather than a full snapshot.
        max_in_snapshot_log_to_keep: timings.snapshot_every / 4,
        // An entry can be large (a runbook with its source, a configuration): a batch of this
        // many must fit the node-to-node body limit (`network::RPC_BODY_MAX`), or a lagging
        // follower would refuse the same oversized batch forever.
        max_payload_entries: 32,
        ..Config::default()
    };
    Ok(config.validate()?)
}

impl RaftNode {
    /// Opens (or creates) the node's store, checks it belongs to this cluster and starts Raft.
    pub async fn start(cfg: RaftNodeConfig) -> Result<RaftNode, RaftError> {
        let RaftNodeConfig {
            node_id,
            cluster,
            data_dir,
            secret,
        } = cfg;
        if cluster.node(node_id).is_none() {
            return Err(RaftError::UnknownNode { node: node_id });
        }
        std::fs::create_dir_all(&data_dir).map_err(|source| RaftError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let path = data_dir.join(STORE_FILE);
        let store = open_store(&path).await?;
        let mut voters: Vec<u64> = cluster.voters().map(|node| node.id.0).collect();
        voters.sort_unstable();
        let expected = ClusterIdentity {
            name: cluster.name.clone(),
            voters,
        };
        match store.cluster_identity()? {
            Some(found) if found != expected => {
                return Err(RaftError::ForeignDataDir {
                    data_dir,
                    expected,
                    found,
                });
            }
            Some(_) => {}
            None => store.save_cluster_identity(&expected)?,
        }
        let fresh_at_start = store.is_fresh()?;
        let config = Arc::new(raft_config(&cluster)?);
        // reqwest is built without a bundled TLS provider and refuses to build a client until
        // one is installed, even for plain HTTP. The server installs ring at start-up; this
        // covers embedders (tests) that did not. Losing the race to another installer is fine.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.election_timeout_min))
            .build()
            .map_err(|source| RaftError::HttpClient { source })?;
        let contacts = Contacts::default();
        let network = NetworkFactory {
            client: client.clone(),
            secret: secret.clone(),
            from: node_id.0,
            contacts: contacts.clone(),
        };
        let state_machine = StateMachineStore::open(store.clone())?;
        let raft = Raft::new(
            node_id.0,
            config,
            network,
            LogStore::new(store.clone()),
            state_machine.clone(),
        )
        .await?;
        tracing::info!(node = %node_id, fresh = fresh_at_start, path = %path.display(), "raft node started");
        Ok(RaftNode {
            inner: Arc::new(Inner {
                node_id,
                cluster,
                raft,
                store,
                state_machine,
                secret,
                client,
                contacts,
                fresh_at_start,
            }),
        })
    }

    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// The node-to-node routes (`/raft/append`, `/raft/vote`, `/raft/snapshot`, `/raft/propose`,
    /// `/raft/bootstrap-probe`), authenticated; serve it on this node's `raft_addr`.
    pub fn rpc_router(&self) -> axum::Router {
        network::router(RpcState {
            raft: self.inner.raft.clone(),
            store: self.inner.store.clone(),
            secret: self.inner.secret.clone(),
            node_id: self.inner.node_id.0,
            cluster_name: self.inner.cluster.name.clone(),
            members: self
                .inner
                .cluster
                .nodes
                .iter()
                .map(|node| node.id.0)
                .collect(),
            contacts: self.inner.contacts.clone(),
        })
    }

    fn members(&self) -> BTreeMap<u64, BasicNode> {
        self.inner
            .cluster
            .voters()
            .map(|node| (node.id.0, BasicNode::new(node.raft_addr.to_string())))
            .collect()
    }

    fn sees_a_cluster(&self) -> bool {
        let metrics = self.inner.raft.metrics();
        let metrics = metrics.borrow();
        metrics.current_leader.is_some()
            || metrics
                .membership_config
                .membership()
                .voter_ids()
                .next()
                .is_some()
    }

    /// Bootstraps a brand-new cluster, safely, with no operator command.
    ///
    /// Only the voter with the lowest id acts, and only if its store was fresh at start. It
    /// probes the other voters (`/raft/bootstrap-probe`, authenticated) until a majority of
    /// voters, itself included, answer that they are fresh members of the same cluster and no
    /// peer answers that it is not fresh; then it calls `initialize` with the configured voters.
    /// A non-fresh peer means the cluster already exists: the node stops and lets the leader
    /// catch it up. It also stops as soon as it sees a leader or a membership. Call it after
    /// the RPC server is listening; it returns when bootstrap is done or not this node's job.
    pub async fn bootstrap_if_fresh(&self) -> Result<(), RaftError> {
        let node_id = self.inner.node_id;
        let lowest = self.inner.cluster.voters().map(|node| node.id).min();
        if lowest != Some(node_id) || !self.inner.fresh_at_start {
            tracing::debug!(node = %node_id, "not bootstrapping: not the lowest fresh voter");
            return Ok(());
        }
        let peers: Vec<(NodeId, String)> = self
            .inner
            .cluster
            .voters()
            .filter(|node| node.id != node_id)
            .map(|node| (node.id, node.raft_addr.to_string()))
            .collect();
        let voter_count = peers.len() + 1;
        let majority = voter_count / 2 + 1;
        let mut backoff = Duration::from_millis(50);
        for round in 1..=BOOTSTRAP_ROUNDS_MAX {
            if self.sees_a_cluster() || !self.inner.store.is_fresh()? {
                tracing::info!(node = %node_id, "cluster already formed; not bootstrapping");
                return Ok(());
            }
            let probes = peers.iter().map(|(peer, addr)| {
                network::probe(
                    &self.inner.client,
                    &self.inner.secret,
                    node_id.0,
                    peer.0,
                    addr,
                    &self.inner.cluster.name,
                )
            });
            let answers = futures::future::join_all(probes).await;
            let mut fresh_count = 1;
            for ((peer, _), answer) in peers.iter().zip(&answers) {
                let Some(answer) = answer else { continue };
                if answer.cluster_name != self.inner.cluster.name {
                    return Err(RaftError::ForeignPeer {
                        peer: *peer,
                        expected: self.inner.cluster.name.clone(),
                        found: answer.cluster_name.clone(),
                    });
                }
                if !answer.fresh {
                    tracing::info!(node = %node_id, peer = %peer, "peer already holds raft state; not bootstrapping");
                    return Ok(());
                }
                fresh_count += 1;
            }
            if fresh_count >= majority {
                return self.initialize().await;
            }
            tracing::info!(
                node = %node_id, round, fresh = fresh_count, majority,
                "waiting for a majority of fresh voters to bootstrap"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
        Err(RaftError::BootstrapGaveUp {
            attempts: BOOTSTRAP_ROUNDS_MAX,
        })
    }

    async fn initialize(&self) -> Result<(), RaftError> {
        let node_id = self.inner.node_id;
        match self.inner.raft.initialize(self.members()).await {
            Ok(()) => tracing::info!(node = %node_id, "initialized a new cluster"),
            Err(OpenRaftError::APIError(InitializeError::NotAllowed(error))) => {
                tracing::info!(node = %node_id, %error, "already initialized");
                return Ok(());
            }
            Err(OpenRaftError::APIError(error)) => {
                // NotInMembers: impossible, this node is one of the voters it passes.
                tracing::error!(node = %node_id, %error, "initialize refused");
                return Ok(());
            }
            Err(OpenRaftError::Fatal(Fatal::Stopped)) => {
                tracing::info!(node = %node_id, "shut down while bootstrapping");
                return Ok(());
            }
            Err(OpenRaftError::Fatal(fatal)) => return Err(fatal.into()),
        }
        self.add_learners().await
    }

    /// Adds the configured non-voters as learners once this node leads the new cluster.
    async fn add_learners(&self) -> Result<(), RaftError> {
        let learners: Vec<_> = self
            .inner
            .cluster
            .nodes
            .iter()
            .filter(|node| !node.voter)
            .collect();
        if learners.is_empty() {
            return Ok(());
        }
        let waited = self
            .inner
            .raft
            .wait(Some(FIRST_LEADER_TIMEOUT))
            .state(ServerState::Leader, "first leader")
            .await;
        if waited.is_err() {
            tracing::warn!(node = %self.inner.node_id, "did not lead the new cluster; its leader adds no learners");
            return Ok(());
        }
        for node in learners {
            let basic = BasicNode::new(node.raft_addr.to_string());
            if let Err(error) = self.inner.raft.add_learner(node.id.0, basic, false).await {
                tracing::warn!(learner = %node.id, %error, "cannot add learner");
            }
        }
        Ok(())
    }

    fn forward(&self, leader: Option<u64>) -> ProposeError {
        forward(leader)
    }

    /// Replicates `command` and returns its result once applied on this (leader) node.
    pub async fn propose(&self, command: Command) -> Result<Applied, ProposeError> {
        client_write(&self.inner.raft, command).await
    }

    /// Proposes `command` here when this node leads, and otherwise sends it to the current
    /// leader over the authenticated node-to-node transport (`/raft/propose`), returning the
    /// leader's answer. Without a known leader it fails with `ForwardToLeader { leader: None }`;
    /// callers retry with backoff. A leader change in flight also fails (`ForwardToLeader`), never
    /// loops: the command is sent at most once per call.
    pub async fn propose_anywhere(&self, command: Command) -> Result<Applied, ProposeError> {
        let status = self.status();
        if status.role == Role::Leader {
            return self.propose(command).await;
        }
        let Some(leader) = status.leader.filter(|leader| *leader != self.inner.node_id) else {
            return Err(self.forward(None));
        };
        let Some(addr) = status
            .members
            .iter()
            .find(|member| member.node_id == leader)
            .map(|member| member.addr.clone())
        else {
            return Err(self.forward(Some(leader.0)));
        };
        network::forward_propose(
            &self.inner.client,
            &self.inner.secret,
            self.inner.node_id.0,
            leader.0,
            &addr,
            &command,
            FORWARD_TIMEOUT,
        )
        .await
    }

    /// Returns once this node is confirmed leader by a majority and has applied everything
    /// committed before the call: a local read after it is linearizable.
    pub async fn ensure_linearizable(&self) -> Result<(), ProposeError> {
        let check = self.inner.raft.ensure_linearizable();
        match tokio::time::timeout(COMMIT_TIMEOUT, check).await {
            Err(_) => Err(ProposeError::NoQuorum {
                timeout_ms: COMMIT_TIMEOUT.as_millis() as u64,
            }),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(OpenRaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward)))) => {
                Err(self.forward(forward.leader_id))
            }
            Ok(Err(OpenRaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)))) => {
                Err(ProposeError::NoQuorum {
                    timeout_ms: COMMIT_TIMEOUT.as_millis() as u64,
                })
            }
            Ok(Err(OpenRaftError::Fatal(fatal))) => {
                tracing::error!(%fatal, "raft core stopped");
                Err(ProposeError::Fatal {
                    message: fatal.to_string(),
                })
            }
        }
    }

    /// Reads this node's replica, which may lag the leader (see `ensure_linearizable`).
    pub fn read_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.inner.state_machine.read().state)
    }

    pub fn status(&self) -> RaftStatus {
        let metrics = self.inner.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, node)| MemberStatus {
                node_id: NodeId(*id),
                addr: node.addr.clone(),
                voter: voters.contains(id),
                matched_index: metrics
                    .replication
                    .as_ref()
                    .and_then(|replication| replication.get(id).cloned().flatten())
                    .map(|log_id| log_id.index),
                last_contact_ms: if *id == self.inner.node_id.0 {
                    None
                } else {
                    self.inner
                        .contacts
                        .since(*id)
                        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
                },
            })
            .collect();
        let role = match metrics.state {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        };
        RaftStatus {
            node_id: self.inner.node_id,
            role,
            leader: metrics.current_leader.map(NodeId),
            term: metrics.current_term,
            last_log_index: metrics.last_log_index,
            last_applied_index: metrics.last_applied.map(|log_id| log_id.index),
            snapshot_index: metrics.snapshot.map(|log_id| log_id.index),
            purged_index: metrics.purged.map(|log_id| log_id.index),
            members,
            fatal: metrics.running_state.err().map(|fatal| fatal.to_string()),
        }
    }

    /// Watches the last applied log index, to react to new commits.
    pub fn subscribe_applied(&self) -> watch::Receiver<u64> {
        self.inner.state_machine.subscribe_applied()
    }

    /// Resolves when the Raft core stops, with the reason: on its own (a storage error or a
    /// panic), the node must then be taken out of service; after `shutdown` the reason says
    /// "stopped". Never resolves while the core runs.
    pub async fn wait_fatal(&self) -> String {
        let mut metrics = self.inner.raft.metrics();
        let reason = metrics
            .wait_for(|metrics| metrics.running_state.is_err())
            .await
            .ok()
            .and_then(|metrics| {
                metrics
                    .running_state
                    .as_ref()
                    .err()
                    .map(ToString::to_string)
            })
            .unwrap_or_else(|| "raft core stopped".to_owned());
        tracing::error!(%reason, "raft core stopped");
        reason
    }

    /// Stops the Raft core. The RPC server should stop serving before or right after.
    pub async fn shutdown(&self) -> Result<(), RaftError> {
        self.inner
            .raft
            .shutdown()
            .await
            .map_err(|error| RaftError::Shutdown {
                message: error.to_string(),
            })
    }

    /// openraft's metrics, for tests and diagnostics inside this crate's users' tests.
    #[doc(hidden)]
    pub fn raft_metrics(&self) -> watch::Receiver<openraft::RaftMetrics<u64, BasicNode>> {
        self.inner.raft.metrics()
    }
}

fn forward(leader: Option<u64>) -> ProposeError {
    ProposeError::ForwardToLeader {
        leader: leader.map(NodeId),
    }
}

/// Replicates `command` through `raft` and returns its result once applied on this (leader)
/// node; shared by [`RaftNode::propose`] and the `/raft/propose` route.
pub(crate) async fn client_write(
    raft: &Raft<TypeConfig>,
    command: Command,
) -> Result<Applied, ProposeError> {
    let write = raft.client_write(command);
    match tokio::time::timeout(COMMIT_TIMEOUT, write).await {
        Err(_) => Err(ProposeError::NoQuorum {
            timeout_ms: COMMIT_TIMEOUT.as_millis() as u64,
        }),
        Ok(Ok(response)) => Ok(response.data),
        Ok(Err(OpenRaftError::APIError(ClientWriteError::ForwardToLeader(forward_to)))) => {
            Err(forward(forward_to.leader_id))
        }
        Ok(Err(OpenRaftError::APIError(ClientWriteError::ChangeMembershipError(error)))) => {
            // Only membership entries can fail this way; a command never does.
            Err(ProposeError::Fatal {
                message: error.to_string(),
            })
        }
        Ok(Err(OpenRaftError::Fatal(fatal))) => {
            tracing::error!(%fatal, "raft core stopped");
            Err(ProposeError::Fatal {
                message: fatal.to_string(),
            })
        }
    }
}

/// Opens the store, waiting a little while another holder lets go of it: the tasks of a node
/// shut down in the same process release it shortly after `shutdown` returns. Another process
/// using the same data directory keeps it, and the node then refuses to start.
async fn open_store(path: &std::path::Path) -> Result<Store, RaftError> {
    let started = std::time::Instant::now();
    loop {
        match Store::open(path) {
            Ok(store) => return Ok(store),
            Err(redb::Error::DatabaseAlreadyOpen) if started.elapsed() < STORE_BUSY_WAIT => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(redb::Error::DatabaseAlreadyOpen) => {
                return Err(RaftError::StoreInUse {
                    path: path.to_owned(),
                });
            }
            Err(source) => {
                return Err(RaftError::StoreOpen {
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
}
