//! The audit trail: every control action, allowed or refused.

use super::{Result, Store, checks::millis_to_time};
use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;
use utoipa::ToSchema;

/// An action to record.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// The token's name (`anonymous` where none was needed).
    pub actor: String,
    /// What was asked, e.g. `sampler.start`.
    pub action: String,
    /// What it was asked of, e.g. a pid or a service name.
    pub target: Option<String>,
    /// `ok`, `refused` or `failed`.
    pub outcome: String,
    /// Parameters or the reason for the outcome.
    pub detail: Option<String>,
}

/// A recorded action.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AuditRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
    /// Rows of the same caller not written just before this one: they came
    /// faster than the audit's rate allows. A row whose action is
    /// `audit.suppressed` exists only to carry this count.
    pub suppressed: u64,
}

/// Longest text kept in any audit column, in bytes: a row's size does not
/// depend on what a caller sends.
pub const MAX_FIELD: usize = 256;

/// `s` cut to at most `max` bytes on a character boundary, marked with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl Store {
    pub fn record_audit(&self, e: &AuditEntry) -> Result<i64> {
        self.record_audit_counted(e, 0)
    }

    /// Records `e` with the number of rows of its caller dropped before it.
    pub fn record_audit_counted(&self, e: &AuditEntry, suppressed: u64) -> Result<i64> {
        let cut = |s: &str| truncate(s, MAX_FIELD);
        let (actor, action, outcome) = (cut(&e.actor), cut(&e.action), cut(&e.outcome));
        let target = e.target.as_deref().map(cut);
        let detail = e.detail.as_deref().map(cut);
        self.write(|c| {
            c.execute(
                "INSERT INTO audit (at, actor, action, target, outcome, detail, suppressed) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    Utc::now().timestamp_millis(),
                    actor,
                    action,
                    target,
                    outcome,
                    detail,
                    // SQLite's integers are i64; no count comes near.
                    i64::try_from(suppressed).unwrap_or(i64::MAX)
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Deletes audit rows older than `cutoff`, `batch` rows per transaction
    /// so the writer is never held for long; returns how many went.
    pub fn purge_audit_before(&self, cutoff: DateTime<Utc>, batch: u32) -> Result<u64> {
        self.purge_in_batches(
            "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ?1 LIMIT ?2)",
            cutoff,
            batch,
        )
    }

    pub(super) fn purge_in_batches(
        &self,
        sql: &str,
        cutoff: DateTime<Utc>,
        batch: u32,
    ) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = self.write(|c| {
                Ok(c.prepare_cached(sql)?
                    .execute(params![cutoff.timestamp_millis(), batch])?)
            })?;
            total += n as u64;
            if n < batch as usize {
                return Ok(total);
            }
        }
    }

    /// Newest first; `before_id` pages back.
    pub fn audit(&self, limit: u32, before_id: Option<i64>) -> Result<Vec<AuditRecord>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, at, actor, action, target, outcome, detail, suppressed FROM audit \
                 WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![before_id.unwrap_or(i64::MAX), limit], |r| {
                Ok(AuditRecord {
                    id: r.get(0)?,
                    at: millis_to_time(r.get(1)?),
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    outcome: r.get(5)?,
                    detail: r.get(6)?,
                    suppressed: r.get::<_, i64>(7)?.max(0) as u64,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let s = "é".repeat(300);
        let t = truncate(&s, MAX_FIELD);
        assert!(t.len() <= MAX_FIELD, "{}", t.len());
        assert!(t.ends_with('…'));
        assert_eq!(truncate("short", MAX_FIELD), "short");
    }

    #[test]
    fn a_huge_audit_row_is_stored_truncated_and_old_rows_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a.db")).unwrap();
        let huge = "x".repeat(100_000);
        store
            .record_audit(&AuditEntry {
                actor: huge.clone(),
                action: huge.clone(),
                target: Some(huge.clone()),
                outcome: "refused".into(),
                detail: Some(huge),
            })
            .unwrap();
        let rows = store.audit(10, None).unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        for field in [
            &r.actor,
            &r.action,
            r.target.as_ref().unwrap(),
            r.detail.as_ref().unwrap(),
        ] {
            assert!(field.len() <= MAX_FIELD, "{}", field.len());
        }
        assert_eq!(
            store
                .purge_audit_before(Utc::now() - chrono::Duration::hours(1), 10)
                .unwrap(),
            0
        );
        let gone = store
            .purge_audit_before(Utc::now() + chrono::Duration::seconds(1), 10)
            .unwrap();
        assert_eq!(gone, 1);
        assert!(store.audit(10, None).unwrap().is_empty());
    }
}
