//! The watchdog's routes over HTTP: rules, alerts and their timeline,
//! probes, notifications (token only, no secrets), silences (audited), the
//! notifier test, and the watchdog's families on /metrics. Alerts and
//! messages are written into the test's database as the engine writes them.

use crate::helpers::{CONTROL_TOKEN, READ_TOKEN, TestApp, spawn_with};
use hostwatch::config::Settings;
use rusqlite::params;
use serde_json::Value;

const SECRET: &str = "hw-webhook-secret-4711";

/// A rule, a probe and a webhook to a closed loopback port, as a user
/// writes them; the directory holds the webhook's token file.
async fn spawn_watchdog() -> (TestApp, tempfile::TempDir) {
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("hook.token");
    std::fs::write(&token_file, SECRET).unwrap();
    let toml = format!(
        r#"
[[notifiers]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:9/alerts"
bearer_token_file = "{}"
timeout = "1s"

[[probes]]
name = "front"
kind = "http"
url = "http://user:{SECRET}@127.0.0.1:9/session"
interval = "1s"
timeout = "100ms"

[[rules]]
name = "cpu-high"
metric = "cpu.percent"
above = 1000
notify = ["hook"]

[[rules]]
name = "front-down"
metric = "probe.latency_ms"
probe = "front"
# Never beyond: these tests seed the alerts they read.
above = 1e9
"#,
        token_file.display()
    );
    let parsed = Settings::parse(&toml, std::path::Path::new("test.toml"), []).unwrap();
    let app = spawn_with(|s| {
        s.notifiers = parsed.notifiers;
        s.probes = parsed.probes;
        s.rules = parsed.rules;
    })
    .await;
    (app, token_dir)
}

/// Writes an alert as the engine would; its id.
fn seed_alert(app: &TestApp, rule: &str, state: &str) -> i64 {
    let c = rusqlite::Connection::open(app.db_path()).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let n: i64 = c
        .query_row("SELECT count(*) FROM alerts", [], |r| r.get(0))
        .unwrap();
    c.execute(
        "INSERT INTO alerts (rule, metric, subject, subject_key, state, value, threshold, op, \
         started_at, fired_at, resolved_at) VALUES (?1, 'cpu.percent', 'the host', ?2, ?3, 1200.5, \
         1000, 'above', ?4, ?5, ?6)",
        params![
            rule,
            format!("host:{n}"),
            state,
            now - 10_000,
            (state != "pending").then_some(now - 5_000),
            (state == "resolved").then_some(now - 1_000)
        ],
    )
    .unwrap();
    c.last_insert_rowid()
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect()
}

#[actix_web::test]
async fn watchdog_rules_list_the_configured_rules_and_probes_their_settings() {
    let (app, _secrets) = spawn_watchdog().await;
    let rules = app.get("/api/v1/rules").await.json();
    let names: Vec<&str> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cpu-high", "front-down"], "{rules}");
    assert_eq!(rules[0]["notify"][0], "hook");

    let probes = app.get("/api/v1/probes").await.json();
    let front = &probes[0];
    assert_eq!(front["name"], "front", "{probes}");
    assert_eq!(front["kind"], "http");
    // The URL's password is not the API's to show.
    assert_eq!(front["target"], "http://127.0.0.1:9/session");
    assert_eq!(front["timeout_seconds"], 0.1);
    let r = app.get("/api/v1/probes/front/results?limit=5").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json().as_array().unwrap().len() <= 5);
    let d = app.get("/api/v1/probes/nosuch/results").await.problem(404);
    assert!(d.contains("nosuch"), "{d}");
    app.get("/api/v1/probes/front/results?limit=0")
        .await
        .problem(400);
    app.stop().await;
}

