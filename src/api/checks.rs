//! Stored checks: take one now, list them, the latest, one by id.

use super::{
    ApiError, AppState,
    auth::{ControlAccess, ReadAccess},
    blocking, bounded,
    error::{missing, responses::*},
};
use crate::{
    domain::{Check, TimeRange},
    store::AuditEntry,
};
use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use std::sync::Arc;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    // Fixed paths before `/checks/{id}`, which would take any segment.
    cfg.service(take)
        .service(list)
        .service(latest)
        .service(by_id);
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Oldest time included, RFC 3339 (e.g. `2026-11-22T01:00:00Z`); not after `until` (equal ends: an empty window).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Newest time, excluded, RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
    /// How many checks, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Only checks with a smaller id: the last id of the previous page.
    #[param(minimum = -9223372036854775808i64, maximum = 9223372036854775807i64)]
    before_id: Option<i64>,
}

/// Take one check now, store it and return it.
#[utoipa::path(
    tag = "checks",
    responses(
        (status = 201, description = "The check, as stored", body = Check),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
#[post("/checks")]
async fn take(state: web::Data<AppState>, who: ControlAccess) -> Result<HttpResponse, ApiError> {
    let result = state.sampler.take_check(&state.shutdown).await;
    let (outcome, detail) = match &result {
        Ok(Some(k)) => ("ok", k.id.map(|id| format!("check {id}"))),
        Ok(None) => ("failed", Some("the agent is shutting down".to_owned())),
        Err(e) => ("failed", Some(e.to_string())),
    };
    state
        .audit(AuditEntry {
            actor: who.0.name,
            action: "check.take".into(),
            target: None,
            outcome: outcome.into(),
            detail,
        })
        .await;
    match result? {
        Some(check) => Ok(HttpResponse::Created().json(check)),
        None => Err(ApiError::Unavailable("the agent is shutting down".into())),
    }
}

/// Stored checks, newest first.
#[utoipa::path(
    tag = "checks",
    params(ListQuery),
    responses(
        (status = 200, description = "Checks, newest first", body = Vec<Check>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    ),
    security((), ("bearer" = []))
)]
#[get("/checks")]
async fn list(
    state: web::Data<AppState>,
    _: ReadAccess,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let range = TimeRange::parse(q.since.as_deref(), q.until.as_deref())?;
    let limit = bounded("limit", q.limit, 100, 1, 1000)?;
    let before = q.before_id;
    let store = Arc::clone(&state.store);
    super::blocking_json(move || Ok(store.checks(range, limit, before)?)).await
}

/// The newest check.
#[utoipa::path(
    tag = "checks",
    responses(
        (status = 200, description = "The newest check", body = Check),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    ),
    security((), ("bearer" = []))
)]
#[get("/checks/latest")]
async fn latest(state: web::Data<AppState>, _: ReadAccess) -> Result<web::Json<Check>, ApiError> {
    let store = Arc::clone(&state.store);
    blocking(move || {
        store
            .latest_check()
            .map_err(|e| missing(e, "no check is stored yet; POST /api/v1/checks takes one"))
    })
    .await
    .map(web::Json)
}

/// One check by id.
#[utoipa::path(
    tag = "checks",
    params(("id" = i64, Path, description = "The check's id",
        minimum = -9223372036854775808i64, maximum = 9223372036854775807i64)),
    responses(
        (status = 200, description = "The check", body = Check),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    ),
    security((), ("bearer" = []))
)]
#[get("/checks/{id}")]
async fn by_id(
    state: web::Data<AppState>,
    _: ReadAccess,
    id: web::Path<i64>,
) -> Result<web::Json<Check>, ApiError> {
    let id = id.into_inner();
    let store = Arc::clone(&state.store);
    blocking(move || {
        store
            .check(id)
            .map_err(|e| missing(e, &format!("no check has id {id}")))
    })
    .await
    .map(web::Json)
}
