//! `GET /v1/routing` and `POST /v1/routing/changes`: the routing in force and changes to it
//! (issue 5 fills this in).

use axum::Router;

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
