//! Checks and their history, against rows whose values the test chose.

use crate::helpers::{CONTROL_TOKEN, READ_TOKEN, TestApp, spawn_app};
use chrono::{DateTime, Duration, DurationRound, SecondsFormat, Utc};
use hostwatch::{
    domain::{Check, Cpu, Disk, Memory, ServiceState, ServiceStatus},
    store::Store,
};
use serde_json::{Value, json};

#[actix_web::test]
async fn an_on_demand_check_is_stored_whole_and_reads_back() {
    let app = spawn_app().await;
    let r = app.control("/api/v1/checks", None).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let k = r.json();
    for part in ["cpu", "memory", "disks", "io", "top_processes"] {
        assert!(!k[part].is_null(), "{part} missing: {k}");
    }
    assert_eq!(k["services"], serde_json::json!([]));
    let pct = k["cpu"]["percent"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&pct));
    assert!(k["memory"]["total_bytes"].as_u64().unwrap() > 0);
    // Which filesystems a host has differs; each listed is a real one, of the
    // size the kernel gives for it, once, in order.
    let disks = k["disks"].as_array().unwrap();
    assert!(!disks.is_empty(), "no filesystem listed: {k}");
    for d in disks {
        let fs = rustix::fs::statvfs(d["mount"].as_str().unwrap()).unwrap();
        let total = d["total_bytes"].as_u64().unwrap();
        let used = d["used_bytes"].as_u64().unwrap();
        assert_eq!(total, fs.f_blocks * fs.f_frsize, "{d}");
        assert!(used <= total, "{d}");
        let pct = d["percent"].as_f64().unwrap();
        assert!(
            (pct - used as f64 * 100.0 / total as f64).abs() < 1e-6,
            "{d}"
        );
    }
    let mounts: Vec<&str> = disks.iter().map(|d| d["mount"].as_str().unwrap()).collect();
    assert!(mounts.windows(2).all(|w| w[0] < w[1]), "{mounts:?}");
    let top = k["top_processes"].as_array().unwrap().len();
    assert!((1..=5).contains(&top), "{top} top processes");
    let id = k["id"].as_i64().unwrap();
    assert_eq!(app.get(&format!("/api/v1/checks/{id}")).await.json(), k);
    assert_eq!(app.get("/api/v1/checks/latest").await.json(), k);
    app.stop().await;
}

#[actix_web::test]
async fn latest_and_unknown_ids_are_404_when_nothing_is_stored() {
    let app = spawn_app().await;
    app.get("/api/v1/checks/latest").await.problem(404);
    let d = app.get("/api/v1/checks/99").await.problem(404);
    assert!(d.contains("99"), "{d}");
    app.stop().await;
}

/// The seeded checks' first minute: an hour ago, on a whole minute, so they
/// are in the past and inside the retention on any day the tests run.
fn t0() -> DateTime<Utc> {
    (Utc::now() - Duration::hours(1))
        .duration_trunc(Duration::minutes(1))
        .unwrap()
}

/// `t0()` plus `minutes`, as a query parameter.
fn at(minutes: i64) -> String {
    (t0() + Duration::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A time the API answered.
fn time(v: &serde_json::Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap()
}

/// A check whose figures the test chooses.
pub(crate) fn made(at: DateTime<Utc>, cpu: f64, mem: f64, disk: f64, httpd_up: bool) -> Check {
    Check {
        id: None,
        taken_at: at,
        duration_ms: 1.0,
        cpu: Some(Cpu {
            percent: cpu,
            load1: cpu / 100.0,
            load5: 0.0,
            load15: 0.0,
        }),
        memory: Some(Memory {
            total_bytes: 100,
            used_bytes: mem as u64,
            available_bytes: 100 - mem as u64,
            percent: mem,
            swap_total_bytes: 0,
            swap_used_bytes: 0,
            swap_percent: 0.0,
        }),
        disks: Some(vec![Disk {
            mount: "/".into(),
            device: "/dev/test".into(),
            fs_type: "ext4".into(),
            total_bytes: Some(100),
            used_bytes: Some(disk as u64),
            percent: Some(disk),
            error: None,
        }]),
        io: None,
        services: Some(vec![ServiceState {
            name: "httpd".into(),
            state: if httpd_up {
                ServiceStatus::Running
            } else {
                ServiceStatus::Stopped
            },
            healthy: None,
            probe_ms: None,
        }]),
        top_processes: Some(vec![]),
    }
}

/// Ten checks a minute apart: cpu 0,10,..,90; memory 50+i; disk 20+2i; httpd up on even minutes.
fn seed(app: &TestApp) {
    let store = Store::open(&app.db_path()).unwrap();
    for i in 0..10i64 {
        let k = made(
            t0() + Duration::minutes(i),
            i as f64 * 10.0,
            50.0 + i as f64,
            20.0 + 2.0 * i as f64,
            i % 2 == 0,
        );
        store.insert_check(&k).unwrap();
    }
}

#[actix_web::test]
async fn listing_pages_newest_first_within_a_window() {
    let app = spawn_app().await;
    seed(&app);
    let window = format!("since={}&until={}", at(2), at(8));
    let page = app
        .get(&format!("/api/v1/checks?{window}&limit=4"))
        .await
        .json();
    let cpus: Vec<f64> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["cpu"]["percent"].as_f64().unwrap())
        .collect();
    assert_eq!(cpus, vec![70.0, 60.0, 50.0, 40.0]);
    let last = page[3]["id"].as_i64().unwrap();
    let next = app
        .get(&format!("/api/v1/checks?{window}&before_id={last}"))
        .await
        .json();
    let cpus: Vec<f64> = next
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["cpu"]["percent"].as_f64().unwrap())
        .collect();
    assert_eq!(cpus, vec![30.0, 20.0]);
    assert_eq!(
        app.get("/api/v1/checks")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        10
    );
    app.stop().await;
}

