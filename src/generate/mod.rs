//! Made-up but realistic checks, for scale (issue 10): `hostwatch generate`
//! fills a database with days of history in seconds, so anyone can reproduce
//! the figures in benches/README.md. Nothing here reads the host. The same
//! seed and the same calls give the same checks, so a figure can be measured
//! again on the same data; only the times move with the clock.

mod host;

pub use host::{Generator, Shape};

use crate::store::{Store, StoreError};
use chrono::Utc;
use std::time::Duration;

/// Checks per transaction: commits stay rare, progress still shows often.
const BATCH: usize = 2_000;

/// Whether `fill` may write to the database at `path`, looked at without
/// changing it: a missing or empty file may be filled; one that holds
/// checks only with `append` (made-up checks mixed into real ones by a typo
/// would be hard to undo), and only when its schema is this binary's, so
/// that a database an older agent still runs on is never migrated under it.
pub fn may_fill(path: &std::path::Path, append: bool) -> Result<(), String> {
    use rusqlite::{Connection, OpenFlags};
    if std::fs::metadata(path).map_or(true, |m| m.len() == 0) {
        return Ok(());
    }
    let shown = path.display();
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    let version: u32 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| format!("{shown} is not a database: {e}"))?;
    let held: i64 = c
        .query_row("SELECT count(*) FROM checks", [], |r| r.get(0))
        .map_err(|_| format!("{shown} is not a hostwatch database"))?;
    if held > 0 && !append {
        return Err(format!(
            "{shown} already holds {held} checks; pass --append to add more, or give a new --db"
        ));
    }
    let latest = crate::store::schema_version();
    if version != latest {
        return Err(format!(
            "{shown} has schema version {version}, this hostwatch writes {latest}; \
             let the agent of that version migrate it, or give a new --db"
        ));
    }
    Ok(())
}

/// Writes made-up checks every `interval` (at least 1 ms) from `days` ago to
/// now, in transactions of 2,000 (roll-ups kept up as the agent does),
/// calling `progress(written, total)` after each. Returns how many were
/// written.
pub fn fill(
    store: &Store,
    days: u32,
    interval: Duration,
    shape: Shape,
    seed: u64,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, StoreError> {
    let span_ms = i64::from(days) * 86_400_000;
    let step_ms = interval.as_millis().clamp(1, span_ms.max(1) as u128) as i64;
    let total = (span_ms / step_ms) as u64;
    let first = Utc::now() - chrono::Duration::milliseconds(span_ms);
    let mut generator = Generator::new(seed, shape);
    let mut batch = Vec::with_capacity(BATCH);
    let mut written = 0;
    // The last check falls on now, the first one interval after `days` ago.
    for i in 1..=total {
        let t = first + chrono::Duration::milliseconds(i as i64 * step_ms);
        batch.push(generator.check_at(t));
        if batch.len() == BATCH || i == total {
            store.insert_checks(&batch)?;
            written += batch.len() as u64;
            batch.clear();
            progress(written, total);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests;
