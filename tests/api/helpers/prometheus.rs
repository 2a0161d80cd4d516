//! A real Prometheus (Debian's `prometheus`, installed by scripts/test) on
//! a loopback port of its own, and its HTTP API.

use super::Reaped;
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running Prometheus; stopped (and reaped) when dropped.
pub struct Prometheus {
    pub port: u16,
    pub log: PathBuf,
    pub child: Reaped,
}

impl Prometheus {
    /// Starts Prometheus with `config` (checked by promtool first), its
    /// data in `data`, and `extra` flags; waits until it answers.
    pub fn start(config: &Path, data: &Path, port: u16, extra: &[&str]) -> Self {
        let p = Self::spawn(config, data, port, extra);
        // Ready: it answers, and its storage is open.
        let ready = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(200) = get(port, "/-/ready").map(|(code, _)| code) {
                break;
            }
            assert!(
                Instant::now() < ready,
                "prometheus did not start:\n{}",
                p.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    /// Like `start`, for a Prometheus serving HTTPS (its `--web.config.file`):
    /// ready once it accepts connections.
    pub fn start_tls(config: &Path, data: &Path, port: u16, extra: &[&str]) -> Self {
        let p = Self::spawn(config, data, port, extra);
        let ready = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < ready,
                "prometheus did not start:\n{}",
                p.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    fn spawn(config: &Path, data: &Path, port: u16, extra: &[&str]) -> Self {
        let check = Command::new("promtool")
            .args(["check", "config"])
            .arg(config)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run promtool (scripts/test installs prometheus): {e}")
            });
        assert!(check.status.success(), "{check:?}");
        let log = data.with_extension("log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run prometheus (scripts/test installs it): {e}"));
        Self {
            port,
            log,
            child: Reaped(vec![child]),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops it with SIGTERM and waits until it has exited.
    pub fn stop(mut self) {
        for c in &mut self.child.0 {
            let pid = rustix::process::Pid::from_raw(c.id() as i32).unwrap();
            rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
            c.wait().unwrap();
        }
        self.child.0.clear();
    }

    pub fn get(&self, path: &str) -> serde_json::Value {
        prom_get(self.port, path)
    }

    /// The result vector (or matrix) of an instant query.
    pub fn query(&self, q: &str) -> Vec<serde_json::Value> {
        query(self.port, q)
    }
}

/// A GET over HTTP/1.0 (so that the answer is not chunked): the status and
/// the body, or None when nothing answers.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split(' ').nth(1)?.parse().ok()?;
    Some((code, body.to_owned()))
}

/// A GET to Prometheus' HTTP API that must answer 200 with JSON.
pub fn prom_get(port: u16, path: &str) -> serde_json::Value {
    let (code, body) = get(port, path).unwrap_or_else(|| panic!("GET {path}: no answer"));
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Prometheus' HTTP API: the result of an instant query.
pub fn query(prom: u16, q: &str) -> Vec<serde_json::Value> {
    let url = format!(
        "/api/v1/query?query={}",
        url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    );
    let v = prom_get(prom, &url);
    assert_eq!(v["status"], "success", "{q}: {v}");
    v["data"]["result"].as_array().unwrap().clone()
}

/// The value of one sample of an instant vector.
pub fn value(sample: &serde_json::Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}
