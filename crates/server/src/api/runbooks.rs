//! `POST /v1/runbooks`, `GET /v1/runbooks` and `GET /v1/runbooks/{name}`: runbook versions in the
//! replicated state. A runbook is validated on the leader against the replicated configuration
//! (the one every replica judges with), so what is stored always fits the running cluster.

use std::path::Path;

use axum::Router;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{OriginalUri, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;
use switchyard_api::{
    ApiError, ErrorCode, NewRunbook, RunbookApplied, RunbookDetail, RunbookDiagnostic,
    RunbookInvalid, RunbookList, RunbookSummary,
};
use switchyard_core::config::Role;
use switchyard_core::id::RunbookId;
use switchyard_core::state::{CommandKind, RunbookVersion, runbook_content_hash};
use switchyard_spec::Diagnostic;

use super::AppState;
use super::respond::{ErrorResponse, authorized_body, from_query_rejection};
use super::write::{Forwardable, commit, to_leader_first};
use crate::auth::Caller;

/// File name used in diagnostics when the request names none.
const FILE_DEFAULT: &str = "runbook.yaml";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/runbooks", get(list).post(apply))
        .route("/v1/runbooks/{name}", get(show))
}

async fn apply(
    State(state): State<AppState>,
    caller: Caller,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let parsed = authorized_body::<NewRunbook>(&caller, &[Role::Operator], body);
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
    let file = request.file.as_deref().unwrap_or(FILE_DEFAULT);
    let Some(config) = state
        .raft
        .read_state(|replica| replica.config().map(|config| config.config.clone()))
    else {
        let error = ApiError::new(
            ErrorCode::NoQuorum,
            "no replicated configuration yet: the first leader has not proposed it; retry shortly",
        );
        return ErrorResponse(error).into_response();
    };
    let loaded = switchyard_spec::parse_runbook(Path::new(file), &request.source, &config);
    let runbook = match loaded.value {
        Some(runbook) if !loaded.has_errors() => runbook,
        _ => return invalid(file, &loaded.diagnostics),
    };
    let warnings: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|diagnostic| !diagnostic.is_error())
        .map(ToString::to_string)
        .collect();
    let name = runbook.name.clone();
    let content_hash = runbook_content_hash(&request.source);
    let kind = CommandKind::RunbookApplied {
        runbook: Box::new(runbook),
        source: request.source,
        content_hash: content_hash.clone(),
    };
    let leader = state.node;
    commit(
        &state,
        &caller,
        kind,
        forwardable,
        move |replica, applied| {
            // The command was accepted, so the versions hold one with this text: a new one at this
            // index, or the latest one when the text was unchanged.
            let version = replica
                .runbook_versions(&name)
                .iter()
                .rev()
                .find(|version| version.content_hash == content_hash);
            RunbookApplied {
                name: name.clone(),
                version: version.map_or(0, |version| version.version),
                created: version.is_some_and(|version| version.index == applied.index),
                content_hash: content_hash.clone(),
                index: applied.index,
                leader,
                warnings,
            }
        },
    )
    .await
}

/// The 400 answer for an invalid runbook: every diagnostic, in the message and as a list.
fn invalid(file: &str, diagnostics: &[Diagnostic]) -> Response {
    let errors = diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.is_error());
    let count = errors.clone().count();
    let mut message = format!(
        "runbook {file} is invalid ({count} error{})",
        if count == 1 { "" } else { "s" }
    );
    for diagnostic in diagnostics {
        message.push('\n');
        message.push_str(&diagnostic.to_string());
    }
    let body = RunbookInvalid {
        error: ApiError::new(ErrorCode::BadRequest, message).body().error,
        diagnostics: diagnostics.iter().map(diagnostic_view).collect(),
    };
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

fn diagnostic_view(diagnostic: &Diagnostic) -> RunbookDiagnostic {
    RunbookDiagnostic {
        severity: diagnostic.severity.as_str().to_owned(),
        file: diagnostic.file.display().to_string(),
        line: diagnostic.line,
        column: diagnostic.column,
        message: diagnostic.message.clone(),
        hint: diagnostic.hint.clone(),
        rendered: diagnostic.to_string(),
    }
}

async fn list(State(state): State<AppState>, _caller: Caller) -> Response {
    let node = state.node;
    let list = state.raft.read_state(|replica| RunbookList {
        node,
        applied_index: replica.last_applied_index(),
        runbooks: replica.runbooks().map(summary).collect(),
    });
    axum::Json(list).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShowQuery {
    version: Option<u32>,
}

async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    UrlPath(name): UrlPath<String>,
    query: Result<Query<ShowQuery>, QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return ErrorResponse(from_query_rejection(&rejection)).into_response(),
    };
    let name = RunbookId::new(name);
    let detail = state.raft.read_state(|replica| {
        let version = replica.runbook(&name, query.version)?;
        Some(RunbookDetail {
            summary: summary(version),
            versions: replica
                .runbook_versions(&name)
                .iter()
                .map(|version| version.version)
                .collect(),
            index: version.index,
            source: version.source.clone(),
            runbook: version.runbook.clone(),
        })
    });
    match detail {
        Some(detail) => axum::Json(detail).into_response(),
        None => {
            let message = match query.version {
                Some(version) => format!("runbook `{name}` has no version {version}"),
                None => format!("no runbook named `{name}` has been applied"),
            };
            ErrorResponse(ApiError::new(ErrorCode::NotFound, message)).into_response()
        }
    }
}

fn summary(version: &RunbookVersion) -> RunbookSummary {
    let runbook = &version.runbook;
    RunbookSummary {
        name: runbook.name.clone(),
        description: runbook.description.clone(),
        version: version.version,
        content_hash: version.content_hash.clone(),
        author: version.author.clone(),
        applied_at: version.applied_at,
        pre_approved: runbook.pre_approved,
        triggers: runbook
            .triggers
            .iter()
            .map(|trigger| trigger.kind().to_owned())
            .collect(),
        rto_ms: runbook.rto.map(switchyard_api::duration_millis),
        steps: runbook.steps.len(),
    }
}
