//! `GET /v1/routing` and `POST /v1/routing/changes`: the routing in force with the DNS answers it
//! gives, and changes to it, checked against the safety rules on this replica before they are
//! proposed and again by the state machine when applied.

use axum::Router;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use switchyard_api::{
    ApiError, ErrorCode, NewRoutingChange, RoutingView, RrsetAnswer, ServiceRouting, SiteWeight,
    ZoneAnswers,
};
use switchyard_core::config::Role;
use switchyard_core::routing::{RoutingChange, SafetyViolation};
use switchyard_core::state::{CommandKind, State as Replica};
use switchyard_providers::soa_serial;

use super::respond::{ErrorResponse, authorized_body};
use super::{AppState, consistent, write};
use crate::auth::Caller;
use crate::dns::{answers_index, is_embedded};

/// Longest reason accepted, in bytes (it goes into the audit chain).
const REASON_BYTES_MAX: usize = 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/routing", get(show))
        .route("/v1/routing/changes", post(change))
}

async fn show(
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
    axum::Json(state.raft.read_state(view)).into_response()
}

/// The routing view of one replica.
pub fn view(replica: &Replica) -> RoutingView {
    let routing = replica.routing();
    let config_index = replica.config().map_or(0, |config| config.index);
    let index = answers_index(replica);
    let lost_sites = routing.lost.iter().cloned().collect();
    let Some(config) = replica.config().map(|config| &config.config) else {
        return RoutingView {
            changed_index: routing.changed_index,
            config_index,
            serial: soa_serial(index),
            lost_sites,
            services: Vec::new(),
            zones: Vec::new(),
        };
    };
    let services = config
        .services
        .iter()
        .map(|service| {
            let in_rotation = routing.routing.services.get(&service.id);
            let sites = in_rotation
                .map(|sites| {
                    sites
                        .iter()
                        .map(|(site, weight)| SiteWeight {
                            site: site.clone(),
                            weight: *weight,
                        })
                        .collect()
                })
                .unwrap_or_default();
            let all_sites = service.sites();
            ServiceRouting {
                service: service.id.clone(),
                sites,
                sites_out: all_sites
                    .iter()
                    .filter(|site| in_rotation.is_none_or(|sites| !sites.contains_key(*site)))
                    .cloned()
                    .collect(),
                lost: all_sites.intersection(&routing.lost).cloned().collect(),
            }
        })
        .collect();
    let answers = routing.answers(config);
    let zones = config
        .zones
        .iter()
        .map(|zone| ZoneAnswers {
            zone: zone.name.clone(),
            provider: zone.provider.clone(),
            embedded: is_embedded(config, zone),
            nameservers: zone.nameservers.clone(),
            resolvers: zone.resolvers.clone(),
            rrsets: answers
                .iter()
                .filter(|(key, _)| key.zone == zone.name)
                .map(|(key, rrset)| RrsetAnswer {
                    name: key.name.clone(),
                    record_type: key.record_type,
                    ttl_seconds: rrset.ttl.as_secs(),
                    values: rrset.values.iter().copied().collect(),
                })
                .collect(),
        })
        .collect();
    RoutingView {
        changed_index: routing.changed_index,
        config_index,
        serial: soa_serial(index),
        lost_sites,
        services,
        zones,
    }
}

async fn change(
    State(state): State<AppState>,
    caller: Caller,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let parsed = authorized_body::<NewRoutingChange>(&caller, &[Role::Operator], body)
        .and_then(|(request, body)| check_reason(&request.reason).map(|()| (request, body)));
    let (request, body) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return ErrorResponse(error).into_response(),
    };
    let change = RoutingChange::from(request.change);
    // The first half of the pair check, on this replica: a change the rules refuse now is never
    // proposed. The state machine checks again when it applies the change.
    if let Err(error) = state
        .raft
        .read_state(|replica| check_safety(replica, &change))
    {
        return ErrorResponse(error).into_response();
    }
    let kind = CommandKind::Routing {
        change,
        reason: request.reason,
    };
    let request = write::Forwardable {
        method: Method::POST,
        uri: uri.0,
        headers,
        body,
    };
    write::propose(&state, &caller, kind, request).await
}

fn check_reason(reason: &str) -> Result<(), ApiError> {
    if reason.trim().is_empty() {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "`reason` is empty: say why the routing changes (it goes into the audit log)",
        ));
    }
    if reason.len() > REASON_BYTES_MAX {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!(
                "`reason` is {} bytes, more than the {REASON_BYTES_MAX} allowed",
                reason.len()
            ),
        ));
    }
    Ok(())
}

/// The safety rules on `replica`, as an API refusal naming every rule broken.
fn check_safety(replica: &Replica, change: &RoutingChange) -> Result<(), ApiError> {
    let Some(config) = replica.config() else {
        return Err(ApiError::new(
            ErrorCode::Rejected,
            "no configuration has been applied yet",
        ));
    };
    let routing = replica.routing();
    routing
        .routing
        .with_change(&config.config, change, &routing.lost)
        .map(|_| ())
        .map_err(|violations| refused(&violations))
}

fn refused(violations: &[SafetyViolation]) -> ApiError {
    let rules: Vec<String> = violations.iter().map(ToString::to_string).collect();
    ApiError::new(
        ErrorCode::Rejected,
        format!("routing change refused: {}", rules.join("; ")),
    )
}
