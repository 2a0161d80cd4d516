//! Hourly roll-ups: per UTC hour, the count, least, sum and greatest of
//! each host metric, of each mount's used share and of each service's
//! probe latency, and how often each service was running.
//!
//! They are kept up in the transaction that stores each check, so a check
//! and its hour agree even when the process is killed between the two. At
//! start-up hours whose roll-up holds fewer checks than the raw table (a
//! database filled before roll-ups existed, or by another writer) are
//! rebuilt from the raw checks.

use super::{Result, Store};
use crate::domain::Check;
use rusqlite::{Connection, params};
use std::sync::LazyLock;

pub const HOUR_MS: i64 = 3_600_000;

/// The schema version whose migration brought the roll-ups.
pub const SINCE_VERSION: u32 = 7;

/// The start of the UTC hour `ms` falls in.
pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// `hour_of` in SQL, right for times before 1970 as well.
fn hour_sql(col: &str) -> String {
    format!("({col} - (({col} % {HOUR_MS}) + {HOUR_MS}) % {HOUR_MS})")
}

/// The host metrics rolled up: their prefix in `rollup_host` and their
/// column in `checks`.
pub(super) const HOST_METRICS: [(&str, &str); 4] = [
    ("cpu", "cpu_percent"),
    ("mem", "mem_percent"),
    ("swap", "swap_percent"),
    ("load1", "load1"),
];

/// SET clauses that fold `excluded`'s statistics for `prefix` into a row.
/// SQLite's two-argument min/max give NULL when either side is NULL.
fn fold(prefix: &str) -> String {
    format!(
        "{p}_n = {p}_n + excluded.{p}_n, \
         {p}_min = coalesce(min({p}_min, excluded.{p}_min), {p}_min, excluded.{p}_min), \
         {p}_sum = {p}_sum + excluded.{p}_sum, \
         {p}_max = coalesce(max({p}_max, excluded.{p}_max), {p}_max, excluded.{p}_max)",
        p = prefix
    )
}

/// Statistics of one value given as parameter `?i`: n, min, sum, max.
fn one(i: usize) -> String {
    format!("?{i} IS NOT NULL, ?{i}, coalesce(?{i}, 0), ?{i}")
}

static ADD_HOST: LazyLock<String> = LazyLock::new(|| {
    let cols: Vec<String> = HOST_METRICS
        .iter()
        .map(|(p, _)| format!("{p}_n, {p}_min, {p}_sum, {p}_max"))
        .collect();
    let values: Vec<String> = (0..HOST_METRICS.len()).map(|i| one(i + 3)).collect();
    let folds: Vec<String> = HOST_METRICS.iter().map(|(p, _)| fold(p)).collect();
    format!(
        "INSERT INTO rollup_host (hour, checks, first_at, last_at, {}) VALUES (?1, 1, ?2, ?2, {}) \
         ON CONFLICT (hour) DO UPDATE SET checks = checks + 1, \
         first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at), {}",
        cols.join(", "),
        values.join(", "),
        folds.join(", ")
    )
});

static ADD_DISK: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO rollup_disks (mount, hour, percent_n, percent_min, percent_sum, percent_max) \
         VALUES (?1, ?2, {}) ON CONFLICT (mount, hour) DO UPDATE SET {}",
        one(3),
        fold("percent")
    )
});

static ADD_SERVICE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO rollup_services (name, hour, checks, running, probe_n, probe_min, probe_sum, probe_max) \
         VALUES (?1, ?2, 1, ?3, {}) ON CONFLICT (name, hour) DO UPDATE SET \
         checks = checks + 1, running = running + excluded.running, {}",
        one(4),
        fold("probe")
    )
});

