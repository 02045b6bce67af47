//! `POST /v1/executions`, `GET /v1/executions`, `GET /v1/executions/{id}` and
//! `POST /v1/executions/{id}/abort`: manual runs and drills, their records and timelines, and
//! aborts. A start is checked on the leader's replica with the same rules the state machine
//! applies (`check_start`), so a refusal comes back as a clear 409 before anything is proposed.

use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, Path as UrlPath, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use switchyard_api::{
    ApiError, ErrorCode, ExecutionAbortResult, ExecutionDetail, ExecutionList, ExecutionStarted,
    ExecutionSummary, NewExecution, RecoveryView,
};
use switchyard_core::config::Role;
use switchyard_core::execution::{
    ExecutionAbort, ExecutionId, ExecutionStart, ExecutionState, ExecutionTrigger, check_start,
};
use switchyard_core::state::{Actor, CommandKind, State as Replica};

use super::AppState;
use super::respond::{ErrorResponse, authorized_body, from_body_rejection};
use super::write::Forwardable;
use super::write::{commit, to_leader_first};
use crate::auth::Caller;
use crate::clock::now;

/// Most parameters one start may give (the runbook declares far fewer).
const PARAMETERS_MAX: usize = 64;
/// Longest parameter name or value accepted, in bytes.
const PARAMETER_BYTES_MAX: usize = 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/executions", get(list).post(start))
        .route("/v1/executions/{id}", get(show))
        .route("/v1/executions/{id}/abort", post(abort))
}

async fn start(
    State(state): State<AppState>,
    caller: Caller,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let parsed = authorized_body::<NewExecution>(&caller, &[Role::Operator], body)
        .and_then(|(request, body)| check_parameters(&request).map(|()| (request, body)));
    let (request, body) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return ErrorResponse(error).into_response(),
    };
    let forwardable = Forwardable {
        method: Method::POST,
        uri: uri.0,
        headers,
        body,
    };
    let forwardable = match to_leader_first(&state, forwardable).await {
        Ok(forwardable) => forwardable,
        Err(response) => return response,
    };
    let actor = Actor::Principal(caller.name.clone());
    let prepared = state
        .raft
        .read_state(|replica| prepare(replica, &request, &caller, &actor));
    let start = match prepared {
        Ok(start) => start,
        Err(error) => return ErrorResponse(error).into_response(),
    };
    let (runbook, version) = (start.runbook.clone(), start.version);
    let leader = state.node;
    commit(
        &state,
        &caller,
        CommandKind::ExecutionStarted(start),
        forwardable,
        move |_, applied| ExecutionStarted {
            id: ExecutionId(applied.index),
            runbook,
            version,
            audit_head: applied.audit_head.clone(),
            leader,
        },
    )
    .await
}

fn check_parameters(request: &NewExecution) -> Result<(), ApiError> {
    if request.parameters.len() > PARAMETERS_MAX {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!(
                "{} parameters given, more than the {PARAMETERS_MAX} allowed",
                request.parameters.len()
            ),
        ));
    }
    for (name, value) in &request.parameters {
        if name.len() > PARAMETER_BYTES_MAX || value.len() > PARAMETER_BYTES_MAX {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!("parameter `{name}` is longer than {PARAMETER_BYTES_MAX} bytes"),
            ));
        }
        if name == "site" || name == "execution" {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!(
                    "parameter `{name}` is built in: give the site as `site`, the execution id is assigned"
                ),
            ));
        }
    }
    Ok(())
}

