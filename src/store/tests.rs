//! Store tests on a real SQLite file in a temporary directory.

use super::*;
use crate::domain::{
    Check, Cpu, Disk, Memory, Metric, ServiceState, ServiceStatus, TimeRange, TopProcess,
};
use chrono::{DateTime, Duration, Utc};

pub(crate) fn check_at(t: DateTime<Utc>, cpu: f64, disk: f64) -> Check {
    Check {
        id: None,
        taken_at: t,
        duration_ms: 1.5,
        cpu: Some(Cpu {
            percent: cpu,
            load1: 0.5,
            load5: 0.25,
            load15: 0.125,
        }),
        memory: Some(Memory {
            total_bytes: 1000,
            used_bytes: 400,
            available_bytes: 600,
            percent: 40.0,
            swap_total_bytes: 0,
            swap_used_bytes: 0,
            swap_percent: 0.0,
        }),
        disks: Some(vec![Disk {
            mount: "/".into(),
            device: "/dev/vda".into(),
            fs_type: "ext4".into(),
            total_bytes: Some(100),
            used_bytes: Some(disk as u64),
            percent: Some(disk),
            error: None,
        }]),
        io: None,
        services: Some(vec![ServiceState {
            name: "httpd".into(),
            state: if cpu > 50.0 {
                ServiceStatus::Running
            } else {
                ServiceStatus::Stopped
            },
            healthy: None,
            probe_ms: None,
        }]),
        top_processes: Some(vec![TopProcess {
            pid: 7,
            name: "sleep".into(),
            user: Some("root".into()),
            cpu_percent: 1.0,
            rss_bytes: 4096,
        }]),
    }
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("t.db")).unwrap();
    (dir, s)
}

/// A whole minute a day ago: every test holds whatever day it runs on.
fn t0() -> DateTime<Utc> {
    let now = Utc::now() - Duration::days(1);
    DateTime::from_timestamp(now.timestamp() / 60 * 60, 0).unwrap()
}

#[test]
fn a_stored_check_reads_back_whole() {
    let (_d, s) = store();
    let mut k = check_at(t0(), 12.5, 30.0);
    let id = s.insert_check(&k).unwrap();
    k.id = Some(id);
    assert_eq!(s.check(id).unwrap(), k);
    assert_eq!(s.latest_check().unwrap(), k);
}

#[test]
fn a_missing_part_stays_null_and_an_empty_list_stays_empty() {
    let (_d, s) = store();
    let mut k = check_at(t0(), 1.0, 1.0);
    k.cpu = None;
    k.disks = None;
    k.top_processes = Some(vec![]);
    let id = s.insert_check(&k).unwrap();
    let back = s.check(id).unwrap();
    assert_eq!(back.cpu, None);
    assert_eq!(back.disks, None);
    assert_eq!(back.top_processes, Some(vec![]));
}

#[test]
fn an_unknown_id_is_not_found() {
    let (_d, s) = store();
    assert!(matches!(s.check(42), Err(StoreError::NotFound)));
    assert!(matches!(s.latest_check(), Err(StoreError::NotFound)));
}

#[test]
fn checks_page_newest_first_within_the_window() {
    let (_d, s) = store();
    for i in 0..10 {
        s.insert_check(&check_at(t0() + Duration::minutes(i), i as f64, 1.0))
            .unwrap();
    }
    let range = TimeRange {
        since: Some(t0() + Duration::minutes(2)),
        until: Some(t0() + Duration::minutes(8)),
    };
    let page = s.checks(range, 4, None).unwrap();
    let cpus: Vec<f64> = page
        .iter()
        .map(|k| k.cpu.as_ref().unwrap().percent)
        .collect();
    assert_eq!(cpus, vec![7.0, 6.0, 5.0, 4.0]);
    let next = s.checks(range, 4, page.last().unwrap().id).unwrap();
    let cpus: Vec<f64> = next
        .iter()
        .map(|k| k.cpu.as_ref().unwrap().percent)
        .collect();
    assert_eq!(cpus, vec![3.0, 2.0]);
    assert_eq!(next[0].disks.as_ref().unwrap().len(), 1);
}

