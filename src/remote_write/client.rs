//! One receiver's endpoint: a POST of a snappy protobuf body over http or
//! https (ureq, on the rustls and ring already linked), and what the answer
//! means for the batch. Blocking: the sender runs it on a blocking thread.

use crate::config::remote_write::RemoteWriteSettings;
use std::{io::Read as _, time::Duration};

/// What became of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// Not taken this time (no connection, a timeout, 5xx, 429): the same
    /// batch goes again, after `after` when the receiver said so.
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// Refused for good (4xx other than 429): retrying would not help.
    Rejected {
        status: u16,
        why: String,
    },
}

/// The longest `Retry-After` honoured: a receiver cannot park the agent.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// The most of an error answer kept for the log and the API.
const MAX_ERROR_TEXT: u64 = 512;

pub struct Client {
    agent: ureq::Agent,
    url: String,
    authorization: Option<String>,
    /// What an error text must not repeat: the URL's path and query, the
    /// token or password.
    secrets: Vec<String>,
}

impl Client {
    pub fn new(s: &RemoteWriteSettings) -> Result<Self, String> {
        let roots =
            crate::tls::client_roots(s.tls_ca.as_deref()).map_err(|e| format!("tls_ca: {e}"))?;
        let mut secrets = Vec::new();
        if let Ok(u) = url::Url::parse(&s.url) {
            let rest = &u[url::Position::BeforePath..];
            if rest.len() > 1 {
                secrets.push(rest.to_owned());
            }
        }
        let authorization = if let Some(f) = &s.bearer_token_file {
            let token = secret(f, "bearer_token_file")?;
            secrets.push(token.clone());
            Some(format!("Bearer {token}"))
        } else if let Some(b) = &s.basic_auth {
            use base64::Engine as _;
            if b.username.contains(':') || b.username.chars().any(char::is_control) {
                return Err("basic_auth username: no ':' and no control characters".into());
            }
            let password = secret(&b.password_file, "password_file")?;
            secrets.push(password.clone());
            let pair = format!("{}:{password}", b.username);
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
        } else {
            None
        };
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(s.timeout))
            .http_status_as_error(false)
            // A POST is not followed elsewhere, and no proxy from the
            // environment sees the samples or the token.
            .max_redirects(0)
            .proxy(None)
            .user_agent(format!("hostwatch/{}", env!("CARGO_PKG_VERSION")))
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
            .build()
            .new_agent();
        Ok(Self {
            agent,
            url: s.url.clone(),
            authorization,
            secrets,
        })
    }

    pub fn send(&self, body: &[u8]) -> Outcome {
        let mut req = self
            .agent
            .post(&self.url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0");
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        let mut answer = match req.send(body) {
            Ok(a) => a,
            Err(e) => {
                return Outcome::Retry {
                    why: self.shown(&e.to_string()),
                    after: None,
                };
            }
        };
        let status = answer.status().as_u16();
        if (200..300).contains(&status) {
            return Outcome::Accepted;
        }
        let after = answer
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after);
        let mut text = Vec::new();
        let _ = answer
            .body_mut()
            .as_reader()
            .take(MAX_ERROR_TEXT)
            .read_to_end(&mut text);
        let why = self.shown(&format!(
            "{status}: {}",
            String::from_utf8_lossy(&text).trim()
        ));
        match status {
            // A redirect (none is followed), a timeout, too many requests,
            // the receiver's own trouble: the same batch goes again.
            300..=399 | 408 | 429 | 500..=599 => Outcome::Retry { why, after },
            // The rest of 4xx: this batch will not be taken by asking again.
            _ => Outcome::Rejected { status, why },
        }
    }
}

impl Client {
    /// `text` fit for the log and the API: one line, no URL but its
    /// origin, none of the secrets.
    fn shown(&self, text: &str) -> String {
        let mut t = crate::config::scrub(text);
        for s in &self.secrets {
            t = t.replace(s.as_str(), "…");
        }
        t.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    }
}

use crate::tls::read_header_secret as secret;

