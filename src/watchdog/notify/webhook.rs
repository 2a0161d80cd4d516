//! The webhook notifier: a POST of the alert's JSON over http or https
//! (rustls, webpki roots plus `ca_file`), with the message id as
//! `Idempotency-Key`, so a receiver can drop a repeat.
//!
//! A webhook URL's path and query are often its secret (a Slack-style
//! token), so errors and the log show only `scheme://host:port`.

use super::{
    Message, SendError,
    http::{self, Status},
    read_ca_file, read_secret,
};
use crate::config::watchdog::NotifierSettings;
use rustls::{ClientConfig, RootCertStore, pki_types::ServerName};
use std::{sync::Arc, time::Duration};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub(super) struct Webhook {
    /// `scheme://host:port`, for messages: never the path or query.
    origin: String,
    /// What to connect to.
    host: String,
    port: u16,
    /// The `Host` header and the request target.
    authority: String,
    path: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    token: Option<String>,
    timeout: Duration,
}

impl Webhook {
    pub(super) fn from_settings(s: &NotifierSettings) -> Result<Self, String> {
        let name = &s.name;
        let raw = s
            .url
            .as_deref()
            .ok_or_else(|| format!("notifier '{name}': a webhook notifier needs a url"))?;
        // `url::ParseError` does not repeat the text it was given.
        let url = url::Url::parse(raw)
            .map_err(|e| format!("notifier '{name}': the url is not a URL: {e}"))?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(format!(
                    "notifier '{name}': the url is {other}://, use http:// or https://"
                ));
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "notifier '{name}': put no credentials in the url; use bearer_token_file"
            ));
        }
        let (host, server_name) = match url.host() {
            Some(url::Host::Domain(d)) => (d.to_owned(), ServerName::try_from(d.to_owned())),
            Some(url::Host::Ipv4(ip)) => (ip.to_string(), Ok(ServerName::from(ip))),
            Some(url::Host::Ipv6(ip)) => (ip.to_string(), Ok(ServerName::from(ip))),
            None => return Err(format!("notifier '{name}': the url has no host")),
        };
        let port = url.port_or_known_default().unwrap_or(80);
        // `host_str` keeps an IPv6 address in brackets.
        let origin = format!(
            "{}://{}:{port}",
            url.scheme(),
            url.host_str().unwrap_or(&host)
        );
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or(&host)),
            None => url.host_str().unwrap_or(&host).to_owned(),
        };
        let mut path = url.path().to_owned();
        if let Some(q) = url.query() {
            path = format!("{path}?{q}");
        }
        let tls = if https {
            let server_name = server_name
                .map_err(|e| format!("notifier '{name}': '{host}' is not a TLS name: {e}"))?;
            Some((tls_connector(s)?, server_name))
        } else {
            None
        };
        let token = match &s.bearer_token_file {
            Some(file) => {
                let token = read_secret(file, "bearer_token_file")?;
                if !token.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(format!(
                        "the bearer_token_file {} holds spaces or control characters",
                        file.display()
                    ));
                }
                Some(token)
            }
            None => None,
        };
        Ok(Self {
            origin,
            host,
            port,
            authority,
            path,
            tls,
            token,
            timeout: s.timeout,
        })
    }

    /// `scheme://host:port`: the path and query may hold a secret.
    pub(super) fn target(&self) -> &str {
        &self.origin
    }

    pub(super) async fn send(&self, message: &Message) -> Result<(), SendError> {
        let id = &message.message_id;
        let body = serde_json::to_vec(&message.payload)
            .map_err(|e| SendError::Permanent(format!("cannot encode the payload: {e}")))?;
        let auth = self
            .token
            .as_ref()
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: hostwatch/{version}\r\n\
             Content-Type: application/json\r\nContent-Length: {len}\r\n\
             Idempotency-Key: {id}\r\n{auth}Connection: close\r\n\r\n",
            path = self.path,
            host = self.authority,
            version = env!("CARGO_PKG_VERSION"),
            len = body.len(),
        );
        let status = tokio::time::timeout(self.timeout, self.exchange(&head, &body))
            .await
            .map_err(|_| {
                SendError::Transient(format!(
                    "webhook {} did not answer within {}",
                    self.origin,
                    crate::domain::time::format_duration(self.timeout)
                ))
            })??;
        classify(&self.origin, &status)
    }

    async fn exchange(&self, head: &str, body: &[u8]) -> Result<Status, SendError> {
        let at = &self.origin;
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| SendError::Transient(format!("cannot connect to webhook {at}: {e}")))?;
        let talk = |e: std::io::Error| {
            SendError::Transient(format!("webhook {at} failed mid-request: {e}"))
        };
        match &self.tls {
            None => {
                let mut tcp = tcp;
                http::exchange(&mut tcp, head, body).await.map_err(talk)
            }
            Some((connector, name)) => {
                let mut tls = connector.connect(name.clone(), tcp).await.map_err(|e| {
                    SendError::Transient(format!("TLS with webhook {at} failed: {e}"))
                })?;
                http::exchange(&mut tls, head, body).await.map_err(talk)
            }
        }
    }
}

