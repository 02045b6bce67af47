//! `GET /v1/sites` and `GET /v1/services`: site states with their evidence, and per-site service
//! health, from this node's replica (any authenticated role may read them); `?consistent=true`
//! confirms with a quorum first.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{OriginalUri, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use switchyard_api::{
    EndpointEvidence, NodeVerdict, ObserverEvidence, ServiceObserver, ServiceSiteHealth, Services,
    SiteView, Sites,
};
use switchyard_core::Timestamp;
use switchyard_core::detection::{Detector, EvidenceMatrix, ServiceState, Verdict};
use switchyard_core::id::SiteId;

use super::{AppState, consistent};
use crate::auth::Caller;
use crate::clock::now;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/sites", get(sites))
        .route("/v1/services", get(services))
}

async fn sites(
    State(state): State<AppState>,
    _caller: Caller,
    query: Result<Query<consistent::ReadQuery>, QueryRejection>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = consistent::checked_read(&state, query, &uri.0, &headers).await {
        return response;
    }
    let at = now();
    let sites = state.raft.read_state(|replica| Sites {
        node: state.node,
        applied_index: replica.last_applied_index(),
        configured: replica.detector().is_some(),
        global_outage: replica
            .detector()
            .and_then(|detector| detector.global_outage().map(<[SiteId]>::to_vec)),
        sites: replica
            .detector()
            .map(|detector| site_views(detector, at))
            .unwrap_or_default(),
    });
    axum::Json(sites).into_response()
}

async fn services(
    State(state): State<AppState>,
    _caller: Caller,
    query: Result<Query<consistent::ReadQuery>, QueryRejection>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = consistent::checked_read(&state, query, &uri.0, &headers).await {
        return response;
    }
    let services = state.raft.read_state(|replica| Services {
        node: state.node,
        applied_index: replica.last_applied_index(),
        configured: replica.detector().is_some(),
        services: replica
            .detector()
            .map(|detector| {
                detector
                    .service_health()
                    .into_iter()
                    .map(|health| {
                        let status = detector.service(&health.service, &health.site);
                        ServiceSiteHealth {
                            state: status.map_or(ServiceState::Healthy, |status| status.state),
                            since: status.map_or(Timestamp(0), |status| status.since),
                            down_since: status.and_then(|status| status.down_since),
                            up_since: status.and_then(|status| status.up_since),
                            service: health.service,
                            site: health.site,
                            consensus: health.consensus,
                            observers: health
                                .observers
                                .into_iter()
                                .map(|view| ServiceObserver {
                                    observer_site: view.site,
                                    nodes: view.nodes,
                                    endpoints_down: view.endpoints_down,
                                    endpoints_total: view.endpoints_total,
                                    counts_against: view.counts_against,
                                })
                                .collect(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
    });
    axum::Json(services).into_response()
}

fn site_views(detector: &Detector, at: Timestamp) -> Vec<SiteView> {
    let matrix = detector.evidence_matrix();
    let outage = detector.global_outage().unwrap_or_default();
    detector
        .sites()
        .iter()
        .map(|(site, status)| {
            let members = detector.topology().sites.get(site);
            SiteView {
                site: site.clone(),
                state: status.state,
                since: status.since,
                consensus: status.consensus,
                down_since: status.down_since,
                up_since: status.up_since,
                cooldown_until: detector.cooldown_until(site).filter(|until| *until > at),
                global_outage: outage.contains(site),
                witness: members.is_some_and(|members| members.witness),
                controller_reachable: detector.controller_reachable(site),
                observers: observer_rows(detector, &matrix, site),
            }
        })
        .collect()
}

/// The evidence matrix restricted to `site`'s endpoints, one row per other observer site.
fn observer_rows(
    detector: &Detector,
    matrix: &EvidenceMatrix,
    site: &SiteId,
) -> Vec<ObserverEvidence> {
    let Some(members) = detector.topology().sites.get(site) else {
        return Vec::new();
    };
    matrix
        .observers
        .iter()
        .filter(|(observer, _)| *observer != site)
        .map(|(observer, row)| ObserverEvidence {
            observer_site: observer.clone(),
            counted: row.counted,
            nodes: row.nodes.clone(),
            endpoints: members
                .endpoints
                .iter()
                .filter_map(|endpoint| {
                    let verdict = *row.verdicts.get(endpoint)?;
                    let node_verdicts = row
                        .nodes
                        .iter()
                        .map(|node| match detector.verdict(*node, endpoint) {
                            Some(record) => NodeVerdict {
                                node: *node,
                                verdict: record.verdict,
                                since: Some(record.since),
                                last_error: record.last_error.clone(),
                                latency_ms: record.latency_ms,
                            },
                            None => NodeVerdict {
                                node: *node,
                                verdict: Verdict::Up,
                                since: None,
                                last_error: None,
                                latency_ms: None,
                            },
                        })
                        .collect();
                    Some(EndpointEvidence {
                        endpoint: endpoint.clone(),
                        verdict,
                        node_verdicts,
                    })
                })
                .collect(),
        })
        .collect()
}
