//! Writing and reading whole checks: the row and its disks, services and top
//! processes go in one transaction and come back together.

use super::{Result, Store, StoreError};
use crate::domain::{
    Check, Cpu, Disk, Io, Memory, ServiceState, ServiceStatus, TimeRange, TopProcess,
};
use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension as _;
use rusqlite::{Connection, Row, params};
use std::collections::HashMap;

const COLUMNS: &str = "id, taken_at, duration_ms, cpu_percent, load1, load5, load15, \
    mem_total, mem_used, mem_available, mem_percent, swap_total, swap_used, swap_percent, \
    io_interval_ms, io_read, io_written, io_received, io_sent, has_disks, has_services, has_top";

impl Store {
    /// Stores a check whole (or not at all) and returns its id.
    pub fn insert_check(&self, check: &Check) -> Result<i64> {
        self.write(|c| {
            let tx = c.transaction()?;
            let id = insert(&tx, check)?;
            tx.commit()?;
            Ok(id)
        })
    }

    /// Stores many checks in one transaction (all or none): how a generator
    /// or an import fills a database quickly.
    pub fn insert_checks(&self, checks: &[Check]) -> Result<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            for k in checks {
                insert(&tx, k)?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    pub fn check(&self, id: i64) -> Result<Check> {
        self.read(|c| {
            let mut checks = select(
                c,
                &format!("SELECT {COLUMNS} FROM checks WHERE id = ?1"),
                params![id],
            )?;
            checks.pop().ok_or(StoreError::NotFound)
        })
    }

    /// The check read last. History is in the order checks were read
    /// (their ids), not their times: after the clock steps back, the newest
    /// check is the one just read, though an earlier one shows a later time.
    pub fn latest_check(&self) -> Result<Check> {
        self.read(|c| {
            let sql = format!("SELECT {COLUMNS} FROM checks ORDER BY id DESC LIMIT 1");
            select(c, &sql, [])?.pop().ok_or(StoreError::NotFound)
        })
    }

    /// The check read last: its time and duration and its services' states,
    /// what a scrape shows of it, without reading its disks and processes.
    pub fn latest_services(&self) -> Result<Option<LatestServices>> {
        self.read(|c| {
            let head: Option<(i64, i64, f64, Option<f64>)> = c
                .prepare_cached(
                    "SELECT id, taken_at, duration_ms, cpu_percent FROM checks ORDER BY id DESC LIMIT 1",
                )?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()?;
            let Some((id, at, duration_ms, cpu_percent)) = head else {
                return Ok(None);
            };
            let mut st = c.prepare_cached(
                "SELECT name, state, healthy, probe_ms FROM check_services WHERE check_id = ?1 ORDER BY name",
            )?;
            let services = st
                .query_map([id], |r| {
                    let state: String = r.get(1)?;
                    Ok(ServiceState {
                        name: r.get(0)?,
                        state: ServiceStatus::parse(&state).unwrap_or(ServiceStatus::Unknown),
                        healthy: r.get(2)?,
                        probe_ms: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some(LatestServices {
                taken_at: millis_to_time(at),
                duration_ms,
                cpu_percent,
                services,
            }))
        })
    }

    /// The ids of the first and the last check whose time is in `range`,
    /// through the time index: the span a list in read order walks.
    pub fn check_span(&self, range: TimeRange) -> Result<Option<(i64, i64)>> {
        self.read(|c| span(c, range))
    }

    /// Checks in `range`, in the order they were read, newest first;
    /// `before_id` pages past an earlier page.
    pub fn checks(
        &self,
        range: TimeRange,
        limit: u32,
        before_id: Option<i64>,
    ) -> Result<Vec<Check>> {
        let (since, until) = range.millis();
        self.read(|c| {
            let Some((lo, hi)) = span(c, range)? else {
                return Ok(Vec::new());
            };
            let hi = hi.min(before_id.map_or(i64::MAX, |b| b.saturating_sub(1)));
            // `+taken_at`: walk the ids, not the time index, so that a page
            // costs its length, not the window's.
            select(
                c,
                &format!(
                    "SELECT {COLUMNS} FROM checks WHERE id BETWEEN ?1 AND ?2 \
                     AND +taken_at >= ?3 AND +taken_at < ?4 ORDER BY id DESC LIMIT ?5"
                ),
                params![lo, hi, since, until, limit],
            )
        })
    }

    /// Checks in `range` with ids in `ids` (from `check_span`), oldest
    /// first: how an export streams them, advancing the low end by pages.
    pub fn checks_ascending(
        &self,
        range: TimeRange,
        ids: (i64, i64),
        limit: u32,
    ) -> Result<Vec<Check>> {
        let (since, until) = range.millis();
        self.read(|c| {
            let sql = format!(
                "SELECT {COLUMNS} FROM checks WHERE id BETWEEN ?1 AND ?2 \
                 AND +taken_at >= ?3 AND +taken_at < ?4 ORDER BY id LIMIT ?5"
            );
            select(c, &sql, params![ids.0, ids.1, since, until, limit])
        })
    }

    /// Up to `limit` checks read after check `after_id`, in the order they
    /// were read: what a remote-write receiver is sent next.
    pub fn checks_after(&self, after_id: i64, limit: u32) -> Result<Vec<Check>> {
        self.read(|c| {
            let sql = format!("SELECT {COLUMNS} FROM checks WHERE id > ?1 ORDER BY id LIMIT ?2");
            select(c, &sql, params![after_id, limit])
        })
    }

    /// The id and time of the check read last, or of the first one read
    /// at or after `since` (through the time index).
    pub fn check_head(&self, since: Option<DateTime<Utc>>) -> Result<Option<(i64, DateTime<Utc>)>> {
        self.read(|c| {
            let row = |r: &Row| Ok((r.get::<_, i64>(0)?, millis_to_time(r.get(1)?)));
            Ok(match since {
                None => c
                    .prepare_cached("SELECT id, taken_at FROM checks ORDER BY id DESC LIMIT 1")?
                    .query_row([], row)
                    .optional()?,
                Some(t) => c
                    .prepare_cached(
                        "SELECT id, taken_at FROM checks WHERE id = \
                         (SELECT min(id) FROM checks WHERE taken_at >= ?1)",
                    )?
                    .query_row([t.timestamp_millis()], row)
                    .optional()?,
            })
        })
    }

    /// The time of the oldest check stored (through the time index).
    pub fn oldest_check_at(&self) -> Result<Option<DateTime<Utc>>> {
        self.read(|c| {
            let t: Option<i64> = c
                .prepare_cached("SELECT min(taken_at) FROM checks")?
                .query_row([], |r| r.get(0))?;
            Ok(t.map(millis_to_time))
        })
    }

    /// The id and time of the first check read after check `id`.
    pub fn check_after(&self, id: i64) -> Result<Option<(i64, DateTime<Utc>)>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT id, taken_at FROM checks WHERE id > ?1 ORDER BY id LIMIT 1",
            )?
            .query_row([id], |r| {
                Ok((r.get::<_, i64>(0)?, millis_to_time(r.get(1)?)))
            })
            .optional()?)
        })
    }

    pub fn count_checks(&self) -> Result<u64> {
        self.read(|c| {
            Ok(c.query_row("SELECT COUNT(*) FROM checks", [], |r| r.get::<_, i64>(0))? as u64)
        })
    }
}

