//! The SMTP notifier: one connection per message (lettre over tokio and
//! rustls), a plain-text mail that reads well on a phone, and the server's
//! reply turned into transient (4xx, no connection) or permanent (5xx).

use super::{Message, SendError, read_ca_file, read_secret};
use crate::config::watchdog::{NotifierSettings, SmtpTls};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
        extension::ClientId,
    },
};
use std::time::Duration;

/// Payload fields listed first in the body, in this order; the rest follow
/// in the payload's own order.
const FIRST_FIELDS: [&str; 10] = [
    "rule",
    "subject",
    "state",
    "value",
    "limit",
    "started_at",
    "fired_at",
    "resolved_at",
    "host",
    "link",
];

pub(super) struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// `host:port`, for messages.
    target: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    timeout: Duration,
}

impl Smtp {
    pub(super) fn from_settings(s: &NotifierSettings) -> Result<Self, String> {
        let name = &s.name;
        let host = s
            .host
            .as_deref()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("notifier '{name}': an smtp notifier needs a host"))?;
        let port = s.port.unwrap_or(match s.tls {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        });
        let from = s
            .from
            .as_deref()
            .ok_or_else(|| format!("notifier '{name}': an smtp notifier needs from"))?;
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("notifier '{name}': from '{from}' is not an address: {e}"))?;
        if s.to.is_empty() {
            return Err(format!("notifier '{name}': an smtp notifier needs to"));
        }
        let to =
            s.to.iter()
                .map(|t| {
                    t.parse::<Mailbox>()
                        .map_err(|e| format!("notifier '{name}': to '{t}' is not an address: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;

        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(s.timeout))
            .hello_name(hello_name());
        if s.tls != SmtpTls::None {
            let mut params = TlsParameters::builder(host.to_owned());
            if let Some(ca) = &s.ca_file {
                for der in read_ca_file(ca)? {
                    let cert = Certificate::from_der(der.to_vec()).map_err(|e| {
                        format!("the ca_file {} holds a bad certificate: {e}", ca.display())
                    })?;
                    params = params.add_root_certificate(cert);
                }
            }
            let params = params
                .build_rustls()
                .map_err(|e| format!("notifier '{name}': cannot set up TLS: {e}"))?;
            builder = builder.tls(match s.tls {
                SmtpTls::Tls => Tls::Wrapper(params),
                _ => Tls::Required(params),
            });
        }
        match (&s.username, &s.password_file) {
            (Some(user), Some(file)) => {
                let password = read_secret(file, "password_file")?;
                builder = builder.credentials(Credentials::new(user.clone(), password));
            }
            (None, None) => {}
            _ => {
                return Err(format!(
                    "notifier '{name}': username and password_file go together"
                ));
            }
        }
        Ok(Self {
            transport: builder.build(),
            target: format!("{host}:{port}"),
            from,
            to,
            timeout: s.timeout,
        })
    }

    pub(super) fn target(&self) -> &str {
        &self.target
    }

    pub(super) async fn send(&self, message: &Message) -> Result<(), SendError> {
        let mut email = lettre::Message::builder()
            .from(self.from.clone())
            .subject(message.subject.clone())
            .message_id(Some(format!("<{}>", message.message_id)))
            .date_now()
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            email = email.to(to.clone());
        }
        let email = email
            .body(render_body(message))
            .map_err(|e| SendError::Permanent(format!("cannot build the email: {e}")))?;
        match tokio::time::timeout(self.timeout, self.transport.send(email)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&self.target, &e)),
            Err(_) => Err(SendError::Transient(format!(
                "SMTP server {} did not finish within {}",
                self.target,
                crate::domain::time::format_duration(self.timeout)
            ))),
        }
    }
}

/// The EHLO name: this host's name, else lettre's address literal.
fn hello_name() -> ClientId {
    crate::collect::host_name()
        .map(|h| h.trim().to_owned())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        })
        .map_or_else(ClientId::default, ClientId::Domain)
}

/// The mail's text: the subject, a blank line, then `key: value` per field.
pub(super) fn render_body(message: &Message) -> String {
    let mut body = format!("{}\n\n", message.subject);
    let Some(fields) = message.payload.as_object() else {
        body.push_str(&message.payload.to_string());
        body.push('\n');
        return body;
    };
    let first = FIRST_FIELDS.iter().filter_map(|k| fields.get_key_value(*k));
    let rest = fields
        .iter()
        .filter(|(k, _)| !FIRST_FIELDS.contains(&k.as_str()));
    for (key, value) in first.chain(rest) {
        let value = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => "-".to_owned(),
            other => other.to_string(),
        };
        body.push_str(&format!("{key}: {value}\n"));
    }
    body
}

/// A 4xx reply or a failed connection is worth another try; a 5xx reply or
/// a mismatch with the server (no STARTTLS, no usable AUTH) is not.
fn classify(target: &str, e: &lettre::transport::smtp::Error) -> SendError {
    let detail = std::error::Error::source(e).map(ToString::to_string);
    if let Some(code) = e.status() {
        let text = format!(
            "SMTP server {target} answered {code} {}",
            detail.unwrap_or_default()
        );
        let text = text.trim_end().to_owned();
        return if e.is_transient() {
            SendError::Transient(text)
        } else {
            SendError::Permanent(text)
        };
    }
    let cause = detail.unwrap_or_else(|| e.to_string());
    if e.is_timeout() {
        SendError::Transient(format!("SMTP server {target} timed out: {cause}"))
    } else if let Some(tls) = tls_cause(e) {
        SendError::Transient(format!("TLS with SMTP server {target} failed: {tls}"))
    } else if e.is_tls() {
        SendError::Transient(format!("TLS with SMTP server {target} failed: {cause}"))
    } else if e.is_client() {
        SendError::Permanent(format!("SMTP server {target}: {cause}"))
    } else {
        SendError::Transient(format!(
            "cannot talk to SMTP server {target}: {}",
            e.to_string().trim_start_matches("Connection error: ")
        ))
    }
}

/// The rustls error somewhere in the chain (lettre files a failed handshake
/// as a connection error), so the message can say it was TLS.
fn tls_cause(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        // An io::Error's `source()` skips the error it wraps.
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && let Some(found) = tls_cause(inner)
        {
            return Some(found);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_body_lists_the_known_fields_first_then_the_rest() {
        let m = Message {
            message_id: "a1@hostwatch".into(),
            subject: "FIRING cpu-high on host".into(),
            payload: json!({
                "zeta": 1, "host": "web1", "rule": "cpu-high", "state": "firing",
                "value": 97.5, "resolved_at": null, "extra": "x"
            }),
        };
        assert_eq!(
            render_body(&m),
            "FIRING cpu-high on host\n\nrule: cpu-high\nstate: firing\nvalue: 97.5\n\
             resolved_at: -\nhost: web1\nextra: x\nzeta: 1\n"
        );
    }
}