/// `Retry-After` as seconds or as an HTTP date, at most MAX_RETRY_AFTER.
fn retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    let d = match v.parse::<u64>() {
        Ok(s) => Duration::from_secs(s),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
            (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .unwrap_or_default()
        }
    };
    Some(d.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};

    /// A loopback server that answers each request with the next of
    /// `answers` and hands back the heads it was sent.
    fn server(answers: Vec<&'static str>) -> (String, std::sync::mpsc::Receiver<String>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://127.0.0.1:{}/api/v1/write",
            l.local_addr().unwrap().port()
        );
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for answer in answers {
                let (mut s, _) = l.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let (mut head, mut line, mut length) = (String::new(), String::new(), 0);
                while r.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    head.push_str(&line);
                    line.clear();
                }
                let mut body = vec![0; length];
                std::io::Read::read_exact(&mut r, &mut body).unwrap();
                tx.send(head).unwrap();
                s.write_all(answer.as_bytes()).unwrap();
            }
        });
        (url, rx)
    }

    fn settings(url: &str, token: Option<&std::path::Path>) -> RemoteWriteSettings {
        let mut text = format!("url = \"{url}\"\n");
        if let Some(t) = token {
            text.push_str(&format!("bearer_token_file = \"{}\"\n", t.display()));
        }
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn each_answer_means_what_remote_write_says_and_the_request_is_well_formed() {
        let mut token = tempfile::NamedTempFile::new().unwrap();
        token.write_all(b"s3cret\n").unwrap();
        let (url, heads) = server(vec![
            "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Length: 4\r\nConnection: close\r\n\r\nslow",
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 13\r\nConnection: close\r\n\r\nout of bounds",
        ]);
        let c = Client::new(&settings(&url, Some(token.path()))).unwrap();
        assert_eq!(c.send(b"x"), Outcome::Accepted);
        let head = heads.recv().unwrap().to_ascii_lowercase();
        for h in [
            "post /api/v1/write http/1.1",
            "content-encoding: snappy",
            "content-type: application/x-protobuf",
            "x-prometheus-remote-write-version: 0.1.0",
            "authorization: bearer s3cret\r\n",
        ] {
            assert!(head.contains(h), "{h} not in {head}");
        }
        assert_eq!(
            c.send(b"x"),
            Outcome::Retry {
                why: "429: slow".into(),
                after: Some(Duration::from_secs(2))
            }
        );
        assert!(matches!(c.send(b"x"), Outcome::Retry { after: None, .. }));
        assert_eq!(
            c.send(b"x"),
            Outcome::Rejected {
                status: 400,
                why: "400: out of bounds".into()
            }
        );
        // Nothing listens any more: a failure to retry, not a refusal.
        assert!(matches!(c.send(b"x"), Outcome::Retry { .. }));
    }

    #[test]
    fn redirects_and_timeouts_are_retried_and_no_error_text_repeats_a_secret() {
        let mut token = tempfile::NamedTempFile::new().unwrap();
        token.write_all(b"tok-123\n").unwrap();
        let (url, _heads) = server(vec![
            "HTTP/1.1 308 Permanent Redirect\r\nLocation: https://elsewhere/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\nContent-Length: 46\r\nConnection: close\r\n\r\nno /api/v1/write?k=s3 for tok-123\n\x1b[31mred",
        ]);
        let c = Client::new(&settings(&format!("{url}?k=s3"), Some(token.path()))).unwrap();
        let o = c.send(b"x");
        assert!(matches!(o, Outcome::Retry { .. }), "{o:?}");
        assert!(matches!(c.send(b"x"), Outcome::Retry { .. }));
        let Outcome::Rejected { status: 404, why } = c.send(b"x") else {
            panic!("a 404 is a refusal");
        };
        assert!(
            !why.contains("write?k=s3") && !why.contains("tok-123"),
            "{why}"
        );
        assert!(!why.chars().any(char::is_control), "{why:?}");
    }

    #[test]
    fn a_token_of_two_lines_or_a_username_with_a_colon_stops_start_up() {
        let mut two = tempfile::NamedTempFile::new().unwrap();
        two.write_all(b"one\ntwo\n").unwrap();
        let e = Client::new(&settings("http://127.0.0.1:9/w", Some(two.path()))).err();
        assert!(e.unwrap().contains("second line"));
        let mut s = settings("http://127.0.0.1:9/w", None);
        s.basic_auth = Some(crate::config::remote_write::BasicAuth {
            username: "a:b".into(),
            password_file: two.path().to_path_buf(),
        });
        assert!(Client::new(&s).err().unwrap().contains("username"));
    }

    #[test]
    fn an_empty_token_file_or_a_ca_file_without_certificates_stops_start_up() {
        let empty = tempfile::NamedTempFile::new().unwrap();
        let e = Client::new(&settings("http://127.0.0.1:9/w", Some(empty.path()))).err();
        assert!(e.unwrap().contains("is empty"));
        let mut s = settings("https://127.0.0.1:9/w", None);
        s.tls_ca = Some(empty.path().to_path_buf());
        assert!(
            Client::new(&s)
                .err()
                .unwrap()
                .contains("no PEM certificate")
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_and_is_capped() {
        assert_eq!(retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("86400"), Some(MAX_RETRY_AFTER));
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let d = retry_after(&soon.replace("+0000", "GMT")).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        let past = (chrono::Utc::now() - chrono::Duration::seconds(30)).to_rfc2822();
        assert_eq!(retry_after(&past), Some(Duration::ZERO));
        assert_eq!(retry_after("soon"), None);
    }
}
