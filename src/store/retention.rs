//! Purges, in the background: raw checks older than `storage.retention`,
//! and audit rows, ended jobs and resolved alerts (with their messages and
//! actions) older than `storage.audit_retention`.

use super::{Result, Store};
use chrono::{DateTime, Utc};
use rusqlite::params;
use std::{sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;

/// Rows deleted per transaction, so the writer is never held for long.
const BATCH: u32 = 2_000;

/// How often to purge: hourly, or more often for a short retention.
fn period(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

pub async fn run(
    store: Arc<Store>,
    retention: Duration,
    audit_retention: Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(period(retention.min(audit_retention)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Ok(age) = chrono::Duration::from_std(retention) else {
            continue;
        };
        let cutoff = chrono::Utc::now() - age;
        let s = Arc::clone(&store);
        match tokio::task::spawn_blocking(move || s.purge_checks_before(cutoff, BATCH)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(deleted = n, "purged checks past retention"),
            Ok(Err(e)) => tracing::warn!(error = %e, "purging old checks failed"),
            Err(e) => tracing::warn!(error = %e, "purging old checks failed"),
        }
        let Ok(age) = chrono::Duration::from_std(audit_retention) else {
            continue;
        };
        let cutoff = chrono::Utc::now() - age;
        let s = Arc::clone(&store);
        let purged = tokio::task::spawn_blocking(move || {
            Ok::<_, super::StoreError>((
                s.purge_audit_before(cutoff, BATCH)?,
                s.purge_jobs_before(cutoff, BATCH)? + s.purge_alerts_before(cutoff, BATCH)?,
            ))
        })
        .await;
        match purged {
            Ok(Ok((0, 0))) => {}
            Ok(Ok((audit, jobs))) => {
                tracing::info!(
                    audit,
                    jobs,
                    "purged audit rows, jobs and resolved alerts past retention"
                )
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "purging the audit trail failed"),
            Err(e) => tracing::warn!(error = %e, "purging the audit trail failed"),
        }
    }
}

impl Store {
    /// Deletes checks taken before `cutoff`, in batches so the writer is never
    /// held for long; returns how many went.
    pub fn purge_checks_before(&self, cutoff: DateTime<Utc>, batch: u32) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = self.write(|c| {
                Ok(c.execute(
                    "DELETE FROM checks WHERE id IN \
                     (SELECT id FROM checks WHERE taken_at < ?1 LIMIT ?2)",
                    params![cutoff.timestamp_millis(), batch],
                )?)
            })?;
            total += n as u64;
            if n < batch as usize {
                return Ok(total);
            }
        }
    }
}
