//! Reading one metric over time: the last N values, buckets over a window
//! (`series.rs`) and a window's summary (`summary.rs`).
//!
//! Raw checks answer where they are kept and a bucket is under an hour;
//! hourly roll-ups answer the rest, and every answer says which it used.
//! Each query walks an index in the order it returns: a test runs
//! `EXPLAIN QUERY PLAN` on every statement here (`plan.rs`) and refuses a
//! sort.

use super::{
    Result, Store,
    checks::millis_to_time,
    plan::prepare,
    rollups::{HOUR_MS, hour_of},
};
use crate::domain::Metric;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, ToSql, params};
use serde::Serialize;
use utoipa::ToSchema;

/// Where a value comes from: one check, or an hour's roll-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub enum Resolution {
    /// Raw checks, one value per check.
    #[serde(rename = "raw")]
    Raw,
    /// Hourly roll-ups: the hours' values combined exactly (min, sum, max
    /// and count per hour).
    #[serde(rename = "1h")]
    Hour,
}

/// One value of a metric: at one check, or an hour's average.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HistoryPoint {
    /// The check's time, or the start of the hour.
    pub taken_at: DateTime<Utc>,
    pub value: f64,
    pub resolution: Resolution,
}

/// A service's state at one check.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ServicePoint {
    pub taken_at: DateTime<Utc>,
    pub state: crate::domain::ServiceStatus,
    pub healthy: Option<bool>,
    pub probe_ms: Option<f64>,
}

/// Times are clamped into ±2^60 ms (36 million years) so that hour
/// arithmetic on an open end cannot overflow.
pub(super) const FAR: i64 = 1 << 60;

pub(super) fn clamp(ms: i64) -> i64 {
    ms.clamp(-FAR, FAR)
}

/// Where a metric's values are, raw and rolled up.
pub(super) struct Source<'a> {
    /// Raw table, its value column, its check id column, and the filter
    /// that picks the metric's rows.
    pub table: &'static str,
    pub value: &'static str,
    pub id: &'static str,
    pub filter: &'static str,
    /// Roll-up table and the prefix of its statistics columns.
    pub rollup: &'static str,
    pub prefix: &'static str,
    pub mount: Option<&'a str>,
}

impl<'a> Source<'a> {
    pub fn of(metric: &'a Metric) -> Self {
        let host = |value, filter, prefix| Source {
            table: "checks",
            value,
            id: "id",
            filter,
            rollup: "rollup_host",
            prefix,
            mount: None,
        };
        match metric {
            Metric::Cpu => host("cpu_percent", "cpu_percent IS NOT NULL", "cpu"),
            Metric::Memory => host("mem_percent", "mem_percent IS NOT NULL", "mem"),
            Metric::Swap => host("swap_percent", "swap_percent IS NOT NULL", "swap"),
            Metric::Load1 => host("load1", "load1 IS NOT NULL", "load1"),
            Metric::Disk(m) => Source {
                table: "check_disks",
                value: "percent",
                id: "check_id",
                filter: "mount = :mount",
                rollup: "rollup_disks",
                prefix: "percent",
                mount: Some(m),
            },
        }
    }

    /// The roll-up's filter: the mount, or every row.
    pub fn rollup_filter(&self) -> &'static str {
        if self.mount.is_some() {
            "mount = :mount"
        } else {
            "1"
        }
    }

    /// Named parameters plus `:mount` where the statements use it.
    pub fn bind<'p>(
        &'p self,
        mut p: Vec<(&'p str, &'p dyn ToSql)>,
    ) -> Vec<(&'p str, &'p dyn ToSql)> {
        if let Some(m) = &self.mount {
            p.push((":mount", m));
        }
        p
    }
}

