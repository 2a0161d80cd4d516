//! Services that misbehave, the systemd manager against a stand-in, and bad
//! input on the service routes.

use crate::{
    helpers::{CONTROL_TOKEN, READ_TOKEN, spawn_with},
    services::svc,
};
use hostwatch::config::Manager;
use std::time::{Duration, Instant};

#[actix_web::test]
async fn a_hung_status_command_and_a_silent_probe_never_make_a_check_late() {
    // A socket that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut hung = svc("hung", Manager::Command);
    hung.status = Some("sleep 30".into());
    hung.timeout = Duration::from_millis(500);
    let mut mute = svc("mute", Manager::Command);
    mute.status = Some("true".into());
    mute.health_url = Some(format!("http://{}/", silent.local_addr().unwrap()));
    mute.timeout = Duration::from_millis(500);
    let app = spawn_with(|s| s.services = vec![hung, mute]).await;

    let started = Instant::now();
    let r = app.control("/api/v1/checks", None).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let k = r.json();
    assert_eq!(k["services"][0]["name"], "hung");
    assert_eq!(k["services"][0]["state"], "unknown");
    assert_eq!(k["services"][1]["state"], "running");
    assert_eq!(k["services"][1]["healthy"], false);

    // A sampler faster than the services' timeout stays on time: each
    // service is bounded by the interval too.
    let r = app
        .control(
            "/api/v1/sampler/start",
            Some(r#"{"interval_seconds": 0.25}"#),
        )
        .await;
    assert_eq!(r.status, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    app.control("/api/v1/sampler/stop", None).await;
    let checks = app.get("/api/v1/checks?limit=100").await.json();
    let times: Vec<chrono::DateTime<chrono::Utc>> = checks
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["taken_at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        times.len() >= 6,
        "only {} checks in 2 s at 0.25 s",
        times.len()
    );
    let worst = times
        .windows(2)
        .map(|w| (w[0] - w[1]).num_milliseconds())
        .max()
        .unwrap();
    assert!(worst < 600, "a check came {worst} ms after the one before");
    drop(silent);
    app.stop().await;
}

/// A stand-in for `systemctl` (no systemd runs here): it keeps each unit's
/// state in a file beside itself, knows only the unit `fake`, and answers
/// `is-active`, `show --property=LoadState --value`, `start`, `stop`, `restart`.
fn fake_systemctl(dir: &std::path::Path) {
    let script = format!(
        r#"#!/bin/sh
# Stand-in for systemctl, for tests only.
state="{dir}/state"
unit=""; for a in "$@"; do unit="$a"; done
if [ "$unit" != "fake.service" ]; then
  case "$1" in show) echo not-found; exit 0;; *) echo "Unit $unit not found." >&2; exit 5;; esac
fi
case "$1" in
  show) echo loaded;;
  is-active) s=$(cat "$state" 2>/dev/null || echo inactive); echo "$s"; [ "$s" = active ];;
  start|restart) echo active > "$state";;
  stop) echo inactive > "$state";;
  *) exit 1;;
esac
"#,
        dir = dir.display()
    );
    let path = dir.join("systemctl");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

#[actix_web::test]
async fn the_systemd_manager_drives_systemctl_here_a_stand_in() {
    let bin = tempfile::tempdir().unwrap();
    fake_systemctl(bin.path());
    // nextest runs each test in its own process, so PATH is this test's alone.
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    unsafe { std::env::set_var("PATH", path) };
    let mut fake = svc("fake", Manager::Systemd);
    fake.timeout = Duration::from_secs(5);
    let missing = svc("missing", Manager::Systemd);
    let app = spawn_with(|s| s.services = vec![fake, missing]).await;

    assert_eq!(
        app.get("/api/v1/services/fake").await.json()["state"],
        "stopped"
    );
    assert_eq!(
        app.get("/api/v1/services/missing").await.json()["state"],
        "not_installed"
    );
    let r = app.control("/api/v1/services/fake/start", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["state"], "running");
    assert_eq!(
        r.json()["manager"],
        serde_json::json!({"kind": "systemd", "unit": "fake"})
    );
    let r = app.control("/api/v1/services/fake/stop", None).await;
    assert_eq!(r.json()["state"], "stopped");
    let d = app
        .control("/api/v1/services/missing/start", None)
        .await
        .problem(502);
    assert!(
        d.contains("exit status 5") && d.contains("not found"),
        "{d}"
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_failing_command_is_502_and_a_state_never_reached_is_504() {
    let mut broken = svc("broken", Manager::Command);
    broken.start = Some("echo cannot bind >&2; exit 1".into());
    broken.status = Some("false".into());
    let mut slow = svc("slow", Manager::Command);
    slow.start = Some("true".into());
    slow.status = Some("false".into());
    slow.timeout = Duration::from_millis(600);
    let app = spawn_with(|s| s.services = vec![broken, slow]).await;
    let d = app
        .control("/api/v1/services/broken/start", None)
        .await
        .problem(502);
    assert!(
        d.contains("exit status 1") && d.contains("cannot bind"),
        "{d}"
    );
    let d = app
        .control("/api/v1/services/slow/start", None)
        .await
        .problem(504);
    assert!(d.contains("running") && d.contains("stopped"), "{d}");
    let d = app
        .control("/api/v1/services/slow/stop", None)
        .await
        .problem(409);
    assert!(d.contains("no stop command"), "{d}");
    let audit = app
        .request("GET", "/api/v1/audit", Some(CONTROL_TOKEN), None)
        .await
        .json();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["target"] == "broken" && r["outcome"] == "failed")
    );
    app.stop().await;
}

