//! Clients that ask and then read a byte a second: 500 of them, asking for
//! exports and large pages of checks. The agent must not hold their
//! answers for them: it answers what its budgets allow, tells the rest to
//! come back, resets the connections whose answers stop moving, and goes
//! on answering everyone else at once.

use crate::{
    checks::made,
    helpers::{READ_TOKEN, TestApp, spawn_app},
};
use hostwatch::store::Store;
use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering::SeqCst},
    },
    time::{Duration, Instant},
};

const CLIENTS: usize = 500;

/// Enough checks that an export is far more than the kernel buffers for
/// one connection (about 4 MiB on loopback).
fn seed(app: &TestApp, n: usize) {
    let store = Store::open(&app.db_path()).unwrap();
    let start = chrono::Utc::now() - chrono::Duration::minutes(n as i64 + 1);
    let checks: Vec<_> = (0..n)
        .map(|i| {
            let at = start + chrono::Duration::minutes(i as i64);
            made(at, (i % 100) as f64, 50.0, 20.0, i % 2 == 0)
        })
        .collect();
    for part in checks.chunks(1000) {
        store.insert_checks(part).unwrap();
    }
}

fn field(status: &str, name: &str) -> u64 {
    let line = status.lines().find(|l| l.starts_with(name)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Starts the peak resident size over from now (Linux ≥ 4.0); the agent
/// runs in this process.
fn reset_peak() {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/clear_refs")
        .and_then(|mut f| f.write_all(b"5"))
        .unwrap();
}

fn peak_kib() -> u64 {
    field(
        &std::fs::read_to_string("/proc/self/status").unwrap(),
        "VmHWM:",
    )
}

fn rss_kib() -> u64 {
    field(
        &std::fs::read_to_string("/proc/self/status").unwrap(),
        "VmRSS:",
    )
}

/// What one slow client has seen.
struct Slow {
    stream: TcpStream,
    head: Vec<u8>,
}

/// Reads each client's status line, then one byte from each a second
/// until `stop`. A client sees
/// the end of an answer only after the bytes before it, at this pace
/// minutes later, so whether the agent let go is seen from its side of the
/// connection (`open_at`), not from here.
fn trickle(clients: &mut [Slow], stop: &AtomicBool) {
    while !stop.load(SeqCst) {
        for c in clients.iter_mut() {
            // The status line at once, then the rest a byte at a time.
            let mut b = [0u8; 12];
            let want = 12usize.saturating_sub(c.head.len()).max(1);
            if let Ok(n) = c.stream.read(&mut b[..want])
                && c.head.len() < 12
            {
                c.head.extend_from_slice(&b[..n]);
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// TCP connections the agent holds open on `port`: its side of them,
/// established (state 01 in /proc/net/tcp).
fn open_at(port: u16) -> usize {
    let suffix = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| {
            t.lines()
                .skip(1)
                .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        })
        .filter(|f| f.len() > 3 && f[1].ends_with(&suffix) && f[3] == "01")
        .count()
}

#[actix_web::test]
async fn five_hundred_clients_reading_a_byte_a_second_hold_little_and_slow_nobody() {
    let app = spawn_app().await;
    seed(&app, 20_000);
    let addr = app.base.trim_start_matches("http://").to_owned();
    // Warm up what every first request allocates once.
    assert_eq!(app.get("/api/v1/checks?limit=1000").await.status, 200);
    let export = app.get("/api/v1/checks/export?format=ndjson").await;
    assert_eq!(export.status, 200);
    let export_len = export.body.len();
    assert!(export_len > 8 << 20, "the export is {export_len} bytes");
    drop(export);

    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let before = open_at(port);
    reset_peak();
    let base_rss = rss_kib();
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = Arc::clone(&stop);
    let slow = tokio::task::spawn_blocking(move || {
        let mut clients: Vec<Slow> = (0..CLIENTS)
            .map(|i| {
                let target = if i % 5 == 0 {
                    "/api/v1/checks?limit=1000"
                } else {
                    "/api/v1/checks/export?format=ndjson"
                };
                let mut stream = TcpStream::connect(&addr).unwrap();
                let req = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
                stream.write_all(req.as_bytes()).unwrap();
                stream.set_nonblocking(true).unwrap();
                Slow {
                    stream,
                    head: Vec::new(),
                }
            })
            .collect();
        trickle(&mut clients, &stopper);
        let heads: Vec<String> = clients
            .iter()
            .map(|c| String::from_utf8_lossy(&c.head).into_owned())
            .collect();
        heads
    });

    // Meanwhile, everyone else is answered as usual; and the agent lets go
    // of every slow connection.
    let started = Instant::now();
    let (mut slowest, mut asked, mut held) = (Duration::ZERO, 0, usize::MAX);
    let mut took = None;
    while started.elapsed() < Duration::from_secs(40) {
        // A token holder's large answer has a share the strangers cannot take.
        for (path, token) in [
            ("/healthz", None),
            ("/api/v1/checks/latest", None),
            ("/api/v1/checks?limit=10", None),
            ("/api/v1/checks?limit=1000", Some(READ_TOKEN)),
        ] {
            let t = Instant::now();
            let res = app.request("GET", path, token, None).await;
            assert_eq!(res.status, 200, "{path}: {}", res.text());
            slowest = slowest.max(t.elapsed());
            asked += 1;
        }
        // Once they are all connected, none of theirs may stay open.
        held = open_at(port).saturating_sub(before);
        if started.elapsed() > Duration::from_secs(2) && held == 0 {
            took = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, SeqCst);
    let heads = slow.await.unwrap();
    let grew = peak_kib().saturating_sub(base_rss);

    // Every slow connection ends: answered and closed, or reset for not
    // reading; none is held open for as long as its client likes.
    let took =
        took.unwrap_or_else(|| panic!("the agent still held {held} slow connections after 40 s"));
    let answered = heads
        .iter()
        .filter(|h| h.starts_with("HTTP/1.1 200"))
        .count();
    let refused = heads
        .iter()
        .filter(|h| h.starts_with("HTTP/1.1 503"))
        .count();
    assert!(
        answered > 0,
        "no slow client was answered at all: {heads:?}"
    );
    assert_eq!(answered + refused, CLIENTS, "{heads:?}");
    assert!(asked > 10, "only {asked} other requests were made");
    assert!(
        slowest < Duration::from_secs(2),
        "another client waited {slowest:?} while the slow ones held on"
    );
    // What the agent held for 500 slow clients: its answer budget and a
    // few export pages, not their answers.
    assert!(
        grew < 40 << 10,
        "peak RSS grew by {grew} KiB with {CLIENTS} slow clients"
    );
    eprintln!(
        "{answered} answered, {refused} told to retry, all closed after {took:?}; \
         peak RSS +{grew} KiB; slowest other request {slowest:?} of {asked}"
    );
    let metrics = app.get("/metrics").await.text();
    let reset: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hostwatch_http_connections_reset_total "))
        .expect("the resets are counted in /metrics")
        .parse()
        .unwrap();
    assert!(reset >= 1.0, "{metrics}");
    app.stop().await;
}
