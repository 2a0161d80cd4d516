//! Roll-ups and the queries that read them, on a real SQLite file: the
//! answers are checked against figures computed here from the checks that
//! were stored, and every statement's plan is checked for sorts.

use super::tests::check_at;
use super::*;
use crate::domain::{Check, Disk, Metric, ServiceState, ServiceStatus, TimeRange};
use chrono::{DateTime, Duration, Utc};

const N: i64 = 3 * 24 * 60; // three days of 60 s checks

/// The i-th check of a varied, deterministic run: missing parts, a second
/// mount on every other check, a service that comes and goes.
fn varied(start: DateTime<Utc>, i: i64) -> Check {
    let mut k = check_at(
        start + Duration::seconds(60 * i),
        (i * 37 % 100) as f64 + 0.25,
        40.0 + (i % 200) as f64 / 10.0,
    );
    if i % 17 == 0 {
        k.cpu = None;
    }
    if let Some(m) = k.memory.as_mut() {
        m.percent = 30.0 + (i * 13 % 50) as f64 / 2.0;
    }
    if i % 2 == 0 {
        k.disks.as_mut().unwrap().push(Disk {
            mount: "/var".into(),
            device: "/dev/vdb".into(),
            fs_type: "xfs".into(),
            total_bytes: Some(100),
            used_bytes: Some(10),
            percent: Some((i % 90) as f64),
            error: None,
        });
    }
    let running = i % 23 != 0;
    let mut services = vec![ServiceState {
        name: "httpd".into(),
        state: if running {
            ServiceStatus::Running
        } else {
            ServiceStatus::Failed
        },
        healthy: Some(running),
        probe_ms: (running && i % 3 != 0).then_some((i % 50) as f64 + 0.5),
    }];
    if i < N / 2 {
        services.push(ServiceState {
            name: "db".into(),
            state: ServiceStatus::Running,
            healthy: None,
            probe_ms: None,
        });
    }
    k.services = Some(services);
    k
}

/// Three days of checks ending about now, not on an hour boundary.
fn filled() -> (tempfile::TempDir, Store, Vec<Check>) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("h.db")).unwrap();
    let now = Utc::now();
    let start = DateTime::from_timestamp(now.timestamp() / 60 * 60, 0).unwrap()
        - Duration::minutes(N)
        + Duration::seconds(7);
    let checks: Vec<Check> = (0..N).map(|i| varied(start, i)).collect();
    for chunk in checks.chunks(1000) {
        s.insert_checks(chunk).unwrap();
    }
    (dir, s, checks)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn assert_stats(got: &Option<Stats>, values: &[f64], what: &str) {
    if values.is_empty() {
        assert!(got.is_none(), "{what}: {got:?}");
        return;
    }
    let got = got.as_ref().unwrap_or_else(|| panic!("{what}: none"));
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let avg = values.iter().sum::<f64>() / values.len() as f64;
    assert_eq!(got.min, min, "{what} min");
    assert_eq!(got.max, max, "{what} max");
    assert!(close(got.avg, avg), "{what} avg {} vs {avg}", got.avg);
}

