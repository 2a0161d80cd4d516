//! Retention, in the background: raw checks older than `storage.retention`,
//! hourly roll-ups older than `storage.rollup_retention`, and audit rows,
//! ended jobs and resolved alerts (with their messages and actions) older
//! than `storage.audit_retention` are deleted, and the file gives the space
//! back (incremental auto-vacuum).
//!
//! The purge shares the one writer with the sampler, which must never wait
//! long for it (SPEC §2). Rows go oldest first in batches sized by time:
//! each batch holds the writer for about `HOLD`, then the purge lets go of
//! it for `PAUSE` so a waiting insert takes it (a std `Mutex` is not fair:
//! taken back at once, a waiter could lose it batch after batch). Freed
//! pages are handed back the same way.

use super::{Result, Store, rollups::hour_of};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension as _, ToSql};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use tokio_util::sync::CancellationToken;

/// About the longest one batch holds the writer.
const HOLD: Duration = Duration::from_millis(20);
/// The writer is left free this long between batches.
const PAUSE: Duration = Duration::from_millis(5);
/// Rows per transaction in the audit, job and alert purges (small tables,
/// deleted in fixed batches by their own code).
const AUDIT_BATCH: u32 = 500;

/// How long each kind of row is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Raw checks (`storage.retention`).
    pub checks: Duration,
    /// Hourly roll-ups (`storage.rollup_retention`).
    pub rollups: Duration,
    /// Audit rows, ended jobs, resolved alerts (`storage.audit_retention`).
    pub audit: Duration,
}

/// What one pass deleted and gave back.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub checks: u64,
    /// Roll-up rows: hours of the host, of each mount and of each service.
    pub rollups: u64,
    pub audit: u64,
    /// Ended jobs and resolved alerts.
    pub jobs: u64,
    /// Pages handed back to the filesystem.
    pub pages: u64,
}

