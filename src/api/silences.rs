//! Silences: a rule, or one of its subjects, whose notifications and actions
//! are recorded as silenced until a time. Every change is audited.

use super::{
    ApiError, AppState,
    auth::{ControlAccess, ReadAccess},
    blocking,
    error::{Problem, missing, responses::*},
};
use crate::{
    domain::time::{parse_duration, parse_instant, rfc3339},
    store::{AuditEntry, NewSilence, Silence},
};
use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create).service(list).service(remove);
}

/// Longest subject and comment, in bytes.
const MAX_TEXT: usize = 256;
/// Furthest a silence may reach.
const MAX_AHEAD: chrono::TimeDelta = chrono::TimeDelta::days(365);

/// A silence to make: give exactly one of `until` and `for`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceBody {
    /// A configured rule's name.
    #[schema(example = "runaway-worker")]
    pub rule: String,
    /// One subject of the rule, as its alerts name it (at most 256 bytes);
    /// leave it out (or empty) to silence every subject. An empty `until`,
    /// `for` or `comment` is one left out too.
    #[schema(max_length = 256)]
    pub subject: Option<String>,
    /// When the silence ends, RFC 3339: in the future, at most a year ahead.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<String>,
    /// How long from now, e.g. `2h` or `30m`: at most a year.
    #[serde(rename = "for")]
    #[schema(example = "2h")]
    pub for_: Option<String>,
    /// Why, for whoever reads it later (at most 256 bytes).
    #[schema(max_length = 256)]
    pub comment: Option<String>,
}

impl SilenceBody {
    /// The silence it asks for, if every value holds.
    fn parse(mut self, rules: &[String], now: DateTime<Utc>) -> Result<NewSilence, String> {
        // An empty field, as a form sends it, is a field left out.
        for v in [
            &mut self.subject,
            &mut self.until,
            &mut self.for_,
            &mut self.comment,
        ] {
            if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
                *v = None;
            }
        }
        if !rules.contains(&self.rule) {
            return Err(if rules.is_empty() {
                format!("rule: no rule is named '{}'; none is configured", self.rule)
            } else {
                format!(
                    "rule: no rule is named '{}'; the rules are: {}",
                    self.rule,
                    rules.join(", ")
                )
            });
        }
        let until = match (self.until.as_deref(), self.for_.as_deref()) {
            (Some(_), Some(_)) | (None, None) => {
                return Err("give exactly one of `until` (a time) and `for` (e.g. 2h)".into());
            }
            (Some(t), None) => parse_instant("until", t).map_err(|e| e.0)?,
            (None, Some(d)) => {
                let d = parse_duration(d).map_err(|e| format!("for: {}", e.0))?;
                chrono::TimeDelta::from_std(d)
                    .ok()
                    .and_then(|d| now.checked_add_signed(d))
                    .filter(|_| !d.is_zero())
                    .ok_or_else(|| "for: use a duration from 1s to 365d".to_owned())?
            }
        };
        if until <= now {
            return Err(format!(
                "until: {} is not in the future; a silence needs an end ahead of now",
                rfc3339(until)
            ));
        }
        if until > now + MAX_AHEAD {
            return Err(format!(
                "until: {} is over a year ahead; silence at most 365d",
                rfc3339(until)
            ));
        }
        for (name, v) in [("subject", &self.subject), ("comment", &self.comment)] {
            match v {
                Some(s) if s.len() > MAX_TEXT => {
                    return Err(format!(
                        "{name}: {} bytes is over the limit of {MAX_TEXT}",
                        s.len()
                    ));
                }
                _ => {}
            }
        }
        Ok(NewSilence {
            rule: self.rule,
            subject: self.subject,
            until,
            created_by: String::new(),
            comment: self.comment,
        })
    }
}

/// Silence a rule (or one of its subjects) until a time.
#[utoipa::path(
    tag = "watchdog",
    request_body = SilenceBody,
    responses(
        (status = 201, description = "The silence, in force", body = Silence),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, description = "1,000 silences are in force already: delete one first",
            body = Problem, content_type = "application/problem+json"),
        (status = 415, response = UnsupportedMediaType),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
