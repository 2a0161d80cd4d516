//! The HTTP health probe: one GET with a deadline, on a fresh connection, so
//! it measures what a new client would meet. Plain HTTP over TCP is all a
//! local health URL needs; a small client here keeps the probe `Send` (it
//! runs inside the sampler's task) where awc's is tied to one thread.

use actix_web::http::Uri;
use std::time::{Duration, Instant};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// What a probe found.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// An answer with an accepted status within the deadline.
    pub healthy: bool,
    /// Milliseconds from connecting to the status line (or to the failure).
    pub probe_ms: f64,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// Checks that a health URL is one the probe can ask: `http://host[:port]/path`.
pub fn validate(url: &str) -> Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("health_url '{url}' is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") if uri.host().is_some() => Ok(uri),
        Some("https") => Err(format!(
            "health_url '{url}': only http:// probes are supported"
        )),
        _ => Err(format!(
            "health_url '{url}' must look like http://127.0.0.1:8080/health"
        )),
    }
}

/// The services' health probe: a 2xx or a 3xx (a redirect to a login page
/// still shows the service up) within `timeout`.
pub async fn probe(url: &str, timeout: Duration) -> Probe {
    get(url, timeout, 200..400).await
}

/// One GET of `url`, healthy when its status is in `accept` within `timeout`.
pub async fn get(url: &str, timeout: Duration, accept: std::ops::Range<u16>) -> Probe {
    let started = Instant::now();
    let result = match validate(url) {
        Ok(uri) => tokio::time::timeout(timeout, get_status(&uri))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} ms", timeout.as_millis()))),
        Err(e) => Err(e),
    };
    let probe_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(code) if accept.contains(&code) => Probe {
            healthy: true,
            probe_ms,
            error: None,
        },
        Ok(code) => Probe {
            healthy: false,
            probe_ms,
            error: Some(format!("answered HTTP {code}")),
        },
        Err(e) => Probe {
            healthy: false,
            probe_ms,
            error: Some(e),
        },
    }
}

async fn get_status(uri: &Uri) -> Result<u16, String> {
    let host = uri.host().unwrap_or("127.0.0.1");
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut stream = TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: hostwatch\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send: {e}"))?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("cannot read: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace()
        .nth(1)
        .filter(|_| line.starts_with("HTTP/"))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| "the answer is not HTTP".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_are_accepted() {
        assert!(validate("http://127.0.0.1:8080/health").is_ok());
        assert!(
            validate("https://127.0.0.1/")
                .unwrap_err()
                .contains("only http")
        );
        assert!(validate("127.0.0.1").is_err());
    }

    #[tokio::test]
    async fn a_listener_that_never_answers_fails_at_the_deadline() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        let p = probe(&url, Duration::from_millis(300)).await;
        assert!(!p.healthy);
        assert!(p.probe_ms >= 300.0 && p.probe_ms < 2000.0, "{p:?}");
        drop(l);
    }

    #[tokio::test]
    async fn a_closed_port_is_unhealthy_with_the_reason() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        drop(l);
        let p = probe(&url, Duration::from_secs(2)).await;
        assert!(!p.healthy);
        assert!(p.error.unwrap().contains("cannot connect"));
    }
}
