//! An idle agent sleeps: its HTTP workers are not woken while nothing is
//! served (actix-http patched for it, vendor/actix-http/README.hostwatch.md),
//! and the `Date` header it answers with still moves with the clock.

use crate::lifecycle::{await_listening, start_agent};
use std::{
    io::{Read, Write},
    path::Path,
    process::{Command, Stdio},
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

/// KiB of `exe`'s mappings resident in process `pid` (smaps `Rss`).
fn exe_resident_kib(pid: u32, exe: &Path) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let exe = exe.to_str().unwrap();
    let mut ours = false;
    let mut kib = 0;
    for line in smaps.lines() {
        if let Some(rss) = line.strip_prefix("Rss:") {
            if ours {
                kib += rss
                    .trim()
                    .trim_end_matches(" kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap();
            }
        } else if line.split_whitespace().nth(1).is_some_and(|p| p.len() == 4)
            && line.contains('-')
            && !line.starts_with(|c: char| c.is_ascii_uppercase())
        {
            ours = line.trim_end().ends_with(exe);
        }
    }
    kib
}

#[test]
fn start_up_code_is_handed_back_and_runs_again_when_needed() {
    let dir = tempfile::tempdir().unwrap();
    // A copy of the binary that no other process maps (pages another
    // process maps too are left), written out so its pages are clean.
    let exe = dir.path().join("hostwatch");
    std::fs::copy(env!("CARGO_BIN_EXE_hostwatch"), &exe).unwrap();
    std::fs::File::open(&exe).unwrap().sync_all().unwrap();
    let mut child = Command::new(&exe)
        .arg("serve")
        .current_dir(dir.path())
        .env("HOSTWATCH_SERVER__LISTEN", "127.0.0.1:0")
        .env("HOSTWATCH_STORAGE__PATH", dir.path().join("hostwatch.db"))
        .env("HOSTWATCH_SAMPLER__INTERVAL", "60s")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (port, _, lines) = await_listening(&mut child);
    let agent = Killed(crate::lifecycle::Agent { child, port, lines });
    let pid = agent.0.child.id();
    // Well before the hand-back, 5 s after start.
    let started_up = exe_resident_kib(pid, &exe);
    assert!(
        started_up > 0,
        "no resident page of {exe:?} found in /proc/{pid}/smaps"
    );
    std::thread::sleep(Duration::from_secs(8));
    let steady = exe_resident_kib(pid, &exe);
    assert!(
        steady * 2 < started_up,
        "start-up left {started_up} KiB of the executable resident, still {steady} KiB 8 s later"
    );
    // The code handed back runs again: requests it had not served yet.
    date_of(port);
    let checks = crate::lifecycle::get_json(port, "/api/v1/checks?limit=1");
    assert_eq!(checks.as_array().map(Vec::len), Some(1), "{checks}");
    let system = crate::lifecycle::get_json(port, "/api/v1/system");
    assert!(system["partitions"].is_array(), "{system}");
}

/// The agent, killed and reaped however the test ends.
struct Killed(crate::lifecycle::Agent);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.child.kill();
        let _ = self.0.child.wait();
    }
}
