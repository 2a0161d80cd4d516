//! `hostwatch generate`, the real binary: a day of made-up checks, whole and
//! in range, and a database that already holds checks left alone.

use rusqlite::Connection;
use std::{path::Path, process::Command};

fn generate(db: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(["generate", "--days", "1", "--db"])
        .arg(db)
        .args(extra)
        .output()
        .unwrap()
}

fn count(c: &Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn a_day_of_generated_checks_is_whole_in_range_and_recent() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let before = chrono::Utc::now().timestamp_millis();
    let out = generate(&db, &[]);
    let after = chrono::Utc::now().timestamp_millis();
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("wrote 1440 checks") && said.contains("MiB"),
        "{said}"
    );

    let c = Connection::open(&db).unwrap();
    let n = count(&c, "SELECT COUNT(*) FROM checks");
    assert!((1439..=1441).contains(&n), "{n} checks");
    for (part, want) in [
        ("check_disks", 3),
        ("check_services", 1),
        ("check_processes", 5),
    ] {
        let off = count(
            &c,
            &format!(
                "SELECT COUNT(*) FROM checks k WHERE \
                 (SELECT COUNT(*) FROM {part} p WHERE p.check_id = k.id) != {want}"
            ),
        );
        assert_eq!(off, 0, "checks without {want} rows in {part}");
    }
    let out_of_range = count(
        &c,
        "SELECT COUNT(*) FROM checks WHERE NOT (
             cpu_percent BETWEEN 0 AND 100 AND load1 >= 0 AND load5 >= 0 AND load15 >= 0
             AND mem_percent BETWEEN 30 AND 80 AND mem_used <= mem_total
             AND swap_percent BETWEEN 0 AND 100 AND swap_used <= swap_total
             AND io_read >= 0 AND io_sent >= 0 AND io_interval_ms > 0 AND duration_ms > 0)",
    );
    assert_eq!(out_of_range, 0);
    let bad_disks = count(
        &c,
        "SELECT COUNT(*) FROM check_disks WHERE NOT (percent BETWEEN 0 AND 100 \
         AND used_bytes <= total_bytes AND mount IN ('/', '/var', '/home'))",
    );
    assert_eq!(bad_disks, 0);
    let bad_processes = count(
        &c,
        "SELECT COUNT(*) FROM check_processes WHERE NOT (pid > 0 AND cpu_percent >= 0 \
         AND rss_bytes >= 0 AND name != '' AND user IS NOT NULL)",
    );
    assert_eq!(bad_processes, 0);
    let states = count(
        &c,
        "SELECT COUNT(*) FROM check_services WHERE name = 'httpd' AND state = 'running'",
    );
    assert!(
        states > n * 9 / 10,
        "httpd ran in only {states} of {n} checks"
    );

    let (first, last): (i64, i64) = c
        .query_row("SELECT MIN(taken_at), MAX(taken_at) FROM checks", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(
        first >= before - 86_400_000 && last <= after,
        "{first}..{last}"
    );
    assert!(last >= before - 60_000, "the last check is not about now");
}

#[test]
fn a_database_that_holds_checks_is_refused_without_append() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    assert!(generate(&db, &[]).status.success());
    let c = Connection::open(&db).unwrap();
    let held = count(&c, "SELECT COUNT(*) FROM checks");

    let again = generate(&db, &[]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("already holds") && err.contains("--append"),
        "{err}"
    );
    assert_eq!(count(&c, "SELECT COUNT(*) FROM checks"), held);

    let appended = generate(&db, &["--append", "--interval", "10m"]);
    assert!(appended.status.success(), "{appended:?}");
    assert_eq!(count(&c, "SELECT COUNT(*) FROM checks"), held + 144);
}

#[test]
fn an_interval_the_sampler_would_refuse_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = generate(&dir.path().join("g.db"), &["--interval", "5ms"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("shortest interval (10ms)"), "{err}");
}

#[test]
fn a_database_of_another_schema_is_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    assert!(generate(&db, &["--interval", "1h"]).status.success());
    // As if an older agent still ran on it: it must not be migrated.
    Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", 6)
        .unwrap();
    let out = generate(&db, &["--append"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("schema version 6"), "{err}");
    let v: i64 = Connection::open(&db)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, 6, "the file was migrated");
}
