use super::*;
use crate::config::watchdog::ProbeKind;
use std::{
    io::{Read, Write},
    net::TcpListener,
    time::Duration,
};

fn settings(name: &str, kind: ProbeKind) -> ProbeSettings {
    ProbeSettings {
        name: name.to_owned(),
        kind,
        url: None,
        address: None,
        command: None,
        args: Vec::new(),
        interval: Duration::from_millis(100),
        timeout: Duration::from_secs(2),
        window: Duration::from_secs(10),
    }
}

fn exec(command: &str, args: &[&str], timeout_ms: u64) -> ProbeSettings {
    let mut p = settings("x", ProbeKind::Exec);
    p.command = Some(command.to_owned());
    p.args = args.iter().map(|a| (*a).to_owned()).collect();
    p.timeout = Duration::from_millis(timeout_ms);
    p
}

/// Answers each connection with the next status, then stops listening.
fn http_server(statuses: &'static [u16]) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for code in statuses {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = write!(s, "HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n");
        }
    });
    url
}

fn result(ok: bool, latency_ms: f64, ago_ms: i64) -> ProbeResult {
    ProbeResult {
        at: Utc::now() - chrono::Duration::milliseconds(ago_ms),
        ok,
        latency_ms,
        error: None,
    }
}

#[tokio::test]
async fn an_http_probe_is_ok_on_a_2xx_and_fails_on_a_500() {
    let mut p = settings("web", ProbeKind::Http);
    p.url = Some(http_server(&[200, 500, 302]));
    let first = run::once(&p).await;
    assert!(first.ok && first.error.is_none(), "{first:?}");
    assert!(first.latency_ms > 0.0);
    let second = run::once(&p).await;
    assert!(!second.ok);
    assert_eq!(second.error.as_deref(), Some("answered HTTP 500"));
    let third = run::once(&p).await;
    assert!(!third.ok, "a redirect is not a 2xx: {third:?}");
}

#[tokio::test]
async fn a_tcp_probe_connects_or_says_why_not() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut p = settings("db", ProbeKind::Tcp);
    p.address = Some(l.local_addr().unwrap().to_string());
    assert!(run::once(&p).await.ok);
    drop(l);
    let closed = run::once(&p).await;
    assert!(!closed.ok);
    assert!(
        closed
            .error
            .unwrap()
            .starts_with("cannot connect to 127.0.0.1:")
    );
}

#[tokio::test]
async fn an_exec_probe_is_ok_when_the_command_exits_0() {
    assert!(run::once(&exec("true", &[], 2000)).await.ok);
    let f = run::once(&exec("false", &[], 2000)).await;
    assert_eq!(f.error.as_deref(), Some("false exited with status 1"));
    let missing = run::once(&exec("/nonexistent/probe", &[], 2000)).await;
    assert!(missing.error.unwrap().contains("could not be started"));
}

#[tokio::test]
async fn an_exec_probe_runs_with_a_clean_environment_and_keeps_its_stderr() {
    let clean = exec(
        "sh",
        &["-c", "test -z \"$HOME\" && test \"$LANG\" = C.UTF-8"],
        2000,
    );
    assert!(run::once(&clean).await.ok);
    let noisy = exec("sh", &["-c", "echo the disk is full >&2; exit 3"], 2000);
    let r = run::once(&noisy).await;
    assert_eq!(
        r.error.as_deref(),
        Some("sh exited with status 3: the disk is full")
    );
    let long = exec(
        "sh",
        &["-c", "head -c 5000 /dev/zero | tr '\\0' x >&2; exit 1"],
        2000,
    );
    let r = run::once(&long).await;
    assert!(r.error.unwrap().len() < 250);
}

#[tokio::test]
async fn a_background_child_holding_stderr_does_not_hold_the_probe() {
    let r = run::once(&exec("sh", &["-c", "sleep 5 & exit 1"], 3000)).await;
    assert_eq!(r.error.as_deref(), Some("sh exited with status 1"));
    assert!(r.latency_ms < 1000.0, "{r:?}");
}

