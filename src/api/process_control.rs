//! Acting on processes: spawn, signal and renice, each audited.

use super::{ApiError, AppState, auth::ControlAccess, error::responses::*, processes::pid_of};
use crate::{
    control::{self, spawn::SpawnRequest},
    domain::{
        Nice, Pid, Signal,
        time::{parse_duration, parse_instant},
    },
    store::AuditEntry,
};
use actix_web::{HttpResponse, delete, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(spawn).service(signal).service(renice);
}

/// What to start: a program and its arguments, never a shell line.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpawnBody {
    /// A path, or a name looked up on the agent's PATH; it must be allowed by `control.spawn_allow`.
    #[schema(example = "/bin/echo")]
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Working directory (default, also when empty: the agent's).
    pub cwd: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Spawned {
    pub pid: u32,
    /// Read the job at `/api/v1/jobs/{job_id}`.
    pub job_id: i64,
}

/// Start a command directly (no shell); its exit and output are kept as a job.
#[utoipa::path(
    tag = "processes",
    request_body = SpawnBody,
    responses(
        (status = 201, description = "Started", body = Spawned),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 500, response = Internal),
    ),
    security(("bearer" = []))
)]
#[post("/processes")]
async fn spawn(
    state: web::Data<AppState>,
    who: ControlAccess,
    body: web::Json<SpawnBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let req = SpawnRequest {
        command: body.command,
        args: body.args,
        cwd: body.cwd.filter(|c| !c.is_empty()),
        env: Default::default(),
    };
    let target = format!("{} {}", req.command, req.args.join(" "))
        .trim_end()
        .to_owned();
    let result = state.spawner.spawn(&who.0.name, req).await;
    let (outcome, detail) = match &result {
        Ok((pid, job)) => ("ok", format!("pid {pid}, job {job}")),
        Err(control::ControlError::Forbidden(why) | control::ControlError::BadRequest(why)) => {
            ("refused", why.clone())
        }
        Err(e) => ("failed", e.to_string()),
    };
    state
        .audit(entry(who, "process.spawn", target, outcome, detail))
        .await;
    let (pid, job_id) = result?;
    Ok(HttpResponse::Created().json(Spawned { pid, job_id }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SignalQuery {
    /// TERM (default), KILL, INT, HUP, QUIT, USR1, USR2, STOP or CONT; also
    /// read in lower case and with a `SIG` prefix.
    #[param(value_type = Option<crate::domain::Signal>, inline)]
    signal: Option<String>,
    /// Wait up to this long, at most 60s (e.g. `5s` or `500ms`), for the process to be gone.
    // White space is Rust's (`str::trim`), which the parser applies.
    #[param(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(([0-9]|[1-5][0-9]|60)s|([0-9]{1,4}|[1-5][0-9]{4}|60000)ms)[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    wait: Option<String>,
    /// The process's `create_time` as the process list gave it (RFC 3339):
    /// when the pid now belongs to a process started at another time (the
    /// listed one ended and its pid was reused), nothing is signalled and
    /// the answer is 409.
    #[param(value_type = Option<String>, format = DateTime)]
    started: Option<String>,
}

#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct Signalled {
    pub pid: u32,
    pub signal: String,
    /// With `wait`: whether the process was gone before the wait ran out.
    pub gone: Option<bool>,
}

/// Send a signal to a process. PID 1, the agent and its ancestors are refused.
#[utoipa::path(
    tag = "processes",
    params(("pid" = i32, Path, description = "The process id", minimum = 1, maximum = 2147483647), SignalQuery),
    responses(
        (status = 200, description = "The signal was sent", body = Signalled),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
    ),
    security(("bearer" = []))
)]
#[delete("/processes/{pid}")]
async fn signal(
    state: web::Data<AppState>,
    who: ControlAccess,
    pid: web::Path<String>,
    q: web::Query<SignalQuery>,
) -> Result<web::Json<Signalled>, ApiError> {
    let parsed = parse_signal(&pid, &q);
    let target = pid.to_string();
    let (pid, sig, wait, started) = match parsed {
        Ok(v) => v,
        Err(e) => {
            state
                .audit(entry(
                    who,
                    "process.signal",
                    target,
                    "refused",
                    e.to_string(),
                ))
                .await;
            return Err(e);
        }
    };
    let opened = control::Target::open(pid, None);
    let target = describe(pid, &opened);
    let checked = opened.and_then(|t| match started {
        Some(s) => t.expect_started(s).map(|()| t),
        None => Ok(t),
    });
    let (result, gone) = match checked.and_then(|t| t.signal(sig).map(|()| t)) {
        Ok(t) => match wait {
            Some(limit) => (Ok(()), Some(t.wait_gone(limit).await)),
            None => (Ok(()), None),
        },
        Err(e) => (Err(e), None),
    };
    let (outcome, detail) = outcome_of(
        &result,
        format!(
            "SIG{}{}",
            sig.name(),
            gone.map_or(String::new(), |g| format!(", gone: {g}"))
        ),
    );
    state
        .audit(entry(who, "process.signal", target, outcome, detail))
        .await;
    result?;
    Ok(web::Json(Signalled {
        pid: pid.get(),
        signal: sig.name().into(),
        gone,
    }))
}

