//! What a service's commands write to stderr (they run as root) is shown
//! only to token holders: in a service's `detail` and in the outcome of a
//! watchdog restart, as an exec action's output already is.

use crate::{
    helpers::{READ_TOKEN, TestApp, spawn_with},
    services::svc,
    watchdog::{alert, alerts, eventually, watchdog_from},
};
use hostwatch::config::Manager;
use std::time::Duration;

const SECRET: &str = "hw-stderr-secret-4711";

async fn get_as(app: &TestApp, path: &str, token: Option<&str>) -> String {
    let r = app.request("GET", path, token, None).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.text()
}

#[actix_web::test]
async fn a_status_commands_stderr_is_shown_to_a_token_holder_only() {
    let mut leaky = svc("leaky", Manager::Command);
    // Killed by a signal: no exit status to read a state from, so the
    // state is `unknown` and the detail says why, stderr included.
    leaky.status = Some(format!("echo {SECRET} >&2; kill -9 $$"));
    let app = spawn_with(|s| s.services = vec![leaky]).await;
    for path in ["/api/v1/services", "/api/v1/services/leaky"] {
        let anonymous = get_as(&app, path, None).await;
        assert!(!anonymous.contains(SECRET), "{path}: {anonymous}");
        assert!(
            anonymous.contains("killed by a signal") && anonymous.contains("needs a token"),
            "{path}: {anonymous}"
        );
        let reader = get_as(&app, path, Some(READ_TOKEN)).await;
        assert!(reader.contains(SECRET), "{path}: {reader}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_failed_restarts_stderr_is_shown_to_a_token_holder_only() {
    let text = format!(
        r#"
[watchdog]
interval = "100ms"

[[services]]
name = "down"
manager = "command"
status = "false"
stop = "true"
start = "echo {SECRET} >&2; exit 1"
timeout = "5s"

[[rules]]
name = "down-restart"
metric = "service.up"
service = "down"
below = 1
[[rules.actions]]
kind = "restart"
"#
    );
    let app = spawn_with(|s| watchdog_from(s, &text)).await;
    let id = eventually(Duration::from_secs(15), || async {
        let list = alerts(&app, "rule=down-restart").await;
        let id = list.first()?["id"].as_i64()?;
        let d = alert(&app, id).await;
        (d["actions"][0]["status"] == "failed").then_some(id)
    })
    .await
    .expect("the restart action failed");
    let path = format!("/api/v1/alerts/{id}");
    let reader = alert(&app, id).await;
    let outcome = reader["actions"][0]["outcome"].as_str().unwrap_or_default();
    assert!(outcome.contains(SECRET), "{reader}");
    let anonymous = get_as(&app, &path, None).await;
    assert!(!anonymous.contains(SECRET), "{anonymous}");
    let anonymous: serde_json::Value = serde_json::from_str(&anonymous).unwrap();
    assert_eq!(anonymous["actions"][0]["kind"], "restart", "{anonymous}");
    assert!(anonymous["actions"][0]["outcome"].is_null(), "{anonymous}");
    app.stop().await;
}
