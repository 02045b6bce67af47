//! Node-to-node transport: a reqwest client posting JSON to peers' `/raft/...` routes, and the
//! axum router that serves those routes, both authenticated with the cluster secret.
//!
//! Every request carries `authorization: Bearer <secret>`, `x-switchyard-from: <sender id>` and
//! `x-switchyard-to: <intended receiver id>`. The receiver compares the secret in constant time
//! (401 when wrong or missing), checks the sender is a configured node (401) and that it is the
//! intended receiver (421). It answers with `x-switchyard-node: <own id>`, which the sender
//! checks too, so a peer behind a stale or swapped address is never mistaken for another.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Request, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError as OpenRaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RPCTypes, Raft};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use switchyard_core::state::{Applied, Command};

use crate::store::Store;
use crate::{ProposeError, RaftError, TypeConfig};

pub const HEADER_FROM: &str = "x-switchyard-from";
pub const HEADER_TO: &str = "x-switchyard-to";
pub const HEADER_NODE: &str = "x-switchyard-node";

/// Largest append-entries or vote body accepted.
const RPC_BODY_MAX: usize = 64 * 1024 * 1024;
/// Largest snapshot chunk body accepted; snapshots travel in chunks, but one chunk may be large.
const SNAPSHOT_BODY_MAX: usize = 256 * 1024 * 1024;
/// Deadline for a bootstrap probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The shared cluster secret. It never appears in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Result<Secret, RaftError> {
        let value = value.into();
        if value.is_empty() {
            return Err(RaftError::SecretEmpty { path: None });
        }
        Ok(Secret(Arc::from(value)))
    }

    /// Reads the secret from `path`, ignoring surrounding whitespace (a trailing newline).
    pub fn load(path: &Path) -> Result<Secret, RaftError> {
        let text = std::fs::read_to_string(path).map_err(|source| RaftError::SecretRead {
            path: path.to_owned(),
            source,
        })?;
        let value = text.trim();
        if value.is_empty() {
            return Err(RaftError::SecretEmpty {
                path: Some(path.to_owned()),
            });
        }
        Ok(Secret(Arc::from(value)))
    }

    fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a presented value.
    fn matches(&self, presented: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(presented).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// When each peer was last heard from, by peer id: updated by successful outgoing RPCs and by
/// authenticated incoming ones.
#[derive(Clone, Debug, Default)]
pub(crate) struct Contacts(Arc<Mutex<BTreeMap<u64, Instant>>>);

impl Contacts {
    pub(crate) fn touch(&self, peer: u64) {
        // A poisoned lock only means another thread panicked while inserting an Instant; the
        // map is still usable.
        let mut map = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        map.insert(peer, Instant::now());
    }

    pub(crate) fn since(&self, peer: u64) -> Option<Duration> {
        let map = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        map.get(&peer).map(Instant::elapsed)
    }
}

/// Why a transport call failed before reaching openraft on the other side.
#[derive(Debug, thiserror::Error)]
enum TransportError {
    #[error("peer {target} at {addr} rejected our credentials (401)")]
    Unauthorized { target: u64, addr: String },
    #[error("peer at {addr} is not node {target} (status {status}, node header {found:?})")]
    WrongPeer {
        target: u64,
        addr: String,
        status: u16,
        found: Option<String>,
    },
    #[error("peer {target} at {addr} answered status {status}")]
    Status {
        target: u64,
        addr: String,
        status: u16,
    },
    #[error("peer {target} at {addr}: {source}")]
    Http {
        target: u64,
        addr: String,
        source: reqwest::Error,
    },
}

/// Creates one [`PeerClient`] per replication target.
#[derive(Clone, Debug)]
pub(crate) struct NetworkFactory {
    pub(crate) client: reqwest::Client,
    pub(crate) secret: Secret,
    pub(crate) from: u64,
    pub(crate) contacts: Contacts,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerClient {
        PeerClient {
            client: self.client.clone(),
            secret: self.secret.clone(),
            from: self.from,
            target,
            addr: node.addr.clone(),
            contacts: self.contacts.clone(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct PeerClient {
    client: reqwest::Client,
    secret: Secret,
    from: u64,
    target: u64,
    addr: String,
    contacts: Contacts,
}

/// What went wrong with one call, before it is shaped into openraft's error type.
enum CallError<E> {
    Timeout(Duration),
    Unreachable(TransportError),
    Network(TransportError),
    Remote(E),
}

/// Who sends a request to whom.
struct Link<'a> {
    client: &'a reqwest::Client,
    secret: &'a Secret,
    from: u64,
    target: u64,
    addr: &'a str,
}

/// Posts `body` over `link`, checking who answered.
async fn post_json<Req: Serialize, Resp: DeserializeOwned>(
    link: Link<'_>,
    route: &str,
    body: &Req,
    timeout: Duration,
) -> Result<Resp, CallError<std::convert::Infallible>> {
    let Link {
        client,
        secret,
        from,
        target,
        addr,
    } = link;
    let url = format!("http://{addr}/raft/{route}");
    let http_error = |source: reqwest::Error| TransportError::Http {
        target,
        addr: addr.to_owned(),
        source,
    };
    let response = client
        .post(&url)
        .bearer_auth(secret.expose())
        .header(HEADER_FROM, from.to_string())
        .header(HEADER_TO, target.to_string())
        .timeout(timeout)
        .json(body)
        .send()
        .await
        .map_err(|error| {
            if error.is_timeout() {
                CallError::Timeout(timeout)
            } else {
                // Refused, reset or unresolvable: the peer is down, back off.
                CallError::Unreachable(http_error(error))
            }
        })?;
    let status = response.status();
    let node = response
        .headers()
        .get(HEADER_NODE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    // Auth and identity failures are configuration problems that retrying at once cannot fix,
    // so they are reported as unreachable to make openraft back off instead of spinning.
    if status == StatusCode::UNAUTHORIZED {
        return Err(CallError::Unreachable(TransportError::Unauthorized {
            target,
            addr: addr.to_owned(),
        }));
    }
    if status == StatusCode::MISDIRECTED_REQUEST || node.as_deref() != Some(&target.to_string()) {
        return Err(CallError::Unreachable(TransportError::WrongPeer {
            target,
            addr: addr.to_owned(),
            status: status.as_u16(),
            found: node,
        }));
    }
    // A peer answering 4xx or 5xx (a bad body, a broken store) will not do better if asked
    // again at once: back off too.
    if !status.is_success() {
        return Err(CallError::Unreachable(TransportError::Status {
            target,
            addr: addr.to_owned(),
            status: status.as_u16(),
        }));
    }
    response.json::<Resp>().await.map_err(|error| {
        if error.is_timeout() {
            CallError::Timeout(timeout)
        } else {
            CallError::Network(http_error(error))
        }
    })
}

impl PeerClient {
    async fn call<Req, Resp, E>(
        &mut self,
        action: RPCTypes,
        route: &str,
        body: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, BasicNode, OpenRaftError<u64, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let timeout = option.hard_ttl();
        let link = Link {
            client: &self.client,
            secret: &self.secret,
            from: self.from,
            target: self.target,
            addr: &self.addr,
        };
        let result: Result<Result<Resp, OpenRaftError<u64, E>>, _> =
            post_json(link, route, body, timeout).await;
        let outcome = match result {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(remote)) => Err(CallError::Remote(remote)),
            Err(CallError::Timeout(timeout)) => Err(CallError::Timeout(timeout)),
            Err(CallError::Unreachable(error)) => Err(CallError::Unreachable(error)),
            Err(CallError::Network(error)) => Err(CallError::Network(error)),
            Err(CallError::Remote(never)) => match never {},
        };
        match outcome {
            Ok(response) => {
                self.contacts.touch(self.target);
                Ok(response)
            }
            Err(CallError::Remote(remote)) => {
                self.contacts.touch(self.target);
                Err(RPCError::RemoteError(RemoteError::new(self.target, remote)))
            }
            Err(CallError::Timeout(timeout)) => Err(RPCError::Timeout(Timeout {
                action,
                id: self.from,
                target: self.target,
                timeout,
            })),
            Err(CallError::Unreachable(error)) => {
                tracing::debug!(%error, "raft peer unreachable");
                Err(RPCError::Unreachable(Unreachable::new(&error)))
            }
            Err(CallError::Network(error)) => {
                tracing::debug!(%error, "raft rpc failed");
                Err(RPCError::Network(NetworkError::new(&error)))
            }
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, OpenRaftError<u64>>> {
        self.call(RPCTypes::AppendEntries, "append", &rpc, &option)
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, OpenRaftError<u64, InstallSnapshotError>>,
    > {
        self.call(RPCTypes::InstallSnapshot, "snapshot", &rpc, &option)
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, OpenRaftError<u64>>> {
        self.call(RPCTypes::Vote, "vote", &rpc, &option).await
    }
}

/// A bootstrap probe: "are you fresh, and in my cluster?"
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeRequest {
    pub cluster_name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeResponse {
    pub node_id: u64,
    pub cluster_name: String,
    /// No vote, no log, no snapshot: this node has never been part of a running cluster.
    pub fresh: bool,
}

/// Sends a bootstrap probe to `target` at `addr`.
pub(crate) async fn probe(
    client: &reqwest::Client,
    secret: &Secret,
    from: u64,
    target: u64,
    addr: &str,
    cluster_name: &str,
) -> Option<ProbeResponse> {
    let request = ProbeRequest {
        cluster_name: cluster_name.to_owned(),
    };
    let link = Link {
        client,
        secret,
        from,
        target,
        addr,
    };
    match post_json::<_, ProbeResponse>(link, "bootstrap-probe", &request, PROBE_TIMEOUT).await {
        Ok(response) => Some(response),
        Err(CallError::Unreachable(error) | CallError::Network(error)) => {
            tracing::debug!(%error, "bootstrap probe failed");
            None
        }
        Err(CallError::Timeout(_)) => None,
        Err(CallError::Remote(never)) => match never {},
    }
}

/// Sends `command` to the leader `target` at `addr` (`/raft/propose`) and returns what the
/// leader's `propose` returned. Transport failures become [`ProposeError::LeaderUnreachable`]
/// (or `NoQuorum` on a timeout): the command may or may not have committed.
pub(crate) async fn forward_propose(
    client: &reqwest::Client,
    secret: &Secret,
    from: u64,
    target: u64,
    addr: &str,
    command: &Command,
    timeout: Duration,
) -> Result<Applied, ProposeError> {
    let link = Link {
        client,
        secret,
        from,
        target,
        addr,
    };
    let leader = switchyard_core::NodeId(target);
    match post_json::<_, Result<Applied, ProposeError>>(link, "propose", command, timeout).await {
        Ok(answer) => answer,
        Err(CallError::Timeout(timeout)) => Err(ProposeError::NoQuorum {
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        }),
        Err(CallError::Unreachable(error) | CallError::Network(error)) => {
            Err(ProposeError::LeaderUnreachable {
                leader,
                message: error.to_string(),
            })
        }
        Err(CallError::Remote(never)) => match never {},
    }
}

/// Everything the RPC handlers need.
#[derive(Clone)]
pub(crate) struct RpcState {
    pub(crate) raft: Raft<TypeConfig>,
    pub(crate) store: Store,
    pub(crate) secret: Secret,
    pub(crate) node_id: u64,
    pub(crate) cluster_name: String,
    /// Ids of every configured node; a request from anyone else is refused.
    pub(crate) members: Arc<[u64]>,
    pub(crate) contacts: Contacts,
}

/// Builds the authenticated node-to-node router.
pub(crate) fn router(state: RpcState) -> Router {
    let rpc_routes = Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/bootstrap-probe", post(bootstrap_probe))
        .route("/raft/propose", post(propose))
        .layer(DefaultBodyLimit::max(RPC_BODY_MAX));
    let snapshot_routes = Router::new()
        .route("/raft/snapshot", post(snapshot))
        .layer(DefaultBodyLimit::max(SNAPSHOT_BODY_MAX));
    rpc_routes
        .merge(snapshot_routes)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.parse().ok()
}

async fn authenticate(
    AxumState(state): AxumState<RpcState>,
    request: Request,
    next: Next,
) -> Response {
    let own = HeaderValue::from(state.node_id);
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "));
    let authorized = presented.is_some_and(|token| state.secret.matches(token));
    let from = header_u64(request.headers(), HEADER_FROM);
    let mut response = match (authorized, from) {
        (true, Some(from)) if state.members.contains(&from) => {
            match header_u64(request.headers(), HEADER_TO) {
                Some(to) if to == state.node_id => {
                    state.contacts.touch(from);
                    next.run(request).await
                }
                to => {
                    tracing::warn!(from, ?to, "raft rpc meant for another node");
                    (
                        StatusCode::MISDIRECTED_REQUEST,
                        format!("this is node {}, not {to:?}", state.node_id),
                    )
                        .into_response()
                }
            }
        }
        _ => {
            tracing::warn!(
                ?from,
                "raft rpc rejected: bad credentials or unknown sender"
            );
            (StatusCode::UNAUTHORIZED, "unauthorized").into_response()
        }
    };
    response.headers_mut().insert(HEADER_NODE, own);
    response
}

async fn append(
    AxumState(state): AxumState<RpcState>,
    Json(request): Json<AppendEntriesRequest<TypeConfig>>,
) -> Json<Result<AppendEntriesResponse<u64>, OpenRaftError<u64>>> {
    Json(state.raft.append_entries(request).await)
}

async fn vote(
    AxumState(state): AxumState<RpcState>,
    Json(request): Json<VoteRequest<u64>>,
) -> Json<Result<VoteResponse<u64>, OpenRaftError<u64>>> {
    Json(state.raft.vote(request).await)
}

async fn snapshot(
    AxumState(state): AxumState<RpcState>,
    Json(request): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Json<Result<InstallSnapshotResponse<u64>, OpenRaftError<u64, InstallSnapshotError>>> {
    Json(state.raft.install_snapshot(request).await)
}

/// A command forwarded by a follower: proposed here as if it came from a local caller. A node
/// that is no longer leader answers `ForwardToLeader`, and the sender retries.
async fn propose(
    AxumState(state): AxumState<RpcState>,
    Json(command): Json<Command>,
) -> Json<Result<Applied, ProposeError>> {
    Json(crate::node::client_write(&state.raft, command).await)
}

async fn bootstrap_probe(
    AxumState(state): AxumState<RpcState>,
    Json(request): Json<ProbeRequest>,
) -> Response {
    match state.store.is_fresh() {
        Ok(fresh) => {
            if request.cluster_name != state.cluster_name {
                tracing::warn!(
                    theirs = %request.cluster_name,
                    ours = %state.cluster_name,
                    "bootstrap probe from another cluster"
                );
            }
            Json(ProbeResponse {
                node_id: state.node_id,
                cluster_name: state.cluster_name.clone(),
                fresh,
            })
            .into_response()
        }
        Err(error) => {
            tracing::error!(%error, "cannot read the store to answer a bootstrap probe");
            (StatusCode::INTERNAL_SERVER_ERROR, "store unreadable").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_never_printed() {
        let secret = Secret::new("hunter2").expect("secret");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }

    #[test]
    fn secret_load_trims_and_rejects_empty() {
        let dir = std::env::temp_dir().join(format!("switchyard-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("secret");
        std::fs::write(&path, "  s3cret\n").expect("write");
        let secret = Secret::load(&path).expect("load");
        assert!(secret.matches(b"s3cret"));
        assert!(!secret.matches(b"s3cret\n"));
        assert!(!secret.matches(b"s3cre"));
        std::fs::write(&path, "\n").expect("write");
        assert!(matches!(
            Secret::load(&path),
            Err(RaftError::SecretEmpty { path: Some(_) })
        ));
        assert!(matches!(
            Secret::load(&dir.join("missing")),
            Err(RaftError::SecretRead { .. })
        ));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
