//! `GET /api/v1/remote-write`: each receiver's queue (SPEC §8, "Push").

use super::{ApiError, AppState, auth::ReadAccess, blocking, error::responses::*};
use crate::remote_write::ReceiverState;
use actix_web::{get, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(receivers);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RemoteWriteReceivers {
    /// In the order of `[[remote_write]]` in the config; empty when none.
    pub receivers: Vec<RemoteWriteReceiver>,
}

/// One receiver; counts are since the agent started.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemoteWriteReceiver {
    pub name: String,
    /// `scheme://host:port/…` (the path is not shown); only to a token
    /// holder.
    pub endpoint: Option<String>,
    pub state: ReceiverState,
    pub interval_seconds: f64,
    pub max_backlog_seconds: f64,
    /// How long the oldest check not yet sent has waited (0: none waits).
    pub backlog_seconds: f64,
    /// Samples up to this time have been sent (or skipped).
    pub sent_until: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    /// Since when requests fail or are refused; absent while they succeed.
    pub failing_since: Option<DateTime<Utc>>,
    /// The latest failure or refusal, as the receiver or the network said
    /// it; only to a token holder.
    pub last_error: Option<String>,
    pub samples_sent: u64,
    /// Samples of failed requests, each sent again: none is dropped.
    pub samples_failed: u64,
    /// Samples of requests refused with a 4xx other than 429.
    pub samples_rejected: u64,
    pub retries: u64,
    /// Checks older than `max_backlog` when the receiver came back, or
    /// stamped before what was already sent (the clock stepped back).
    pub checks_skipped: u64,
}

/// Remote-write receivers: where each stands and what it was sent. A
/// public read (no token) gets no endpoint and no error text, which come
/// from the config and the receiver, not from the host.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Each receiver's queue", body = RemoteWriteReceivers),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    ),
    security((), ("bearer" = []))
)]
#[get("/remote-write")]
async fn receivers(
    state: web::Data<AppState>,
    who: ReadAccess,
) -> Result<web::Json<RemoteWriteReceivers>, ApiError> {
    let state = Arc::clone(&state);
    let holder = who.0.name != super::auth::ANONYMOUS;
    let receivers = blocking(move || {
        let mut out = Vec::new();
        for r in state.remote_write.receivers() {
            let p = r.progress();
            let backlog = r.backlog_seconds(&state.store, &p)?;
            out.push(RemoteWriteReceiver {
                name: r.name.clone(),
                endpoint: holder.then(|| r.endpoint.clone()),
                state: r.state(&p, backlog),
                interval_seconds: r.interval.as_secs_f64(),
                max_backlog_seconds: r.max_backlog.as_secs_f64(),
                backlog_seconds: backlog,
                sent_until: p
                    .cursor
                    .map(|c| c.sent_until)
                    .filter(|t| *t > DateTime::<Utc>::UNIX_EPOCH),
                last_success: p.last_success,
                failing_since: p.failing_since,
                last_error: p.last_error.filter(|_| holder),
                samples_sent: p.samples_sent,
                samples_failed: p.samples_failed,
                samples_rejected: p.samples_rejected,
                retries: p.retries,
                checks_skipped: p.checks_skipped,
            });
        }
        Ok(out)
    })
    .await?;
    Ok(web::Json(RemoteWriteReceivers { receivers }))
}