/// How often to purge: hourly, or more often for a short retention.
fn period(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

/// Runs a pass every `period` on a blocking thread until `cancel`; a pass
/// under way stops at its next batch.
pub async fn run(store: Arc<Store>, keep: Retention, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(period(keep.checks.min(keep.audit)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (s, stop) = (Arc::clone(&store), cancel.clone());
        let started = Instant::now();
        match tokio::task::spawn_blocking(move || {
            s.purge_expired(&keep, crate::clock::now().earliest(), &stop)
        })
        .await
        {
            Ok(Ok(p)) if p == Purged::default() => {}
            Ok(Ok(p)) => tracing::info!(
                checks = p.checks,
                rollups = p.rollups,
                audit = p.audit,
                jobs = p.jobs,
                pages = p.pages,
                ms = started.elapsed().as_millis() as u64,
                "purged rows past retention"
            ),
            Ok(Err(e)) => tracing::warn!(error = %e, "purging rows past retention failed"),
            Err(e) => tracing::warn!(error = %e, "purging rows past retention failed"),
        }
    }
}

/// A table purged by time, oldest first. `key`, when given, splits it into
/// runs that each have their own time order (the primary key is
/// `(key, time)`, and there is no index on time alone).
struct Expiring {
    table: &'static str,
    time: &'static str,
    key: Option<&'static str>,
}

const CHECKS: Expiring = Expiring {
    table: "checks",
    time: "taken_at",
    key: None,
};

/// No foreign key ties these to `checks`: they outlive the raw rows.
const ROLLUPS: [Expiring; 3] = [
    Expiring {
        table: "rollup_host",
        time: "hour",
        key: None,
    },
    Expiring {
        table: "rollup_disks",
        time: "hour",
        key: Some("mount"),
    },
    Expiring {
        table: "rollup_services",
        time: "hour",
        key: Some("name"),
    },
];

/// A batch size that follows how long batches take: it aims at half of
/// `HOLD`, so a batch that runs twice as slow as the one before (another
/// process on the CPU, a cold page) still fits; it grows at most twofold
/// from one batch to the next and shrinks at once.
struct Sizer {
    size: u32,
    min: u32,
    max: u32,
}

impl Sizer {
    fn rows(first: u32) -> Self {
        Self {
            size: first.clamp(10, 5_000),
            min: 10,
            max: 5_000,
        }
    }

    /// Pages vary more in cost than rows (moving one can touch several
    /// others), so steps stay small.
    fn pages() -> Self {
        Self {
            size: 256,
            min: 16,
            max: 512,
        }
    }

    fn next(&mut self, done: u64, took: Duration) {
        if done == 0 {
            return;
        }
        let each = took.as_secs_f64().max(1e-6) / done as f64;
        let fits = (HOLD.as_secs_f64() / 2.0 / each) as u64;
        self.size = fits
            .min(u64::from(self.size) * 2)
            .clamp(u64::from(self.min), u64::from(self.max)) as u32;
    }
}

/// `now - age` in ms; `None` when that is before any time SQLite holds.
fn cutoff(now: DateTime<Utc>, age: Duration) -> Option<i64> {
    now.timestamp_millis()
        .checked_sub(i64::try_from(age.as_millis()).ok()?)
}

impl Store {
    /// One pass of retention at `now`: expired checks (with their disks,
    /// services and processes), roll-ups, audit rows, jobs and alerts go,
    /// then the freed pages are given back. Stops between batches once
    /// `stop` is cancelled.
    pub fn purge_expired(
        &self,
        keep: &Retention,
        now: DateTime<Utc>,
        stop: &CancellationToken,
    ) -> Result<Purged> {
        let pass = Pass::new(self, stop)?;
        let mut p = Purged::default();
        if let Some(cut) = cutoff(now, keep.checks) {
            p.checks = pass.purge(&CHECKS, cut, &mut Sizer::rows(200))?;
        }
        // An hour's roll-up goes once all of it is past the cutoff.
        if let Some(cut) = cutoff(now, keep.rollups) {
            for t in &ROLLUPS {
                p.rollups += pass.purge(t, hour_of(cut), &mut Sizer::rows(200))?;
            }
        }
        if let Some(cut) = cutoff(now, keep.audit).and_then(DateTime::from_timestamp_millis) {
            p.audit = self.purge_audit_before(cut, AUDIT_BATCH)?;
            p.jobs = self.purge_jobs_before(cut, AUDIT_BATCH)?
                + self.purge_alerts_before(cut, AUDIT_BATCH)?;
        }
        p.pages = pass.give_back()?;
        Ok(p)
    }

    /// Deletes checks taken before `cutoff`, oldest first, in batches (the
    /// first of `first` checks, at least 10) that each hold the writer
    /// briefly; returns how many went.
    #[cfg(test)]
    pub(crate) fn purge_checks_before(&self, cutoff: DateTime<Utc>, first: u32) -> Result<u64> {
        let never = CancellationToken::new();
        Pass::new(self, &never)?.purge(&CHECKS, cutoff.timestamp_millis(), &mut Sizer::rows(first))
    }
}

/// One purge. Between batches it checkpoints on a connection of its own:
/// that copies the WAL into the file without taking the writer, so
/// neither a batch nor the sampler's next insert pays an automatic
/// checkpoint of the purge's pages (a few MiB and an fsync).
struct Pass<'a> {
    store: &'a Store,
    stop: &'a CancellationToken,
    aside: Connection,
}

impl<'a> Pass<'a> {
    fn new(store: &'a Store, stop: &'a CancellationToken) -> Result<Self> {
        let aside = Connection::open_with_flags(
            &store.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        aside.busy_timeout(Duration::from_secs(1))?;
        Ok(Self { store, stop, aside })
    }

    /// The writer is free: checkpoint, then leave it to a waiting insert.
    fn breathe(&self) {
        // A passive checkpoint neither waits nor blocks; should it fail,
        // the automatic one still runs.
        let _ = self.checkpoint();
        std::thread::sleep(PAUSE);
    }

    fn checkpoint(&self) -> Result<()> {
        Ok(self
            .aside
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?)
    }

    /// Deletes the rows of `t` with a time before `cutoff` (ms), oldest
    /// first, a batch per hold of the writer. A batch ends on a whole time
    /// (rows sharing the time of its last row go with it), so what is kept
    /// is always everything from the oldest kept time on, without holes.
    fn purge(&self, t: &Expiring, cutoff: i64, sizer: &mut Sizer) -> Result<u64> {
        let (table, time) = (t.table, t.time);
        let keys = match t.key {
            // A few mounts or services: read them beside the writer.
            Some(k) => self.store.read(|c| {
                let mut st = c.prepare(&format!(
                    "SELECT DISTINCT {k} FROM {table} WHERE {time} < ?1"
                ))?;
                let keys = st.query_map([cutoff], |r| r.get(0))?;
                Ok(keys.map(|k| k.map(Some)).collect::<rusqlite::Result<_>>()?)
            })?,
            None => vec![None::<String>],
        };
        let of_key = |i: u8| t.key.map_or(String::new(), |k| format!("{k} = ?{i} AND "));
        let last = format!(
            "SELECT {time} FROM {table} WHERE {}{time} < ?1 ORDER BY {time} LIMIT 1 OFFSET ?2",
            of_key(3)
        );
        let delete = format!("DELETE FROM {table} WHERE {}{time} < ?1", of_key(2));
        let mut total = 0;
        for key in &keys {
            loop {
                if self.stop.is_cancelled() {
                    return Ok(total);
                }
                let (n, more, took) = self.store.write(|c| {
                    let started = Instant::now();
                    let offset = sizer.size - 1;
                    let last: Option<i64> = c
                        .prepare_cached(&last)?
                        .query_row(&*with_key(vec![&cutoff, &offset], key), |r| r.get(0))
                        .optional()?;
                    let end = last.map_or(cutoff, |l| l + 1);
                    let n = c
                        .prepare_cached(&delete)?
                        .execute(&*with_key(vec![&end], key))?;
                    Ok((n as u64, last.is_some(), started.elapsed()))
                })?;
                total += n;
                sizer.next(n, took);
                if n > 0 {
                    self.breathe();
                }
                if !more {
                    break;
                }
            }
        }
        Ok(total)
    }

    /// Hands the free pages back to the filesystem, a step at a time with
    /// the writer released between steps, then checkpoints so the file
    /// itself shrinks now rather than at the next automatic checkpoint.
    /// Returns how many pages went.
    fn give_back(&self) -> Result<u64> {
        let mut sizer = Sizer::pages();
        let mut total = 0;
        while !self.stop.is_cancelled() {
            let (freed, left, took) = self.store.write(|c| {
                let started = Instant::now();
                let before = free_pages(c)?;
                if before == 0 {
                    return Ok((0, 0, started.elapsed()));
                }
                // One row per page freed: step it to the end.
                let mut st = c.prepare(&format!("PRAGMA incremental_vacuum({})", sizer.size))?;
                let mut rows = st.query([])?;
                while rows.next()?.is_some() {}
                drop(rows);
                let after = free_pages(c)?;
                Ok((before.saturating_sub(after), after, started.elapsed()))
            })?;
            total += freed;
            sizer.next(freed, took);
            // Nothing freed yet pages free: auto-vacuum is not incremental.
            if left == 0 || freed == 0 {
                break;
            }
            self.breathe();
        }
        if total > 0 {
            self.checkpoint()?;
        }
        Ok(total)
    }
}

/// Parameters, then the table's key when it has one.
fn with_key<'a>(mut p: Vec<&'a dyn ToSql>, key: &'a Option<String>) -> Vec<&'a dyn ToSql> {
    if let Some(k) = key {
        p.push(k);
    }
    p
}

fn free_pages(c: &Connection) -> Result<u64> {
    Ok(c.query_row("PRAGMA freelist_count", [], |r| r.get::<_, i64>(0))? as u64)
}

/// Turns incremental auto-vacuum on in a database made without it: once,
/// at open, by rewriting the file (`VACUUM`). A failure (a full disk: the
/// rewrite needs about the file's size again) is logged and start-up goes
/// on; the file then only stops growing, and the next start tries again.
pub(super) fn make_incremental(c: &Connection) {
    let mode = c.query_row("PRAGMA auto_vacuum", [], |r| r.get::<_, i64>(0));
    if !matches!(mode, Ok(0)) {
        return;
    }
    // VACUUM writes a copy of the file through a temporary file and the
    // WAL: about twice its size. Short of that it would fill the disk of
    // the very host that needs the space, and fail, on every start.
    let size: i64 = c
        .query_row(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0);
    let need = size.max(0) as u64 / 10 * 22;
    let free = c
        .path()
        .and_then(|p| std::path::Path::new(p).parent().map(ToOwned::to_owned))
        .and_then(|dir| rustix::fs::statvfs(&dir).ok())
        .map(|v| v.f_bavail * v.f_frsize);
    if free.is_some_and(|free| free < need) {
        tracing::warn!(
            free_bytes = free,
            needed_bytes = need,
            "not enough free space to turn on incremental auto-vacuum (the rewrite needs twice \
             the file); purged space stays in the file for reuse"
        );
        return;
    }
    let started = Instant::now();
    let done = c.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;");
    // The rewrite went through the WAL: fold it in and shrink it, also
    // after a failure (a full disk wants that space back).
    let _ = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    let ms = started.elapsed().as_millis() as u64;
    match done {
        Ok(()) => tracing::info!(
            ms,
            "turned on incremental auto-vacuum: the file now shrinks after purges"
        ),
        Err(e) => tracing::warn!(
            error = %e,
            ms,
            "could not turn on incremental auto-vacuum; purged space stays in the file for reuse"
        ),
    }
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
