//! Starting, stopping and reading the background sampler.

use super::{
    ApiError, AppState,
    auth::{ControlAccess, ReadAccess},
    error::responses::*,
};
use crate::{
    config::{MAX_INTERVAL, MIN_INTERVAL},
    sampler::SamplerStatus,
    store::AuditEntry,
};
use actix_web::{get, post, web};
use serde::Deserialize;
use std::time::Duration;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(status).service(start).service(stop);
}

/// Optional body of `POST /sampler/start`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// Seconds between checks, 0.01 to 86400 (fractions allowed); a running
    /// sampler takes the new interval from its next check on.
    #[schema(example = 60, minimum = 0.01, maximum = 86400)]
    pub interval_seconds: Option<f64>,
}

/// The sampler's state.
#[utoipa::path(
    tag = "sampler",
    responses(
        (status = 200, description = "The sampler's state", body = SamplerStatus),
        (status = 401, response = Unauthorized),
    ),
    security((), ("bearer" = []))
)]
#[get("/sampler")]
async fn status(state: web::Data<AppState>, _: ReadAccess) -> web::Json<SamplerStatus> {
    web::Json(state.sampler.status())
}

/// Start sampling (a check at once, then every interval). Starting a running
/// sampler changes nothing but the interval given.
#[utoipa::path(
    tag = "sampler",
    // A reference, not `Option<StartRequest>`: the body may be left out, but a
    // JSON `null` is not read as "no body" (400).
    request_body(content = ref("#/components/schemas/StartRequest"), description = "Optional: the interval", content_type = "application/json"),
    responses(
        (status = 200, description = "The sampler's state after starting", body = SamplerStatus),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
#[post("/sampler/start")]
async fn start(
    state: web::Data<AppState>,
    who: ControlAccess,
    body: web::Bytes,
) -> Result<web::Json<SamplerStatus>, ApiError> {
    let parsed = parse_start(&body);
    let (outcome, detail) = match &parsed {
        Ok(Some(i)) => ("ok", Some(format!("interval {}s", i.as_secs_f64()))),
        Ok(None) => ("ok", None),
        Err(e) => ("refused", Some(e.to_string())),
    };
    let result = match parsed {
        Ok(interval) => state.sampler.start(interval).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let outcome = if result.is_err() && outcome == "ok" {
        "failed"
    } else {
        outcome
    };
    state
        .audit(audit_entry(who, "sampler.start", outcome, detail))
        .await;
    result.map(web::Json)
}

/// Stop sampling; a check being written is finished first.
#[utoipa::path(
    tag = "sampler",
    responses(
        (status = 200, description = "The sampler's state after stopping", body = SamplerStatus),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ),
    security(("bearer" = []))
)]
#[post("/sampler/stop")]
async fn stop(state: web::Data<AppState>, who: ControlAccess) -> web::Json<SamplerStatus> {
    let s = state.sampler.stop().await;
    state
        .audit(audit_entry(who, "sampler.stop", "ok", None))
        .await;
    web::Json(s)
}

fn audit_entry(
    who: ControlAccess,
    action: &str,
    outcome: &str,
    detail: Option<String>,
) -> AuditEntry {
    AuditEntry {
        actor: who.0.name,
        action: action.into(),
        target: Some("sampler".into()),
        outcome: outcome.into(),
        detail,
    }
}

/// An empty body means "keep the interval".
fn parse_start(body: &[u8]) -> Result<Option<Duration>, ApiError> {
    // No body at all keeps the interval; a body, even only white space, is
    // JSON or a 400, as the document says.
    if body.is_empty() {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("bad JSON body: {e}")))?;
    // serde reads a struct from an array too (`[null]`): the document says
    // an object, so only an object is taken.
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object, e.g. {\"interval_seconds\": 30}".into(),
        ));
    }
    let req: StartRequest = serde_json::from_value(value)
        .map_err(|e| ApiError::BadRequest(format!("bad JSON body: {e}")))?;
    let Some(secs) = req.interval_seconds else {
        return Ok(None);
    };
    let (lo, hi) = (MIN_INTERVAL.as_secs_f64(), MAX_INTERVAL.as_secs_f64());
    if !secs.is_finite() || secs < lo || secs > hi {
        return Err(ApiError::BadRequest(format!(
            "interval_seconds: {secs} is out of range; use {lo} to {hi}"
        )));
    }
    Ok(Some(Duration::from_secs_f64(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_body_keeps_the_interval() {
        assert_eq!(parse_start(b"").unwrap(), None);
        assert_eq!(parse_start(b" {} ").unwrap(), None);
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        for body in [&b"[null]"[..], b"[30]", b"30", b"null", b"\"x\""] {
            assert!(
                parse_start(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_body_of_white_space_is_not_json() {
        assert!(parse_start(b"\n").is_err());
    }

    #[test]
    fn a_fractional_interval_is_accepted() {
        assert_eq!(
            parse_start(br#"{"interval_seconds": 0.25}"#).unwrap(),
            Some(Duration::from_millis(250))
        );
    }

    #[test]
    fn an_interval_out_of_range_or_unknown_field_is_rejected() {
        assert!(parse_start(br#"{"interval_seconds": 0}"#).is_err());
        assert!(parse_start(br#"{"interval_seconds": 1e9}"#).is_err());
        assert!(parse_start(br#"{"interval": 5}"#).is_err());
        assert!(parse_start(b"{").is_err());
    }
}
