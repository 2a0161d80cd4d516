//! Reading one metric over time: the last N values, buckets over a window,
//! and a window's summary. The arithmetic runs in SQL, over the window only.

use super::{Result, Store, checks::millis_to_time};
use crate::domain::{Metric, TimeRange};
use chrono::{DateTime, Utc};
use rusqlite::{ToSql, params};
use serde::Serialize;
use utoipa::ToSchema;

/// One value of a metric at one check.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HistoryPoint {
    pub taken_at: DateTime<Utc>,
    pub value: f64,
}

/// The values of a metric in `[start, start + step)`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SeriesBucket {
    pub start: DateTime<Utc>,
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    pub count: u64,
}

/// A service's state at one check.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ServicePoint {
    pub taken_at: DateTime<Utc>,
    pub state: crate::domain::ServiceStatus,
    pub healthy: Option<bool>,
    pub probe_ms: Option<f64>,
}

/// Minimum, average and maximum of one metric over a window.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Stats {
    pub min: f64,
    pub avg: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ServiceAvailability {
    pub name: String,
    /// Share of the window's checks in which the service was running, 0–100.
    pub availability_percent: f64,
    pub checks: u64,
}

/// A window of checks at a glance; a metric with no values is `null`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Summary {
    pub count: u64,
    pub first_at: Option<DateTime<Utc>>,
    pub last_at: Option<DateTime<Utc>>,
    pub cpu: Option<Stats>,
    pub memory: Option<Stats>,
    /// Used share of the filesystem at `disk_mount`.
    pub disk: Option<Stats>,
    pub disk_mount: String,
    pub services: Vec<ServiceAvailability>,
}

/// The value column and the table it comes from, for a metric; the disk
/// table is joined on the mount `:mount`, bound by `bind`.
fn source(metric: &Metric) -> (&'static str, &'static str) {
    match metric {
        Metric::Cpu => ("cpu_percent", "checks k"),
        Metric::Memory => ("mem_percent", "checks k"),
        Metric::Swap => ("swap_percent", "checks k"),
        Metric::Load1 => ("load1", "checks k"),
        Metric::Disk(_) => (
            "d.percent",
            "checks k JOIN check_disks d ON d.check_id = k.id AND d.mount = :mount",
        ),
    }
}

/// Named parameters for a query over `source(metric)`.
fn bind<'a>(
    metric: &'a Metric,
    mut p: Vec<(&'a str, &'a dyn ToSql)>,
) -> Vec<(&'a str, &'a dyn ToSql)> {
    if let Metric::Disk(m) = metric {
        p.push((":mount", m));
    }
    p
}