#[actix_web::test]
async fn two_actions_on_one_service_never_run_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs");
    let mut slow = svc("slow", Manager::Command);
    // Each run notes its start and end; overlapping runs would interleave.
    slow.start = Some(format!(
        "echo begin >> {0}; sleep 1; echo end >> {0}",
        log.display()
    ));
    slow.status = Some("true".into());
    let app = spawn_with(|s| s.services = vec![slow]).await;
    let (a, b) = tokio::join!(
        app.control("/api/v1/services/slow/start", None),
        app.control("/api/v1/services/slow/start", None)
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "begin\nend\n");
    app.stop().await;
}

#[actix_web::test]
async fn unknown_names_tokens_and_path_tricks_are_refused_without_running_anything() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let mut web = svc("web", Manager::Command);
    web.start = Some(format!("touch {}", marker.display()));
    web.status = Some("true".into());
    let app = spawn_with(|s| s.services = vec![web]).await;

    app.get("/api/v1/services/nosuch").await.problem(404);
    app.control("/api/v1/services/nosuch/start", None)
        .await
        .problem(404);
    app.request("POST", "/api/v1/services/web/start", None, None)
        .await
        .problem(401);
    app.request("POST", "/api/v1/services/web/start", Some(READ_TOKEN), None)
        .await
        .problem(403);
    for tricky in [
        "..%2F..%2Fbin%2Fsh",
        "web%3Btouch%20x",
        "web%20%26%26%20true",
        "%2E%2E",
        "web%00",
    ] {
        let r = app
            .control(&format!("/api/v1/services/{tricky}/start"), None)
            .await;
        assert!(r.status == 404 || r.status == 400, "{tricky}: {}", r.status);
        assert_eq!(r.content_type, "application/problem+json");
    }
    app.get("/api/v1/services/web/history?size=0")
        .await
        .problem(400);
    app.get("/api/v1/services/nosuch/history")
        .await
        .problem(404);
    assert!(!marker.exists(), "a refused request ran the start command");
    let audit = app
        .request("GET", "/api/v1/audit", Some(CONTROL_TOKEN), None)
        .await
        .json();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["target"] == "nosuch" && r["outcome"] == "refused")
    );
    app.stop().await;
}

/// States are read at most once a second: waits for a reading that says `want`.
async fn becomes(app: &crate::helpers::TestApp, want: &str) -> bool {
    app.wait_until(std::time::Duration::from_secs(3), || async {
        app.get("/api/v1/services/daemon").await.json()["state"] == want
    })
    .await
}

#[actix_web::test]
async fn a_pid_file_gives_the_state_without_running_a_command() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("d.pid");
    let marker = dir.path().join("status-ran");
    let mut d = svc("daemon", Manager::Command);
    d.pid_file = Some(pid_file.clone());
    // Were the status command run, it would leave a marker.
    d.status = Some(format!("touch {}", marker.display()));
    let app = spawn_with(|s| s.services = vec![d]).await;
    let state = || async { app.get("/api/v1/services/daemon").await.json()["state"].clone() };
    assert!(becomes(&app, "stopped").await, "{}", state().await);
    let mut child = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    std::fs::write(&pid_file, format!("{}\n", child.id())).unwrap();
    assert!(becomes(&app, "running").await, "{}", state().await);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        becomes(&app, "failed").await,
        "a pid file naming a dead process is LSB's 'dead, pid file exists': {}",
        state().await
    );
    std::fs::write(&pid_file, "garbage").unwrap();
    assert!(becomes(&app, "unknown").await, "{}", state().await);
    assert!(!marker.exists(), "the status command ran");
    app.stop().await;
}