#[tokio::test]
async fn an_exec_probe_past_its_timeout_is_killed_and_reaped() {
    let r = run::once(&exec("sleep", &["5"], 200)).await;
    assert!(!r.ok);
    assert!(r.latency_ms >= 200.0 && r.latency_ms < 2000.0, "{r:?}");
    assert_eq!(
        r.error.as_deref(),
        Some("sleep did not finish within 200 ms and was killed")
    );

    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let script = format!(
        "echo $$ > {0}; sleep 5 & echo $! >> {0}; wait",
        pids.display()
    );
    let r = run::once(&exec("sh", &["-c", &script], 300)).await;
    assert!(!r.ok);
    let pids = std::fs::read_to_string(&pids).unwrap();
    let pids: Vec<&str> = pids.split_whitespace().collect();
    assert_eq!(pids.len(), 2);
    // The shell is reaped (no zombie left in /proc) and its group killed.
    assert!(!std::path::Path::new(&format!("/proc/{}", pids[0])).exists());
    // The background sleep is killed too; orphaned, it is its new
    // parent's to reap, so a zombie counts as gone.
    let mut state = String::new();
    for _ in 0..50 {
        state = std::fs::read_to_string(format!("/proc/{}/stat", pids[1])).unwrap_or_default();
        if state.is_empty() || state.contains(") Z ") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the background sleep survived: {state}");
}

#[test]
fn the_ring_keeps_the_newest_results_and_serves_them_newest_first() {
    let book = ProbeBook::new(&[settings("a", ProbeKind::Tcp)], 3);
    for i in 0..5 {
        book.record("a", result(true, f64::from(i), 0));
    }
    let got: Vec<f64> = book
        .results("a", 10)
        .unwrap()
        .iter()
        .map(|r| r.latency_ms)
        .collect();
    assert_eq!(got, [4.0, 3.0, 2.0]);
    assert_eq!(book.results("a", 1).unwrap().len(), 1);
    assert_eq!(book.latest("a").unwrap().latency_ms, 4.0);
    assert!(book.results("nope", 10).is_none());
    assert!(book.latest("nope").is_none());
    assert_eq!(book.names(), ["a"]);
    assert_eq!(book.settings("a").unwrap().kind, ProbeKind::Tcp);
}

#[test]
fn the_latency_ratio_needs_five_successes_in_the_window() {
    let book = ProbeBook::new(&[settings("a", ProbeKind::Tcp)], 100);
    // Outside the 10 s window: not counted, however fast.
    book.record("a", result(true, 0.5, 20_000));
    for ms in [4.0, 2.0, 3.0, 5.0] {
        book.record("a", result(true, ms, 1000));
    }
    assert_eq!(book.latency_ratio("a"), None);
    book.record("a", result(false, 1.0, 500));
    assert_eq!(book.latency_ratio("a"), None, "a failure is not a success");
    book.record("a", result(true, 8.0, 0));
    assert_eq!(book.latency_ratio("a"), Some(4.0));
    // A timeout counts with the time it took.
    book.record("a", result(false, 100.0, 0));
    assert_eq!(book.latency_ratio("a"), Some(50.0));
    assert_eq!(book.latency_ratio("nope"), None);
}

#[tokio::test]
async fn started_probes_record_until_cancelled_and_notify_each_result() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut p = settings("db", ProbeKind::Tcp);
    p.address = Some(l.local_addr().unwrap().to_string());
    let book = ProbeBook::new(&[p], 10);
    let mut seen = book.subscribe();
    let stop = CancellationToken::new();
    let tasks = book.start(&stop);
    for _ in 0..3 {
        tokio::time::timeout(Duration::from_secs(2), seen.changed())
            .await
            .unwrap()
            .unwrap();
    }
    stop.cancel();
    for t in tasks {
        tokio::time::timeout(Duration::from_millis(500), t)
            .await
            .unwrap()
            .unwrap();
    }
    let results = book.results("db", 10).unwrap();
    assert!(
        results.len() >= 3 && results.iter().all(|r| r.ok),
        "{results:?}"
    );
    assert!(results[0].at > results[1].at);
}