#[test]
fn history_gives_the_last_values_oldest_first() {
    let (_d, s) = store();
    for i in 0..5 {
        s.insert_check(&check_at(
            t0() + Duration::minutes(i),
            i as f64 * 10.0,
            50.0 + i as f64,
        ))
        .unwrap();
    }
    let h = s.history(&Metric::Cpu, 3).unwrap();
    assert_eq!(
        h.iter().map(|p| p.value).collect::<Vec<_>>(),
        vec![20.0, 30.0, 40.0]
    );
    let h = s.history(&Metric::Disk("/".into()), 2).unwrap();
    assert_eq!(
        h.iter().map(|p| p.value).collect::<Vec<_>>(),
        vec![53.0, 54.0]
    );
    assert!(
        s.history(&Metric::Disk("/nope".into()), 2)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn series_buckets_hold_min_avg_max_and_count() {
    let (_d, s) = store();
    // Minutes 0..6 with cpu 0,10,..,50; buckets of 2 minutes.
    for i in 0..6 {
        s.insert_check(&check_at(t0() + Duration::minutes(i), i as f64 * 10.0, 1.0))
            .unwrap();
    }
    let b = s
        .series(&Metric::Cpu, t0(), t0() + Duration::minutes(6), 120_000)
        .unwrap();
    assert_eq!(b.len(), 3);
    assert_eq!(
        (b[1].min, b[1].avg, b[1].max, b[1].count),
        (20.0, 25.0, 30.0, 2)
    );
    assert_eq!(b[2].start, t0() + Duration::minutes(4));
}

#[test]
fn the_summary_covers_only_its_window() {
    let (_d, s) = store();
    for (i, cpu) in [10.0, 20.0, 60.0, 90.0].iter().enumerate() {
        s.insert_check(&check_at(
            t0() + Duration::minutes(i as i64),
            *cpu,
            40.0 + i as f64,
        ))
        .unwrap();
    }
    let r = TimeRange {
        since: Some(t0() + Duration::minutes(1)),
        until: None,
    };
    let sum = s.summary(r, "/").unwrap();
    assert_eq!(sum.count, 3);
    assert_eq!(sum.first_at, Some(t0() + Duration::minutes(1)));
    let cpu = sum.cpu.unwrap();
    assert_eq!((cpu.min, cpu.max), (20.0, 90.0));
    assert!((cpu.avg - 170.0 / 3.0).abs() < 1e-9);
    assert_eq!(sum.disk.unwrap().max, 43.0);
    let web = &sum.services[0];
    assert_eq!(
        (web.checks, (web.availability_percent * 100.0).round()),
        (3, 6667.0)
    );
}

#[test]
fn purging_removes_old_checks_and_their_rows() {
    let (_d, s) = store();
    for i in 0..7 {
        s.insert_check(&check_at(t0() + Duration::minutes(i), 1.0, 1.0))
            .unwrap();
    }
    let gone = s
        .purge_checks_before(t0() + Duration::minutes(5), 2)
        .unwrap();
    assert_eq!(gone, 5);
    assert_eq!(s.count_checks().unwrap(), 2);
    let orphans: i64 = s
        .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM check_disks", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(orphans, 2);
}

#[test]
fn a_database_newer_than_the_binary_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    let e = Store::open(&path).err().unwrap();
    assert!(matches!(e, StoreError::TooNew { found: 99, .. }), "{e}");
    assert!(e.to_string().contains("newer"));
}

#[test]
fn audit_entries_read_back_newest_first() {
    let (_d, s) = store();
    for a in ["sampler.start", "sampler.stop"] {
        s.record_audit(&AuditEntry {
            actor: "ops".into(),
            action: a.into(),
            target: None,
            outcome: "ok".into(),
            detail: None,
        })
        .unwrap();
    }
    let rows = s.audit(10, None).unwrap();
    assert_eq!(rows[0].action, "sampler.stop");
    assert_eq!(rows.len(), 2);
}

#[test]
fn paging_follows_the_lists_order_when_checks_share_times_or_ids_disagree_with_times() {
    let (_d, s) = store();
    // 1,000 checks on 7 distinct times, inserted in an order that makes ids
    // disagree with times (as a clock stepped back would).
    let base = Utc::now() - Duration::hours(1);
    for i in 0..1000i64 {
        let minute = (i * 3) % 7;
        s.insert_check(&check_at(base + Duration::minutes(minute), i as f64, 1.0))
            .unwrap();
    }
    let range = TimeRange {
        since: None,
        until: None,
    };
    let all: Vec<i64> = s
        .checks(range, 1000, None)
        .unwrap()
        .iter()
        .filter_map(|k| k.id)
        .collect();
    assert_eq!(all.len(), 1000);
    // In the order they were read, newest first, whatever their times.
    assert!(all.windows(2).all(|w| w[0] > w[1]), "{all:?}");
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.checks(range, 100, cursor).unwrap();
        let Some(last) = page.last() else { break };
        cursor = last.id;
        paged.extend(page.iter().filter_map(|k| k.id));
    }
    assert_eq!(paged, all, "pages of 100 give the list once, in order");
}

#[test]
fn the_latest_check_is_the_one_read_last_whatever_its_time() {
    let (_d, s) = store();
    assert_eq!(s.latest_services().unwrap(), None);
    // The clock stepped back between the two: the second shows an earlier time.
    s.insert_check(&check_at(t0() + Duration::minutes(2), 10.0, 1.0))
        .unwrap();
    s.insert_check(&check_at(t0(), 90.0, 1.0)).unwrap();
    let latest = s.latest_services().unwrap().unwrap();
    assert_eq!(latest.taken_at, t0());
    assert_eq!(latest.duration_ms, 1.5);
    assert_eq!(latest.services.len(), 1);
    // check_at makes httpd run when cpu is over 50.
    assert_eq!(latest.services[0].state, ServiceStatus::Running);
    assert_eq!(s.latest_check().unwrap().taken_at, t0());
}
