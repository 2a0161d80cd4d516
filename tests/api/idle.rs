//! An idle agent sleeps: its HTTP workers are not woken while nothing is
//! served (actix-http patched for it, vendor/actix-http/README.hostwatch.md),
//! and the `Date` header it answers with still moves with the clock.

use crate::lifecycle::start_agent;
use std::{
    io::{Read, Write},
    time::Duration,
};

/// One request on its own connection, closed after: its `Date` header.
fn date_of(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    raw.lines()
        .find_map(|l| {
            l.strip_prefix("date: ")
                .or_else(|| l.strip_prefix("Date: "))
        })
        .unwrap_or_else(|| panic!("no Date header: {raw}"))
        .to_owned()
}

/// Context switches of the agent's HTTP worker threads so far, and how many
/// such threads there are.
fn worker_switches(pid: u32) -> (u64, usize) {
    let (mut switches, mut workers) = (0, 0);
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("actix-server wo") {
            continue;
        }
        workers += 1;
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        switches += status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    (switches, workers)
}

#[test]
fn idle_workers_sleep_and_the_date_header_still_moves() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Killed(start_agent(dir.path(), "60s"));
    let agent = &agent.0;
    let first = date_of(agent.port);
    std::thread::sleep(Duration::from_millis(1200));
    let second = date_of(agent.port);
    assert_ne!(first, second, "the Date header stood still");

    // With the connection closed, nothing is left for a worker to do.
    std::thread::sleep(Duration::from_millis(200));
    let (before, workers) = worker_switches(agent.child.id());
    assert!(workers >= 1, "no HTTP worker threads found");
    std::thread::sleep(Duration::from_secs(3));
    let (after, _) = worker_switches(agent.child.id());
    // Upstream's timer wakes each worker twice a second: 6 per worker here.
    assert!(
        after - before <= 2,
        "{workers} idle workers were woken {} times in 3 s",
        after - before
    );
}

/// The agent, killed and reaped however the test ends.
struct Killed(crate::lifecycle::Agent);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.child.kill();
        let _ = self.0.child.wait();
    }
}
