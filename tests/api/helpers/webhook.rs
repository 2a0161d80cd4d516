//! A real webhook receiver for tests: an HTTP/1.1 server on a loopback port
//! (std threads, one per connection; https with a self-signed certificate
//! when asked) that answers the first `fail_first` requests with
//! `fail_status`, later ones with 200, and records every request.

use rustls::{
    ServerConfig, ServerConnection, StreamOwned,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};
use serde_json::Value;
use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub user_agent: Option<String>,
    /// The body as JSON (`Null` when it was not JSON).
    pub body: Value,
    pub status_answered: u16,
}

pub struct WebhookReceiver {
    port: u16,
    scheme: &'static str,
    received: Arc<Mutex<Vec<Delivery>>>,
    stopping: Arc<AtomicBool>,
    dir: tempfile::TempDir,
}

struct Rules {
    fail_first: usize,
    fail_status: u16,
    seen: AtomicUsize,
    received: Arc<Mutex<Vec<Delivery>>>,
}

impl WebhookReceiver {
    /// A plain-HTTP receiver.
    pub fn start(fail_first: usize, fail_status: u16) -> WebhookReceiver {
        Self::spawn(fail_first, fail_status, false)
    }

    /// An https receiver with a self-signed certificate for 127.0.0.1 and
    /// localhost; trust it with `ca_file()`.
    pub fn start_tls(fail_first: usize, fail_status: u16) -> WebhookReceiver {
        Self::spawn(fail_first, fail_status, true)
    }

    fn spawn(fail_first: usize, fail_status: u16, tls: bool) -> WebhookReceiver {
        let dir = tempfile::tempdir().unwrap();
        let tls = tls.then(|| {
            super::smtp::make_cert(dir.path());
            let certs = CertificateDer::pem_file_iter(dir.path().join("cert.pem"))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(dir.path().join("key.pem")).unwrap();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap();
            Arc::new(config)
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let rules = Arc::new(Rules {
            fail_first,
            fail_status,
            seen: AtomicUsize::new(0),
            received: received.clone(),
        });
        let stop = stopping.clone();
        let scheme = if tls.is_some() { "https" } else { "http" };
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (rules, tls) = (rules.clone(), tls.clone());
                std::thread::spawn(move || {
                    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
                    match tls {
                        None => serve(conn, &rules),
                        Some(config) => {
                            let Ok(session) = ServerConnection::new(config) else {
                                return;
                            };
                            serve(StreamOwned::new(session, conn), &rules);
                        }
                    }
                });
            }
        });
        WebhookReceiver {
            port,
            scheme,
            received,
            stopping,
            dir,
        }
    }

    /// `http(s)://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.port)
    }

    /// The certificate to trust an https receiver with.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// Every complete request, in the order answered.
    pub fn received(&self) -> Vec<Delivery> {
        self.received.lock().unwrap().clone()
    }

    /// The requests answered 2xx.
    pub fn accepted(&self) -> Vec<Delivery> {
        self.received()
            .into_iter()
            .filter(|d| (200..300).contains(&d.status_answered))
            .collect()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads one request (head, then `Content-Length` bytes), answers it.
fn serve<S: Read + Write>(mut stream: S, rules: &Rules) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 1 << 20 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let length: usize = header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let n = rules.seen.fetch_add(1, Ordering::SeqCst);
    let status = if n < rules.fail_first {
        rules.fail_status
    } else {
        200
    };
    let answer = format!(
        "HTTP/1.1 {status} Test\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\
         Connection: close\r\n\r\nok"
    );
    // Recorded before answering, so a sender that has its answer finds it.
    rules.received.lock().unwrap().push(Delivery {
        method,
        path,
        idempotency_key: header("idempotency-key"),
        authorization: header("authorization"),
        content_type: header("content-type"),
        user_agent: header("user-agent"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        status_answered: status,
    });
    let _ = stream.write_all(answer.as_bytes());
    let _ = stream.flush();
}