#[post("/silences")]
async fn create(
    state: web::Data<AppState>,
    who: ControlAccess,
    body: web::Json<SilenceBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    // The audit cuts it to its bound.
    let target = body.rule.clone();
    let rules = state.watchdog.rule_names();
    let result = match body.parse(&rules, Utc::now()) {
        Ok(mut new) => {
            new.created_by = who.0.name.clone();
            let store = Arc::clone(&state.store);
            blocking(move || Ok(store.create_silence(&new)?)).await
        }
        Err(why) => Err(ApiError::BadRequest(why)),
    };
    if result.is_ok() {
        state.watchdog.silences_changed();
    }
    let (outcome, detail) = match &result {
        Ok(s) => (
            "ok",
            format!(
                "silence {} of {} until {}",
                s.id,
                s.subject.as_deref().unwrap_or("every subject"),
                rfc3339(s.until)
            ),
        ),
        Err(e @ (ApiError::BadRequest(_) | ApiError::Conflict(_))) => ("refused", e.to_string()),
        Err(e) => ("failed", e.to_string()),
    };
    state
        .audit(AuditEntry {
            actor: who.0.name,
            action: "silence.create".into(),
            target: Some(target),
            outcome: outcome.into(),
            detail: Some(detail),
        })
        .await;
    Ok(HttpResponse::Created().json(result?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SilencesQuery {
    /// Include silences that have run out (until the next one made purges them).
    expired: Option<bool>,
}

/// Silences in force, newest first.
#[utoipa::path(
    tag = "watchdog",
    params(SilencesQuery),
    responses(
        (status = 200, description = "Silences, newest first", body = Vec<Silence>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    ),
    security((), ("bearer" = []))
)]
#[get("/silences")]
async fn list(
    state: web::Data<AppState>,
    _: ReadAccess,
    q: web::Query<SilencesQuery>,
) -> Result<web::Json<Vec<Silence>>, ApiError> {
    let expired = q.expired.unwrap_or(false);
    let store = Arc::clone(&state.store);
    Ok(web::Json(
        blocking(move || Ok(store.list_silences(expired)?)).await?,
    ))
}

/// End a silence now.
#[utoipa::path(
    tag = "watchdog",
    params(("id" = i64, Path, description = "The silence's id",
        minimum = -9223372036854775808i64, maximum = 9223372036854775807i64)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
#[delete("/silences/{id}")]
async fn remove(
    state: web::Data<AppState>,
    who: ControlAccess,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let store = Arc::clone(&state.store);
    let result = blocking(move || {
        store
            .delete_silence(id)
            .map_err(|e| missing(e, &format!("no silence has id {id}")))
    })
    .await;
    if result.is_ok() {
        state.watchdog.silences_changed();
    }
    let (outcome, detail) = match &result {
        Ok(s) => (
            "ok",
            format!(
                "silence of {} {} until {}",
                s.rule,
                s.subject.as_deref().unwrap_or("(every subject)"),
                rfc3339(s.until)
            ),
        ),
        Err(e @ ApiError::NotFound(_)) => ("refused", e.to_string()),
        Err(e) => ("failed", e.to_string()),
    };
    state
        .audit(AuditEntry {
            actor: who.0.name,
            action: "silence.delete".into(),
            target: Some(id.to_string()),
            outcome: outcome.into(),
            detail: Some(detail),
        })
        .await;
    result.map(|_| HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(until: Option<&str>, for_: Option<&str>) -> SilenceBody {
        SilenceBody {
            rule: "r".into(),
            subject: None,
            until: until.map(Into::into),
            for_: for_.map(Into::into),
            comment: None,
        }
    }

    #[test]
    fn a_silence_needs_exactly_one_end_ahead_of_now_and_within_a_year() {
        let now = Utc::now();
        let rules = ["r".to_owned()];
        let e = body(Some("2099-01-01T00:00:00Z"), Some("2h"))
            .parse(&rules, now)
            .unwrap_err();
        assert!(e.contains("exactly one"), "{e}");
        assert!(body(None, None).parse(&rules, now).is_err());
        let e = body(Some("2020-01-01T00:00:00Z"), None)
            .parse(&rules, now)
            .unwrap_err();
        assert!(e.contains("not in the future"), "{e}");
        assert!(body(None, Some("400d")).parse(&rules, now).is_err());
        assert!(body(None, Some("0s")).parse(&rules, now).is_err());
        let ok = body(None, Some("2h")).parse(&rules, now).unwrap();
        assert_eq!(ok.until, now + chrono::TimeDelta::hours(2));
    }

    #[test]
    fn a_silence_of_an_unknown_rule_or_with_a_long_comment_is_refused() {
        let now = Utc::now();
        let e = body(None, Some("1h")).parse(&[], now).unwrap_err();
        assert!(e.contains("no rule is named 'r'"), "{e}");
        let mut b = body(None, Some("1h"));
        b.comment = Some("x".repeat(257));
        let e = b.parse(&["r".to_owned()], now).unwrap_err();
        assert!(e.starts_with("comment: 257 bytes"), "{e}");
    }
}
