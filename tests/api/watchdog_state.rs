//! What the watchdog knows survives a restart, and a database that cannot
//! take writes does not make it forget: `keep_firing_for` clocks, the flap
//! guard, rate budgets and probe results are read back at start; alert
//! changes made while the file is immutable are held in memory and written
//! (and their messages delivered) once it is writable again. A real exec
//! probe watches a flag file the test creates and removes.

use crate::{
    helpers::{READ_TOKEN, TestApp, spawn_in, test_settings, webhook::WebhookReceiver},
    storage_faults::{ext4, immutable},
    watchdog::{alerts, eventually, watchdog_from},
};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

/// A rule that fires while `flag` exists, as a probe sees it.
fn config(flag: &Path, extra: &str) -> String {
    format!(
        r#"
[watchdog]
interval = "100ms"
flap_guard = "1h"

[[probes]]
name = "flag"
kind = "exec"
command = "/bin/sh"
args = ["-c", "test ! -e '{flag}'"]
interval = "200ms"
timeout = "2s"

[[rules]]
name = "flag-up"
metric = "probe.ok"
probe = "flag"
below = 1
keep_firing_for = "6s"
{extra}
"#,
        flag = flag.display()
    )
}

async fn start(dir: tempfile::TempDir, text: &str) -> TestApp {
    let mut s = test_settings(dir.path());
    s.storage.path = db_of(dir.path());
    watchdog_from(&mut s, text);
    spawn_in(dir, s).await
}

fn db_of(dir: &Path) -> PathBuf {
    dir.join("hostwatch.db")
}

fn when(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap()
}

fn ms(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t).unwrap()
}

fn query<T: rusqlite::types::FromSql>(db: &Path, sql: &str) -> Option<T> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .ok()?;
    c.query_row(sql, [], |r| r.get(0)).ok()
}

async fn one_alert(app: &TestApp, state: &str) -> Option<Value> {
    alerts(app, &format!("rule=flag-up&state={state}"))
        .await
        .into_iter()
        .next()
}

async fn probe_times(app: &TestApp) -> Vec<DateTime<Utc>> {
    let r = app
        .request(
            "GET",
            "/api/v1/probes/flag/results?limit=100",
            Some(READ_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|x| when(&x["at"]))
        .collect()
}

#[actix_web::test]
async fn timers_the_flap_guard_budgets_and_probe_results_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("up");
    let text = config(&flag, "");
    let db = db_of(dir.path());
    let app = start(dir, &text).await;

    std::fs::write(&flag, "").unwrap();
    let firing = eventually(Duration::from_secs(10), || one_alert(&app, "firing"))
        .await
        .expect("the rule never fired");
    let id = firing["id"].as_i64().unwrap();
    // The bucket that new alerts come from, written with the alert.
    let tokens: Option<f64> = query(
        &db,
        "SELECT tokens FROM watchdog_budgets WHERE rule = 'flag-up'",
    );
    assert_eq!(tokens, Some(59.0), "one of 60 spent and stored");

    // Back within the limit: the keep_firing_for clock starts, and is stored.
    std::fs::remove_file(&flag).unwrap();
    let within = eventually(Duration::from_secs(10), || async {
        query::<i64>(
            &db,
            &format!("SELECT within_since FROM alerts WHERE id = {id}"),
        )
    })
    .await
    .map(ms)
    .expect("the keep_firing_for clock was never stored");
    let results = probe_times(&app).await;
    assert!(results.len() >= 2, "{results:?}");
    // Far enough into the clock that a clock restarted at start-up would
    // resolve past the bound below.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let dir = app.stop().await;

    let app = start(dir, &text).await;
    let restarted = Utc::now();
    assert!(
        restarted < within + chrono::Duration::milliseconds(5_500),
        "the restart took too long to tell a resumed clock from a new one"
    );
    // The probe's earlier results are there before its first new run ends.
    let again: Vec<i64> = probe_times(&app)
        .await
        .iter()
        .map(DateTime::timestamp_millis)
        .collect();
    for t in &results {
        // Stored to the millisecond.
        assert!(
            again.contains(&t.timestamp_millis()),
            "{t} was forgotten: {again:?}"
        );
    }
    // Resolved 6 s after the value came back, not 6 s after the restart.
    let resolved = eventually(Duration::from_secs(15), || one_alert(&app, "resolved"))
        .await
        .expect("the alert never resolved");
    assert_eq!(resolved["id"].as_i64(), Some(id));
    let at = when(&resolved["resolved_at"]);
    let kept = (at - within).num_milliseconds();
    assert!(
        (6_000..8_000).contains(&kept),
        "resolved {kept} ms after the value came back (restart at +{} ms)",
        (restarted - within).num_milliseconds()
    );
    let dir = app.stop().await;

    // A relapse after a restart is still within the flap guard: it waits
    // as pending rather than firing at once.
    let app = start(dir, &text).await;
    std::fs::write(&flag, "").unwrap();
    let pending = eventually(Duration::from_secs(10), || one_alert(&app, "pending"))
        .await
        .expect("the relapse opened no alert");
    assert_ne!(pending["id"].as_i64(), Some(id));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        one_alert(&app, "firing").await.is_none(),
        "a flapping subject fired at once after a restart"
    );
    app.stop().await;
}

