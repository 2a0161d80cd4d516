//! Live views: the host now (`/system`) and the agent itself (`/self`).

use super::{ApiError, AppState, auth::ReadAccess, blocking, error::responses::*};
use crate::collect::{AgentStats, SystemReader, SystemSnapshot};
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
        (status = 503, response = Unavailable),
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
        with_system(&state.system, SystemReader::snapshot).ok_or_else(|| {
            ApiError::Unavailable(
                "the host reader has been busy for 500 ms (a mounted filesystem that does not \
                 answer?); try again later"
                    .into(),
            )
        })
    })
    .await
    .map(web::Json)
}

/// How long a request waits for the host reader another request holds.
const SYSTEM_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs `f` on the host reader, waiting a while for it when another request
/// holds it (a snapshot takes about a millisecond). A reader busy for longer
/// (a `statvfs` stuck on a hung network mount, say) must not take every
/// request's thread with it: then `None`.
pub(super) fn with_system<T>(
    reader: &std::sync::Mutex<SystemReader>,
    f: impl FnOnce(&mut SystemReader) -> T,
) -> Option<T> {
    use std::sync::TryLockError;
    let end = std::time::Instant::now() + SYSTEM_WAIT;
    loop {
        match reader.try_lock() {
            Ok(mut r) => return Some(f(&mut r)),
            Err(TryLockError::Poisoned(p)) => return Some(f(&mut p.into_inner())),
            Err(TryLockError::WouldBlock) if std::time::Instant::now() < end => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(TryLockError::WouldBlock) => {
                tracing::warn!(
                    "the host reader has been busy for 500 ms (a hung mount?): answering without it"
                );
                return None;
            }
        }
    }
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