type SignalArgs = (Pid, Signal, Option<Duration>, Option<DateTime<Utc>>);

fn parse_signal(pid: &str, q: &SignalQuery) -> Result<SignalArgs, ApiError> {
    let pid = pid_of(pid)?;
    let started = q
        .started
        .as_deref()
        .map(|s| parse_instant("started", s))
        .transpose()?;
    let sig = q.signal.as_deref().unwrap_or("TERM").parse::<Signal>()?;
    let wait = q.wait.as_deref().map(parse_duration).transpose()?;
    if wait.is_some_and(|w| w > Duration::from_secs(60)) {
        return Err(ApiError::BadRequest("wait: at most 60s".into()));
    }
    Ok((pid, sig, wait, started))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReniceBody {
    /// -20 (most favoured) to 19.
    #[schema(example = 10, minimum = -20, maximum = 19)]
    #[serde(deserialize_with = "whole_number")]
    pub nice: i64,
}

/// `10` or `10.0`: one number to JSON Schema, so both are the integer the
/// document asks for; `10.5` is not.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        // i64::MAX as f64 is 2^63, one past the range.
        Some(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => Ok(f as i64),
        _ => Err(serde::de::Error::custom(format!(
            "{n} is not a whole number"
        ))),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Reniced {
    pub pid: u32,
    /// The nice value as read back.
    pub nice: i32,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReniceQuery {
    /// The process's `create_time` as the process list gave it (RFC 3339):
    /// when the pid now belongs to a process started at another time,
    /// nothing is reniced and the answer is 409.
    #[param(value_type = Option<String>, format = DateTime)]
    started: Option<String>,
}

/// Change a process's nice value. PID 1, the agent and its ancestors are refused.
#[utoipa::path(
    tag = "processes",
    params(("pid" = i32, Path, description = "The process id", minimum = 1, maximum = 2147483647), ReniceQuery),
    request_body = ReniceBody,
    responses(
        (status = 200, description = "The new nice value", body = Reniced),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 500, response = Internal),
    ),
    security(("bearer" = []))
)]
#[patch("/processes/{pid}")]
async fn renice(
    state: web::Data<AppState>,
    who: ControlAccess,
    pid: web::Path<String>,
    q: web::Query<ReniceQuery>,
    body: web::Json<ReniceBody>,
) -> Result<web::Json<Reniced>, ApiError> {
    let parsed = pid_of(&pid).and_then(|p| {
        let started = q
            .started
            .as_deref()
            .map(|s| parse_instant("started", s))
            .transpose()?;
        Ok((p, Nice::new(body.nice)?, started))
    });
    let (pid, nice, started) = match parsed {
        Ok(v) => v,
        Err(e) => {
            state
                .audit(entry(
                    who,
                    "process.renice",
                    pid.to_string(),
                    "refused",
                    e.to_string(),
                ))
                .await;
            return Err(e);
        }
    };
    let opened = control::Target::open(pid, None);
    let target = describe(pid, &opened);
    let result = opened.and_then(|t| {
        if let Some(s) = started {
            t.expect_started(s)?;
        }
        t.renice(nice)
    });
    let (outcome, detail) = outcome_of(&result, format!("nice {}", nice.get()));
    state
        .audit(entry(who, "process.renice", target, outcome, detail))
        .await;
    Ok(web::Json(Reniced {
        pid: pid.get(),
        nice: result?,
    }))
}

fn describe(pid: Pid, t: &Result<control::Target, control::ControlError>) -> String {
    match t {
        Ok(t) if !t.description().is_empty() => format!("pid {} ({})", pid.get(), t.description()),
        _ => format!("pid {}", pid.get()),
    }
}

fn outcome_of<T>(
    r: &Result<T, control::ControlError>,
    ok_detail: String,
) -> (&'static str, String) {
    match r {
        Ok(_) => ("ok", ok_detail),
        Err(control::ControlError::Forbidden(why) | control::ControlError::Replaced(why)) => {
            ("refused", why.clone())
        }
        Err(e) => ("failed", e.to_string()),
    }
}

fn entry(
    who: ControlAccess,
    action: &str,
    target: String,
    outcome: &str,
    detail: String,
) -> AuditEntry {
    AuditEntry {
        actor: who.0.name,
        action: action.into(),
        target: Some(target),
        outcome: outcome.into(),
        detail: Some(detail),
    }
}
