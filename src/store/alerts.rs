//! The watchdog's alerts as the API reads them: a page of alerts, one alert
//! with its timeline (transitions, messages, actions), and the counts
//! `/metrics` shows. The engine writes these tables (`store::watchdog`);
//! nothing here writes.

use super::{Result, Store, checks::millis_to_time, notifications::Notification};
use crate::domain::TimeRange;
use chrono::{DateTime, Utc};
use rusqlite::{Row, params};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// An alert's state: `pending` (beyond its limit for less than `for`),
/// `firing`, or `resolved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One episode of a rule being beyond its limit for one subject.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct Alert {
    pub id: i64,
    /// The rule's name.
    pub rule: String,
    /// The metric the rule watches, e.g. `process.cpu_percent`.
    pub metric: String,
    /// What the alert is about, e.g. `worker (pid 4242)` or `/var`.
    pub subject: String,
    /// `pending`, `firing` or `resolved`.
    #[schema(inline)]
    pub state: AlertState,
    /// The latest value seen while the alert was open.
    pub value: Option<f64>,
    /// The rule's limit.
    pub limit: f64,
    /// `above` or `below`: which side of the limit is beyond it.
    #[schema(pattern = "^(above|below)$")]
    pub op: String,
    /// When the value first went beyond the limit.
    pub started_at: DateTime<Utc>,
    /// When the alert started firing (null while pending).
    pub fired_at: Option<DateTime<Utc>>,
    /// When it came back within the limit for `keep_firing_for`.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// Which alerts to list.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub state: Option<AlertState>,
    pub rule: Option<String>,
    /// Alerts open at some time in the window: started before its end, and
    /// not resolved before its start.
    pub window: TimeRange,
    pub limit: u32,
    /// Only alerts with a smaller id: the last id of the previous page.
    pub before_id: Option<i64>,
}

/// One alert and its timeline; the alert's own fields are at the top level.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AlertDetail {
    #[serde(flatten)]
    pub alert: Alert,
    /// Every change of state, oldest first.
    pub transitions: Vec<Transition>,
    /// The messages the alert called for, oldest first; null for a caller
    /// without a token (messages need one, SPEC §5).
    pub notifications: Option<Vec<Notification>>,
    /// The actions it set in motion, oldest first.
    pub actions: Vec<ActionRecord>,
}

/// A change of an alert's state.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Transition {
    pub at: DateTime<Utc>,
    /// `inactive`, `pending` or `firing`.
    pub from: String,
    /// `pending`, `firing` or `resolved`.
    pub to: String,
    /// The value that caused it.
    pub value: Option<f64>,
}

/// An action a firing alert set in motion, and how it went.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ActionRecord {
    pub id: i64,
    /// `kill`, `restart` or `exec`.
    pub kind: String,
    /// The action's settings as the rule gave them, with its subject.
    #[schema(value_type = Object)]
    pub spec: Map<String, Value>,
    /// `pending`, `done`, `failed`, `dry_run` or `silenced`.
    pub status: String,
    pub attempts: u32,
    /// What was done, or why it failed.
    pub outcome: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Counts for `/metrics`, each from one GROUP BY over an index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WatchdogCounts {
    /// (rule, firing alerts), rules with none left out.
    pub firing: Vec<(String, u64)>,
    /// (notifier, status, messages stored).
    pub notifications: Vec<(String, String, u64)>,
    /// (kind, status, actions stored).
    pub actions: Vec<(String, String, u64)>,
}

const ALERT_COLUMNS: &str =
    "id, rule, metric, subject, state, value, threshold, op, started_at, fired_at, resolved_at";

/// A REAL that is not a finite number (a ratio over a zero minimum) has no
/// JSON form: it reads as unknown.
pub(super) fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

pub(super) fn time_opt(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.map(millis_to_time)
}