#[actix_web::test]
async fn history_returns_the_last_values_oldest_first() {
    let app = spawn_app().await;
    seed(&app);
    let h = app.get("/api/v1/checks/cpu/history?size=3").await.json();
    let v: Vec<f64> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(v, vec![70.0, 80.0, 90.0]);
    assert_eq!(time(&h[0]["taken_at"]), t0() + Duration::minutes(7));
    let d = app
        .get("/api/v1/checks/disk/history?size=2&mount=/")
        .await
        .json();
    let v: Vec<f64> = d
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(v, vec![36.0, 38.0]);
    let m = app.get("/api/v1/checks/memory/history").await.json();
    assert_eq!(m.as_array().unwrap().len(), 10);
    let l = app.get("/api/v1/checks/load1/history?size=1").await.json();
    assert_eq!(l[0]["value"], 0.9);
    app.stop().await;
}

#[actix_web::test]
async fn series_buckets_hold_the_arithmetic_of_their_rows() {
    let app = spawn_app().await;
    seed(&app);
    let b = app
        .get(&format!(
            "/api/v1/checks/cpu/series?since={}&until={}&step=5m",
            at(0),
            at(10)
        ))
        .await
        .json();
    let b = b.as_array().unwrap();
    assert_eq!(b.len(), 2);
    // Minutes 0-4: 0,10,20,30,40. Minutes 5-9: 50..90.
    assert_eq!(
        (
            b[0]["min"].as_f64(),
            b[0]["avg"].as_f64(),
            b[0]["max"].as_f64()
        ),
        (Some(0.0), Some(20.0), Some(40.0))
    );
    assert_eq!(b[1]["count"], 5);
    assert_eq!(b[1]["avg"], 70.0);
    assert_eq!(time(&b[1]["start"]), t0() + Duration::minutes(5));
    app.stop().await;
}

#[actix_web::test]
async fn the_summary_is_computed_over_its_window() {
    let app = spawn_app().await;
    seed(&app);
    let s = app
        .get(&format!("/api/v1/checks/summary?since={}", at(5)))
        .await
        .json();
    assert_eq!(s["count"], 5);
    assert_eq!(time(&s["first_at"]), t0() + Duration::minutes(5));
    assert_eq!(time(&s["last_at"]), t0() + Duration::minutes(9));
    assert_eq!(
        (
            s["cpu"]["min"].as_f64(),
            s["cpu"]["avg"].as_f64(),
            s["cpu"]["max"].as_f64()
        ),
        (Some(50.0), Some(70.0), Some(90.0))
    );
    assert_eq!(s["memory"]["avg"], 57.0);
    assert_eq!(
        (s["disk"]["min"].as_f64(), s["disk"]["max"].as_f64()),
        (Some(30.0), Some(38.0))
    );
    // httpd ran at minutes 6 and 8 of 5..9: 2 of 5 checks.
    assert_eq!(s["services"][0]["name"], "httpd");
    assert_eq!(s["services"][0]["availability_percent"], 40.0);
    // After the newest seeded check, whatever the date.
    let empty = app
        .get(&format!("/api/v1/checks/summary?since={}", at(10)))
        .await
        .json();
    assert_eq!(empty["count"], 0);
    assert!(empty["cpu"].is_null());
    app.stop().await;
}

