//! Retention on real SQLite files in temporary directories; every time is
//! relative to now.

use super::*;
use crate::domain::{Check, Disk, ServiceState, ServiceStatus};
use crate::store::tests::check_at;
use chrono::Duration as Age;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("t.db")).unwrap();
    (dir, s)
}

fn keep(checks_days: u64, rollup_days: u64) -> Retention {
    let day = Duration::from_secs(86_400);
    Retention {
        checks: day * checks_days as u32,
        rollups: day * rollup_days as u32,
        audit: day * 90,
    }
}

fn count(s: &Store, sql: &str) -> i64 {
    s.read(|c| Ok(c.query_row(sql, [], |r| r.get(0))?)).unwrap()
}

fn pragma(s: &Store, name: &str) -> i64 {
    count(s, &format!("PRAGMA {name}"))
}

/// A check with a second mount and a second service, so keyed roll-ups
/// have more than one run.
fn wide_check(t: DateTime<Utc>) -> Check {
    let mut k = check_at(t, 60.0, 30.0);
    k.disks.get_or_insert_default().push(Disk {
        mount: "/var".into(),
        device: "/dev/vdb".into(),
        fs_type: "xfs".into(),
        total_bytes: Some(100),
        used_bytes: Some(70),
        percent: Some(70.0),
        error: None,
    });
    k.services.get_or_insert_default().push(ServiceState {
        name: "db".into(),
        state: ServiceStatus::Running,
        healthy: Some(true),
        probe_ms: Some(2.0),
    });
    k
}

#[test]
fn a_purge_takes_exactly_the_checks_before_the_cutoff_with_their_rows_and_leaves_the_rollups() {
    let (_d, s) = store();
    let now = Utc::now();
    // Every 6 hours for 40 days, inserted newest first: ids run against time.
    let checks: Vec<Check> = (0..160)
        .map(|i| wide_check(now - Age::hours(6 * i)))
        .collect();
    s.insert_checks(&checks).unwrap();
    let hours = count(&s, "SELECT count(*) FROM rollup_host");
    let mounts = count(&s, "SELECT count(*) FROM rollup_disks");
    let services = count(&s, "SELECT count(*) FROM rollup_services");

    let p = s
        .purge_expired(&keep(30, 730), now, &CancellationToken::new())
        .unwrap();

    let cutoff = (now - Age::days(30)).timestamp_millis();
    let kept = checks
        .iter()
        .filter(|k| k.taken_at.timestamp_millis() >= cutoff)
        .count() as i64;
    assert_eq!(p.checks, 160 - kept as u64);
    assert_eq!(p.rollups, 0);
    assert_eq!(count(&s, "SELECT count(*) FROM checks"), kept);
    let oldest = count(&s, "SELECT min(taken_at) FROM checks");
    assert!(oldest >= cutoff && oldest < cutoff + 6 * 3_600_000);
    for child in ["check_disks", "check_services"] {
        assert_eq!(
            count(&s, &format!("SELECT count(*) FROM {child}")),
            2 * kept
        );
    }
    assert_eq!(count(&s, "SELECT count(*) FROM check_processes"), kept);
    assert_eq!(count(&s, "SELECT count(*) FROM rollup_host"), hours);
    assert_eq!(count(&s, "SELECT count(*) FROM rollup_disks"), mounts);
    assert_eq!(count(&s, "SELECT count(*) FROM rollup_services"), services);
}

#[test]
fn checks_go_oldest_first_so_what_is_kept_never_has_holes() {
    let (_d, s) = store();
    let now = Utc::now();
    // Newest first, so neither ids nor rowid order follow time.
    let times: Vec<i64> = (0..3_000)
        .map(|i| (now - Age::minutes(i)).timestamp_millis())
        .collect();
    let checks: Vec<Check> = times
        .iter()
        .map(|&t| check_at(DateTime::from_timestamp_millis(t).unwrap(), 1.0, 1.0))
        .collect();
    s.insert_checks(&checks).unwrap();
    let cutoff = now - Age::minutes(100) + Age::seconds(30);
    let done = std::sync::atomic::AtomicBool::new(false);
    let between = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut between = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let (oldest, n): (i64, i64) = s
                    .read(|c| {
                        Ok(
                            c.query_row("SELECT min(taken_at), count(*) FROM checks", [], |r| {
                                Ok((r.get(0)?, r.get(1)?))
                            })?,
                        )
                    })
                    .unwrap();
                // Everything from the oldest kept check on is there.
                let expected = times.iter().filter(|&&t| t >= oldest).count() as i64;
                assert_eq!(n, expected, "a hole after {oldest}");
                between += i32::from(n < 3_000 && n > 100);
            }
            between
        });
        let gone = s.purge_checks_before(cutoff, 10).unwrap();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(gone, 2_900);
        watcher.join().unwrap()
    });
    assert!(between > 0, "the purge was never seen half done");
    assert_eq!(count(&s, "SELECT count(*) FROM checks"), 100);
}