fn alert_row(r: &Row<'_>) -> rusqlite::Result<Alert> {
    let state: String = r.get(4)?;
    let state = match state.as_str() {
        "pending" => AlertState::Pending,
        "firing" => AlertState::Firing,
        // The table's CHECK allows nothing else.
        _ => AlertState::Resolved,
    };
    Ok(Alert {
        id: r.get(0)?,
        rule: r.get(1)?,
        metric: r.get(2)?,
        subject: r.get(3)?,
        state,
        value: finite(r.get(5)?),
        limit: r.get(6)?,
        op: r.get(7)?,
        started_at: millis_to_time(r.get(8)?),
        fired_at: time_opt(r.get(9)?),
        resolved_at: time_opt(r.get(10)?),
    })
}

fn action_row(r: &Row<'_>) -> rusqlite::Result<ActionRecord> {
    let spec: String = r.get(2)?;
    let spec = match serde_json::from_str(&spec) {
        Ok(Value::Object(m)) => m,
        // Written by the engine as an object; anything else is shown as is.
        _ => Map::from_iter([("raw".to_owned(), Value::String(spec))]),
    };
    Ok(ActionRecord {
        id: r.get(0)?,
        kind: r.get(1)?,
        spec,
        status: r.get(3)?,
        attempts: r.get(4)?,
        outcome: r.get(5)?,
        created_at: millis_to_time(r.get(6)?),
        finished_at: time_opt(r.get(7)?),
    })
}

impl Store {
    /// Alerts, newest first (by id); `before_id` pages back.
    pub fn list_alerts(&self, f: &AlertFilter) -> Result<Vec<Alert>> {
        let (since, until) = f.window.millis();
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {ALERT_COLUMNS} FROM alerts \
                 WHERE id < ?1 AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR rule = ?3) \
                 AND started_at < ?4 AND (resolved_at IS NULL OR resolved_at >= ?5) \
                 ORDER BY id DESC LIMIT ?6"
            ))?;
            let rows = st.query_map(
                params![
                    f.before_id.unwrap_or(i64::MAX),
                    f.state.map(AlertState::as_str),
                    f.rule,
                    until,
                    since,
                    f.limit
                ],
                alert_row,
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// One alert with its transitions, notifications and actions;
    /// `NotFound` when there is no such alert.
    pub fn alert_detail(&self, id: i64) -> Result<AlertDetail> {
        self.read(|c| {
            let alert = c.query_row(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"),
                [id],
                alert_row,
            )?;
            let transitions = c
                .prepare_cached(
                    "SELECT at, from_state, to_state, value FROM alert_transitions \
                     WHERE alert_id = ?1 ORDER BY id",
                )?
                .query_map([id], |r| {
                    Ok(Transition {
                        at: millis_to_time(r.get(0)?),
                        from: r.get(1)?,
                        to: r.get(2)?,
                        value: finite(r.get(3)?),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let notifications = Some(super::notifications::of_alert(c, id)?);
            let actions = c
                .prepare_cached(
                    "SELECT id, kind, spec, status, attempts, outcome, created_at, finished_at \
                     FROM actions WHERE alert_id = ?1 ORDER BY id",
                )?
                .query_map([id], action_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(AlertDetail {
                alert,
                transitions,
                notifications,
                actions,
            })
        })
    }

    /// Firing alerts per rule, stored messages per notifier and status,
    /// actions per kind and status.
    pub fn watchdog_counts(&self) -> Result<WatchdogCounts> {
        self.read(|c| {
            // `state != 'resolved'` lets SQLite use the small partial index
            // of open alerts.
            let firing = c
                .prepare_cached(
                    "SELECT rule, count(*) FROM alerts \
                     WHERE state != 'resolved' AND state = 'firing' GROUP BY rule",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let pairs = |sql: &str| -> Result<Vec<(String, String, u64)>> {
                Ok(c.prepare_cached(sql)?
                    .query_map([], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?)
            };
            Ok(WatchdogCounts {
                firing,
                notifications: pairs(
                    "SELECT notifier, status, count(*) FROM notifications GROUP BY notifier, status",
                )?,
                actions: pairs("SELECT kind, status, count(*) FROM actions GROUP BY kind, status")?,
            })
        })
    }
}

#[cfg(test)]
#[path = "alerts_tests.rs"]
mod tests;