/// The summary of `checks` in `[since, until)`, computed here.
fn assert_summary_is_raw(
    s: &Summary,
    checks: &[Check],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) {
    let w: Vec<&Check> = checks
        .iter()
        .filter(|k| k.taken_at >= since && k.taken_at < until)
        .collect();
    assert!(!w.is_empty());
    assert_eq!(s.count, w.len() as u64);
    assert_eq!(s.first_at, Some(w[0].taken_at));
    assert_eq!(s.last_at, Some(w[w.len() - 1].taken_at));
    let cpu: Vec<f64> = w
        .iter()
        .filter_map(|k| k.cpu.as_ref().map(|c| c.percent))
        .collect();
    assert_stats(&s.cpu, &cpu, "cpu");
    let mem: Vec<f64> = w
        .iter()
        .filter_map(|k| k.memory.as_ref().map(|m| m.percent))
        .collect();
    assert_stats(&s.memory, &mem, "memory");
    let disk: Vec<f64> = w
        .iter()
        .flat_map(|k| k.disks.iter().flatten())
        .filter(|d| d.mount == s.disk_mount)
        .filter_map(|d| d.percent)
        .collect();
    assert_stats(&s.disk, &disk, "disk");
    let mut names: Vec<&str> = w
        .iter()
        .flat_map(|k| k.services.iter().flatten())
        .map(|x| x.name.as_str())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(
        s.services
            .iter()
            .map(|x| x.name.as_str())
            .collect::<Vec<_>>(),
        names
    );
    for a in &s.services {
        let seen: Vec<&ServiceState> = w
            .iter()
            .flat_map(|k| k.services.iter().flatten())
            .filter(|x| x.name == a.name)
            .collect();
        let up = seen
            .iter()
            .filter(|x| x.state == ServiceStatus::Running)
            .count();
        assert_eq!(a.checks, seen.len() as u64, "{}", a.name);
        assert!(close(
            a.availability_percent,
            up as f64 * 100.0 / seen.len() as f64
        ));
        let probes: Vec<f64> = seen.iter().filter_map(|x| x.probe_ms).collect();
        assert_stats(&a.probe_ms, &probes, &a.name);
    }
}

#[test]
fn a_summary_from_rollups_equals_the_one_from_raw_checks() {
    let (_d, s, checks) = filled();
    let start = checks[0].taken_at;
    let windows = [
        (start - Duration::days(1), Utc::now() + Duration::hours(1)),
        (
            start + Duration::seconds(1234),
            start + Duration::hours(50) + Duration::seconds(99),
        ),
        (start + Duration::minutes(5), start + Duration::minutes(50)),
    ];
    for (since, until) in windows {
        for mount in ["/", "/var"] {
            let r = TimeRange {
                since: Some(since),
                until: Some(until),
            };
            let sum = s.summary(r, mount).unwrap();
            assert_summary_is_raw(&sum, &checks, since, until);
        }
    }
    let long = s
        .summary(
            TimeRange {
                since: None,
                until: None,
            },
            "/",
        )
        .unwrap();
    assert_eq!(long.resolution, Resolution::Hour);
    assert_summary_is_raw(
        &long,
        &checks,
        checks[0].taken_at,
        Utc::now() + Duration::days(1),
    );
    let short = s
        .summary(
            TimeRange {
                since: Some(start + Duration::minutes(5)),
                until: Some(start + Duration::minutes(50)),
            },
            "/",
        )
        .unwrap();
    assert_eq!(short.resolution, Resolution::Raw);
}

/// Buckets of `step` from `origin` over `checks`' cpu, computed here.
fn cpu_buckets(checks: &[&Check], origin: i64, step: i64) -> Vec<(i64, u64, f64, f64, f64)> {
    let mut out: Vec<(i64, u64, f64, f64, f64)> = Vec::new();
    for k in checks {
        let Some(c) = &k.cpu else { continue };
        let b = (k.taken_at.timestamp_millis() - origin)
            .div_euclid(step)
            .max(0);
        let start = origin + b * step;
        match out.last_mut() {
            Some(last) if last.0 == start => {
                last.1 += 1;
                last.2 = last.2.min(c.percent);
                last.3 += c.percent;
                last.4 = last.4.max(c.percent);
            }
            _ => out.push((start, 1, c.percent, c.percent, c.percent)),
        }
    }
    out
}

fn assert_series(got: &[SeriesBucket], want: &[(i64, u64, f64, f64, f64)], res: Resolution) {
    assert!(!want.is_empty());
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.start.timestamp_millis(), w.0);
        assert_eq!(g.count, w.1);
        assert_eq!(g.min, w.2);
        assert_eq!(g.max, w.4);
        assert!(close(g.avg, w.3 / w.1 as f64));
        assert_eq!(g.resolution, res);
    }
}

