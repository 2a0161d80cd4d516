//! The audit trail records refusals made before a handler runs, under the
//! handler's action name, in bounded rows, at a bounded rate for every
//! caller (counting what it drops); old rows and jobs are purged.

use crate::helpers::{CONTROL_TOKEN, READ_TOKEN, TestApp, spawn_app, spawn_with};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Method, path, token, body, the status expected, the action audited.
type Case<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a [u8]>,
    u16,
    &'a str,
);

async fn audit(app: &TestApp) -> Vec<Value> {
    app.request("GET", "/api/v1/audit?limit=1000", Some(CONTROL_TOKEN), None)
        .await
        .json()
        .as_array()
        .unwrap()
        .clone()
}

#[actix_web::test]
async fn refusals_before_the_handler_are_audited_with_the_action_name() {
    let app = spawn_app().await;
    // Bad JSON, an unknown query parameter, no token, a read token, too big.
    let cases: [Case; 6] = [
        (
            "DELETE",
            "/api/v1/%70rocesses/4343",
            None,
            None,
            401,
            "process.signal",
        ),
        (
            "PATCH",
            "/api/v1/processes/4242",
            Some(CONTROL_TOKEN),
            Some(b"{nice"),
            400,
            "process.renice",
        ),
        (
            "DELETE",
            "/api/v1/processes/4242?colour=red",
            Some(CONTROL_TOKEN),
            None,
            400,
            "process.signal",
        ),
        (
            "POST",
            "/api/v1/services/httpd/restart",
            None,
            None,
            401,
            "service.restart",
        ),
        (
            "POST",
            "/api/v1/checks",
            Some(READ_TOKEN),
            None,
            403,
            "check.take",
        ),
        (
            "POST",
            "/api/v1/processes",
            Some(CONTROL_TOKEN),
            Some(&[b' '; 70 * 1024]),
            413,
            "process.spawn",
        ),
    ];
    for (method, path, token, body, status, _) in cases {
        let r = app.request(method, path, token, body).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
    }
    let rows = audit(&app).await;
    for (method, path, _, _, status, action) in cases {
        let row = rows
            .iter()
            .find(|r| {
                r["action"] == action
                    && r["detail"]
                        .as_str()
                        .is_some_and(|d| d.starts_with(&status.to_string()))
            })
            .unwrap_or_else(|| {
                panic!("{method} {path} is audited as {action} with {status}: {rows:?}")
            });
        assert_eq!(row["outcome"], "refused", "{row}");
    }
    let renice = rows
        .iter()
        .find(|r| r["action"] == "process.renice")
        .unwrap();
    assert_eq!(renice["target"], "4242");
    assert_eq!(renice["actor"], "operator");
    let anon = rows
        .iter()
        .find(|r| r["action"] == "service.restart")
        .unwrap();
    assert_eq!(anon["actor"], "(no token)");
    // A refusal the handler records itself is not recorded twice.
    app.request(
        "PATCH",
        "/api/v1/processes/1",
        Some(CONTROL_TOKEN),
        Some(br#"{"nice": 1}"#),
    )
    .await
    .problem(403);
    let rows = audit(&app).await;
    let on_pid_1 = rows
        .iter()
        .filter(|r| {
            r["action"] == "process.renice"
                && r["target"].as_str().is_some_and(|t| t.starts_with("pid 1"))
        })
        .count();
    assert_eq!(on_pid_1, 1, "{rows:?}");
    app.stop().await;
}

#[actix_web::test]
async fn anonymous_refusals_cannot_grow_the_audit_faster_than_its_rate() {
    let app = spawn_app().await;
    let long = "n".repeat(4000);
    for i in 0..200 {
        let path = if i % 2 == 0 {
            format!("/api/v1/services/{long}/start")
        } else {
            "/api/v1/sampler/stop".to_owned()
        };
        app.request("POST", &path, None, None).await.problem(401);
    }
    let rows = audit(&app).await;
    assert!(!rows.is_empty(), "refusals are recorded");
    assert!(
        rows.len() <= 25,
        "200 anonymous refusals wrote {} rows: the rate limit did not hold",
        rows.len()
    );
    for r in &rows {
        for field in ["actor", "action", "target", "detail"] {
            let len = r[field].as_str().map_or(0, str::len);
            assert!(len <= 256, "{field} stored with {len} bytes");
        }
    }
    // A control token's own actions are not held back by strangers' refusals.
    app.control("/api/v1/sampler/stop", None).await;
    let rows = audit(&app).await;
    assert_eq!(rows[0]["actor"], "operator", "{:?}", rows[0]);
    assert_eq!(rows[0]["action"], "sampler.stop");
    app.stop().await;
}

#[actix_web::test]
async fn a_control_tokens_rows_are_bounded_and_each_one_dropped_is_counted() {
    let app = spawn_app().await;
    const SENT: u64 = 500;
    let started = Instant::now();
    for _ in 0..SENT {
        let r = app
            .request("POST", "/api/v1/processes", Some(CONTROL_TOKEN), Some(b"{"))
            .await;
        assert_eq!(r.status, 400, "{}", r.text());
    }
    let took = started.elapsed();
    let written = |rows: &[Value]| {
        rows.iter()
            .filter(|r| r["action"] == "process.spawn")
            .count() as u64
    };
    let suppressed = |rows: &[Value]| {
        rows.iter()
            .map(|r| r["suppressed"].as_u64().unwrap())
            .sum::<u64>()
    };
    // What no later request carried, a summary row does once there is room.
    let all_counted = app
        .wait_until(Duration::from_secs(10), || async {
            let rows = audit(&app).await;
            written(&rows) + suppressed(&rows) == SENT
        })
        .await;
    let rows = audit(&app).await;
    let (w, s) = (written(&rows), suppressed(&rows));
    assert!(
        all_counted,
        "{w} rows written and {s} counted of {SENT} requests"
    );
    // A burst of 100, then one a second.
    assert!(
        (100..=102 + took.as_secs()).contains(&w),
        "{w} rows for {SENT} requests in {took:?}"
    );
    assert!(rows.iter().all(|r| r["actor"] == "operator"), "{rows:?}");
    app.stop().await;
}

#[actix_web::test]
async fn the_audit_and_ended_jobs_are_purged_after_audit_retention() {
    let app = spawn_with(|s| {
        s.storage.audit_retention = Duration::from_secs(2);
        s.control.spawn_allow = vec!["true".into()];
    })
    .await;
    let r = app
        .request(
            "POST",
            "/api/v1/processes",
            Some(CONTROL_TOKEN),
            Some(br#"{"command": "true"}"#),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(!audit(&app).await.is_empty());
    let jobs = || async {
        app.request("GET", "/api/v1/jobs", Some(READ_TOKEN), None)
            .await
            .json()
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(jobs().await, 1);
    let purged = app
        .wait_until(Duration::from_secs(10), || async {
            audit(&app).await.is_empty() && jobs().await == 0
        })
        .await;
    assert!(
        purged,
        "audit rows and the ended job outlived audit_retention"
    );
    app.stop().await;
}
