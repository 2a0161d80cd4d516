//! Watched services: their state now, their recent states, and actions.

use super::{
    ApiError, AppState,
    auth::{ControlAccess, ReadAccess},
    blocking, bounded,
    error::responses::*,
};
use crate::{
    services::{Action, ServiceView},
    store::{AuditEntry, ServicePoint},
};
use actix_web::{get, post, web};
use serde::Deserialize;
use std::sync::Arc;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(one)
        .service(history)
        .service(start)
        .service(stop)
        .service(restart);
}

/// Every watched service and its state now.
#[utoipa::path(
    tag = "services",
    responses(
        (status = 200, description = "Each watched service, probed now", body = Vec<ServiceView>),
        (status = 401, response = Unauthorized),
    ),
    security((), ("bearer" = []))
)]
#[get("/services")]
async fn list(state: web::Data<AppState>, who: ReadAccess) -> web::Json<Vec<ServiceView>> {
    let anonymous = who.0.is_anonymous();
    let views = state.services.recent_views().await;
    web::Json(views.into_iter().map(|v| private(v, anonymous)).collect())
}

/// What a status command wrote to stderr, run as root, is like a job's
/// output: it needs a token.
fn private(mut v: ServiceView, anonymous: bool) -> ServiceView {
    if anonymous {
        v.detail = v.public_detail.clone();
    }
    v
}

/// One watched service and its state now.
#[utoipa::path(
    tag = "services",
    params(("name" = String, Path, description = "The service's name in the config: 1 to 64 letters, digits, `.`, `_`, `@` or `-`, but not `.` or `..`",
        pattern = r"^([A-Za-z0-9_@-][A-Za-z0-9._@-]{0,63}|\.[A-Za-z0-9_@-][A-Za-z0-9._@-]{0,62}|\.\.[A-Za-z0-9._@-]{1,62})$")),
    responses(
        (status = 200, description = "The service, probed now", body = ServiceView),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ),
    security((), ("bearer" = []))
)]
#[get("/services/{name}")]
async fn one(
    state: web::Data<AppState>,
    who: ReadAccess,
    name: web::Path<String>,
) -> Result<web::Json<ServiceView>, ApiError> {
    let view = state.services.view(&name).await?;
    Ok(web::Json(private(view, who.0.is_anonymous())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// How many checks, 1–10000 (default 60).
    #[param(minimum = 1, maximum = 10000)]
    size: Option<u32>,
}

/// The service's state in the last `size` checks, oldest first.
#[utoipa::path(
    tag = "services",
    params(("name" = String, Path, description = "The service's name in the config: 1 to 64 letters, digits, `.`, `_`, `@` or `-`, but not `.` or `..`",
        pattern = r"^([A-Za-z0-9_@-][A-Za-z0-9._@-]{0,63}|\.[A-Za-z0-9_@-][A-Za-z0-9._@-]{0,62}|\.\.[A-Za-z0-9._@-]{1,62})$"), HistoryQuery),
    responses(
        (status = 200, description = "States, oldest first", body = Vec<ServicePoint>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    ),
    security((), ("bearer" = []))
)]
#[get("/services/{name}/history")]
async fn history(
    state: web::Data<AppState>,
    _: ReadAccess,
    name: web::Path<String>,
    q: web::Query<HistoryQuery>,
) -> Result<web::Json<Vec<ServicePoint>>, ApiError> {
    let size = bounded("size", q.size, 60, 1, 10_000)?;
    // 404 for a name that is not watched, whatever old checks hold.
    state.services.view_settings(&name)?;
    let store = Arc::clone(&state.store);
    let name = name.into_inner();
    Ok(web::Json(
        blocking(move || Ok(store.service_history(&name, size)?)).await?,
    ))
}

/// Start the service and wait (bounded by its timeout) until it runs.
#[utoipa::path(
    tag = "services",
    params(("name" = String, Path, description = "The service's name in the config: 1 to 64 letters, digits, `.`, `_`, `@` or `-`, but not `.` or `..`",
        pattern = r"^([A-Za-z0-9_@-][A-Za-z0-9._@-]{0,63}|\.[A-Za-z0-9_@-][A-Za-z0-9._@-]{0,62}|\.\.[A-Za-z0-9._@-]{1,62})$")),
    responses(
        (status = 200, description = "The service, now running", body = ServiceView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 502, response = BadGateway),
        (status = 504, response = GatewayTimeout),
    ),
    security(("bearer" = []))
)]
#[post("/services/{name}/start")]
async fn start(
    state: web::Data<AppState>,
    who: ControlAccess,
    name: web::Path<String>,
) -> Result<web::Json<ServiceView>, ApiError> {
    act(&state, who, &name, Action::Start).await
}

/// Stop the service and wait (bounded by its timeout) until it has stopped.
#[utoipa::path(
    tag = "services",
    params(("name" = String, Path, description = "The service's name in the config: 1 to 64 letters, digits, `.`, `_`, `@` or `-`, but not `.` or `..`",
        pattern = r"^([A-Za-z0-9_@-][A-Za-z0-9._@-]{0,63}|\.[A-Za-z0-9_@-][A-Za-z0-9._@-]{0,62}|\.\.[A-Za-z0-9._@-]{1,62})$")),
    responses(
        (status = 200, description = "The service, now stopped", body = ServiceView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 502, response = BadGateway),
        (status = 504, response = GatewayTimeout),
    ),
    security(("bearer" = []))
)]
#[post("/services/{name}/stop")]
async fn stop(
    state: web::Data<AppState>,
    who: ControlAccess,
    name: web::Path<String>,
) -> Result<web::Json<ServiceView>, ApiError> {
    act(&state, who, &name, Action::Stop).await
}

/// Restart the service and wait (bounded by its timeout) until it runs again.
#[utoipa::path(
    tag = "services",
    params(("name" = String, Path, description = "The service's name in the config: 1 to 64 letters, digits, `.`, `_`, `@` or `-`, but not `.` or `..`",
        pattern = r"^([A-Za-z0-9_@-][A-Za-z0-9._@-]{0,63}|\.[A-Za-z0-9_@-][A-Za-z0-9._@-]{0,62}|\.\.[A-Za-z0-9._@-]{1,62})$")),
    responses(
        (status = 200, description = "The service, running again", body = ServiceView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 502, response = BadGateway),
        (status = 504, response = GatewayTimeout),
    ),
    security(("bearer" = []))
)]
#[post("/services/{name}/restart")]
async fn restart(
    state: web::Data<AppState>,
    who: ControlAccess,
    name: web::Path<String>,
) -> Result<web::Json<ServiceView>, ApiError> {
    act(&state, who, &name, Action::Restart).await
}

async fn act(
    state: &AppState,
    who: ControlAccess,
    name: &str,
    action: Action,
) -> Result<web::Json<ServiceView>, ApiError> {
    let result = state.services.act(name, action).await;
    let (outcome, detail) = match &result {
        Ok(v) => ("ok", Some(format!("state {}", v.state.as_str()))),
        Err(
            crate::services::ServiceError::NotFound(_) | crate::services::ServiceError::Busy(_),
        ) => ("refused", result.as_ref().err().map(ToString::to_string)),
        Err(e) => ("failed", Some(e.to_string())),
    };
    state
        .audit(AuditEntry {
            actor: who.0.name,
            action: format!("service.{}", action.as_str()),
            target: Some(name.to_owned()),
            outcome: outcome.into(),
            detail,
        })
        .await;
    Ok(web::Json(result?))
}
