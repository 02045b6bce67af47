//! `GET /v1/sites` and `GET /v1/services`: site states with their evidence, per-site service
//! health (issue 4 fills this in).

use axum::Router;

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