#[test]
fn series_read_rollups_from_an_hour_and_raw_checks_below() {
    let (_d, s, checks) = filled();
    let since = checks[0].taken_at + Duration::minutes(90) + Duration::seconds(13);
    let until = checks[N as usize - 1].taken_at;
    let w: Vec<&Check> = checks
        .iter()
        .filter(|k| k.taken_at >= since && k.taken_at < until)
        .collect();
    // Hourly steps: buckets start at the hour `since` falls in, and hours
    // count whole, so the hour `since` is in counts from its start.
    let origin = rollups::hour_of(since.timestamp_millis());
    let hours: Vec<&Check> = checks
        .iter()
        .filter(|k| {
            let h = rollups::hour_of(k.taken_at.timestamp_millis());
            h >= origin && h < until.timestamp_millis()
        })
        .collect();
    for step in [3_600_000, 9 * 3_600_000] {
        let got = s.series(&Metric::Cpu, since, until, step).unwrap();
        assert_series(&got, &cpu_buckets(&hours, origin, step), Resolution::Hour);
    }
    for step in [60_000, 300_000, 7_000] {
        let got = s.series(&Metric::Cpu, since, until, step).unwrap();
        assert_series(
            &got,
            &cpu_buckets(&w, since.timestamp_millis(), step),
            Resolution::Raw,
        );
    }
}

