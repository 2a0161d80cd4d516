//! Services through the API: the real Apache httpd under the `sysv` and
//! `command` managers, a stand-in `systemctl` for the `systemd` manager (no
//! systemd runs here), hung status commands and probes, and bad input.

use crate::{
    apache::{self, Apache},
    helpers::{CONTROL_TOKEN, TestApp, spawn_with},
};
use hostwatch::config::{Manager, ServiceSettings};
use serde_json::Value;
use std::time::Duration;

pub fn svc(name: &str, manager: Manager) -> ServiceSettings {
    // Apache can take a while to start on a loaded machine.
    ServiceSettings {
        timeout: Duration::from_secs(20),
        ..ServiceSettings::new(name, manager)
    }
}

async fn act(app: &TestApp, name: &str, action: &str) -> crate::helpers::Response {
    app.control(&format!("/api/v1/services/{name}/{action}"), None)
        .await
}

async fn check(app: &TestApp) -> Value {
    let r = app.control("/api/v1/checks", None).await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

/// Start, restart and stop Apache through the API, checking the host after
/// each step and the state each check recorded.
async fn drive_apache(app: &TestApp, name: &str) {
    let r = act(app, name, "start").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["state"], "running");
    assert_eq!(
        apache::http_status(),
        Some(200),
        "Apache does not answer HTTP"
    );
    let k = check(app).await;
    assert_eq!(k["services"][0]["state"], "running");
    assert_eq!(k["services"][0]["healthy"], true);
    assert!(k["services"][0]["probe_ms"].as_f64().unwrap() > 0.0);

    let before = apache::master_pid().expect("a pid file");
    let r = act(app, name, "restart").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["state"], "running");
    let after = apache::master_pid().expect("a pid file");
    assert_ne!(before, after, "a restart must make a new master process");
    assert_eq!(check(app).await["services"][0]["state"], "running");

    let r = act(app, name, "stop").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["state"], "stopped");
    assert!(!apache::answers(), "the port is still open after stop");
    let k = check(app).await;
    assert_eq!(k["services"][0]["state"], "stopped");
    assert_eq!(k["services"][0]["healthy"], false);

    // Two of the three checks saw it running.
    let s = app.get("/api/v1/checks/summary").await.json();
    assert_eq!(s["services"][0]["name"], name);
    let pct = s["services"][0]["availability_percent"].as_f64().unwrap();
    assert!((pct - 200.0 / 3.0).abs() < 1e-9, "{pct}");
    let h = app
        .get(&format!("/api/v1/services/{name}/history?size=10"))
        .await
        .json();
    let states: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["running", "running", "stopped"]);

    let audit = app
        .request("GET", "/api/v1/audit", Some(CONTROL_TOKEN), None)
        .await
        .json();
    let actions: Vec<(&str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["target"] == name)
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("service.stop", "ok"),
            ("service.restart", "ok"),
            ("service.start", "ok")
        ]
    );
}

#[actix_web::test]
async fn apache_under_the_sysv_manager_starts_restarts_and_stops() {
    let _apache = Apache::stopped();
    let mut web = svc("web", Manager::Sysv);
    web.unit = Some("apache2".into());
    web.health_url = Some(apache::URL.into());
    let app = spawn_with(|s| s.services = vec![web]).await;
    let v = app.get("/api/v1/services/web").await.json();
    assert_eq!(v["state"], "stopped");
    assert_eq!(
        v["manager"],
        serde_json::json!({"kind": "sysv", "script": "apache2"})
    );
    drive_apache(&app, "web").await;
    app.stop().await;
}

#[actix_web::test]
async fn apache_under_the_command_manager_starts_restarts_and_stops() {
    let _apache = Apache::stopped();
    let mut web = svc("apachectl", Manager::Command);
    web.start = Some("apache2ctl -k start".into());
    web.stop = Some("apache2ctl -k stop".into());
    web.status = Some(format!("kill -0 \"$(cat {})\"", apache::PID_FILE));
    web.health_url = Some(apache::URL.into());
    // No restart command: a restart is a stop, then a start.
    let app = spawn_with(|s| s.services = vec![web]).await;
    drive_apache(&app, "apachectl").await;
    app.stop().await;
}

#[actix_web::test]
async fn apache_is_what_the_default_httpd_service_finds_on_debian() {
    let _apache = Apache::stopped();
    let app = spawn_with(|s| s.services = hostwatch::config::Settings::default().services).await;
    let v = app.get("/api/v1/services/httpd").await.json();
    assert_eq!(
        v["manager"],
        serde_json::json!({"kind": "sysv", "script": "apache2"})
    );
    assert_eq!(v["state"], "stopped");
    app.stop().await;
}

/// Lines in the file that the status command appends to on every run.
fn runs(dir: &std::path::Path) -> usize {
    std::fs::read_to_string(dir.join("count"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// A `command` service whose status command counts its runs in `dir` and
/// says running while `dir/on` exists.
fn counted(dir: &std::path::Path) -> ServiceSettings {
    let d = dir.display();
    let mut s = svc("counted", Manager::Command);
    s.status = Some(format!("echo x >> '{d}/count'; test -e '{d}/on'"));
    s.start = Some(format!("touch '{d}/on'"));
    s.stop = Some(format!("rm -f '{d}/on'"));
    s
}

#[actix_web::test]
async fn many_readers_run_the_status_command_at_most_once_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(|s| s.services = vec![counted(dir.path())]).await;
    let all = (0..20).map(|_| app.get("/api/v1/services"));
    for r in futures_util::future::join_all(all).await {
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()[0]["state"], "stopped");
    }
    // One read; a second only if the 20 outlasted the second a state is kept.
    let first = runs(dir.path());
    assert!((1..=2).contains(&first), "{first} runs for 20 requests");
    let one = app.get("/api/v1/services/counted").await;
    assert_eq!(one.status, 200, "{}", one.text());

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = runs(dir.path());
    assert_eq!(app.get("/api/v1/services").await.status, 200);
    assert_eq!(runs(dir.path()), before + 1, "a stale state is read again");
    app.stop().await;
}

#[actix_web::test]
async fn an_action_shows_its_state_at_once_in_the_next_read() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(|s| s.services = vec![counted(dir.path())]).await;
    assert_eq!(
        app.get("/api/v1/services/counted").await.json()["state"],
        "stopped"
    );
    let r = act(&app, "counted", "start").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["state"], "running");
    // Well within the second a state is kept: the kept `stopped` is gone.
    assert_eq!(
        app.get("/api/v1/services").await.json()[0]["state"],
        "running"
    );
    let r = act(&app, "counted", "stop").await;
    assert_eq!(r.json()["state"], "stopped");
    assert_eq!(
        app.get("/api/v1/services/counted").await.json()["state"],
        "stopped"
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_check_joins_a_status_read_under_way_instead_of_running_another() {
    let dir = tempfile::tempdir().unwrap();
    let mut slow = counted(dir.path());
    slow.status = Some(format!(
        "echo x >> '{}/count'; sleep 0.5; exit 0",
        dir.path().display()
    ));
    let app = spawn_with(|s| {
        s.services = vec![slow];
        // The check's bound is its interval: longer than the slow status.
        s.sampler.interval = Duration::from_secs(10);
    })
    .await;
    let (list, k) = futures_util::future::join(app.get("/api/v1/services"), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        check(&app).await
    })
    .await;
    assert_eq!(list.json()[0]["state"], "running");
    assert_eq!(k["services"][0]["state"], "running");
    assert_eq!(runs(dir.path()), 1, "the status command ran twice");
    app.stop().await;
}
