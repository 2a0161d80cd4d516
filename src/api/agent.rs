//! Live views: the host now (`/system`) and the agent itself (`/self`).

use super::{ApiError, AppState, auth::ReadAccess, blocking, error::responses::*};
use crate::collect::{AgentStats, SystemSnapshot};
use actix_web::{get, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(system).service(agent);
}

/// The agent's footprint and its database.
#[derive(Debug, Serialize, ToSchema)]
pub struct SelfReport {
    #[serde(flatten)]
    pub process: AgentStats,
    pub version: &'static str,
    pub database_path: String,
    /// Database file plus its write-ahead log, in bytes.
    pub database_bytes: u64,
    pub checks_stored: u64,
}

/// A live snapshot of the host; not stored.
#[utoipa::path(
    tag = "host",
    responses(
        (status = 200, description = "The host now", body = SystemSnapshot),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    ),
    security((), ("bearer" = []))
)]
#[get("/system")]
async fn system(
    state: web::Data<AppState>,
    _: ReadAccess,
) -> Result<web::Json<SystemSnapshot>, ApiError> {
    let state = state.into_inner();
    blocking(move || {
        let mut reader = state.system.lock().unwrap_or_else(|p| p.into_inner());
        Ok(reader.snapshot())
    })
    .await
    .map(web::Json)
}

/// The agent itself: pid, uptime, CPU, memory, threads, fds, I/O, database.
#[utoipa::path(
    tag = "host",
    path = "/self",
    responses(
        (status = 200, description = "The agent's own figures", body = SelfReport),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    ),
    security((), ("bearer" = []))
)]
#[get("/self")]
async fn agent(
    state: web::Data<AppState>,
    _: ReadAccess,
) -> Result<web::Json<SelfReport>, ApiError> {
    let state = state.into_inner();
    blocking(move || {
        let process = state
            .agent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .read()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(SelfReport {
            process,
            version: env!("CARGO_PKG_VERSION"),
            database_path: state.store.path().display().to_string(),
            database_bytes: state.store.size_bytes(),
            checks_stored: state.store.count_checks()?,
        })
    })
    .await
    .map(web::Json)
}