/// 2xx is delivered; 408, 425, 429 and 5xx may pass later; the rest (other
/// 4xx, redirects, which are not followed) will not change by retrying.
/// `origin` is `scheme://host:port`.
fn classify(origin: &str, status: &Status) -> Result<(), SendError> {
    let text = format!(
        "webhook {origin} answered HTTP {} {}",
        status.code, status.reason
    );
    let text = text.trim_end().to_owned();
    match status.code {
        200..=299 => Ok(()),
        408 | 425 | 429 | 500..=599 => Err(SendError::Transient(text)),
        _ => Err(SendError::Permanent(text)),
    }
}

/// rustls with ring, trusting the webpki roots and the certificates of
/// `ca_file`; verification is never turned off.
fn tls_connector(s: &NotifierSettings) -> Result<TlsConnector, String> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(ca) = &s.ca_file {
        for cert in read_ca_file(ca)? {
            roots.add(cert).map_err(|e| {
                format!("the ca_file {} holds a bad certificate: {e}", ca.display())
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("notifier '{}': cannot set up TLS: {e}", s.name))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Result<(), SendError> {
        classify(
            "http://h:80",
            &Status {
                code,
                reason: "R".into(),
            },
        )
    }

    #[test]
    fn answers_are_sorted_into_delivered_retry_and_give_up() {
        assert_eq!(status(204), Ok(()));
        for code in [408, 425, 429, 500, 503] {
            assert!(status(code).unwrap_err().is_transient(), "{code}");
        }
        for code in [301, 400, 401, 404, 410] {
            assert!(!status(code).unwrap_err().is_transient(), "{code}");
        }
        assert_eq!(
            status(404),
            Err(SendError::Permanent(
                "webhook http://h:80 answered HTTP 404 R".into()
            ))
        );
    }

    fn settings(url: &str) -> NotifierSettings {
        let toml = format!("[[notifiers]]\nname = \"h\"\nkind = \"webhook\"\nurl = \"{url}\"\n");
        let s = crate::config::Settings::parse(
            &toml,
            std::path::Path::new("t.toml"),
            std::iter::empty(),
        )
        .unwrap();
        s.notifiers[0].get_ref().clone()
    }

    #[test]
    fn the_target_is_the_origin_without_the_path_or_query() {
        for (url, origin) in [
            (
                "https://hooks.example.com/services/T0/B0/s3cret?k=s3cret",
                "https://hooks.example.com:443",
            ),
            ("http://127.0.0.1:8080/hook/s3cret", "http://127.0.0.1:8080"),
            ("http://[::1]/s3cret", "http://[::1]:80"),
        ] {
            let w = Webhook::from_settings(&settings(url)).unwrap();
            assert_eq!(w.target(), origin);
        }
    }

    #[tokio::test]
    async fn errors_show_the_origin_and_never_the_path_or_query() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let w = Webhook::from_settings(&settings(&format!(
            "http://127.0.0.1:{port}/hook/s3cret?token=s3cret"
        )))
        .unwrap();
        let m = Message {
            message_id: "m1".into(),
            subject: "s".into(),
            payload: serde_json::json!({}),
        };
        let e = w.send(&m).await.unwrap_err().to_string();
        assert!(e.contains(&format!("http://127.0.0.1:{port}")), "{e}");
        assert!(!e.contains("s3cret") && !e.contains("/hook"), "{e}");
    }
}
