//! Push (SPEC §8): the stored history sent to remote-write receivers. Each
//! receiver has its own sender task and a cursor in the store, so that an
//! outage, a restart or a receiver that refuses everything costs the others
//! nothing and the history fills the gap once it is back.

mod client;
mod encode;
mod proto;
mod sender;
#[cfg(test)]
mod tests;

use crate::{
    config::remote_write::RemoteWriteSettings,
    store::{Cursor, Store, StoreError},
};
use chrono::{DateTime, Utc};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
#[error("[[remote_write]] {name}: {message}")]
pub struct RemoteWriteError {
    name: String,
    message: String,
}

/// The receivers and what each has been sent.
#[derive(Default)]
pub struct RemoteWrite {
    receivers: Vec<Arc<Receiver>>,
}

/// One receiver as the API and `/metrics` show it.
pub struct Receiver {
    pub name: String,
    /// `scheme://host:port/…`: never the path, which may be a secret.
    pub endpoint: String,
    pub interval: Duration,
    pub max_backlog: Duration,
    progress: Mutex<Progress>,
}

/// Counts since the agent started, and where the receiver stands.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub samples_sent: u64,
    /// Samples of requests that failed and are sent again (nothing is
    /// dropped for a failure).
    pub samples_failed: u64,
    /// Samples of requests the receiver refused for good (a 4xx).
    pub samples_rejected: u64,
    pub retries: u64,
    /// Checks not sent: older than `max_backlog` when the receiver came
    /// back, or stamped before a sample already sent (a clock stepped back).
    pub checks_skipped: u64,
    /// Where the receiver stands: every check up to its `check_id` was
    /// sent (or skipped).
    pub cursor: Option<Cursor>,
    pub last_success: Option<DateTime<Utc>>,
    /// The latest failure or refusal, until a request is accepted.
    pub last_error: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    /// The latest request was refused for good, not failed.
    pub rejecting: bool,
}

impl Receiver {
    pub fn progress(&self) -> Progress {
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut self.progress.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// How long the oldest check not yet sent has waited, in seconds (0
    /// when every check is sent). Blocking: it reads the store.
    pub fn backlog_seconds(&self, store: &Store, p: &Progress) -> Result<f64, StoreError> {
        let Some(c) = p.cursor else {
            return Ok(0.0);
        };
        Ok(match store.check_after(c.check_id)? {
            Some((_, at)) => (Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0,
            None => 0.0,
        })
    }

    /// `ok`, `behind`, `failing` or `rejecting`, given the backlog.
    pub fn state(&self, p: &Progress, backlog_seconds: f64) -> ReceiverState {
        match (p.failing_since, p.rejecting) {
            (Some(_), true) => ReceiverState::Rejecting,
            (Some(_), false) => ReceiverState::Failing,
            _ if self.is_behind(backlog_seconds) => ReceiverState::Behind,
            _ => ReceiverState::Ok,
        }
    }

    /// Waiting longer than two of its intervals: what the dashboard lists
    /// among the problems.
    pub fn is_behind(&self, backlog_seconds: f64) -> bool {
        backlog_seconds > 2.0 * self.interval.as_secs_f64() + 1.0
    }
}

/// Where a receiver stands, in a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiverState {
    /// Sent up to the newest check, give or take an interval.
    Ok,
    /// Its requests succeed but the oldest unsent check has waited more
    /// than two intervals (catching up after an outage).
    Behind,
    /// Its latest request failed (no connection, 5xx, 429): sent again.
    Failing,
    /// Its latest request was refused (a 4xx): counted, not sent again.
    Rejecting,
}

/// How the store knows a receiver: the SHA-256 of its URL, hex, so that a
/// secret in the URL's path is not written to the database.
pub fn cursor_key(url: &str) -> String {
    hex::encode(crate::tokens::sha256(url))
}

impl RemoteWrite {
    /// Starts one sender per receiver; a token or CA file that cannot be
    /// read stops start-up, naming the receiver.
    pub fn start(
        settings: &[RemoteWriteSettings],
        store: &Arc<Store>,
        shutdown: &CancellationToken,
    ) -> Result<(Arc<Self>, Vec<JoinHandle<()>>), RemoteWriteError> {
        let instance = crate::collect::host_name().unwrap_or_else(|| "localhost".into());
        let mut receivers = Vec::new();
        let mut tasks = Vec::new();
        for (i, s) in settings.iter().enumerate() {
            let name = s.shown_name(i);
            let client = client::Client::new(s).map_err(|message| RemoteWriteError {
                name: name.clone(),
                message,
            })?;
            let receiver = Arc::new(Receiver {
                name,
                endpoint: crate::config::shown_url(&s.url),
                interval: s.interval,
                max_backlog: s.max_backlog,
                progress: Mutex::default(),
            });
            let sender = sender::Sender {
                receiver: Arc::clone(&receiver),
                client: Arc::new(client),
                store: Arc::clone(store),
                key: cursor_key(&s.url),
                instance: instance.clone(),
            };
            // Read before the API serves, so that it never shows a
            // receiver as caught up before its sender has looked.
            let cursor = sender.first_cursor().map_err(|e| RemoteWriteError {
                name: receiver.name.clone(),
                message: format!("cannot read its cursor: {e}"),
            })?;
            receiver.update(|g| g.cursor = Some(cursor));
            tasks.push(tokio::spawn(sender.run(cursor, shutdown.clone())));
            receivers.push(receiver);
        }
        Ok((Arc::new(Self { receivers }), tasks))
    }

    pub fn receivers(&self) -> &[Arc<Receiver>] {
        &self.receivers
    }
}
