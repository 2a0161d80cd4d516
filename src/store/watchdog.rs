//! The watchdog's write side: alert transitions written in one transaction
//! with the messages and actions they call for (the outbox), and the
//! sender's and action runner's bookkeeping.

use super::{Result, Store, audit::truncate, checks::millis_to_time};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

/// An alert still pending or firing, as a restart resumes it.
#[derive(Debug, Clone)]
pub struct OpenAlert {
    pub id: i64,
    pub rule: String,
    pub subject: String,
    pub subject_key: String,
    /// `pending` or `firing`.
    pub state: String,
    pub value: Option<f64>,
    pub started_at: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
    pub notified_at: Option<DateTime<Utc>>,
    /// Since when a firing alert has been back within its limit.
    pub within_since: Option<DateTime<Utc>>,
}

/// A new alert: the first transition of a subject out of `inactive`.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub rule: String,
    pub metric: String,
    pub subject: String,
    pub subject_key: String,
    pub threshold: f64,
    pub op: &'static str,
}

/// A message to queue. `payload` gets `alert_id` and, where it holds the
/// text `{alert_id}`, `link` filled in once the alert has its id.
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub message_id: String,
    pub notifier: String,
    pub event: &'static str,
    /// `pending`, or `silenced` when a silence covers it.
    pub status: &'static str,
    pub subject: String,
    pub payload: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct NewAction {
    pub kind: &'static str,
    pub spec: serde_json::Value,
    /// `pending`, `dry_run` or `silenced`.
    pub status: &'static str,
    pub outcome: Option<String>,
}

/// One change of one subject's state. `to = "inactive"` removes an alert
/// that never fired.
#[derive(Debug, Clone)]
pub struct StateChange {
    /// The open alert, or the alert to create.
    pub alert: AlertRef,
    pub from: &'static str,
    pub to: &'static str,
    pub at: DateTime<Utc>,
    pub value: Option<f64>,
    /// The `keep_firing_for` clock after this change.
    pub within_since: Option<DateTime<Utc>>,
    pub notifications: Vec<NewNotification>,
    pub actions: Vec<NewAction>,
}

/// A rule's bucket of new alerts as it stands after a tick.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetRow {
    pub rule: String,
    pub tokens: f64,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub enum AlertRef {
    Existing(i64),
    New(NewAlert),
}

/// A message due for delivery.
#[derive(Debug, Clone)]
pub struct DueNotification {
    pub id: i64,
    pub message_id: String,
    pub notifier: String,
    pub attempts: u32,
    pub subject: String,
    pub payload: serde_json::Value,
}

/// An action waiting to run.
#[derive(Debug, Clone)]
pub struct PendingAction {
    pub id: i64,
    pub alert_id: i64,
    pub kind: String,
    pub spec: serde_json::Value,
    pub alert_state: String,
}

