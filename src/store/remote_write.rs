//! Remote-write cursors: per receiver, the last check it acknowledged; and
//! the hourly roll-ups a receiver is sent where the raw checks it missed
//! were purged.

use super::{Result, Store, checks::millis_to_time, rollups::hour_of};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension as _, params};

/// Where a receiver stands: every check up to `check_id` was sent (or
/// skipped), and no sample stamped `sent_until` or earlier is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub check_id: i64,
    pub sent_until: DateTime<Utc>,
}

/// One hour of roll-ups, as averages, stamped with its last check's time.
#[derive(Debug, Clone, PartialEq)]
pub struct RolledHour {
    pub last_at: DateTime<Utc>,
    pub cpu_percent: Option<f64>,
    pub load1: Option<f64>,
    pub mem_percent: Option<f64>,
    pub swap_percent: Option<f64>,
    /// Mount and its average used share, 0–100.
    pub disks: Vec<(String, f64)>,
    /// Service and the share of the hour's checks it was running in, 0–1.
    pub services: Vec<(String, f64)>,
}

impl Store {
    /// Up to `limit` hours whose last check is in `(after, before)`,
    /// oldest first.
    pub fn rolled_hours(
        &self,
        after: DateTime<Utc>,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<RolledHour>> {
        let (a, b) = (after.timestamp_millis(), before.timestamp_millis());
        self.read(|c| {
            let avg = |n: Option<i64>, sum: Option<f64>| match (n, sum) {
                (Some(n), Some(s)) if n > 0 => Some(s / n as f64),
                _ => None,
            };
            let mut st = c.prepare_cached(
                "SELECT hour, last_at, cpu_n, cpu_sum, load1_n, load1_sum, mem_n, mem_sum, \
                 swap_n, swap_sum FROM rollup_host \
                 WHERE hour BETWEEN ?1 AND ?2 AND last_at > ?3 AND last_at < ?4 \
                 ORDER BY hour LIMIT ?5",
            )?;
            let hours = st
                .query_map(params![hour_of(a), hour_of(b), a, b, limit], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        RolledHour {
                            last_at: millis_to_time(r.get(1)?),
                            cpu_percent: avg(r.get(2)?, r.get(3)?),
                            load1: avg(r.get(4)?, r.get(5)?),
                            mem_percent: avg(r.get(6)?, r.get(7)?),
                            swap_percent: avg(r.get(8)?, r.get(9)?),
                            disks: Vec::new(),
                            services: Vec::new(),
                        },
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut out = Vec::with_capacity(hours.len());
            let mut disks = c.prepare_cached(
                "SELECT mount, percent_sum / percent_n FROM rollup_disks \
                 WHERE hour = ?1 AND percent_n > 0 ORDER BY mount",
            )?;
            let mut services = c.prepare_cached(
                "SELECT name, CAST(running AS REAL) / checks FROM rollup_services \
                 WHERE hour = ?1 AND checks > 0 ORDER BY name",
            )?;
            for (hour, mut h) in hours {
                h.disks = disks
                    .query_map([hour], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                h.services = services
                    .query_map([hour], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                out.push(h);
            }
            Ok(out)
        })
    }

    /// `receiver`: `remote_write::cursor_key` of its URL.
    pub fn remote_write_cursor(&self, receiver: &str) -> Result<Option<Cursor>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT check_id, sent_until FROM remote_write_cursors WHERE receiver = ?1",
            )?
            .query_row([receiver], |r| {
                Ok(Cursor {
                    check_id: r.get(0)?,
                    sent_until: millis_to_time(r.get(1)?),
                })
            })
            .optional()?)
        })
    }

    pub fn save_remote_write_cursor(&self, receiver: &str, cursor: Cursor) -> Result<()> {
        self.write(|c| {
            c.prepare_cached(
                "INSERT INTO remote_write_cursors (receiver, check_id, sent_until, updated_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (receiver) DO UPDATE SET \
                 check_id = excluded.check_id, sent_until = excluded.sent_until, \
                 updated_at = excluded.updated_at",
            )?
            .execute(params![
                receiver,
                cursor.check_id,
                cursor.sent_until.timestamp_millis(),
                Utc::now().timestamp_millis()
            ])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_is_kept_per_receiver_and_moves_forward_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("h.db")).unwrap();
        let a = "http://127.0.0.1:9090/api/v1/write";
        assert_eq!(store.remote_write_cursor(a).unwrap(), None);
        let at = millis_to_time(Utc::now().timestamp_millis());
        let first = Cursor {
            check_id: 7,
            sent_until: at,
        };
        store.save_remote_write_cursor(a, first).unwrap();
        let later = Cursor {
            check_id: 9,
            sent_until: at + chrono::Duration::seconds(2),
        };
        store.save_remote_write_cursor(a, later).unwrap();
        store
            .save_remote_write_cursor("http://other/", first)
            .unwrap();
        assert_eq!(store.remote_write_cursor(a).unwrap(), Some(later));
        assert_eq!(
            store.remote_write_cursor("http://other/").unwrap(),
            Some(first)
        );
    }
}
