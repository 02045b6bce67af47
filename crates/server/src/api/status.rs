//! `GET /v1/health` and `GET /v1/status`: liveness, and this node's view of the cluster.

use axum::extract::rejection::QueryRejection;
use axum::extract::{OriginalUri, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use switchyard_api::{Health, LeaderInfo, Member, Role, Status};
use switchyard_core::id::NodeId;
use switchyard_raft::Role as RaftRole;

use super::{AppState, consistent};
use crate::auth::Caller;

pub async fn health(State(state): State<AppState>) -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".to_owned(),
        node: state.node,
    })
}

pub async fn status(
    State(state): State<AppState>,
    _caller: Caller,
    query: Result<Query<consistent::ReadQuery>, QueryRejection>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Response {
    let _query = match consistent::checked_read(&state, query, &uri.0, &headers).await {
        Ok(query) => query,
        Err(response) => return response,
    };
    axum::Json(current(&state)).into_response()
}

pub fn current(state: &AppState) -> Status {
    let raft = state.raft.status();
    let site_of = |node: NodeId| state.config.node(node).map(|found| found.site.clone());
    let members = state
        .config
        .nodes
        .iter()
        .map(|node| {
            let progress = raft.members.iter().find(|member| member.node_id == node.id);
            Member {
                node: node.id,
                site: node.site.clone(),
                voter: node.voter,
                api_addr: node.api_addr.to_string(),
                last_contact_ms: progress.and_then(|member| member.last_contact_ms),
                matched_index: progress.and_then(|member| member.matched_index),
            }
        })
        .collect();
    Status {
        cluster: state.config.name.clone(),
        node: state.node,
        site: site_of(state.node).unwrap_or_else(|| "?".into()),
        role: match raft.role {
            RaftRole::Leader => Role::Leader,
            RaftRole::Follower => Role::Follower,
            RaftRole::Candidate => Role::Candidate,
            RaftRole::Learner => Role::Learner,
            RaftRole::Shutdown => Role::Shutdown,
        },
        leader: raft
            .leader
            .and_then(|leader| site_of(leader).map(|site| LeaderInfo { node: leader, site })),
        term: raft.term,
        last_log_index: raft.last_log_index,
        last_applied_index: raft.last_applied_index,
        snapshot_index: raft.snapshot_index,
        purged_index: raft.purged_index,
        members,
        audit_head: state
            .raft
            .read_state(|machine| machine.audit().head().to_owned()),
    }
}
