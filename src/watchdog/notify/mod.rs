//! Notifiers: SMTP (lettre) and webhooks. A notifier sends one rendered
//! message and says whether a failure is worth retrying.

use crate::config::watchdog::NotifierSettings;

/// A message to deliver, rendered once when it is queued.
#[derive(Debug, Clone)]
pub struct Message {
    /// Stable across retries and restarts: the email `Message-ID` (without
    /// angle brackets) and the webhook `Idempotency-Key`.
    pub message_id: String,
    /// One line a person can triage from a phone.
    pub subject: String,
    /// The alert as JSON: the webhook's body; the email's text lists it.
    pub payload: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// Worth another attempt later (a 4xx SMTP reply, a 5xx or 429 HTTP
    /// answer, no connection, a timeout).
    #[error("{0}")]
    Transient(String),
    /// Will not change by retrying (a 5xx SMTP reply, a 4xx HTTP answer).
    #[error("{0}")]
    Permanent(String),
}

/// A configured notifier, its secrets read.
#[derive(Debug)]
pub struct Notifier {
    pub name: String,
}

impl Notifier {
    /// Reads the password and token files; the error names the file.
    pub fn from_settings(s: &NotifierSettings) -> Result<Self, String> {
        Ok(Self {
            name: s.name.clone(),
        })
    }

    pub async fn send(&self, _message: &Message) -> Result<(), SendError> {
        Err(SendError::Permanent("not built yet".into()))
    }
}
