//! The watchdog's rules and their alerts (SPEC §7).

use super::{
    ApiError, AppState,
    auth::ReadAccess,
    blocking, bounded,
    error::{missing, responses::*},
};
use crate::{
    domain::TimeRange,
    store::{Alert, AlertDetail, AlertFilter, AlertState},
    watchdog::RuleView,
};
use actix_web::{get, web};
use serde::Deserialize;
use std::sync::Arc;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(rules).service(list).service(one);
}

/// Each rule, its settings and the state of each of its subjects now.
#[utoipa::path(
    tag = "watchdog",
    responses(
        (status = 200, description = "The configured rules, in config order", body = Vec<RuleView>),
        (status = 401, response = Unauthorized),
    ),
    security((), ("bearer" = []))
)]
#[get("/rules")]
async fn rules(state: web::Data<AppState>, who: ReadAccess) -> web::Json<Vec<RuleView>> {
    let mut rules = state.watchdog.rules();
    if who.0.is_anonymous() {
        // Arguments of exec actions are like a job's: they need a token.
        for a in rules.iter_mut().flat_map(|r| r.actions.iter_mut()) {
            a.args.clear();
        }
    }
    web::Json(rules)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// Only alerts in this state.
    #[param(inline)]
    state: Option<AlertState>,
    /// Only alerts of this rule.
    rule: Option<String>,
    /// Only alerts open at or after this time (not resolved before it), RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Only alerts that started before this time, RFC 3339; not before `since`.
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
    /// How many alerts, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Only alerts with a smaller id: the last id of the previous page.
    #[param(minimum = -9223372036854775808i64, maximum = 9223372036854775807i64)]
    before_id: Option<i64>,
}

/// Alerts, newest first: one per episode of a rule beyond its limit for one subject.
#[utoipa::path(
    tag = "watchdog",
    params(AlertsQuery),
    responses(
        (status = 200, description = "Alerts, newest first", body = Vec<Alert>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    ),
    security((), ("bearer" = []))
)]
#[get("/alerts")]
async fn list(
    state: web::Data<AppState>,
    _: ReadAccess,
    q: web::Query<AlertsQuery>,
) -> Result<web::Json<Vec<Alert>>, ApiError> {
    let q = q.into_inner();
    let filter = AlertFilter {
        state: q.state,
        rule: q.rule,
        window: TimeRange::parse(q.since.as_deref(), q.until.as_deref())?,
        limit: bounded("limit", q.limit, 100, 1, 1000)?,
        before_id: q.before_id,
    };
    let store = Arc::clone(&state.store);
    Ok(web::Json(
        blocking(move || Ok(store.list_alerts(&filter)?)).await?,
    ))
}

/// One alert with its timeline: transitions, notifications and actions,
/// each with attempts and outcome. The alert's own fields are at the top
/// level. For a caller without a token its notifications are null, and so
/// are the outcomes of its exec and restart actions (they hold what a
/// command wrote).
#[utoipa::path(
    tag = "watchdog",
    params(("id" = i64, Path, description = "The alert's id",
        minimum = -9223372036854775808i64, maximum = 9223372036854775807i64)),
    responses(
        (status = 200, description = "The alert and its timeline", body = AlertDetail),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    ),
    security((), ("bearer" = []))
)]
#[get("/alerts/{id}")]
async fn one(
    state: web::Data<AppState>,
    who: ReadAccess,
    id: web::Path<i64>,
) -> Result<web::Json<AlertDetail>, ApiError> {
    let id = id.into_inner();
    let store = Arc::clone(&state.store);
    let mut detail = blocking(move || {
        store
            .alert_detail(id)
            .map_err(|e| missing(e, &format!("no alert has id {id}")))
    })
    .await?;
    if who.0.is_anonymous() {
        detail.notifications = None;
        // An exec action's arguments, environment and job are a job's.
        for a in detail.actions.iter_mut().filter(|a| a.kind == "exec") {
            a.spec.remove("args");
            a.spec.remove("env");
            a.outcome = None;
        }
        // A failed restart's outcome holds the stderr of the service's
        // command, run as root: output as a job's is.
        for a in detail.actions.iter_mut().filter(|a| a.kind == "restart") {
            a.outcome = None;
        }
    }
    Ok(web::Json(detail))
}
