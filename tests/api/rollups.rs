//! Hourly roll-ups over HTTP and across a crash: the history routes say
//! which resolution answered, and the roll-ups of a database whose agent
//! was killed mid-hour equal what its raw checks add up to.

use crate::{
    checks::made,
    helpers::spawn_app,
    lifecycle::{get_json, signal, start_agent, wait_exit, wait_for_checks},
};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use hostwatch::store::Store;
use std::path::Path;

fn q(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Rows where the roll-ups and the raw checks disagree, either way.
fn rollup_mismatches(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let hour = |col: &str| format!("({col} / 3600000 * 3600000)");
    let (h, kh) = (hour("taken_at"), hour("k.taken_at"));
    let pairs = [
        (
            "SELECT hour, checks, first_at, last_at, cpu_n, cpu_min, round(cpu_sum, 3), cpu_max, \
             mem_n, mem_min, round(mem_sum, 3), mem_max FROM rollup_host"
                .to_string(),
            format!(
                "SELECT {h}, count(*), min(taken_at), max(taken_at), count(cpu_percent), min(cpu_percent), \
                 round(total(cpu_percent), 3), max(cpu_percent), count(mem_percent), min(mem_percent), \
                 round(total(mem_percent), 3), max(mem_percent) FROM checks GROUP BY 1"
            ),
        ),
        (
            "SELECT mount, hour, percent_n, percent_min, round(percent_sum, 3), percent_max FROM rollup_disks"
                .to_string(),
            format!(
                "SELECT d.mount, {kh}, count(*), min(d.percent), round(total(d.percent), 3), max(d.percent) \
                 FROM check_disks d JOIN checks k ON k.id = d.check_id GROUP BY 1, 2"
            ),
        ),
        (
            "SELECT name, hour, checks, running, probe_n, round(probe_sum, 3) FROM rollup_services"
                .to_string(),
            format!(
                "SELECT s.name, {kh}, count(*), sum(s.state = 'running'), count(s.probe_ms), \
                 round(total(s.probe_ms), 3) FROM check_services s JOIN checks k ON k.id = s.check_id GROUP BY 1, 2"
            ),
        ),
    ];
    let mut out = Vec::new();
    for (rolled, raw) in pairs {
        for sql in [
            format!("{rolled} EXCEPT {raw}"),
            format!("{raw} EXCEPT {rolled}"),
        ] {
            let mut st = c.prepare(&sql).unwrap();
            let n = st.column_count();
            let rows = st
                .query_map([], |r| {
                    Ok((0..n)
                        .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap()))
                        .collect::<Vec<_>>()
                        .join(" "))
                })
                .unwrap();
            out.extend(rows.map(|r| format!("{sql}: {}", r.unwrap())));
        }
    }
    out
}

