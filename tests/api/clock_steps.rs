//! A real agent whose wall clock steps back an hour, then ahead a day,
//! under libfaketime (the monotonic clock left alone, as the kernel's is):
//! the step is logged, checks keep coming every interval, history stays in
//! the order it was read with the times the clock gave, roll-ups equal the
//! raw checks, `for` durations follow the monotonic clock, and retention
//! does not expire history because the clock jumped ahead.

use crate::{
    helpers::Reaped,
    lifecycle::{await_listening, get_json, signal, wait_exit},
};
use serde_json::Value;
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc::Receiver,
    time::{Duration, Instant},
};

fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.exists());
    // scripts/test installs it; a run without it must fail, not pass.
    found.expect("libfaketime is not installed (apt-get install libfaketime)")
}

fn config(dir: &Path) -> PathBuf {
    let path = dir.join("hostwatch.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
[storage]
path = "{db}"
retention = "2h"
audit_retention = "10s"
[sampler]
interval = "1s"
[watchdog]
interval = "100ms"
[[rules]]
name = "after-back"
metric = "memory.percent"
above = 0
for = "4s"
[[rules]]
name = "across-both"
metric = "memory.percent"
above = 0
for = "12s"
"#,
            db = dir.join("hostwatch.db").display()
        ),
    )
    .unwrap();
    path
}

/// The real binary under libfaketime, its wall clock offset by what `offset`
/// holds (read at every call), its monotonic clock untouched.
fn start(dir: &Path, offset: &Path) -> (Reaped, u16, Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(["serve", "--config"])
        .arg(config(dir))
        .env("LD_PRELOAD", libfaketime())
        .env("FAKETIME_TIMESTAMP_FILE", offset)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (port, _, lines) = await_listening(&mut child);
    (Reaped(vec![child]), port, lines)
}

fn alert_state(port: u16, rule: &str) -> Option<String> {
    let list = get_json(port, &format!("/api/v1/alerts?rule={rule}"));
    list.as_array()?.first()?["state"]
        .as_str()
        .map(String::from)
}