#[actix_web::test]
async fn watchdog_alerts_filter_and_page_without_repeats() {
    let (app, _secrets) = spawn_watchdog().await;
    let mut all = Vec::new();
    for i in 0..5 {
        all.push(seed_alert(&app, "cpu-high", "resolved"));
        if i == 2 {
            all.push(seed_alert(&app, "front-down", "firing"));
        }
    }
    all.reverse();
    let firing = app.get("/api/v1/alerts?state=firing").await.json();
    assert_eq!(firing.as_array().unwrap().len(), 1, "{firing}");
    assert_eq!(firing[0]["rule"], "front-down");
    assert_eq!(firing[0]["limit"], 1000.0);
    assert_eq!(firing[0]["value"], 1200.5);
    assert!(firing[0]["resolved_at"].is_null());
    let of_rule = app.get("/api/v1/alerts?rule=cpu-high").await.json();
    assert_eq!(of_rule.as_array().unwrap().len(), 5);

    let mut seen = Vec::new();
    let mut path = "/api/v1/alerts?limit=2".to_owned();
    loop {
        let page = ids(&app.get(&path).await.json());
        let Some(last) = page.last() else { break };
        path = format!("/api/v1/alerts?limit=2&before_id={last}");
        seen.extend(page);
    }
    assert_eq!(seen, all, "newest first, each once");

    let d = app.get("/api/v1/alerts?state=burning").await.problem(400);
    assert!(d.contains("firing"), "{d}");
    app.get("/api/v1/alerts?colour=red").await.problem(400);
    app.get("/api/v1/alerts?limit=1001").await.problem(400);
    app.get("/api/v1/alerts?since=yesterday").await.problem(400);
    let d = app.get("/api/v1/alerts/999999").await.problem(404);
    assert!(d.contains("999999"), "{d}");
    app.stop().await;
}

#[actix_web::test]
async fn watchdog_an_alert_shows_its_timeline_and_its_messages_to_a_token_only() {
    let (app, _secrets) = spawn_watchdog().await;
    let id = seed_alert(&app, "cpu-high", "firing");
    {
        let c = rusqlite::Connection::open(app.db_path()).unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        c.execute(
            "INSERT INTO alert_transitions (alert_id, at, from_state, to_state, value) \
             VALUES (?1, ?2, 'pending', 'firing', 1200.5)",
            params![id, now],
        )
        .unwrap();
        c.execute(
            "INSERT INTO notifications (message_id, alert_id, notifier, event, status, attempts, \
             next_attempt_at, last_error, created_at, subject, payload) VALUES \
             ('<m1@hostwatch>', ?1, 'hook', 'firing', 'pending', 2, ?4, 'connection refused', ?2, \
             'cpu-high is firing', ?3)",
            // Due in an hour, so the running sender leaves it alone.
            params![
                id,
                now,
                format!("{{\"payload\": \"{SECRET}\"}}"),
                now + 3_600_000
            ],
        )
        .unwrap();
        c.execute(
            "INSERT INTO actions (alert_id, kind, spec, status, attempts, outcome, created_at, \
             finished_at) VALUES (?1, 'exec', '{\"command\": \"/bin/true\"}', 'done', 1, \
             'job 3 exited 0', ?2, ?2)",
            params![id, now],
        )
        .unwrap();
    }
    let path = format!("/api/v1/alerts/{id}");
    let d = app
        .request("GET", &path, Some(READ_TOKEN), None)
        .await
        .json();
    assert_eq!(d["id"], id);
    assert_eq!(d["state"], "firing");
    assert_eq!(d["transitions"][0]["to"], "firing");
    let n = &d["notifications"][0];
    assert_eq!(n["notifier"], "hook", "{d}");
    assert_eq!(n["status"], "pending");
    assert_eq!(n["attempts"], 2);
    assert!(n["next_attempt_at"].is_string());
    assert!(n.get("payload").is_none());
    assert_eq!(d["actions"][0]["spec"]["command"], "/bin/true");
    assert_eq!(d["actions"][0]["outcome"], "job 3 exited 0");
    // Messages need a token (SPEC §5): an anonymous reader sees the rest.
    let anon = app.get(&path).await.json();
    assert!(anon["notifications"].is_null(), "{anon}");
    assert_eq!(anon["actions"].as_array().unwrap().len(), 1);

    // The outbox itself: a token even with public_read; no secret anywhere.
    app.get("/api/v1/notifications").await.problem(401);
    let r = app
        .request("GET", "/api/v1/notifications", Some(READ_TOKEN), None)
        .await;
    assert_eq!(ids(&r.json()).len(), 1);
    assert!(!r.text().contains(SECRET), "{}", r.text());
    let r = app
        .request(
            "GET",
            "/api/v1/notifications?status=sent&notifier=hook",
            Some(READ_TOKEN),
            None,
        )
        .await;
    assert!(r.json().as_array().unwrap().is_empty());
    app.request(
        "GET",
        "/api/v1/notifications?status=lost",
        Some(READ_TOKEN),
        None,
    )
    .await
    .problem(400);
    for path in ["/api/v1/rules", "/api/v1/probes", "/api-docs/openapi.json"] {
        let r = app.request("GET", path, Some(CONTROL_TOKEN), None).await;
        assert!(!r.text().contains(SECRET), "{path} shows the secret");
    }

    let metrics = app.get("/metrics").await.text();
    for line in [
        "# TYPE hostwatch_alerts_firing gauge",
        "hostwatch_alerts_firing{rule=\"cpu-high\"} 1\n",
        "hostwatch_alerts_firing{rule=\"front-down\"} 0\n",
        "# TYPE hostwatch_notifications gauge",
        "hostwatch_notifications{notifier=\"hook\",status=\"pending\"} 1\n",
        "hostwatch_actions{kind=\"exec\",status=\"done\"} 1\n",
    ] {
        assert!(metrics.contains(line), "no {line:?} in\n{metrics}");
    }
    // The probe to a closed port fails within its first run.
    let probed = app
        .wait_until(std::time::Duration::from_secs(10), || async {
            let m = app.get("/metrics").await.text();
            m.contains("hostwatch_probe_up{probe=\"front\"} 0\n")
                && m.contains("# TYPE hostwatch_probe_latency_seconds gauge")
        })
        .await;
    assert!(probed, "{}", app.get("/metrics").await.text());
    // With every watchdog family in it, still what promtool accepts.
    let metrics = app.get("/metrics").await.text();
    let (ok, said) = crate::metrics::promtool(&metrics);
    assert!(ok && said.trim().is_empty(), "promtool: {said}\n{metrics}");
    app.stop().await;
}