/// The first hour from which the raw checks are whole; hours before it
/// are answered from roll-ups. Purges go oldest first, so only the oldest
/// kept hour can be partial: it is whole when its roll-up counts no more
/// checks than the raw table holds. Without raw checks, `FAR`.
pub(super) fn raw_from(c: &Connection) -> Result<i64> {
    let oldest: Option<i64> =
        prepare(c, "SELECT min(taken_at) FROM checks")?.query_row([], |r| r.get(0))?;
    let Some(oldest) = oldest else {
        return Ok(FAR);
    };
    let h = hour_of(oldest);
    let raw: i64 = prepare(
        c,
        "SELECT count(*) FROM checks WHERE taken_at >= ?1 AND taken_at < ?2",
    )?
    .query_row(params![h, h + HOUR_MS], |r| r.get(0))?;
    let rolled: Option<i64> = prepare(c, "SELECT checks FROM rollup_host WHERE hour = ?1")?
        .query_row([h], |r| r.get(0))
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    Ok(if rolled.unwrap_or(0) > raw {
        h + HOUR_MS
    } else {
        h
    })
}

impl Store {
    /// The last `size` values, oldest first: raw values while there are
    /// any, then (when raw checks are too few) hourly averages before them.
    pub fn history(&self, metric: &Metric, size: u32) -> Result<Vec<HistoryPoint>> {
        let src = Source::of(metric);
        self.read(|c| {
            let tx = c.unchecked_transaction()?;
            let sql = format!(
                "SELECT taken_at, {v} FROM {t} WHERE {f} ORDER BY taken_at DESC, {id} DESC LIMIT :size",
                v = src.value,
                t = src.table,
                f = src.filter,
                id = src.id
            );
            let mut points = prepare(&tx, &sql)?
                .query_map(&*src.bind(vec![(":size", &size)]), |r| {
                    Ok(HistoryPoint {
                        taken_at: millis_to_time(r.get(0)?),
                        value: r.get(1)?,
                        resolution: Resolution::Raw,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let rest = size as usize - points.len();
            if rest > 0 {
                // Hours before the oldest raw value (or before raw_from,
                // which is what the oldest raw value's hour is).
                let before = match points.last() {
                    Some(p) => hour_of(p.taken_at.timestamp_millis()),
                    None => raw_from(&tx)?,
                };
                let sql = format!(
                    "SELECT hour, {p}_sum / {p}_n FROM {t} WHERE {f} AND hour < :before AND {p}_n > 0 \
                     ORDER BY hour DESC LIMIT :rest",
                    p = src.prefix,
                    t = src.rollup,
                    f = src.rollup_filter()
                );
                let rest = rest as i64;
                let older = prepare(&tx, &sql)?
                    .query_map(
                        &*src.bind(vec![(":before", &before), (":rest", &rest)]),
                        |r| {
                            Ok(HistoryPoint {
                                taken_at: millis_to_time(r.get(0)?),
                                value: r.get(1)?,
                                resolution: Resolution::Hour,
                            })
                        },
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                points.extend(older);
            }
            points.reverse();
            Ok(points)
        })
    }

    /// The service's state in the last `size` checks that recorded it,
    /// oldest first. States are not rolled up: this reads raw checks only.
    pub fn service_history(&self, name: &str, size: u32) -> Result<Vec<ServicePoint>> {
        self.read(|c| {
            let mut st = prepare(
                c,
                "SELECT taken_at, state, healthy, probe_ms FROM check_services WHERE name = ?1 \
                 ORDER BY taken_at DESC, check_id DESC LIMIT ?2",
            )?;
            let mut points = st
                .query_map(params![name, size], |r| {
                    let state: String = r.get(1)?;
                    Ok(ServicePoint {
                        taken_at: millis_to_time(r.get(0)?),
                        state: crate::domain::ServiceStatus::parse(&state)
                            .unwrap_or(crate::domain::ServiceStatus::Unknown),
                        healthy: r.get(2)?,
                        probe_ms: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            points.reverse();
            Ok(points)
        })
    }
}