impl Store {
    /// The last `size` values, oldest first.
    pub fn history(&self, metric: &Metric, size: u32) -> Result<Vec<HistoryPoint>> {
        let (value, from) = source(metric);
        let sql = format!(
            "SELECT taken_at, v FROM (SELECT k.taken_at, {value} AS v, k.id FROM {from} \
             WHERE {value} IS NOT NULL ORDER BY k.taken_at DESC, k.id DESC LIMIT :size) \
             ORDER BY taken_at, id"
        );
        self.read(|c| {
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map(&*bind(metric, vec![(":size", &size)]), |r| {
                Ok(HistoryPoint {
                    taken_at: millis_to_time(r.get(0)?),
                    value: r.get(1)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Buckets of `step_ms` from `since` to `until`; empty buckets are left out.
    pub fn series(
        &self,
        metric: &Metric,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        step_ms: i64,
    ) -> Result<Vec<SeriesBucket>> {
        let (value, from) = source(metric);
        let sql = format!(
            "SELECT (k.taken_at - :since) / :step AS b, MIN({value}), AVG({value}), MAX({value}), COUNT({value}) \
             FROM {from} WHERE k.taken_at >= :since AND k.taken_at < :until AND {value} IS NOT NULL \
             GROUP BY b ORDER BY b"
        );
        let since_ms = since.timestamp_millis();
        let until_ms = until.timestamp_millis();
        self.read(|c| {
            let mut st = c.prepare_cached(&sql)?;
            let p = bind(
                metric,
                vec![
                    (":since", &since_ms),
                    (":until", &until_ms),
                    (":step", &step_ms),
                ],
            );
            let rows = st.query_map(&*p, |r| {
                let b: i64 = r.get(0)?;
                Ok(SeriesBucket {
                    start: millis_to_time(since_ms + b * step_ms),
                    min: r.get(1)?,
                    avg: r.get(2)?,
                    max: r.get(3)?,
                    count: r.get::<_, i64>(4)? as u64,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// The service's state in the last `size` checks that recorded it, oldest first.
    pub fn service_history(&self, name: &str, size: u32) -> Result<Vec<ServicePoint>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT taken_at, state, healthy, probe_ms FROM (SELECT k.taken_at, s.state, s.healthy, s.probe_ms, k.id \
                 FROM check_services s JOIN checks k ON k.id = s.check_id WHERE s.name = ?1 \
                 ORDER BY k.taken_at DESC, k.id DESC LIMIT ?2) ORDER BY taken_at, id",
            )?;
            let rows = st.query_map(params![name, size], |r| {
                let state: String = r.get(1)?;
                Ok(ServicePoint {
                    taken_at: millis_to_time(r.get(0)?),
                    state: crate::domain::ServiceStatus::parse(&state).unwrap_or(crate::domain::ServiceStatus::Unknown),
                    healthy: r.get(2)?,
                    probe_ms: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    pub fn summary(&self, range: TimeRange, disk_mount: &str) -> Result<Summary> {
        let (since, until) = range.millis();
        self.read(|c| {
            let (count, first, last, cpu, memory) = c.query_row(
                "SELECT COUNT(*), MIN(taken_at), MAX(taken_at), \
                 MIN(cpu_percent), AVG(cpu_percent), MAX(cpu_percent), \
                 MIN(mem_percent), AVG(mem_percent), MAX(mem_percent) \
                 FROM checks WHERE taken_at >= ?1 AND taken_at < ?2",
                params![since, until],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<i64>>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                        stats(r, 3)?,
                        stats(r, 6)?,
                    ))
                },
            )?;
            let disk = c.query_row(
                "SELECT MIN(d.percent), AVG(d.percent), MAX(d.percent) FROM checks k \
                 JOIN check_disks d ON d.check_id = k.id AND d.mount = ?3 \
                 WHERE k.taken_at >= ?1 AND k.taken_at < ?2",
                params![since, until, disk_mount],
                |r| stats(r, 0),
            )?;
            let mut st = c.prepare_cached(
                "SELECT s.name, SUM(s.state = 'running'), COUNT(*) FROM checks k \
                 JOIN check_services s ON s.check_id = k.id \
                 WHERE k.taken_at >= ?1 AND k.taken_at < ?2 GROUP BY s.name ORDER BY s.name",
            )?;
            let services = st
                .query_map(params![since, until], |r| {
                    let up: i64 = r.get(1)?;
                    let n: i64 = r.get(2)?;
                    Ok(ServiceAvailability {
                        name: r.get(0)?,
                        availability_percent: crate::domain::check::percent(up as u64, n as u64),
                        checks: n as u64,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Summary {
                count: count as u64,
                first_at: first.map(millis_to_time),
                last_at: last.map(millis_to_time),
                cpu,
                memory,
                disk,
                disk_mount: disk_mount.to_owned(),
                services,
            })
        })
    }
}

fn stats(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<Stats>> {
    Ok(match (r.get(i)?, r.get(i + 1)?, r.get(i + 2)?) {
        (Some(min), Some(avg), Some(max)) => Some(Stats { min, avg, max }),
        _ => None,
    })
}