#[actix_web::test]
async fn alert_changes_made_while_the_database_is_unwritable_are_held_and_delivered_after() {
    let Some((_image, m)) = ext4("loop") else {
        return;
    };
    let hook = WebhookReceiver::start(0, 200);
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("up");
    let notify = format!(
        "notify = [\"hook\"]\n\n[[notifiers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\ntimeout = \"2s\"\n",
        hook.url("/alerts")
    );
    let text = config(&flag, &notify);
    let mut s = test_settings(dir.path());
    s.storage.path = db_of(&m.point);
    watchdog_from(&mut s, &text);
    let app = spawn_in(dir, s).await;
    let db = db_of(&m.point);
    // Some probe results are stored before the fault.
    eventually(Duration::from_secs(10), || async {
        (query::<i64>(&db, "SELECT count(*) FROM probe_results")? >= 2).then_some(())
    })
    .await
    .expect("no probe results stored");

    immutable(&m.point, true);
    std::fs::write(&flag, "").unwrap();
    // The engine goes on in memory: the rule's subject fires.
    let fired = eventually(Duration::from_secs(10), || async {
        let r = app.get("/api/v1/rules").await.json();
        let rule = r.as_array()?.iter().find(|r| r["name"] == "flag-up")?;
        (rule["subjects"][0]["state"] == "firing").then_some(())
    })
    .await;
    let frozen_for = Utc::now();
    assert!(fired.is_some(), "{}", app.get("/api/v1/rules").await.text());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        one_alert(&app, "firing").await.is_none(),
        "written into an immutable file"
    );
    assert!(hook.received().is_empty());

    immutable(&m.point, false);
    let thawed = Utc::now();
    let firing = eventually(Duration::from_secs(10), || one_alert(&app, "firing"))
        .await
        .expect("the held alert was never written");
    assert!(
        when(&firing["fired_at"]) < thawed,
        "fired at {} though it fired before {thawed}",
        firing["fired_at"]
    );
    assert!(when(&firing["fired_at"]) <= frozen_for);
    let id = firing["id"].as_i64().unwrap();
    let delivered = eventually(Duration::from_secs(10), || async {
        hook.accepted().into_iter().next()
    })
    .await
    .expect("the held message was never delivered");
    assert_eq!(
        delivered.body["alert_id"].as_i64(),
        Some(id),
        "{:?}",
        delivered.body
    );
    assert_eq!(delivered.body["event"], "firing");
    // Later changes refer to the written alert, not its provisional id.
    std::fs::remove_file(&flag).unwrap();
    let resolved = eventually(Duration::from_secs(15), || one_alert(&app, "resolved"))
        .await
        .expect("the alert never resolved");
    assert_eq!(resolved["id"].as_i64(), Some(id));
    let ok: Option<String> = query(&db, "PRAGMA integrity_check");
    assert_eq!(ok.as_deref(), Some("ok"));
    app.stop().await;
}