const MAX_ERROR: usize = 512;

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl Store {
    pub fn open_alerts(&self) -> Result<Vec<OpenAlert>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT id, rule, subject, subject_key, state, value, started_at, fired_at, notified_at, within_since
                 FROM alerts WHERE state != 'resolved' ORDER BY id",
            )?;
            let rows = st.query_map([], |r| {
                Ok(OpenAlert {
                    id: r.get(0)?,
                    rule: r.get(1)?,
                    subject: r.get(2)?,
                    subject_key: r.get(3)?,
                    state: r.get(4)?,
                    value: r.get(5)?,
                    started_at: millis_to_time(r.get(6)?),
                    fired_at: r.get::<_, Option<i64>>(7)?.map(millis_to_time),
                    notified_at: r.get::<_, Option<i64>>(8)?.map(millis_to_time),
                    within_since: r.get::<_, Option<i64>>(9)?.map(millis_to_time),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Writes every transition of one evaluation in one transaction, with
    /// the messages and actions each calls for and the rules' budgets as
    /// they stand after it; returns each transition's alert id (None where
    /// a pending alert was removed).
    pub fn apply_transitions(
        &self,
        batch: &[StateChange],
        budgets: &[BudgetRow],
    ) -> Result<Vec<Option<i64>>> {
        self.write(|c| {
            let tx = c.transaction()?;
            for b in budgets {
                tx.execute(
                    "INSERT INTO watchdog_budgets (rule, tokens, at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (rule) DO UPDATE SET tokens = excluded.tokens, at = excluded.at",
                    params![b.rule, b.tokens, ms(b.at)],
                )?;
            }
            let mut ids = Vec::with_capacity(batch.len());
            for t in batch {
                let id = match &t.alert {
                    AlertRef::Existing(id) => *id,
                    AlertRef::New(a) => {
                        tx.execute(
                            "INSERT INTO alerts (rule, metric, subject, subject_key, state, value, threshold, op, started_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                            params![a.rule, a.metric, a.subject, a.subject_key, t.to, t.value, a.threshold, a.op, ms(t.at)],
                        )?;
                        tx.last_insert_rowid()
                    }
                };
                if t.to == "inactive" {
                    tx.execute("DELETE FROM alerts WHERE id = ?1", [id])?;
                    ids.push(None);
                    continue;
                }
                let fired = (t.to == "firing" && t.from != "firing").then(|| ms(t.at));
                let resolved = (t.to == "resolved").then(|| ms(t.at));
                let notified = t
                    .notifications
                    .iter()
                    .any(|n| n.event == "firing" || n.event == "repeat")
                    .then(|| ms(t.at));
                tx.execute(
                    "UPDATE alerts SET state = ?2, value = COALESCE(?3, value),
                        fired_at = COALESCE(fired_at, ?4), resolved_at = COALESCE(?5, resolved_at),
                        notified_at = COALESCE(?6, notified_at), within_since = ?7
                     WHERE id = ?1",
                    params![id, t.to, t.value, fired, resolved, notified, t.within_since.map(ms)],
                )?;
                if t.from != t.to {
                    tx.execute(
                        "INSERT INTO alert_transitions (alert_id, at, from_state, to_state, value) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![id, ms(t.at), t.from, t.to, t.value],
                    )?;
                }
                for n in &t.notifications {
                    let mut payload = n.payload.clone();
                    if let Some(obj) = payload.as_object_mut() {
                        obj.insert("alert_id".into(), id.into());
                        if let Some(serde_json::Value::String(link)) = obj.get_mut("link") {
                            *link = link.replace("{alert_id}", &id.to_string());
                        }
                    }
                    tx.execute(
                        "INSERT INTO notifications (message_id, alert_id, notifier, event, status, next_attempt_at, created_at, subject, payload)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)",
                        params![n.message_id, id, n.notifier, n.event, n.status, ms(t.at), n.subject, payload.to_string()],
                    )?;
                }
                for a in &t.actions {
                    let done = (a.status != "pending").then(|| ms(t.at));
                    tx.execute(
                        "INSERT INTO actions (alert_id, kind, spec, status, outcome, created_at, finished_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![id, a.kind, a.spec.to_string(), a.status, a.outcome, ms(t.at), done],
                    )?;
                }
                ids.push(Some(id));
            }
            tx.commit()?;
            Ok(ids)
        })
    }

    /// Records the latest value of open alerts (no transition).
    pub fn update_alert_values(&self, values: &[(i64, f64)]) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        self.write(|c| {
            let tx = c.transaction()?;
            {
                let mut st = tx.prepare_cached("UPDATE alerts SET value = ?2 WHERE id = ?1")?;
                for (id, v) in values {
                    st.execute(params![id, v])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Queues a message that belongs to no alert (a notifier test).
    pub fn queue_notification(&self, n: &NewNotification, at: DateTime<Utc>) -> Result<i64> {
        self.write(|c| {
            c.execute(
                "INSERT INTO notifications (message_id, alert_id, notifier, event, status, next_attempt_at, created_at, subject, payload)
                 VALUES (?1, NULL, ?2, ?3, ?4, ?5, ?5, ?6, ?7)",
                params![n.message_id, n.notifier, n.event, n.status, ms(at), n.subject, n.payload.to_string()],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Pending messages whose next attempt is due by `now`, oldest first.
    /// Test messages are sent by the request that asked for them.
    pub fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueNotification>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, message_id, notifier, attempts, subject, payload FROM notifications
                 WHERE status = 'pending' AND next_attempt_at <= ?1 AND event != 'test'
                 ORDER BY next_attempt_at, id LIMIT ?2",
            )?;
            let rows = st.query_map(params![ms(now), limit], |r| {
                let payload: String = r.get(5)?;
                Ok(DueNotification {
                    id: r.get(0)?,
                    message_id: r.get(1)?,
                    notifier: r.get(2)?,
                    attempts: r.get(3)?,
                    subject: r.get(4)?,
                    payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// When the next pending message falls due, if any is pending.
    pub fn next_notification_due(&self) -> Result<Option<DateTime<Utc>>> {
        self.read(|c| {
            let at: Option<i64> = c
                .query_row(
                    "SELECT min(next_attempt_at) FROM notifications WHERE status = 'pending' AND event != 'test'",
                    [],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            Ok(at.map(millis_to_time))
        })
    }

    /// Records one attempt: `sent`, `failed`, or (with `retry_at`) still
    /// `pending` until then.
    pub fn record_attempt(
        &self,
        id: i64,
        status: &str,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let error = error.map(|e| truncate(e, MAX_ERROR));
        self.write(|c| {
            c.execute(
                "UPDATE notifications SET status = ?2, attempts = attempts + 1, last_error = ?3,
                    next_attempt_at = COALESCE(?4, next_attempt_at),
                    sent_at = CASE WHEN ?2 = 'sent' THEN ?5 ELSE sent_at END
                 WHERE id = ?1",
                params![id, status, error, retry_at.map(ms), ms(now)],
            )?;
            Ok(())
        })
    }

    pub fn pending_actions(&self, limit: u32) -> Result<Vec<PendingAction>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT a.id, a.alert_id, a.kind, a.spec, al.state FROM actions a JOIN alerts al ON al.id = a.alert_id
                 WHERE a.status = 'pending' ORDER BY a.id LIMIT ?1",
            )?;
            let rows = st.query_map([limit], |r| {
                let spec: String = r.get(3)?;
                Ok(PendingAction {
                    id: r.get(0)?,
                    alert_id: r.get(1)?,
                    kind: r.get(2)?,
                    spec: serde_json::from_str(&spec).unwrap_or(serde_json::Value::Null),
                    alert_state: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Marks an action as being run, so a second runner leaves it alone.
    pub fn finish_action(&self, id: i64, status: &str, outcome: &str) -> Result<()> {
        let outcome = truncate(outcome, MAX_ERROR);
        self.write(|c| {
            c.execute(
                "UPDATE actions SET status = ?2, outcome = ?3, attempts = attempts + 1, finished_at = ?4 WHERE id = ?1",
                params![id, status, outcome, ms(Utc::now())],
            )?;
            Ok(())
        })
    }

    /// Deletes resolved alerts (with their transitions, messages and
    /// actions) and test messages older than `cutoff`, in batches.
    pub fn purge_alerts_before(&self, cutoff: DateTime<Utc>, batch: u32) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = self.write(|c| {
                let tx = c.transaction()?;
                let n = tx.execute(
                    "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts WHERE resolved_at < ?1 LIMIT ?2)",
                    params![ms(cutoff), batch],
                )?;
                let m = tx.execute(
                    "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications WHERE alert_id IS NULL AND created_at < ?1 LIMIT ?2)",
                    params![ms(cutoff), batch],
                )?;
                tx.commit()?;
                Ok(n + m)
            })?;
            total += n as u64;
            if n == 0 {
                return Ok(total);
            }
        }
    }
}