/// Adds one stored check to its hour; runs in the check's transaction.
pub(super) fn add(tx: &Connection, k: &Check) -> Result<()> {
    let at = k.taken_at.timestamp_millis();
    let hour = hour_of(at);
    let cpu = k.cpu.as_ref();
    let mem = k.memory.as_ref();
    tx.prepare_cached(&ADD_HOST)?.execute(params![
        hour,
        at,
        cpu.map(|c| c.percent),
        mem.map(|m| m.percent),
        mem.map(|m| m.swap_percent),
        cpu.map(|c| c.load1),
    ])?;
    let mut st = tx.prepare_cached(&ADD_DISK)?;
    for d in k.disks.iter().flatten() {
        if let Some(p) = d.percent {
            st.execute(params![d.mount, hour, p])?;
        }
    }
    let mut st = tx.prepare_cached(&ADD_SERVICE)?;
    for s in k.services.iter().flatten() {
        st.execute(params![
            s.name,
            hour,
            s.state == crate::domain::ServiceStatus::Running,
            s.probe_ms
        ])?;
    }
    Ok(())
}

/// Computes the roll-ups of the hours in `[from, to)` (hour starts, ms)
/// again from the raw checks, replacing what was there.
pub(super) fn rebuild(tx: &Connection, from: i64, to: i64) -> Result<()> {
    let stats: Vec<String> = HOST_METRICS
        .iter()
        .map(|(_, c)| format!("count({c}), min({c}), total({c}), max({c})"))
        .collect();
    let h = hour_sql("taken_at");
    tx.execute(
        "DELETE FROM rollup_host WHERE hour >= ?1 AND hour < ?2",
        params![from, to],
    )?;
    tx.execute(
        &format!(
            "INSERT INTO rollup_host SELECT {h} AS h, count(*), min(taken_at), max(taken_at), {} \
             FROM checks WHERE taken_at >= ?1 AND taken_at < ?2 GROUP BY h",
            stats.join(", ")
        ),
        params![from, to],
    )?;
    tx.execute(
        "DELETE FROM rollup_disks WHERE hour >= ?1 AND hour < ?2",
        params![from, to],
    )?;
    tx.execute(
        &format!(
            "INSERT INTO rollup_disks SELECT mount, {h} AS h, count(percent), min(percent), \
             total(percent), max(percent) FROM check_disks \
             WHERE taken_at >= ?1 AND taken_at < ?2 GROUP BY mount, h"
        ),
        params![from, to],
    )?;
    tx.execute(
        "DELETE FROM rollup_services WHERE hour >= ?1 AND hour < ?2",
        params![from, to],
    )?;
    tx.execute(
        &format!(
            "INSERT INTO rollup_services SELECT name, {h} AS h, count(*), total(state = 'running'), \
             count(probe_ms), min(probe_ms), total(probe_ms), max(probe_ms) FROM check_services \
             WHERE taken_at >= ?1 AND taken_at < ?2 GROUP BY name, h"
        ),
        params![from, to],
    )?;
    Ok(())
}

impl Store {
    /// Rebuilds, from the raw checks, every hour whose roll-up holds fewer
    /// checks than the raw table: every hour when `whole`, else the newest
    /// check's hour and the one before. Returns how many hours were behind.
    /// An hour partly purged has fewer raw checks than its roll-up and is
    /// left as it is.
    pub fn repair_rollups(&self, whole: bool) -> Result<u64> {
        let h = hour_sql("taken_at");
        self.write(|c| {
            let tx = c.transaction()?;
            let from: i64 = if whole {
                i64::MIN
            } else {
                let newest: Option<i64> =
                    tx.query_row("SELECT max(taken_at) FROM checks", [], |r| r.get(0))?;
                newest.map_or(i64::MAX, |t| hour_of(t) - HOUR_MS)
            };
            let behind: Vec<i64> = {
                let mut st = tx.prepare(&format!(
                    "SELECT r.h FROM (SELECT {h} AS h, count(*) AS n FROM checks \
                     WHERE taken_at >= ?1 GROUP BY h) r \
                     LEFT JOIN rollup_host u ON u.hour = r.h WHERE u.checks IS NULL OR u.checks < r.n"
                ))?;
                st.query_map([from], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?
            };
            let (Some(&from), Some(&last)) = (behind.iter().min(), behind.iter().max()) else {
                return Ok(0);
            };
            rebuild(&tx, from, last + HOUR_MS)?;
            tx.commit()?;
            Ok(behind.len() as u64)
        })
    }
}
