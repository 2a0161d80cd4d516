//! The outbox as the API reads it: every message the watchdog queued, with
//! how its delivery went. The rendered payload is never read here: the API
//! shows what was sent to whom and how it went, not the message.

use super::{Result, Store, alerts::time_opt, checks::millis_to_time};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, params};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a message is: `pending` (to be sent or retried), `sent`, `failed`
/// (after its attempts, or a refusal that will not change) or `silenced`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotificationStatus {
    Pending,
    Sent,
    Failed,
    Silenced,
}

impl NotificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Pending => "pending",
            NotificationStatus::Sent => "sent",
            NotificationStatus::Failed => "failed",
            NotificationStatus::Silenced => "silenced",
        }
    }
}

/// One message to one notifier.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Notification {
    pub id: i64,
    /// Stable across retries: the email `Message-ID`, the webhook `Idempotency-Key`.
    pub message_id: String,
    /// The alert it is about (null for a test message).
    pub alert_id: Option<i64>,
    pub notifier: String,
    /// `firing`, `resolved`, `repeat` or `test`.
    pub event: String,
    #[schema(inline)]
    pub status: NotificationStatus,
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// When the next attempt is due (pending messages only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The message's one-line subject.
    pub subject: String,
}

/// Which messages to list.
#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    pub status: Option<NotificationStatus>,
    pub notifier: Option<String>,
    pub limit: u32,
    /// Only messages with a smaller id: the last id of the previous page.
    pub before_id: Option<i64>,
}

const COLUMNS: &str = "id, message_id, alert_id, notifier, event, status, attempts, last_error, \
     created_at, sent_at, next_attempt_at, subject";

fn row(r: &Row<'_>) -> rusqlite::Result<Notification> {
    let status: String = r.get(5)?;
    let status = match status.as_str() {
        "sent" => NotificationStatus::Sent,
        "failed" => NotificationStatus::Failed,
        "silenced" => NotificationStatus::Silenced,
        // The table's CHECK allows nothing else.
        _ => NotificationStatus::Pending,
    };
    let next: i64 = r.get(10)?;
    Ok(Notification {
        id: r.get(0)?,
        message_id: r.get(1)?,
        alert_id: r.get(2)?,
        notifier: r.get(3)?,
        event: r.get(4)?,
        status,
        attempts: r.get(6)?,
        last_error: r.get(7)?,
        created_at: millis_to_time(r.get(8)?),
        sent_at: time_opt(r.get(9)?),
        next_attempt_at: (status == NotificationStatus::Pending).then(|| millis_to_time(next)),
        subject: r.get(11)?,
    })
}

/// An alert's messages, oldest first.
pub(super) fn of_alert(c: &Connection, alert_id: i64) -> Result<Vec<Notification>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE alert_id = ?1 ORDER BY id"
    ))?;
    let rows = st.query_map([alert_id], row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

impl Store {
    /// Messages, newest first (by id); `before_id` pages back.
    pub fn list_notifications(&self, f: &NotificationFilter) -> Result<Vec<Notification>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM notifications \
                 WHERE id < ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR notifier = ?3) \
                 ORDER BY id DESC LIMIT ?4"
            ))?;
            let rows = st.query_map(
                params![
                    f.before_id.unwrap_or(i64::MAX),
                    f.status.map(NotificationStatus::as_str),
                    f.notifier,
                    f.limit
                ],
                row,
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}
