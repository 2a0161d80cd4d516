//! Notifiers: SMTP (lettre) and webhooks. A notifier sends one rendered
//! message and says whether a failure is worth retrying.
//!
//! Secrets (the SMTP password, the webhook token, the webhook URL's path
//! and query) are read once, when the notifier is built, and never appear in
//! `Debug`, errors or the log.

mod http;
mod smtp;
mod webhook;

use crate::config::watchdog::{NotifierKind, NotifierSettings};
use rustls::pki_types::{CertificateDer, pem::PemObject};
use std::{fmt, path::Path};

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

impl SendError {
    /// Whether another attempt may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient(_))
    }
}

/// A configured notifier, its secrets read.
pub struct Notifier {
    pub name: String,
    channel: Channel,
}

enum Channel {
    Smtp(smtp::Smtp),
    Webhook(webhook::Webhook),
}

impl fmt::Debug for Notifier {
    /// Names the notifier and where it sends; never a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, target) = match &self.channel {
            Channel::Smtp(s) => ("smtp", s.target()),
            Channel::Webhook(w) => ("webhook", w.target()),
        };
        f.debug_struct("Notifier")
            .field("name", &self.name)
            .field("kind", &kind)
            .field("target", &target)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// Reads the password and token files; the error names the file.
    pub fn from_settings(s: &NotifierSettings) -> Result<Self, String> {
        let channel = match s.kind {
            NotifierKind::Smtp => Channel::Smtp(smtp::Smtp::from_settings(s)?),
            NotifierKind::Webhook => Channel::Webhook(webhook::Webhook::from_settings(s)?),
        };
        Ok(Self {
            name: s.name.clone(),
            channel,
        })
    }

    /// Delivers one message on a fresh connection; the whole attempt takes
    /// at most the notifier's `timeout`.
    pub async fn send(&self, message: &Message) -> Result<(), SendError> {
        check_message_id(&message.message_id)?;
        match &self.channel {
            Channel::Smtp(s) => s.send(message).await,
            Channel::Webhook(w) => w.send(message).await,
        }
    }

    /// Where messages go, for the log and the API: `smtp://host:port` or
    /// the webhook's `scheme://host:port` (its path and query may hold a
    /// secret, so they are never shown).
    pub fn target(&self) -> String {
        match &self.channel {
            Channel::Smtp(s) => format!("smtp://{}", s.target()),
            Channel::Webhook(w) => w.target().to_owned(),
        }
    }
}

/// A message id goes into a header as it is: visible ASCII only, no angle
/// brackets (the email's `<…>` are added around it).
fn check_message_id(id: &str) -> Result<(), SendError> {
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
    {
        return Err(SendError::Permanent(format!(
            "message id '{}' is not visible ASCII without angle brackets",
            id.escape_debug()
        )));
    }
    Ok(())
}

/// Reads a secret file: its content without one trailing newline.
fn read_secret(path: &Path, what: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the {what} file {}: {e}", path.display()))?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if text.is_empty() {
        return Err(format!("the {what} file {} is empty", path.display()));
    }
    Ok(text.to_owned())
}

/// Reads `ca_file`: PEM certificates to trust beside the webpki roots.
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read the ca_file {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the ca_file {} is not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "the ca_file {} holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_notifier_and_its_send_can_move_between_threads() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        let s: crate::config::Settings = crate::config::Settings::parse(
            "[[notifiers]]\nname = \"h\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n",
            Path::new("t.toml"),
            std::iter::empty(),
        )
        .unwrap();
        let n = Notifier::from_settings(s.notifiers[0].get_ref()).unwrap();
        send_sync(&n);
        let m = Message {
            message_id: "m".into(),
            subject: "s".into(),
            payload: serde_json::json!({}),
        };
        send(n.send(&m));
    }

    #[test]
    fn a_message_id_that_would_break_a_header_is_refused() {
        assert!(check_message_id("a7.1@hostwatch").is_ok());
        for bad in ["", "a b", "a\r\nBcc: x", "<a@b>"] {
            assert!(
                !check_message_id(bad).unwrap_err().is_transient(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_secret_loses_one_trailing_newline_only() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"s3cret \n\n").unwrap();
        assert_eq!(read_secret(f.path(), "password").unwrap(), "s3cret \n");
    }

    #[test]
    fn an_unreadable_secret_file_is_named() {
        let e = read_secret(Path::new("/nonexistent/pass"), "password_file").unwrap_err();
        assert!(e.contains("/nonexistent/pass"), "{e}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"hello\n").unwrap();
        let e = read_ca_file(f.path()).unwrap_err();
        assert!(e.contains("no PEM certificate"), "{e}");
    }
}