#[test]
fn checks_sharing_a_time_go_in_the_same_batch() {
    let (_d, s) = store();
    let t = Utc::now() - Age::days(2);
    let same: Vec<Check> = (0..25).map(|_| check_at(t, 1.0, 1.0)).collect();
    s.insert_checks(&same).unwrap();
    s.insert_check(&check_at(t + Age::minutes(1), 1.0, 1.0))
        .unwrap();
    // The first batch (10) ends inside the 25 that share a time.
    let gone = s.purge_checks_before(t + Age::seconds(30), 10).unwrap();
    assert_eq!(gone, 25);
    assert_eq!(count(&s, "SELECT count(*) FROM checks"), 1);
}

#[test]
fn rollups_older_than_their_retention_go_and_newer_stay() {
    let (_d, s) = store();
    let now = Utc::now();
    let old = now - Age::days(800);
    let kept = now - Age::days(700);
    s.insert_checks(&[wide_check(old), wide_check(kept), check_at(now, 1.0, 1.0)])
        .unwrap();

    let p = s
        .purge_expired(&keep(30, 730), now, &CancellationToken::new())
        .unwrap();

    // The old hour of the host, of both mounts and of both services.
    assert_eq!(p.rollups, 5);
    assert_eq!(p.checks, 2);
    let hour = |t: DateTime<Utc>| hour_of(t.timestamp_millis());
    let hours = |table: &str| {
        s.read(|c| {
            let mut st = c.prepare(&format!("SELECT DISTINCT hour FROM {table} ORDER BY hour"))?;
            Ok(st
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()?)
        })
        .unwrap()
    };
    let newer = vec![hour(kept), hour(now)];
    assert_eq!(hours("rollup_host"), newer);
    assert_eq!(hours("rollup_disks"), newer);
    assert_eq!(hours("rollup_services"), newer);
    assert_eq!(count(&s, "SELECT count(*) FROM rollup_disks"), 3);
    assert_eq!(count(&s, "SELECT count(*) FROM rollup_services"), 3);
}

#[test]
fn a_cancelled_purge_stops_before_its_first_batch() {
    let (_d, s) = store();
    s.insert_check(&check_at(Utc::now() - Age::days(40), 1.0, 1.0))
        .unwrap();
    let stop = CancellationToken::new();
    stop.cancel();
    let p = s.purge_expired(&keep(30, 730), Utc::now(), &stop).unwrap();
    assert_eq!(p, Purged::default());
    assert_eq!(count(&s, "SELECT count(*) FROM checks"), 1);
}

#[test]
fn a_new_database_gives_pages_back_incrementally() {
    let (_d, s) = store();
    assert_eq!(pragma(&s, "auto_vacuum"), 2);
}

#[test]
fn a_database_made_without_auto_vacuum_is_converted_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let s = Store::open(&path).unwrap();
    s.insert_check(&check_at(Utc::now(), 1.0, 1.0)).unwrap();
    drop(s);
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("PRAGMA auto_vacuum = NONE; VACUUM;")
        .unwrap();
    let mode: i64 = c.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, 0);
    drop(c);

    let s = Store::open(&path).unwrap();
    assert_eq!(pragma(&s, "auto_vacuum"), 2);
    assert_eq!(count(&s, "SELECT count(*) FROM checks"), 1);
}

#[test]
fn purging_most_checks_shrinks_the_file() {
    let (dir, s) = store();
    let now = Utc::now();
    // 20,000 checks a minute apart, the newest 2,000 within retention.
    for chunk in 0..20 {
        let checks: Vec<Check> = (0..1_000)
            .map(|i| check_at(now - Age::minutes(chunk * 1_000 + i), 50.0, 40.0))
            .collect();
        s.insert_checks(&checks).unwrap();
    }
    let size = |s: &Store| pragma(s, "page_count") * pragma(s, "page_size");
    let file = || std::fs::metadata(dir.path().join("t.db")).unwrap().len() as i64;
    s.checkpoint().unwrap();
    let (before, file_before) = (size(&s), file());

    let keep = Retention {
        checks: Duration::from_secs(2_000 * 60 - 30),
        ..keep(30, 730)
    };
    let p = s
        .purge_expired(&keep, now, &CancellationToken::new())
        .unwrap();

    assert_eq!(p.checks, 18_000);
    assert!(p.pages > 0);
    assert_eq!(pragma(&s, "freelist_count"), 0);
    let after = size(&s);
    // Nine tenths of the checks went; roll-ups and the schema stay.
    assert!(after < before * 3 / 10, "{before} -> {after} bytes");
    assert!(
        file() < file_before * 3 / 10,
        "file {file_before} -> {}",
        file()
    );
}

#[test]
fn a_slow_batch_shrinks_to_fit_and_a_quick_one_at_most_doubles() {
    let mut s = Sizer::rows(200);
    s.next(200, Duration::from_millis(40));
    assert_eq!(s.size, 50);
    s.next(50, Duration::from_micros(50));
    assert_eq!(s.size, 100);
    s.next(100, Duration::from_secs(10));
    assert_eq!(s.size, 10);
    for _ in 0..20 {
        s.next(u64::from(s.size), Duration::ZERO);
    }
    assert_eq!(s.size, 5_000);
}