#[actix_web::test]
async fn on_demand_checks_are_audited_with_the_tokens_name() {
    let app = spawn_app().await;
    app.control("/api/v1/checks", None).await;
    let audit = app
        .request("GET", "/api/v1/audit", Some(CONTROL_TOKEN), None)
        .await
        .json();
    assert_eq!(audit[0]["action"], "check.take");
    assert_eq!(audit[0]["actor"], "operator");
    assert_eq!(audit[0]["outcome"], "ok");
    app.stop().await;
}

#[actix_web::test]
async fn an_export_streams_every_check_oldest_first_as_csv_or_ndjson() {
    let app = spawn_app().await;
    seed(&app);
    let r = app
        .get(&format!(
            "/api/v1/checks/export?format=ndjson&since={}",
            at(3)
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/x-ndjson");
    let lines: Vec<serde_json::Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[0]["cpu"]["percent"], 30.0);
    assert_eq!(lines[6]["disks"][0]["percent"], 38.0);
    let csv = app.get("/api/v1/checks/export?format=csv").await.text();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 11);
    assert!(rows[0].starts_with("id,taken_at,duration_ms,cpu_percent"));
    let first: Vec<&str> = rows[1].split(',').collect();
    let t0_csv = t0().to_rfc3339_opts(SecondsFormat::Millis, true);
    assert_eq!(
        (first[1], first[3], first[10]),
        (t0_csv.as_str(), "0", "50")
    );
    assert_eq!(first[14], "", "a missing io part is an empty cell");
    app.get("/api/v1/checks/export").await.problem(400);
    app.get("/api/v1/checks/export?format=xml")
        .await
        .problem(400);
    app.stop().await;
}

#[actix_web::test]
async fn an_export_larger_than_a_page_is_complete_and_in_order() {
    let app = spawn_app().await;
    let store = Store::open(&app.db_path()).unwrap();
    for i in 0..1203i64 {
        store
            .insert_check(&made(
                t0() + Duration::seconds(1203 - i),
                i as f64 % 100.0,
                1.0,
                1.0,
                true,
            ))
            .unwrap();
    }
    // Stored newest time first (as a clock stepping back would): the export
    // follows the order they were read in, every one once across pages.
    let text = app.get("/api/v1/checks/export?format=ndjson").await.text();
    let ids: Vec<i64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 1203);
    assert!(
        ids.windows(2).all(|w| w[0] + 1 == w[1]),
        "not in read order"
    );
    app.stop().await;
}

#[actix_web::test]
async fn checks_past_the_retention_are_purged_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path());
    settings.storage.retention = std::time::Duration::from_secs(3600);
    {
        let store = Store::open(&settings.storage.path).unwrap();
        // Two to three hours old: past the one-hour retention.
        for i in 0..5 {
            store
                .insert_check(&made(
                    Utc::now() - Duration::hours(2) - Duration::minutes(i),
                    1.0,
                    1.0,
                    1.0,
                    true,
                ))
                .unwrap();
        }
        store
            .insert_check(&made(
                Utc::now() - Duration::minutes(5),
                2.0,
                1.0,
                1.0,
                true,
            ))
            .unwrap();
    }
    let app = crate::helpers::spawn_in(dir, settings).await;
    let purged = app
        .wait_until(std::time::Duration::from_secs(10), || async {
            app.get("/api/v1/checks")
                .await
                .json()
                .as_array()
                .unwrap()
                .len()
                == 1
        })
        .await;
    assert!(purged, "old checks are still there");
    assert_eq!(
        app.get("/api/v1/checks/latest").await.json()["cpu"]["percent"],
        2.0
    );
    app.stop().await;
}

#[actix_web::test]
async fn equal_ends_are_an_empty_window_on_every_route_that_takes_one() {
    let app = spawn_app().await;
    seed(&app);
    // A check was taken at exactly this time: a half-open window whose ends
    // meet holds nothing, not that check.
    let w = format!("since={}&until={}", at(4), at(4));
    for path in [
        format!("/api/v1/checks?{w}"),
        format!("/api/v1/checks/cpu/series?{w}"),
        format!("/api/v1/checks/series?{w}"),
        format!("/api/v1/checks/summary?{w}"),
        format!("/api/v1/checks/export?format=ndjson&{w}"),
        format!("/api/v1/alerts?{w}"),
    ] {
        let r = app.request("GET", &path, Some(READ_TOKEN), None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        if path.contains("/export") {
            assert_eq!(r.text(), "", "{path}");
            continue;
        }
        let v = r.json();
        let empty = match &v {
            Value::Array(a) => a.is_empty(),
            _ if path.contains("/summary") => v["count"] == 0,
            _ => v["series"]
                .as_array()
                .is_some_and(|s| !s.is_empty() && s.iter().all(|m| m["buckets"] == json!([]))),
        };
        assert!(empty, "{path}: {v}");
    }
    app.stop().await;
}
