//! One metric over time, and a window's summary. Registered before
//! `/checks/{id}` so that `/checks/summary` is not read as an id.

use super::{ApiError, AppState, auth::ReadAccess, blocking, bounded, error::responses::*};
use crate::{
    domain::{Metric, TimeRange, time::parse_duration},
    store::{HistoryPoint, SeriesBucket, Summary},
};
use actix_web::{get, web};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use std::sync::Arc;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(summary).service(history).service(series);
}

/// Most buckets a series answers, so one request stays cheap.
const MAX_BUCKETS: i64 = 10_000;
/// The longest step, the largest the document's pattern admits (999999d):
/// past any retention, and far from where bucket arithmetic could overflow.
const MAX_STEP_MS: i64 = 999_999 * 86_400_000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// How many values, 1–10000 (default 60).
    #[param(minimum = 1, maximum = 10000)]
    size: Option<u32>,
    /// For `disk`: the mount point (default `/`).
    mount: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// Start, RFC 3339 (default: one hour before `until`); not after `until` (equal ends: an empty window).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// End, excluded, RFC 3339 (default: now).
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
    /// Bucket width, 1s or more, such as `30s`, `1m` or `1h` (default `5m`); the
    /// window may hold at most 10000 buckets. Also read: other units
    /// (`ms`, `us`, `ns`, `w`, `M`, `y` and long names) and sums such as `1h30m`.
    // White space is Rust's (`str::trim`), which the parser applies.
    #[param(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([1-9][0-9]{0,5}(s|m|h|d)|[1-9][0-9]{0,2}000ms)[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    step: Option<String>,
    /// For `disk`: the mount point (default `/`).
    mount: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// Start, RFC 3339 (default: all stored checks); not after `until` (equal ends: an empty window).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// End, excluded, RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
    /// The filesystem the disk figures are about (default `/`).
    mount: Option<String>,
}

/// The last `size` values of one metric, oldest first. Raw checks answer
/// while there are enough of them; older values, where raw checks are
/// purged, are hourly averages, and each value says its `resolution`.
#[utoipa::path(
    tag = "checks",
    params(("metric" = inline(super::openapi::MetricName), Path, description = "The metric"), HistoryQuery),
    responses(
        (status = 200, description = "Values, oldest first", body = Vec<HistoryPoint>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    ),
    security((), ("bearer" = []))
)]
#[get("/checks/{metric}/history")]
async fn history(
    state: web::Data<AppState>,
    _: ReadAccess,
    metric: web::Path<String>,
    q: web::Query<HistoryQuery>,
) -> Result<web::Json<Vec<HistoryPoint>>, ApiError> {
    let metric = Metric::parse(&metric, q.mount.as_deref())?;
    let size = bounded("size", q.size, 60, 1, 10_000)?;
    let store = Arc::clone(&state.store);
    Ok(web::Json(
        blocking(move || Ok(store.history(&metric, size)?)).await?,
    ))
}

/// Minimum, average, maximum and count of one metric per `step` over a
/// window. A step of an hour or more is answered from hourly roll-ups, its
/// buckets starting at the hour `since` falls in; a shorter step from raw
/// checks, and from roll-ups only where raw checks are purged. An hour
/// counts wholly in the bucket its start falls in; each bucket says its
/// `resolution`.
#[utoipa::path(
    tag = "checks",
    params(("metric" = inline(super::openapi::MetricName), Path, description = "The metric"), SeriesQuery),
    responses(
        (status = 200, description = "Buckets in time order; buckets without checks are left out", body = Vec<SeriesBucket>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    ),
    security((), ("bearer" = []))
)]
#[get("/checks/{metric}/series")]
async fn series(
    state: web::Data<AppState>,
    _: ReadAccess,
    metric: web::Path<String>,
    q: web::Query<SeriesQuery>,
) -> Result<web::Json<Vec<SeriesBucket>>, ApiError> {
    let metric = Metric::parse(&metric, q.mount.as_deref())?;
    let (since, until, step_ms) = buckets_of(
        q.since.as_deref(),
        q.until.as_deref(),
        q.step.as_deref(),
        MAX_BUCKETS,
    )?;
    let store = Arc::clone(&state.store);
    Ok(web::Json(
        blocking(move || Ok(store.series(&metric, since, until, step_ms)?)).await?,
    ))
}

/// A series window and step from a query: `since` defaults to an hour
/// before `until` (now), `step` to 5 m; the step and the bucket count are
/// bounded so one request stays cheap.
pub(super) fn buckets_of(
    since: Option<&str>,
    until: Option<&str>,
    step: Option<&str>,
    max_buckets: i64,
) -> Result<(DateTime<Utc>, DateTime<Utc>, i64), ApiError> {
    let range = TimeRange::parse(since, until)?;
    let until = range.until.unwrap_or_else(Utc::now);
    let since = range.since.unwrap_or(until - Duration::hours(1));
    if since > until {
        return Err(ApiError::BadRequest(
            "since must not be after until (default: now)".into(),
        ));
    }
    let step = step.map(parse_duration).transpose()?;
    let step_ms = step.map_or(300_000, |d| d.as_millis().min(i64::MAX as u128) as i64);
    if !(1000..=MAX_STEP_MS).contains(&step_ms) {
        return Err(ApiError::BadRequest("step: use 1s to 999999d".into()));
    }
    // Unsigned and rounded up without an overflow, whatever the step.
    let span = (until - since).num_milliseconds().max(1) as u64;
    let buckets = span.div_ceil(step_ms as u64);
    if buckets > max_buckets as u64 {
        return Err(ApiError::BadRequest(format!(
            "step: {buckets} buckets are too many (at most {max_buckets}); use a larger step or a shorter window"
        )));
    }
    Ok((since, until, step_ms))
}

/// Count, first and last time, min/avg/max of cpu, memory and disk, and each
/// service's availability and probe latency over a window. Whole hours are
/// read from hourly roll-ups and the window's ends from raw checks, so the
/// figures equal those of the raw checks; where raw checks are purged, hours
/// count whole. `resolution` says whether roll-ups were used.
#[utoipa::path(
    tag = "checks",
    params(SummaryQuery),
    responses(
        (status = 200, description = "The window's summary", body = Summary),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    ),
    security((), ("bearer" = []))
)]
#[get("/checks/summary")]
async fn summary(
    state: web::Data<AppState>,
    _: ReadAccess,
    q: web::Query<SummaryQuery>,
) -> Result<web::Json<Summary>, ApiError> {
    let range = TimeRange::parse(q.since.as_deref(), q.until.as_deref())?;
    let mount = q.mount.clone().unwrap_or_else(|| "/".into());
    let store = Arc::clone(&state.store);
    Ok(web::Json(
        blocking(move || Ok(store.summary(range, &mount)?)).await?,
    ))
}
