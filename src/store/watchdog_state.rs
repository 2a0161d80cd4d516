//! What the watchdog keeps between ticks besides its open alerts, read back
//! at start so that a restart resumes it: each rule's budget of new alerts,
//! when each subject last resolved (the flap guard), and the probes' latest
//! results.

use super::{BudgetRow, Result, Store, checks::millis_to_time};
use crate::domain::probe::ProbeResult;
use chrono::{DateTime, Utc};
use rusqlite::params;

/// A subject's last resolved alert, for the flap guard.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub rule: String,
    pub subject_key: String,
    pub subject: String,
    pub at: DateTime<Utc>,
}

/// Longest error text kept with a probe result.
const MAX_ERROR: usize = 512;

impl Store {
    pub fn watchdog_budgets(&self) -> Result<Vec<BudgetRow>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT rule, tokens, at FROM watchdog_budgets")?;
            let rows = st.query_map([], |r| {
                Ok(BudgetRow {
                    rule: r.get(0)?,
                    tokens: r.get(1)?,
                    at: millis_to_time(r.get(2)?),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// The latest resolution since `since` of each rule's subjects.
    pub fn resolved_since(&self, since: DateTime<Utc>) -> Result<Vec<Resolved>> {
        self.read(|c| {
            // The bare columns come from the row holding the max.
            let mut st = c.prepare(
                "SELECT rule, subject_key, subject, max(resolved_at) FROM alerts
                 WHERE resolved_at >= ?1 GROUP BY rule, subject_key",
            )?;
            let rows = st.query_map([since.timestamp_millis()], |r| {
                Ok(Resolved {
                    rule: r.get(0)?,
                    subject_key: r.get(1)?,
                    subject: r.get(2)?,
                    at: millis_to_time(r.get(3)?),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Keeps one result of `probe`, and only its `keep` latest.
    pub fn save_probe_result(&self, probe: &str, row: &ProbeResult, keep: usize) -> Result<()> {
        let error = row
            .error
            .as_deref()
            .map(|e| super::audit::truncate(e, MAX_ERROR));
        let keep = i64::try_from(keep.max(1)).unwrap_or(i64::MAX);
        self.write(|c| {
            let tx = c.transaction()?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO probe_results (probe, at, ok, latency_ms, error) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![probe, row.at.timestamp_millis(), row.ok, row.latency_ms, error])?;
            tx.prepare_cached(
                "DELETE FROM probe_results WHERE probe = ?1 AND at < (
                    SELECT at FROM probe_results WHERE probe = ?1 ORDER BY at DESC LIMIT 1 OFFSET ?2 - 1)",
            )?
            .execute(params![probe, keep])?;
            tx.commit()?;
            Ok(())
        })
    }

    /// The `keep` latest results of `probe`, oldest first.
    pub fn probe_results(&self, probe: &str, keep: usize) -> Result<Vec<ProbeResult>> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT at, ok, latency_ms, error FROM probe_results WHERE probe = ?1
                 ORDER BY at DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![probe, keep], |r| {
                Ok(ProbeResult {
                    at: millis_to_time(r.get(0)?),
                    ok: r.get(1)?,
                    latency_ms: r.get(2)?,
                    error: r.get(3)?,
                })
            })?;
            let mut v = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            v.reverse();
            Ok(v)
        })
    }

    /// Drops what is kept for probes and rules no longer configured, so a
    /// renamed one leaves nothing behind.
    pub fn forget_watchdog_state_except(&self, probes: &[String], rules: &[String]) -> Result<()> {
        let probes =
            serde_json::to_string(probes).map_err(|e| super::StoreError::Encode(e.to_string()))?;
        let rules =
            serde_json::to_string(rules).map_err(|e| super::StoreError::Encode(e.to_string()))?;
        self.write(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM probe_results WHERE probe NOT IN (SELECT value FROM json_each(?1))",
                [&probes],
            )?;
            tx.execute(
                "DELETE FROM watchdog_budgets WHERE rule NOT IN (SELECT value FROM json_each(?1))",
                [&rules],
            )?;
            tx.commit()?;
            Ok(())
        })
    }
}
