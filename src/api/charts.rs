//! Every metric over one window in one request: what a page of synced
//! charts draws (the dashboard's one fetch per range or zoom), instead of
//! a request per metric and per mount.

use super::{
    ApiError, AppState, auth::ReadAccess, blocking, error::responses::*, history::buckets_of,
};
use crate::{domain::Metric, store::SeriesBucket};
use actix_web::{get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::{sync::Arc, time::Duration};
use tokio::sync::Semaphore;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(all_series);
}

/// The most mounts one answer charts; a host with more (containers' or
/// users' FUSE mounts) gets the shallowest first and `more_mounts`.
const MAX_MOUNTS: usize = 32;
/// Buckets per series: enough for a chart a 4K screen wide at one bucket
/// per 2 px, and it bounds an answer (36 series) to about 10 MB of JSON.
const MAX_BUCKETS: i64 = 2_000;
/// Raw checks read for one answer, shared among its series: as much as
/// one metric's series may read.
const MAX_RAW_ROWS: i64 = crate::store::MAX_RAW_ROWS;
/// Answers built at once; others wait, then hear 503. Each can hold
/// megabytes and a database reader for a second, and anyone may ask.
const AT_ONCE: usize = 2;
const WAIT: Duration = Duration::from_secs(5);
static LANE: Semaphore = Semaphore::const_new(AT_ONCE);

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AllSeriesQuery {
    /// Start, RFC 3339 (default: one hour before `until`); not after `until` (equal ends: an empty window).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// End, excluded, RFC 3339 (default: now).
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
    /// Bucket width, as for one metric's series (default `5m`); the window
    /// may hold at most 2000 buckets.
    // The same pattern as `history::SeriesQuery::step` (an attribute takes
    // only a literal).
    #[param(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([1-9][0-9]{0,5}(s|m|h|d)|[1-9][0-9]{0,2}000ms)[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    step: Option<String>,
}

/// One metric's buckets; `mount` for a disk.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricSeries {
    /// `cpu`, `memory`, `swap`, `load1` or `disk`.
    #[schema(example = "disk")]
    pub metric: &'static str,
    /// The mount point, for `disk`.
    pub mount: Option<String>,
    /// Buckets in time order; buckets without checks are left out.
    pub buckets: Vec<SeriesBucket>,
}

/// Every metric over one window, bucketed alike.
#[derive(Debug, Serialize, ToSchema)]
pub struct AllSeries {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub step_seconds: f64,
    /// cpu, memory, swap, load1, then one `disk` per mount with checks in
    /// the window, by path.
    pub series: Vec<MetricSeries>,
    /// More mounts had checks in the window than the 32 charted (the
    /// shallowest paths are charted: `/`, then `/var`, before `/home/u/x`).
    pub more_mounts: bool,
}

/// Minimum, average, maximum and count per `step` of cpu, memory, swap,
/// load1 and each mount's disk use, over one window: the buckets and their
/// `resolution` follow the same rules as one metric's series, with at most
/// 2000 buckets a series and 1,000,000 raw checks read in all. Two answers
/// are built at a time; a request that waits more than 5 s hears 503.
#[utoipa::path(
    tag = "checks",
    params(AllSeriesQuery),
    responses(
        (status = 200, description = "Every metric's buckets", body = AllSeries),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
        (status = 503, response = Overloaded),
    ),
    security((), ("bearer" = []))
)]
#[get("/checks/series")]
async fn all_series(
    state: web::Data<AppState>,
    _: ReadAccess,
    q: web::Query<AllSeriesQuery>,
) -> Result<web::Json<AllSeries>, ApiError> {
    let (since, until, step_ms) = buckets_of(
        q.since.as_deref(),
        q.until.as_deref(),
        q.step.as_deref(),
        MAX_BUCKETS,
    )?;
    let busy = || {
        ApiError::Overloaded(format!(
            "{AT_ONCE} series of every metric are being built already; retry in {} s",
            super::proc_lane::RETRY_AFTER_SECS
        ))
    };
    let _turn = tokio::time::timeout(WAIT, LANE.acquire())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
    let store = Arc::clone(&state.store);
    let answer = blocking(move || {
        let mut mounts = store.mounts_between(since, until)?;
        mounts.sort_by(|a, b| depth(a).cmp(&depth(b)).then_with(|| a.cmp(b)));
        let more_mounts = mounts.len() > MAX_MOUNTS;
        mounts.truncate(MAX_MOUNTS);
        let max_raw = MAX_RAW_ROWS / (4 + mounts.len() as i64);
        let metrics = [Metric::Cpu, Metric::Memory, Metric::Swap, Metric::Load1]
            .into_iter()
            .chain(mounts.into_iter().map(Metric::Disk));
        let mut series = Vec::new();
        for metric in metrics {
            let buckets = store.series_within(&metric, since, until, step_ms, max_raw)?;
            let (name, mount) = match metric {
                Metric::Cpu => ("cpu", None),
                Metric::Memory => ("memory", None),
                Metric::Swap => ("swap", None),
                Metric::Load1 => ("load1", None),
                Metric::Disk(m) => ("disk", Some(m)),
            };
            series.push(MetricSeries {
                metric: name,
                mount,
                buckets,
            });
        }
        Ok(AllSeries {
            since,
            until,
            step_seconds: step_ms as f64 / 1000.0,
            series,
            more_mounts,
        })
    })
    .await?;
    Ok(web::Json(answer))
}

/// How deep a mount point is: `/` 0, `/var` 1, `/home/u/x` 3.
fn depth(mount: &str) -> usize {
    mount.split('/').filter(|p| !p.is_empty()).count()
}

#[cfg(test)]
mod tests {
    use super::depth;

    #[test]
    fn shallow_mounts_come_first() {
        let mut m = vec!["/tmp/a/b", "/var", "/", "/home/u/fuse", "/boot"];
        m.sort_by(|a, b| depth(a).cmp(&depth(b)).then_with(|| a.cmp(b)));
        assert_eq!(m, ["/", "/boot", "/var", "/home/u/fuse", "/tmp/a/b"]);
    }
}
