//! Control requests refused before their handler ran — no token, a token
//! without the scope, a malformed body, query or path, a body over the
//! limit — are written to the audit trail here, under the same action name
//! their handler uses. A handler that records its own row marks the request
//! (through a task-local flag), so nothing is written twice. Every row is
//! rate-limited (`audit_rate`): refusals of callers without a control token
//! strictly, a control token's rows, refused or not, more loosely.

use super::AppState;
use crate::{config::Scope, store::AuditEntry};
use actix_web::{
    Error,
    body::MessageBody,
    dev::{ResourceDef, ServiceRequest, ServiceResponse, Url},
    http::Method,
    middleware::Next,
    web,
};
use std::cell::Cell;

tokio::task_local! {
    static RECORDED: Cell<bool>;
}

/// Called by `AppState::audit`: this request has its row.
pub fn mark_recorded() {
    let _ = RECORDED.try_with(|c| c.set(true));
}

/// The action name of a control route, one vocabulary for handlers and
/// refusals alike; `None` for a route that changes nothing.
pub fn action_of(method: &Method, pattern: &str) -> Option<&'static str> {
    let m = method.as_str();
    Some(match (m, pattern) {
        ("POST", "/api/v1/sampler/start") => "sampler.start",
        ("POST", "/api/v1/sampler/stop") => "sampler.stop",
        ("POST", "/api/v1/checks") => "check.take",
        ("POST", "/api/v1/services/{name}/start") => "service.start",
        ("POST", "/api/v1/services/{name}/stop") => "service.stop",
        ("POST", "/api/v1/services/{name}/restart") => "service.restart",
        ("POST", "/api/v1/processes") => "process.spawn",
        ("DELETE", "/api/v1/processes/{pid}") => "process.signal",
        ("PATCH", "/api/v1/processes/{pid}") => "process.renice",
        ("POST", "/api/v1/notifiers/{name}/test") => "notifier.test",
        ("POST", "/api/v1/silences") => "silence.create",
        ("DELETE", "/api/v1/silences/{id}") => "silence.delete",
        _ => return None,
    })
}

pub async fn audit_refusals(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    // The router matches the percent-decoded path: so must we, or
    // `/api/v1/%70rocesses/1` would reach the route and miss the audit.
    let url = Url::new(req.uri().clone());
    let path = url.path();
    let pattern = req.request().resource_map().match_pattern(path);
    let Some(action) = pattern.as_deref().and_then(|p| action_of(req.method(), p)) else {
        return next.call(req).await;
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await;
    };
    let (actor, token, trusted) = match state.auth.identify(req.request()) {
        Ok(Some(id)) => (id.name.clone(), Some(id.name), id.scope >= Scope::Control),
        Ok(None) => ("(no token)".to_owned(), None, false),
        Err(_) => ("(invalid token)".to_owned(), None, false),
    };
    let target = pattern.as_deref().and_then(|p| target_of(p, path));
    let (res, recorded) = RECORDED
        .scope(Cell::new(false), async {
            let res = next.call(req).await;
            (res, RECORDED.with(Cell::get))
        })
        .await;
    let (status, why) = match &res {
        Ok(r) => (r.status(), r.response().error().map(ToString::to_string)),
        Err(e) => (e.as_response_error().status_code(), Some(e.to_string())),
    };
    if recorded || status.is_success() {
        return res;
    }
    let (budget, key) = if trusted {
        state.auth.control_budget(&actor)
    } else {
        state.auth.refusal_budget(token.as_deref())
    };
    let detail = why
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("refused").to_owned());
    let outcome = if status.is_server_error() {
        "failed"
    } else {
        "refused"
    };
    let entry = AuditEntry {
        actor,
        action: action.into(),
        target,
        outcome: outcome.into(),
        detail: Some(format!("{} {detail}", status.as_u16())),
    };
    state.audit_within(entry, budget, key).await;
    res
}

/// The values of the route's variable segments, e.g. the pid.
fn target_of(pattern: &str, path: &str) -> Option<String> {
    let def = ResourceDef::new(pattern);
    let mut p = actix_web::dev::Path::new(path);
    if !def.capture_match_info(&mut p) {
        return None;
    }
    let values: Vec<String> = p.iter().map(|(_, v)| v.to_owned()).collect();
    (!values.is_empty()).then(|| values.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_route_has_one_action_name() {
        assert_eq!(
            action_of(&Method::DELETE, "/api/v1/processes/{pid}"),
            Some("process.signal")
        );
        assert_eq!(
            action_of(&Method::POST, "/api/v1/services/{name}/restart"),
            Some("service.restart")
        );
        assert_eq!(
            action_of(&Method::DELETE, "/api/v1/silences/{id}"),
            Some("silence.delete")
        );
        assert_eq!(action_of(&Method::GET, "/api/v1/processes/{pid}"), None);
        assert_eq!(action_of(&Method::GET, "/api/v1/silences"), None);
    }

    #[test]
    fn the_target_is_the_routes_variable_part() {
        assert_eq!(
            target_of("/api/v1/processes/{pid}", "/api/v1/processes/42").as_deref(),
            Some("42")
        );
        assert_eq!(target_of("/api/v1/checks", "/api/v1/checks"), None);
    }
}