fn count(db: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_kill_mid_hour_leaves_rollups_equal_to_the_raw_checks_and_they_go_on_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hostwatch.db");
    let mut agent = start_agent(dir.path(), "10ms");
    wait_for_checks(agent.port, 30);
    // Killed while checks are being written, 100 a second.
    signal(&agent.child, rustix::process::Signal::KILL);
    wait_exit(&mut agent.child, std::time::Duration::from_secs(5));
    let killed_at = count(&db, "SELECT count(*) FROM checks");
    assert!(killed_at >= 30);
    assert_eq!(rollup_mismatches(&db), Vec::<String>::new());
    assert!(count(&db, "SELECT coalesce(sum(checks), 0) FROM rollup_host") >= killed_at);

    // Restarted on the same file: the hour goes on from where it was.
    let mut agent = start_agent(dir.path(), "10ms");
    let port = agent.port;
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while count(&db, "SELECT count(*) FROM checks") < killed_at + 30 {
        assert!(
            std::time::Instant::now() < end,
            "no checks after the restart"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let s = get_json(port, "/api/v1/checks/summary");
    assert!(s["count"].as_i64().unwrap() >= killed_at + 30, "{s}");
    signal(&agent.child, rustix::process::Signal::TERM);
    assert!(wait_exit(&mut agent.child, std::time::Duration::from_secs(5)).success());
    assert_eq!(rollup_mismatches(&db), Vec::<String>::new());
    assert_eq!(
        count(&db, "SELECT sum(checks) FROM rollup_host"),
        count(&db, "SELECT count(*) FROM checks")
    );
}

/// Checks every minute from `days` ago to now, minute aligned plus 5 s.
fn seed_days(db: &Path, days: i64) -> Vec<DateTime<Utc>> {
    let store = Store::open(db).unwrap();
    let now = Utc::now();
    let start =
        DateTime::from_timestamp(now.timestamp() / 60 * 60 + 5, 0).unwrap() - Duration::days(days);
    let times: Vec<DateTime<Utc>> = (0..days * 1440)
        .map(|i| start + Duration::minutes(i))
        .collect();
    let checks: Vec<_> = times
        .iter()
        .enumerate()
        .map(|(i, &t)| made(t, (i % 100) as f64, 50.0, 20.0, i % 10 != 0))
        .collect();
    store.insert_checks(&checks).unwrap();
    times
}

fn resolutions(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|b| b["resolution"].as_str().unwrap())
        .collect()
}

#[actix_web::test]
async fn history_routes_say_which_resolution_answered_and_read_rollups_where_raw_checks_are_gone() {
    let app = spawn_app().await;
    let times = seed_days(&app.db_path(), 3);
    let (first, last) = (times[0], *times.last().unwrap());
    let all = app.get("/api/v1/checks/summary").await.json();
    assert_eq!(all["count"], times.len());
    assert_eq!(all["resolution"], "1h");
    assert_eq!(all["services"][0]["availability_percent"], 90.0);
    let short = app
        .get(&format!(
            "/api/v1/checks/summary?since={}&until={}",
            q(last - Duration::minutes(30)),
            q(last)
        ))
        .await
        .json();
    assert_eq!(
        (short["count"].as_i64(), short["resolution"].as_str()),
        (Some(30), Some("raw"))
    );

    let window = format!(
        "since={}&until={}",
        q(first),
        q(last + Duration::minutes(1))
    );
    let hourly = app
        .get(&format!("/api/v1/checks/cpu/series?{window}&step=1h"))
        .await
        .json();
    assert!(resolutions(&hourly).iter().all(|r| *r == "1h"));
    let total: u64 = hourly
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, times.len() as u64);
    let fine = app
        .get(&format!("/api/v1/checks/cpu/series?{window}&step=10m"))
        .await
        .json();
    assert!(resolutions(&fine).iter().all(|r| *r == "raw"));

    // Raw checks of the first two days purged, as retention would.
    let cutoff = first + Duration::days(2);
    rusqlite::Connection::open(app.db_path())
        .unwrap()
        .execute(
            "DELETE FROM checks WHERE taken_at < ?1",
            [cutoff.timestamp_millis()],
        )
        .unwrap();
    let all = app.get("/api/v1/checks/summary").await.json();
    assert_eq!(
        all["count"],
        times.len(),
        "roll-ups still count every check"
    );
    let fine = app
        .get(&format!("/api/v1/checks/cpu/series?{window}&step=10m"))
        .await
        .json();
    let r = resolutions(&fine);
    let switch = r
        .iter()
        .position(|r| *r == "raw")
        .expect("raw buckets at the end");
    assert!(
        switch > 0 && r[..switch].iter().all(|r| *r == "1h"),
        "{r:?}"
    );
    let total: u64 = fine
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, times.len() as u64, "each check counted once");
    // The last day's raw values, then one value per hour of the two days
    // before (the hour the purge cut through is left out: it is partly
    // raw, partly gone).
    let h = app.get("/api/v1/checks/cpu/history?size=2000").await.json();
    let r = resolutions(&h);
    assert_eq!(r.len(), 1440 + 48, "{r:?}");
    assert!(r[..48].iter().all(|r| *r == "1h") && r[48..].iter().all(|r| *r == "raw"));
    app.stop().await;
}
