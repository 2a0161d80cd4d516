//! Silences: a rule (or one of its subjects) whose notifications and actions
//! are recorded as silenced until a time. Bounded: at most
//! `MAX_ACTIVE_SILENCES` unexpired at once, and expired ones are purged
//! whenever one is made, so no caller can grow the table without bound.

use super::{Result, Store, StoreError, checks::millis_to_time};
use chrono::{DateTime, Utc};
use rusqlite::{Row, params};
use serde::Serialize;
use utoipa::ToSchema;

/// Unexpired silences allowed at once.
pub const MAX_ACTIVE_SILENCES: u64 = 1000;

/// A silence to make; its text is checked (and bounded) by the caller.
#[derive(Debug, Clone)]
pub struct NewSilence {
    pub rule: String,
    /// `None` silences every subject of the rule.
    pub subject: Option<String>,
    pub until: DateTime<Utc>,
    /// The token that made it.
    pub created_by: String,
    pub comment: Option<String>,
}

/// A rule, or one of its subjects, silenced until a time.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct Silence {
    pub id: i64,
    pub rule: String,
    /// The subject silenced, as alerts name it; null for every subject of the rule.
    pub subject: Option<String>,
    pub until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// The token that made it.
    pub created_by: String,
    pub comment: Option<String>,
    /// Whether it is in force now (`until` is still ahead).
    pub active: bool,
}

const COLUMNS: &str = "id, rule, subject, until, created_at, created_by, comment";

fn row(now: i64) -> impl Fn(&Row<'_>) -> rusqlite::Result<Silence> {
    move |r| {
        let until: i64 = r.get(3)?;
        Ok(Silence {
            id: r.get(0)?,
            rule: r.get(1)?,
            subject: r.get(2)?,
            until: millis_to_time(until),
            created_at: millis_to_time(r.get(4)?),
            created_by: r.get(5)?,
            comment: r.get(6)?,
            active: until > now,
        })
    }
}

impl Store {
    /// Purges expired silences and makes this one, unless
    /// `MAX_ACTIVE_SILENCES` are in force (`LimitReached`).
    pub fn create_silence(&self, s: &NewSilence) -> Result<Silence> {
        let now = Utc::now().timestamp_millis();
        self.write(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM silences WHERE until <= ?1", [now])?;
            let active: i64 = tx.query_row("SELECT count(*) FROM silences", [], |r| r.get(0))?;
            if active as u64 >= MAX_ACTIVE_SILENCES {
                return Err(StoreError::LimitReached(format!(
                    "{MAX_ACTIVE_SILENCES} silences are in force already; delete one, or silence the whole rule instead of each subject"
                )));
            }
            tx.execute(
                "INSERT INTO silences (rule, subject, until, created_at, created_by, comment) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    s.rule,
                    s.subject,
                    s.until.timestamp_millis(),
                    now,
                    s.created_by,
                    s.comment
                ],
            )?;
            let id = tx.last_insert_rowid();
            let made = tx.query_row(
                &format!("SELECT {COLUMNS} FROM silences WHERE id = ?1"),
                [id],
                row(now),
            )?;
            tx.commit()?;
            Ok(made)
        })
    }

    /// Silences in force, newest first; with `include_expired`, those that
    /// ran out since the last purge too.
    pub fn list_silences(&self, include_expired: bool) -> Result<Vec<Silence>> {
        let now = Utc::now().timestamp_millis();
        let from = if include_expired { i64::MIN } else { now + 1 };
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM silences WHERE until >= ?1 ORDER BY id DESC"
            ))?;
            let rows = st.query_map([from], row(now))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// The silences in force at `now`, for the engine.
    pub fn active_silences(&self, now: DateTime<Utc>) -> Result<Vec<Silence>> {
        let now = now.timestamp_millis();
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM silences WHERE until > ?1 ORDER BY id"
            ))?;
            let rows = st.query_map([now], row(now))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Deletes one silence, expired or not; `NotFound` when there is none.
    pub fn delete_silence(&self, id: i64) -> Result<Silence> {
        let now = Utc::now().timestamp_millis();
        self.write(|c| {
            let tx = c.transaction()?;
            let gone = tx.query_row(
                &format!("SELECT {COLUMNS} FROM silences WHERE id = ?1"),
                [id],
                row(now),
            )?;
            tx.execute("DELETE FROM silences WHERE id = ?1", [id])?;
            tx.commit()?;
            Ok(gone)
        })
    }
}