/// The start command for `request`, checked on `replica` with the rules apply uses (the first
/// half of the pair check; the state machine checks again when it applies it).
fn prepare(
    replica: &Replica,
    request: &NewExecution,
    caller: &Caller,
    actor: &Actor,
) -> Result<ExecutionStart, ApiError> {
    let versions = replica.runbook_versions(&request.runbook);
    let Some(latest) = versions.last() else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "no runbook named `{}` has been applied (see `switchyard runbook list`)",
                request.runbook
            ),
        ));
    };
    let version = request.version.unwrap_or(latest.version);
    let principal = caller.name.clone();
    let trigger = if request.drill {
        ExecutionTrigger::Drill { principal }
    } else {
        ExecutionTrigger::Manual { principal }
    };
    let mut parameters = request.parameters.clone();
    parameters.insert("site".to_owned(), request.site.to_string());
    let start = ExecutionStart {
        runbook: request.runbook.clone(),
        version,
        trigger,
        parameters,
        at: now(),
    };
    let config_sites = replica.config().map(|config| {
        config
            .config
            .sites
            .iter()
            .any(|site| site.id == request.site)
    });
    if config_sites == Some(false) {
        return Err(ApiError::new(
            ErrorCode::Rejected,
            format!(
                "site `{}` is not in the cluster configuration",
                request.site
            ),
        ));
    }
    // The id it will most likely get; only `${execution}` templates read it, and apply
    // resolves them again with the real one.
    let index = replica.last_applied_index() + 1;
    check_start(replica, &start, actor, index)
        .map_err(|rejection| ApiError::new(ErrorCode::Rejected, rejection.to_string()))?;
    Ok(start)
}

async fn list(State(state): State<AppState>, _caller: Caller) -> Response {
    let node = state.node;
    let list = state.raft.read_state(|replica| {
        let mut executions: Vec<ExecutionSummary> = replica
            .executions()
            .iter()
            .map(ExecutionSummary::from)
            .collect();
        executions.reverse();
        ExecutionList {
            node,
            applied_index: replica.last_applied_index(),
            executions,
        }
    });
    axum::Json(list).into_response()
}

async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(error) => return ErrorResponse(error).into_response(),
    };
    let node = state.node;
    let detail = state.raft.read_state(|replica| {
        let execution = replica.execution(id)?;
        Some(ExecutionDetail {
            node,
            applied_index: replica.last_applied_index(),
            summary: ExecutionSummary::from(execution),
            recovery: RecoveryView::from(&execution.recovery_times()),
            execution: execution.clone(),
        })
    });
    match detail {
        Some(detail) => axum::Json(detail).into_response(),
        None => ErrorResponse(unknown(id)).into_response(),
    }
}

async fn abort(
    State(state): State<AppState>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let parsed = caller
        .require(&[Role::Operator])
        .and_then(|()| parse_id(&id))
        .and_then(|id| {
            body.map_err(|rejection| from_body_rejection(&rejection))
                .map(|body| (id, body))
        });
    let (id, body) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return ErrorResponse(error).into_response(),
    };
    let forwardable = Forwardable {
        method: Method::POST,
        uri: uri.0,
        headers,
        body,
    };
    let forwardable = match to_leader_first(&state, forwardable).await {
        Ok(forwardable) => forwardable,
        Err(response) => return response,
    };
    let current = state
        .raft
        .read_state(|replica| replica.execution(id).map(|execution| execution.state));
    match current {
        None => return ErrorResponse(unknown(id)).into_response(),
        Some(current) if !current.is_active() => {
            let error = ApiError::new(
                ErrorCode::Rejected,
                format!("execution {id} already ended {current}: nothing to abort"),
            );
            return ErrorResponse(error).into_response();
        }
        Some(_) => {}
    }
    let kind = CommandKind::ExecutionAborted(ExecutionAbort {
        execution: id,
        by: Actor::Principal(caller.name.clone()),
        at: now(),
    });
    let leader = state.node;
    commit(
        &state,
        &caller,
        kind,
        forwardable,
        move |replica, applied| ExecutionAbortResult {
            id,
            state: replica
                .execution(id)
                .map_or(ExecutionState::Aborted, |execution| execution.state),
            index: applied.index,
            audit_head: applied.audit_head.clone(),
            leader,
        },
    )
    .await
}

fn parse_id(text: &str) -> Result<ExecutionId, ApiError> {
    text.parse().map(ExecutionId).map_err(|_| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("`{text}` is not an execution id (a log index, such as 42)"),
        )
    })
}

fn unknown(id: ExecutionId) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no execution {id}"))
}