/// Deletes raw checks before `cutoff` behind the roll-ups' back, as the
/// retention purge does.
fn purge_raw(s: &Store, cutoff: DateTime<Utc>) {
    s.write(|c| {
        c.execute(
            "DELETE FROM checks WHERE taken_at < ?1",
            [cutoff.timestamp_millis()],
        )?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn hours_whose_raw_checks_are_purged_answer_from_rollups() {
    let (_d, s, checks) = filled();
    // Purged to the middle of an hour, as retention leaves it: 20 checks
    // of the hour are gone, the rest kept.
    let hour = rollups::hour_of((checks[0].taken_at + Duration::hours(30)).timestamp_millis());
    let cutoff = DateTime::from_timestamp_millis(hour).unwrap() + Duration::seconds(20 * 60 + 3);
    purge_raw(&s, cutoff);
    let all = TimeRange {
        since: None,
        until: None,
    };
    let sum = s.summary(all, "/").unwrap();
    assert_eq!(sum.resolution, Resolution::Hour);
    assert_summary_is_raw(
        &sum,
        &checks,
        checks[0].taken_at,
        Utc::now() + Duration::days(1),
    );

    let since = checks[0].taken_at;
    let until = Utc::now() + Duration::minutes(1);
    let got = s.series(&Metric::Cpu, since, until, 600_000).unwrap();
    let split = rollups::hour_of(cutoff.timestamp_millis()) + rollups::HOUR_MS;
    let (old, new): (Vec<_>, Vec<_>) = got
        .iter()
        .partition(|b| b.start.timestamp_millis() + 600_000 <= split);
    assert!(!old.is_empty() && !new.is_empty());
    assert!(old.iter().all(|b| b.resolution == Resolution::Hour));
    assert!(new.iter().skip(1).all(|b| b.resolution == Resolution::Raw));
    let counted: u64 = got.iter().map(|b| b.count).sum();
    let with_cpu = checks.iter().filter(|k| k.cpu.is_some()).count() as u64;
    assert_eq!(counted, with_cpu, "every value counted once");

    // History: raw values, then hourly averages before the oldest of them.
    let h = s.history(&Metric::Cpu, 10_000).unwrap();
    assert!(
        h.windows(2).all(|p| p[0].taken_at < p[1].taken_at),
        "oldest first, no repeats"
    );
    let first_raw = h
        .iter()
        .position(|p| p.resolution == Resolution::Raw)
        .unwrap();
    assert!(first_raw > 0, "hourly values precede the raw ones");
    assert!(
        h[first_raw..]
            .iter()
            .all(|p| p.resolution == Resolution::Raw)
    );
    assert!(h[..first_raw].iter().all(|p| p.taken_at < cutoff));
    let raw_kept = checks
        .iter()
        .filter(|k| k.taken_at >= cutoff && k.cpu.is_some())
        .count();
    assert_eq!(h.len() - first_raw, raw_kept);
}

/// Every roll-up row equals the one computed here from the raw checks.
fn assert_rollups_match_raw(s: &Store) {
    let q = |sql: &str| -> Vec<Vec<String>> {
        s.read(|c| {
            let mut st = c.prepare(sql)?;
            let n = st.column_count();
            let rows = st.query_map([], |r| {
                (0..n)
                    .map(|i| {
                        let v: rusqlite::types::Value = r.get(i)?;
                        Ok(match v {
                            rusqlite::types::Value::Real(f) => format!("{f:.6}"),
                            other => format!("{other:?}"),
                        })
                    })
                    .collect()
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .unwrap()
    };
    let h = "(taken_at / 3600000 * 3600000)";
    let kh = "(k.taken_at / 3600000 * 3600000)";
    let pairs = [
        (
            "SELECT hour, checks, first_at, last_at, cpu_n, cpu_min, cpu_sum, cpu_max, mem_n, mem_min, mem_sum, mem_max FROM rollup_host ORDER BY hour".to_string(),
            format!("SELECT {h} AS hr, count(*), min(taken_at), max(taken_at), count(cpu_percent), min(cpu_percent), total(cpu_percent), max(cpu_percent), count(mem_percent), min(mem_percent), total(mem_percent), max(mem_percent) FROM checks GROUP BY hr ORDER BY hr"),
        ),
        (
            "SELECT mount, hour, percent_n, percent_min, percent_sum, percent_max FROM rollup_disks ORDER BY mount, hour".to_string(),
            format!("SELECT d.mount, {kh} AS hr, count(*), min(d.percent), total(d.percent), max(d.percent) FROM check_disks d JOIN checks k ON k.id = d.check_id GROUP BY d.mount, hr ORDER BY d.mount, hr"),
        ),
        (
            "SELECT name, hour, checks, running, probe_n, probe_min, probe_sum, probe_max FROM rollup_services ORDER BY name, hour".to_string(),
            format!("SELECT s.name, {kh} AS hr, count(*), total(s.state = 'running'), count(s.probe_ms), min(s.probe_ms), total(s.probe_ms), max(s.probe_ms) FROM check_services s JOIN checks k ON k.id = s.check_id GROUP BY s.name, hr ORDER BY s.name, hr"),
        ),
    ];
    for (rolled, raw) in pairs {
        let (a, b) = (q(&rolled), q(&raw));
        assert!(!a.is_empty());
        // `running` is an integer rolled up and a total() computed here.
        let norm = |rows: Vec<Vec<String>>| -> Vec<Vec<String>> {
            rows.into_iter()
                .map(|r| {
                    r.into_iter()
                        .map(|v| v.replace("Integer(", "").replace(')', ""))
                        .collect()
                })
                .collect()
        };
        let (a, b) = (norm(a), norm(b));
        for (x, y) in a.iter().zip(&b) {
            let same = x.iter().zip(y).all(|(p, q)| {
                p == q
                    || matches!((p.parse::<f64>(), q.parse::<f64>()), (Ok(p), Ok(q)) if close(p, q))
            });
            assert!(same, "{rolled}:\n{x:?}\n{y:?}");
        }
        assert_eq!(a.len(), b.len(), "{rolled}");
    }
}

#[test]
fn rollups_are_kept_up_as_checks_arrive() {
    let (_d, s, _) = filled();
    assert_rollups_match_raw(&s);
}

#[test]
fn a_check_stored_without_its_rollup_is_made_good_at_start_up() {
    let (dir, s, checks) = filled();
    // The state a crash between a check and its roll-up would leave: the
    // newest check stored, its hour's roll-ups as they were before it.
    let last = checks.last().unwrap();
    s.write(|c| {
        for t in ["rollup_host", "rollup_disks", "rollup_services"] {
            c.execute_batch(&format!("CREATE TABLE saved_{t} AS SELECT * FROM {t}"))?;
        }
        Ok(())
    })
    .unwrap();
    let mut extra = last.clone();
    extra.taken_at = last.taken_at + Duration::seconds(30);
    s.insert_check(&extra).unwrap();
    s.write(|c| {
        for t in ["rollup_host", "rollup_disks", "rollup_services"] {
            c.execute_batch(&format!(
                "DELETE FROM {t}; INSERT INTO {t} SELECT * FROM saved_{t}; DROP TABLE saved_{t};"
            ))?;
        }
        Ok(())
    })
    .unwrap();
    drop(s);
    let s = Store::open(&dir.path().join("h.db")).unwrap();
    assert_rollups_match_raw(&s);
    // And the roll-up goes on from there.
    let mut more = extra.clone();
    more.taken_at = extra.taken_at + Duration::seconds(1);
    s.insert_check(&more).unwrap();
    assert_rollups_match_raw(&s);
}

#[test]
fn a_database_from_before_rollups_is_back_filled_when_migrated() {
    let (dir, s, _) = filled();
    // Undo migrations 11 to 07 by hand: what an older hostwatch left.
    s.write(|c| {
        c.execute_batch(
            "DROP TABLE remote_write_cursors;
             DROP TABLE probe_results; DROP TABLE watchdog_budgets;
             ALTER TABLE alerts DROP COLUMN within_since;
             DROP TABLE check_disk_faults;
             ALTER TABLE audit DROP COLUMN suppressed;
             DROP TABLE rollup_host; DROP TABLE rollup_disks; DROP TABLE rollup_services;
             DROP INDEX check_disks_mount_time; ALTER TABLE check_disks DROP COLUMN taken_at;
             CREATE INDEX check_disks_mount ON check_disks (mount, check_id);
             DROP INDEX check_services_name_time; ALTER TABLE check_services DROP COLUMN taken_at;
             CREATE INDEX check_services_name ON check_services (name, check_id);
             PRAGMA user_version = 6;",
        )?;
        Ok(())
    })
    .unwrap();
    drop(s);
    let s = Store::open(&dir.path().join("h.db")).unwrap();
    assert_rollups_match_raw(&s);
    let stale: i64 = s
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM check_disks d JOIN checks k ON k.id = d.check_id \
                 WHERE d.taken_at != k.taken_at",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(stale, 0, "child rows carry their check's time");
}

#[test]
fn every_history_statement_walks_an_index_in_order() {
    let (_d, s, checks) = filled();
    purge_raw(
        &s,
        checks[0].taken_at + Duration::hours(20) + Duration::minutes(5),
    );
    plan::take();
    let (since, until) = (checks[0].taken_at, Utc::now());
    let all = TimeRange {
        since: None,
        until: None,
    };
    for m in [
        Metric::Cpu,
        Metric::Memory,
        Metric::Load1,
        Metric::Disk("/var".into()),
    ] {
        s.history(&m, 60).unwrap();
        s.history(&m, 10_000).unwrap();
        s.series(&m, since, until, 60_000).unwrap();
        s.series(&m, since, until, 9 * 3_600_000).unwrap();
    }
    s.summary(all, "/").unwrap();
    s.summary(
        TimeRange {
            since: Some(since + Duration::minutes(3)),
            until: Some(until - Duration::minutes(3)),
        },
        "/",
    )
    .unwrap();
    s.service_history("httpd", 60).unwrap();
    let page = s.checks(all, 10, None).unwrap();
    s.checks(all, 10, page.last().and_then(|k| k.id)).unwrap();
    let window = TimeRange {
        since: Some(since),
        until: Some(until),
    };
    s.checks(window, 10, None).unwrap();
    let span = s.check_span(window).unwrap().unwrap();
    s.checks_ascending(window, span, 10).unwrap();
    s.mounts_between(since, until).unwrap();
    let statements = plan::take();
    assert!(statements.len() >= 20, "{statements:#?}");
    s.read(|c| {
        for sql in &statements {
            let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            for i in 1..=st.parameter_count() {
                st.raw_bind_parameter(i, 0)?;
            }
            let mut rows = st.raw_query();
            let mut plan = Vec::new();
            while let Some(r) = rows.next()? {
                plan.push(r.get::<_, String>(3)?);
            }
            for step in &plan {
                assert!(!step.contains("TEMP B-TREE"), "sorts:\n{sql}\n{plan:#?}");
                if step.starts_with("SCAN") || step.starts_with("SEARCH") {
                    assert!(
                        step.contains("INDEX") || step.contains("PRIMARY KEY"),
                        "reads a table without an index:\n{sql}\n{plan:#?}"
                    );
                }
            }
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn paging_never_skips_or_repeats_while_checks_arrive() {
    let (_d, s) = {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("p.db")).unwrap();
        (dir, s)
    };
    let base = Utc::now() - Duration::hours(2);
    // Pairs of checks share a time.
    let first: Vec<Check> = (0..300).map(|i| varied(base, i / 2)).collect();
    s.insert_checks(&first).unwrap();
    let all = TimeRange {
        since: None,
        until: None,
    };
    let before: Vec<i64> = s
        .checks(all, 1000, None)
        .unwrap()
        .iter()
        .filter_map(|k| k.id)
        .collect();
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut arriving = 0;
    loop {
        let page = s.checks(all, 25, cursor).unwrap();
        let Some(last) = page.last() else { break };
        cursor = last.id;
        seen.extend(page.iter().filter_map(|k| k.id));
        // New checks land while the client pages: at the newest time, and
        // at a time the client has already passed.
        arriving += 1;
        s.insert_check(&varied(base, 150 + arriving)).unwrap();
        s.insert_check(&varied(base, 149)).unwrap();
    }
    assert_eq!(seen.len(), 300);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 300, "no check twice");
    assert_eq!(
        seen, before,
        "the list as it was when paging began, in order"
    );
}

#[test]
fn a_series_that_would_read_too_many_raw_checks_is_refused_and_an_hourly_one_answers() {
    let (_d, s, checks) = filled();
    let (since, until) = (checks[0].taken_at, Utc::now());
    let e = s
        .series_within(&Metric::Cpu, since, until, 60_000, 1_000)
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::TooBroad(why) if why.contains("1h")),
        "{e}"
    );
    let hourly = s
        .series_within(&Metric::Cpu, since, until, 3_600_000, 1_000)
        .unwrap();
    assert!(hourly.len() >= 72);
}

#[test]
fn mounts_between_names_each_mount_with_checks_in_the_window_once_in_path_order() {
    let (_d, s, checks) = filled();
    let first = checks[0].taken_at;
    let mut expected: Vec<String> = checks
        .iter()
        .flat_map(|k| k.disks.iter().flatten().map(|d| d.mount.clone()))
        .collect();
    expected.sort();
    expected.dedup();
    assert!(expected.len() >= 2, "{expected:?}");
    let until = Utc::now() + Duration::minutes(1);
    assert_eq!(s.mounts_between(first, until).unwrap(), expected);
    // Hours hold whole: a window before the first check's hour, or after
    // the last one's, has none.
    let before = first - Duration::hours(3);
    assert!(
        s.mounts_between(before, before + Duration::hours(1))
            .unwrap()
            .is_empty()
    );
    let after = until + Duration::hours(2);
    assert!(
        s.mounts_between(after, after + Duration::hours(1))
            .unwrap()
            .is_empty()
    );
}
