//! The watchdog's messages and its notifiers: what was sent and how it went
//! (a token needed even when reads are public), and a test message on demand.
//! Secrets (passwords, bearer tokens) are in neither.

use super::{
    ApiError, AppState,
    auth::{ControlAccess, TokenAccess},
    blocking, bounded,
    error::responses::*,
};
use crate::{
    store::{AuditEntry, Notification, NotificationFilter, NotificationStatus},
    watchdog::{TestOutcome, WatchdogError},
};
use actix_web::{get, post, web};
use serde::Deserialize;
use std::sync::Arc;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list).service(test);
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NotificationsQuery {
    /// Only messages in this state.
    #[param(inline)]
    status: Option<NotificationStatus>,
    /// Only messages to this notifier.
    notifier: Option<String>,
    /// How many messages, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Only messages with a smaller id: the last id of the previous page.
    #[param(minimum = -9223372036854775808i64, maximum = 9223372036854775807i64)]
    before_id: Option<i64>,
}

/// Messages the watchdog queued, newest first, with how their delivery went.
#[utoipa::path(
    tag = "watchdog",
    params(NotificationsQuery),
    responses(
        (status = 200, description = "Messages, newest first", body = Vec<Notification>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    ),
    security(("bearer" = []))
)]
#[get("/notifications")]
async fn list(
    state: web::Data<AppState>,
    _: TokenAccess,
    q: web::Query<NotificationsQuery>,
) -> Result<web::Json<Vec<Notification>>, ApiError> {
    let q = q.into_inner();
    let filter = NotificationFilter {
        status: q.status,
        notifier: q.notifier,
        limit: bounded("limit", q.limit, 100, 1, 1000)?,
        before_id: q.before_id,
    };
    let store = Arc::clone(&state.store);
    Ok(web::Json(
        blocking(move || Ok(store.list_notifications(&filter)?)).await?,
    ))
}

/// Send a test message through one notifier now and answer how it went:
/// 200 whether it was delivered or not (`status` says which).
#[utoipa::path(
    tag = "watchdog",
    params(("name" = String, Path, description = "The notifier's name, from the config")),
    responses(
        (status = 200, description = "How the delivery went", body = TestOutcome),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
#[post("/notifiers/{name}/test")]
async fn test(
    state: web::Data<AppState>,
    who: ControlAccess,
    name: web::Path<String>,
) -> Result<web::Json<TestOutcome>, ApiError> {
    let name = name.into_inner();
    let result = state.watchdog.test_notifier(&name, &who.0.name).await;
    let (outcome, detail) = match &result {
        Ok(t) if t.status == "sent" => ("ok", format!("sent {}", t.message_id)),
        Ok(t) => (
            "failed",
            format!(
                "{}: {}",
                t.message_id,
                t.error.as_deref().unwrap_or("not delivered")
            ),
        ),
        Err(WatchdogError::UnknownNotifier(_)) => ("refused", "no such notifier".to_owned()),
        Err(e) => ("failed", e.to_string()),
    };
    state
        .audit(AuditEntry {
            actor: who.0.name,
            action: "notifier.test".into(),
            target: Some(name),
            outcome: outcome.into(),
            detail: Some(detail),
        })
        .await;
    match result {
        Ok(t) => Ok(web::Json(t)),
        Err(e @ WatchdogError::UnknownNotifier(_)) => {
            let names = state.watchdog.notifier_names();
            Err(ApiError::NotFound(if names.is_empty() {
                format!("{e}; none is configured ([[notifiers]])")
            } else {
                format!("{e}; the notifiers are: {}", names.join(", "))
            }))
        }
        Err(WatchdogError::Store(e)) => Err(e.into()),
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}
