//! Remote-write cursors: per receiver, the last check it acknowledged.

use super::{Result, Store, checks::millis_to_time};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension as _, params};

/// Where a receiver stands: every check up to `check_id` was sent (or
/// skipped), and no sample stamped `sent_until` or earlier is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub check_id: i64,
    pub sent_until: DateTime<Utc>,
}

impl Store {
    pub fn remote_write_cursor(&self, url: &str) -> Result<Option<Cursor>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT check_id, sent_until FROM remote_write_cursors WHERE url = ?1",
            )?
            .query_row([url], |r| {
                Ok(Cursor {
                    check_id: r.get(0)?,
                    sent_until: millis_to_time(r.get(1)?),
                })
            })
            .optional()?)
        })
    }

    pub fn save_remote_write_cursor(&self, url: &str, cursor: Cursor) -> Result<()> {
        self.write(|c| {
            c.prepare_cached(
                "INSERT INTO remote_write_cursors (url, check_id, sent_until, updated_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (url) DO UPDATE SET \
                 check_id = excluded.check_id, sent_until = excluded.sent_until, \
                 updated_at = excluded.updated_at",
            )?
            .execute(params![
                url,
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
