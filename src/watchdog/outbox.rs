//! The sender: delivers the messages the engine queued, oldest due first,
//! retrying a transient failure with exponential backoff and jitter until
//! the notifier's `max_attempts`; a permanent failure is `failed` at once.
//! Everything it knows is in the database, so a restart (even after
//! SIGKILL) picks up where it stopped.

use super::notify::{Message, Notifier, SendError};
use crate::store::{DueNotification, Store};
use chrono::{DateTime, Utc};
use std::{collections::HashMap, sync::Arc, time::Duration};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub struct Sender {
    pub store: Arc<Store>,
    pub notifiers: Arc<HashMap<String, (Arc<Notifier>, u32)>>,
    pub wake: Arc<Notify>,
}

/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Longest sleep when nothing is due: a message queued by another path
/// (none today) is still picked up.
const IDLE: Duration = Duration::from_secs(30);
/// Messages sent at once.
const BATCH: u32 = 16;

/// The wait after the `attempt`-th failure: 1 s, 2 s, 4 s … up to 5 min,
/// each stretched by up to a quarter at random so that many agents (or
/// many messages) do not retry in step.
pub fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_secs(1u64 << attempt.saturating_sub(1).min(16)).min(MAX_BACKOFF);
    let mut r = [0u8; 2];
    let _ = getrandom::fill(&mut r);
    let jitter = f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX) * 0.25;
    base.mul_f64(1.0 + jitter)
}

/// What one attempt comes to: the status to store and when to retry.
pub fn settle(
    result: &Result<(), SendError>,
    attempts_before: u32,
    max_attempts: u32,
    now: DateTime<Utc>,
) -> (&'static str, Option<String>, Option<DateTime<Utc>>) {
    match result {
        Ok(()) => ("sent", None, None),
        Err(SendError::Permanent(e)) => ("failed", Some(e.clone()), None),
        Err(SendError::Transient(e)) if attempts_before + 1 >= max_attempts => (
            "failed",
            Some(format!("{e} (gave up after {max_attempts} attempts)")),
            None,
        ),
        Err(SendError::Transient(e)) => {
            let wait = backoff(attempts_before + 1);
            let at = now + chrono::Duration::from_std(wait).unwrap_or_default();
            ("pending", Some(e.clone()), Some(at))
        }
    }
}

impl Sender {
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let wait = match self.round().await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(error = %e, "the watchdog's sender cannot read its outbox");
                    Duration::from_secs(5)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Sends what is due; answers how long until the next message is.
    async fn round(&self) -> Result<Duration, String> {
        loop {
            let store = Arc::clone(&self.store);
            let due = blocking(move || store.due_notifications(Utc::now(), BATCH)).await?;
            if due.is_empty() {
                break;
            }
            let sends = due.into_iter().map(|n| self.deliver(n));
            futures_util::future::join_all(sends).await;
        }
        let store = Arc::clone(&self.store);
        let next = blocking(move || store.next_notification_due()).await?;
        Ok(match next {
            Some(at) => (at - Utc::now()).to_std().unwrap_or_default().min(IDLE),
            None => IDLE,
        })
    }

    async fn deliver(&self, n: DueNotification) {
        let (result, max) = match self.notifiers.get(&n.notifier) {
            Some((notifier, max)) => {
                let message = Message {
                    message_id: n.message_id.clone(),
                    subject: n.subject.clone(),
                    payload: n.payload.clone(),
                };
                (notifier.send(&message).await, *max)
            }
            None => (
                Err(SendError::Permanent(format!(
                    "no notifier is named '{}' any more",
                    n.notifier
                ))),
                1,
            ),
        };
        let now = Utc::now();
        let (status, error, retry_at) = settle(&result, n.attempts, max, now);
        match &result {
            Ok(()) => {
                tracing::info!(message = %n.message_id, notifier = %n.notifier, "message sent")
            }
            Err(e) => {
                tracing::warn!(message = %n.message_id, notifier = %n.notifier, status, error = %e, "message not delivered")
            }
        }
        let store = Arc::clone(&self.store);
        let id = n.id;
        if let Err(e) =
            blocking(move || store.record_attempt(id, status, error.as_deref(), retry_at, now))
                .await
        {
            tracing::error!(message = %n.message_id, error = %e, "cannot record a delivery attempt");
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempt in 1..=4u32 {
            let base = 1u64 << (attempt - 1);
            let d = backoff(attempt).as_secs_f64();
            assert!(
                d >= base as f64 && d <= base as f64 * 1.25 + 1e-9,
                "{attempt}: {d}"
            );
        }
        assert!(backoff(40) <= MAX_BACKOFF.mul_f64(1.25));
    }

    #[test]
    fn transient_failures_retry_until_max_attempts_and_permanent_ones_fail() {
        let now = Utc::now();
        let t = Err(SendError::Transient("451".into()));
        let (s, _, at) = settle(&t, 0, 3, now);
        assert_eq!(s, "pending");
        assert!(at.is_some_and(|at| at > now));
        assert_eq!(settle(&t, 2, 3, now).0, "failed");
        let p = Err(SendError::Permanent("550".into()));
        assert_eq!(settle(&p, 0, 10, now).0, "failed");
        assert_eq!(settle(&Ok(()), 0, 10, now).0, "sent");
    }
}
