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
}

impl Store {
    pub fn record_audit(&self, e: &AuditEntry) -> Result<i64> {
        self.write(|c| {
            c.execute(
                "INSERT INTO audit (at, actor, action, target, outcome, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![Utc::now().timestamp_millis(), e.actor, e.action, e.target, e.outcome, e.detail],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Newest first; `before_id` pages back.
    pub fn audit(&self, limit: u32, before_id: Option<i64>) -> Result<Vec<AuditRecord>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, at, actor, action, target, outcome, detail FROM audit \
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
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}
