//! The audit trail of control actions.

use super::{ApiError, AppState, auth::ControlAccess, blocking, bounded, error::responses::*};
use crate::store::AuditRecord;
use actix_web::{get, web};
use serde::Deserialize;
use std::sync::Arc;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list);
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// How many rows, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Only rows with a smaller id: the last id of the previous page.
    #[param(minimum = -9223372036854775808i64, maximum = 9223372036854775807i64)]
    before_id: Option<i64>,
}

/// Every control action, allowed or refused, newest first.
#[utoipa::path(
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "Audit rows, newest first", body = Vec<AuditRecord>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    ),
    security(("bearer" = []))
)]
#[get("/audit")]
async fn list(
    state: web::Data<AppState>,
    _: ControlAccess,
    q: web::Query<AuditQuery>,
) -> Result<web::Json<Vec<AuditRecord>>, ApiError> {
    let limit = bounded("limit", q.limit, 100, 1, 1000)?;
    let before = q.before_id;
    let store = Arc::clone(&state.store);
    Ok(web::Json(
        blocking(move || Ok(store.audit(limit, before)?)).await?,
    ))
}