/// The newest check as `/metrics` shows it (`Store::latest_services`).
#[derive(Debug, Clone, PartialEq)]
pub struct LatestServices {
    pub taken_at: DateTime<Utc>,
    pub duration_ms: f64,
    /// All CPUs' busy share over the interval before it, 0–100.
    pub cpu_percent: Option<f64>,
    pub services: Vec<ServiceState>,
}

fn insert(tx: &Connection, k: &Check) -> Result<i64> {
    let cpu = k.cpu.as_ref();
    let mem = k.memory.as_ref();
    let io = k.io.as_ref();
    tx.execute(
        "INSERT INTO checks (taken_at, duration_ms, cpu_percent, load1, load5, load15, \
         mem_total, mem_used, mem_available, mem_percent, swap_total, swap_used, swap_percent, \
         io_interval_ms, io_read, io_written, io_received, io_sent, has_disks, has_services, has_top) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
        params![
            k.taken_at.timestamp_millis(),
            k.duration_ms,
            cpu.map(|c| c.percent),
            cpu.map(|c| c.load1),
            cpu.map(|c| c.load5),
            cpu.map(|c| c.load15),
            mem.map(|m| m.total_bytes as i64),
            mem.map(|m| m.used_bytes as i64),
            mem.map(|m| m.available_bytes as i64),
            mem.map(|m| m.percent),
            mem.map(|m| m.swap_total_bytes as i64),
            mem.map(|m| m.swap_used_bytes as i64),
            mem.map(|m| m.swap_percent),
            io.map(|i| i.interval_ms as i64),
            io.map(|i| i.read_bytes as i64),
            io.map(|i| i.written_bytes as i64),
            io.map(|i| i.received_bytes as i64),
            io.map(|i| i.sent_bytes as i64),
            k.disks.is_some(),
            k.services.is_some(),
            k.top_processes.is_some(),
        ],
    )?;
    let id = tx.last_insert_rowid();
    let mut st = tx.prepare_cached(
        "INSERT INTO check_disks (check_id, taken_at, mount, device, fs_type, total_bytes, used_bytes, percent) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut faults = tx.prepare_cached(
        "INSERT INTO check_disk_faults (check_id, mount, device, fs_type, error) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let at = k.taken_at.timestamp_millis();
    for d in k.disks.iter().flatten() {
        match (d.total_bytes, d.used_bytes, d.percent) {
            (Some(total), Some(used), Some(percent)) => st.execute(params![
                id,
                at,
                d.mount,
                d.device,
                d.fs_type,
                total as i64,
                used as i64,
                percent
            ])?,
            _ => faults.execute(params![
                id,
                d.mount,
                d.device,
                d.fs_type,
                d.error.as_deref().unwrap_or("no sizes")
            ])?,
        };
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO check_services (check_id, taken_at, name, state, healthy, probe_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for s in k.services.iter().flatten() {
        st.execute(params![
            id,
            at,
            s.name,
            s.state.as_str(),
            s.healthy,
            s.probe_ms
        ])?;
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO check_processes (check_id, rank, pid, name, user, cpu_percent, rss_bytes) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (rank, p) in k.top_processes.iter().flatten().enumerate() {
        st.execute(params![
            id,
            rank as i64,
            p.pid,
            p.name,
            p.user,
            p.cpu_percent,
            p.rss_bytes as i64
        ])?;
    }
    super::rollups::add(tx, k)?;
    Ok(id)
}

/// Runs a query over `checks` and attaches each row's lists.
/// See `Store::check_span`; a window open at both ends is every id.
fn span(c: &Connection, range: TimeRange) -> Result<Option<(i64, i64)>> {
    let (since, until) = range.millis();
    let sql = if range.since.is_none() && range.until.is_none() {
        // Apart: SQLite answers a lone min() or max() of the key at once.
        "SELECT (SELECT min(id) FROM checks), (SELECT max(id) FROM checks)"
    } else {
        "SELECT min(id), max(id) FROM checks WHERE taken_at >= ?1 AND taken_at < ?2"
    };
    let mut st = c.prepare_cached(sql)?;
    let row = |r: &Row| Ok(r.get::<_, Option<i64>>(0)?.zip(r.get::<_, Option<i64>>(1)?));
    Ok(if range.since.is_none() && range.until.is_none() {
        st.query_row([], row)?
    } else {
        st.query_row(params![since, until], row)?
    })
}

fn select(c: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<Vec<Check>> {
    let mut st = super::plan::prepare(c, sql)?;
    let mut checks = st
        .query_map(p, row_to_check)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let ids: Vec<i64> = checks.iter().filter_map(|k| k.id).collect();
    let (Some(&lo), Some(&hi)) = (ids.iter().min(), ids.iter().max()) else {
        return Ok(checks);
    };
    let mut disks: HashMap<i64, Vec<Disk>> = HashMap::new();
    let mut st = super::plan::prepare(
        c,
        "SELECT check_id, mount, device, fs_type, total_bytes, used_bytes, percent FROM check_disks \
         WHERE check_id BETWEEN ?1 AND ?2 ORDER BY check_id, mount",
    )?;
    for r in st.query_map(params![lo, hi], |r| {
        Ok((
            r.get(0)?,
            Disk {
                mount: r.get(1)?,
                device: r.get(2)?,
                fs_type: r.get(3)?,
                total_bytes: Some(r.get::<_, i64>(4)? as u64),
                used_bytes: Some(r.get::<_, i64>(5)? as u64),
                percent: Some(r.get(6)?),
                error: None,
            },
        ))
    })? {
        let (id, d) = r?;
        disks.entry(id).or_default().push(d);
    }
    let mut st = super::plan::prepare(
        c,
        "SELECT check_id, mount, device, fs_type, error FROM check_disk_faults \
         WHERE check_id BETWEEN ?1 AND ?2",
    )?;
    let mut faulty = false;
    for r in st.query_map(params![lo, hi], |r| {
        Ok((
            r.get(0)?,
            Disk {
                mount: r.get(1)?,
                device: r.get(2)?,
                fs_type: r.get(3)?,
                total_bytes: None,
                used_bytes: None,
                percent: None,
                error: Some(r.get(4)?),
            },
        ))
    })? {
        let (id, d) = r?;
        disks.entry(id).or_default().push(d);
        faulty = true;
    }
    if faulty {
        for v in disks.values_mut() {
            v.sort_by(|a, b| a.mount.cmp(&b.mount));
        }
    }
    let mut services: HashMap<i64, Vec<ServiceState>> = HashMap::new();
    let mut st = super::plan::prepare(
        c,
        "SELECT check_id, name, state, healthy, probe_ms FROM check_services \
         WHERE check_id BETWEEN ?1 AND ?2 ORDER BY check_id, name",
    )?;
    for r in st.query_map(params![lo, hi], |r| {
        let state: String = r.get(2)?;
        Ok((
            r.get(0)?,
            ServiceState {
                name: r.get(1)?,
                state: ServiceStatus::parse(&state).unwrap_or(ServiceStatus::Unknown),
                healthy: r.get(3)?,
                probe_ms: r.get(4)?,
            },
        ))
    })? {
        let (id, s) = r?;
        services.entry(id).or_default().push(s);
    }
    let mut top: HashMap<i64, Vec<TopProcess>> = HashMap::new();
    let mut st = super::plan::prepare(
        c,
        "SELECT check_id, pid, name, user, cpu_percent, rss_bytes FROM check_processes \
         WHERE check_id BETWEEN ?1 AND ?2 ORDER BY check_id, rank",
    )?;
    for r in st.query_map(params![lo, hi], |r| {
        Ok((
            r.get(0)?,
            TopProcess {
                pid: r.get(1)?,
                name: r.get(2)?,
                user: r.get(3)?,
                cpu_percent: r.get(4)?,
                rss_bytes: r.get::<_, i64>(5)? as u64,
            },
        ))
    })? {
        let (id, p) = r?;
        top.entry(id).or_default().push(p);
    }
    for k in &mut checks {
        let id = k.id.unwrap_or_default();
        if let Some(v) = k.disks.as_mut() {
            *v = disks.remove(&id).unwrap_or_default();
        }
        if let Some(v) = k.services.as_mut() {
            *v = services.remove(&id).unwrap_or_default();
        }
        if let Some(v) = k.top_processes.as_mut() {
            *v = top.remove(&id).unwrap_or_default();
        }
    }
    Ok(checks)
}

pub(super) fn millis_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn row_to_check(r: &Row<'_>) -> rusqlite::Result<Check> {
    let u = |i: usize| -> rusqlite::Result<Option<u64>> {
        Ok(r.get::<_, Option<i64>>(i)?.map(|v| v as u64))
    };
    let cpu = match (r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?) {
        (Some(percent), Some(load1), Some(load5), Some(load15)) => Some(Cpu {
            percent,
            load1,
            load5,
            load15,
        }),
        _ => None,
    };
    let memory = match (u(7)?, u(8)?, u(9)?, r.get(10)?, u(11)?, u(12)?, r.get(13)?) {
        (Some(t), Some(us), Some(a), Some(p), Some(st), Some(su), Some(sp)) => Some(Memory {
            total_bytes: t,
            used_bytes: us,
            available_bytes: a,
            percent: p,
            swap_total_bytes: st,
            swap_used_bytes: su,
            swap_percent: sp,
        }),
        _ => None,
    };
    let io = match (u(14)?, u(15)?, u(16)?, u(17)?, u(18)?) {
        (
            Some(interval_ms),
            Some(read_bytes),
            Some(written_bytes),
            Some(received_bytes),
            Some(sent_bytes),
        ) => Some(Io {
            interval_ms,
            read_bytes,
            written_bytes,
            received_bytes,
            sent_bytes,
        }),
        _ => None,
    };
    let list = |i: usize| -> rusqlite::Result<bool> { r.get(i) };
    Ok(Check {
        id: Some(r.get(0)?),
        taken_at: millis_to_time(r.get(1)?),
        duration_ms: r.get(2)?,
        cpu,
        memory,
        disks: list(19)?.then(Vec::new),
        io,
        services: list(20)?.then(Vec::new),
        top_processes: list(21)?.then(Vec::new),
    })
}