async fn audit_rows(app: &TestApp, action: &str) -> Vec<Value> {
    let all = app
        .request("GET", "/api/v1/audit?limit=1000", Some(CONTROL_TOKEN), None)
        .await
        .json();
    all.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == action)
        .cloned()
        .collect()
}

#[actix_web::test]
async fn watchdog_silences_are_made_listed_and_deleted_by_control_tokens_and_audited() {
    let (app, _secrets) = spawn_watchdog().await;
    let good = br#"{"rule": "cpu-high", "for": "2h", "comment": "maintenance"}"#;
    let post =
        |token, body: &'static [u8]| app.request("POST", "/api/v1/silences", token, Some(body));
    post(None, good).await.problem(401);
    post(Some(READ_TOKEN), good).await.problem(403);
    for (body, says) in [
        (
            &br#"{"rule": "nosuch", "for": "1h"}"#[..],
            "no rule is named 'nosuch'",
        ),
        (
            br#"{"rule": "cpu-high", "for": "1h", "until": "2099-01-01T00:00:00Z"}"#,
            "exactly one",
        ),
        (
            br#"{"rule": "cpu-high", "until": "2020-01-01T00:00:00Z"}"#,
            "not in the future",
        ),
        (br#"{"rule": "cpu-high", "for": "2y"}"#, "365d"),
        (
            br#"{"rule": "cpu-high", "for": "1h", "colour": "red"}"#,
            "colour",
        ),
    ] {
        let d = post(Some(CONTROL_TOKEN), body).await.problem(400);
        assert!(d.contains(says), "{d}");
    }
    let long = format!(
        r#"{{"rule": "cpu-high", "for": "1h", "comment": "{}"}}"#,
        "x".repeat(300)
    );
    app.request(
        "POST",
        "/api/v1/silences",
        Some(CONTROL_TOKEN),
        Some(long.as_bytes()),
    )
    .await
    .problem(400);

    let r = post(Some(CONTROL_TOKEN), good).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let s = r.json();
    assert_eq!(s["rule"], "cpu-high");
    assert_eq!(s["created_by"], "operator");
    assert_eq!(s["active"], true);
    assert!(s["subject"].is_null());
    let one = br#"{"rule": "front-down", "subject": "front", "until": "2099-01-01T00:00:00Z"}"#;
    let r = post(Some(CONTROL_TOKEN), one).await;
    // More than a year ahead.
    r.problem(400);
    let listed = app.get("/api/v1/silences").await.json();
    assert_eq!(ids(&listed), [s["id"].as_i64().unwrap()]);
    assert_eq!(
        ids(&app.get("/api/v1/silences?expired=true").await.json()).len(),
        1
    );
    app.get("/api/v1/silences?expired=maybe").await.problem(400);

    let path = format!("/api/v1/silences/{}", s["id"]);
    app.request("DELETE", &path, None, None).await.problem(401);
    let r = app
        .request("DELETE", &path, Some(CONTROL_TOKEN), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    app.request("DELETE", &path, Some(CONTROL_TOKEN), None)
        .await
        .problem(404);
    assert!(
        app.get("/api/v1/silences")
            .await
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );

    // At most 1,000 in force: the next is a conflict that says so.
    {
        let c = rusqlite::Connection::open(app.db_path()).unwrap();
        let until = (chrono::Utc::now() + chrono::Duration::hours(1)).timestamp_millis();
        for _ in 0..1000 {
            c.execute(
                "INSERT INTO silences (rule, until, created_at, created_by) \
                 VALUES ('cpu-high', ?1, 0, 'operator')",
                [until],
            )
            .unwrap();
        }
    }
    let d = post(Some(CONTROL_TOKEN), good).await.problem(409);
    assert!(d.contains("1000 silences are in force"), "{d}");

    let created = audit_rows(&app, "silence.create").await;
    let outcomes = |rows: &[Value], o: &str| rows.iter().filter(|r| r["outcome"] == o).count();
    assert_eq!(outcomes(&created, "ok"), 1, "{created:?}");
    // 401, 403, six refused bodies, the year-ahead one and the conflict;
    // the unknown field before the handler ran, the rest by it.
    assert_eq!(outcomes(&created, "refused"), 10, "{created:?}");
    assert!(created.iter().any(|r| r["actor"] == "(no token)"));
    let deleted = audit_rows(&app, "silence.delete").await;
    assert_eq!(outcomes(&deleted, "ok"), 1, "{deleted:?}");
    assert_eq!(outcomes(&deleted, "refused"), 2, "{deleted:?}");
    let id = s["id"].to_string();
    assert!(
        deleted
            .iter()
            .all(|r| r["target"].as_str() == Some(id.as_str()))
    );
    app.stop().await;
}

#[actix_web::test]
async fn watchdog_testing_an_unknown_notifier_is_404_and_audited() {
    let (app, _secrets) = spawn_watchdog().await;
    app.request(
        "POST",
        "/api/v1/notifiers/hook/test",
        Some(READ_TOKEN),
        None,
    )
    .await
    .problem(403);
    let d = app
        .control("/api/v1/notifiers/nosuch/test", None)
        .await
        .problem(404);
    assert!(d.contains("nosuch"), "{d}");
    let rows = audit_rows(&app, "notifier.test").await;
    assert!(
        rows.iter()
            .any(|r| r["target"] == "nosuch" && r["outcome"] == "refused"),
        "{rows:?}"
    );
    assert!(rows.iter().any(|r| r["actor"] == "reader"), "{rows:?}");
    app.stop().await;
}

#[actix_web::test]
async fn empty_fields_of_a_silence_are_fields_left_out() {
    let (app, _secrets) = spawn_watchdog().await;
    // As a form sends them: every optional field present and empty.
    let blank = br#"{"rule": "cpu-high", "subject": "", "until": "", "for": "1h", "comment": " "}"#;
    let r = app
        .request("POST", "/api/v1/silences", Some(CONTROL_TOKEN), Some(blank))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let s = r.json();
    assert!(s["subject"].is_null(), "every subject: {s}");
    assert!(s["comment"].is_null(), "{s}");
    // Empty `for` and `until` both: neither end is given.
    let neither = br#"{"rule": "cpu-high", "until": "", "for": ""}"#;
    let d = app
        .request(
            "POST",
            "/api/v1/silences",
            Some(CONTROL_TOKEN),
            Some(neither),
        )
        .await
        .problem(400);
    assert!(d.contains("exactly one"), "{d}");
    app.stop().await;
}