fn checks(port: u16, query: &str) -> Vec<Value> {
    get_json(port, &format!("/api/v1/checks?limit=1000{query}"))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn id(k: &Value) -> i64 {
    k["id"].as_i64().unwrap()
}

fn at(k: &Value) -> i64 {
    k["taken_at"]
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap()
        .timestamp_millis()
}

fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lines logged so far that contain `text`.
fn logged(lines: &Receiver<String>, seen: &mut Vec<String>, text: &str) -> usize {
    seen.extend(lines.try_iter());
    seen.iter().filter(|l| l.contains(text)).count()
}

fn set_clock(file: &Path, offset: &str) {
    // Written whole, then renamed, so the agent never reads half an offset.
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, offset).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

#[test]
fn a_stepped_clock_keeps_history_ordered_rollups_right_and_timers_monotonic() {
    let dir = tempfile::tempdir().unwrap();
    let offset = dir.path().join("offset");
    set_clock(&offset, "+0");
    let (mut agent, port, lines) = start(dir.path(), &offset);
    let mut log = Vec::new();

    // Both rules pending, a few checks on the true time. `pending` is when
    // after-back was first seen pending: no earlier than it became so.
    let pending = wait_for(Duration::from_secs(10), || {
        (alert_state(port, "after-back").as_deref() == Some("pending")).then_some(Instant::now())
    })
    .expect("after-back pending");
    wait_for(Duration::from_secs(10), || {
        let both = ["after-back", "across-both"]
            .iter()
            .all(|r| alert_state(port, r).as_deref() == Some("pending"));
        (both && checks(port, "").len() >= 2).then_some(())
    })
    .expect("both rules pending and two checks stored");
    let before_back = checks(port, "");

    set_clock(&offset, "-1h");
    wait_for(Duration::from_secs(5), || {
        (logged(&lines, &mut log, "the wall clock stepped back by 1h") == 1).then_some(())
    })
    .unwrap_or_else(|| panic!("the step back is logged: {log:#?}"));
    // `for = 4s` measured on the monotonic clock, not the hour the wall lost.
    wait_for(Duration::from_secs(8), || {
        (alert_state(port, "after-back").as_deref() == Some("firing")).then_some(())
    })
    .expect("a rule pending when the clock stepped back fires after its `for`");
    assert!(
        pending.elapsed() >= Duration::from_secs(3),
        "not early either"
    );
    let n = checks(port, "").len();
    wait_for(Duration::from_secs(5), || {
        (checks(port, "").len() >= n + 2).then_some(())
    })
    .expect("checks go on after the step back");
    // The latest check is the one just read, an hour before the last one
    // read before the step.
    let latest = get_json(port, "/api/v1/checks/latest");
    assert!(at(&latest) < at(&before_back[0]) - 3_000_000, "{latest}");
    let before_forward = checks(port, "");

    set_clock(&offset, "+1d");
    let stepped_forward = Instant::now();
    wait_for(Duration::from_secs(5), || {
        (logged(&lines, &mut log, "the wall clock stepped forward by 1day1h") == 1).then_some(())
    })
    .unwrap_or_else(|| panic!("the step forward is logged: {log:#?}"));
    // A day gained on the wall clock is not 12 s of `for`.
    std::thread::sleep(Duration::from_millis(500));
    if pending.elapsed() < Duration::from_secs(11) {
        assert_eq!(
            alert_state(port, "across-both").as_deref(),
            Some("pending"),
            "a step forward does not fire a rule early"
        );
    }
    wait_for(Duration::from_secs(12), || {
        (alert_state(port, "across-both").as_deref() == Some("firing")).then_some(())
    })
    .expect("and it fires once its `for` has passed");
    // Retention (2h; a pass every second, for the audit's 10s) has run
    // since the clock jumped ahead.
    let wait = Duration::from_secs(3).saturating_sub(stepped_forward.elapsed());
    std::thread::sleep(wait);

    let all = checks(port, "");
    signal(&agent.0[0], rustix::process::Signal::TERM);
    assert!(wait_exit(&mut agent.0[0], Duration::from_secs(10)).success());

    // Nothing expired: every check from before the steps is still there,
    // though the wall clock says a day has passed.
    let ids: Vec<i64> = all.iter().map(id).collect();
    for k in before_back.iter().chain(&before_forward) {
        assert!(ids.contains(&id(k)), "check {} was kept", id(k));
    }
    // Newest first in the order read, without gaps.
    assert!(all.len() > before_forward.len(), "{ids:?}");
    assert!(ids.windows(2).all(|w| w[0] == w[1] + 1), "{ids:?}");
    // ... with the times the clock gave: an hour back, then a day and an
    // hour ahead.
    let gaps: Vec<i64> = all.windows(2).map(|w| at(&w[0]) - at(&w[1])).collect();
    let near = |gap: i64, want: i64| (gap - want).abs() < 2_500;
    let back = gaps.iter().filter(|&&g| near(g, -3_600_000)).count();
    let ahead = gaps.iter().filter(|&&g| near(g, 90_000_000)).count();
    let steady = gaps.iter().filter(|&&g| (200..2_500).contains(&g)).count();
    assert_eq!((back, ahead, steady), (1, 1, gaps.len() - 2), "{gaps:?}");

    // The latest check is the one read last, whatever its time.
    let db = dir.path().join("hostwatch.db");
    let c = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let last: i64 = c
        .query_row("SELECT max(id) FROM checks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ids[0], last);

    // Roll-ups equal the raw checks, hour by hour.
    let rows = |sql: &str| -> Vec<Vec<String>> {
        let mut st = c.prepare(sql).unwrap();
        let n = st.column_count();
        st.query_map([], |r| {
            (0..n)
                .map(|i| {
                    Ok(match r.get::<_, rusqlite::types::Value>(i)? {
                        rusqlite::types::Value::Real(f) => format!("{f:.6}"),
                        rusqlite::types::Value::Integer(i) => format!("{i}"),
                        other => format!("{other:?}"),
                    })
                })
                .collect()
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    };
    let rolled = rows(
        "SELECT hour, checks, first_at, last_at, mem_n, mem_min, mem_sum, mem_max \
         FROM rollup_host ORDER BY hour",
    );
    let raw = rows(
        "SELECT taken_at / 3600000 * 3600000 AS hr, count(*), min(taken_at), max(taken_at), \
         count(mem_percent), min(mem_percent), total(mem_percent), max(mem_percent) \
         FROM checks GROUP BY hr ORDER BY hr",
    );
    assert!(!raw.is_empty());
    assert_eq!(rolled, raw);
}

#[test]
fn a_window_is_answered_in_read_order_with_its_checks_only() {
    // The same agent shape without the steps would not tell read order from
    // time order; this one steps back once and asks for the window the
    // stepped-back checks share with the ones before.
    let dir = tempfile::tempdir().unwrap();
    let offset = dir.path().join("offset");
    set_clock(&offset, "+0");
    let (mut agent, port, _lines) = start(dir.path(), &offset);
    wait_for(Duration::from_secs(10), || {
        (checks(port, "").len() >= 5).then_some(())
    })
    .expect("five checks");
    // Back by 4 s: the next checks' times fall among the earlier ones'.
    set_clock(&offset, "-4");
    let n = checks(port, "").len();
    wait_for(Duration::from_secs(10), || {
        (checks(port, "").len() >= n + 6).then_some(())
    })
    .expect("six more checks");
    let all = checks(port, "");
    let ids: Vec<i64> = all.iter().map(id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let latest = get_json(port, "/api/v1/checks/latest");
    assert_eq!(id(&latest), ids[0], "the latest is the one read last");
    // Times overlap: some later-read check shows an earlier time.
    assert!(
        all.windows(2).any(|w| at(&w[0]) < at(&w[1])),
        "the clock stepped back among the checks"
    );
    // A window over the overlap: exactly the checks whose times are in
    // it, in read order, every one once also when paged one by one.
    let lo = all.iter().map(at).min().unwrap() + 1500;
    let hi = all.iter().map(at).max().unwrap() - 1500;
    let iso = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let window = format!("&since={}&until={}", iso(lo), iso(hi));
    let want: Vec<i64> = all
        .iter()
        .filter(|k| (lo..hi).contains(&at(k)))
        .map(id)
        .collect();
    assert!(want.len() >= 2, "{all:#?}");
    let got: Vec<i64> = checks(port, &window).iter().map(id).collect();
    assert_eq!(got, want);
    let mut paged = Vec::new();
    let mut before = String::new();
    while let Some(k) = get_json(port, &format!("/api/v1/checks?limit=1{window}{before}"))
        .as_array()
        .and_then(|a| a.first().cloned())
    {
        paged.push(id(&k));
        before = format!("&before_id={}", id(&k));
    }
    assert_eq!(paged, want);
    signal(&agent.0[0], rustix::process::Signal::TERM);
    assert!(wait_exit(&mut agent.0[0], Duration::from_secs(10)).success());
}
