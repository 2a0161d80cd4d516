//! Every class of bad input answers problem+json with the right status,
//! and nothing answers 5xx.

use crate::helpers::{CONTROL_TOKEN, spawn_app};

#[actix_web::test]
async fn bad_json_unknown_fields_and_out_of_range_values_are_400() {
    let app = spawn_app().await;
    let d = app
        .control("/api/v1/sampler/start", Some("{not json"))
        .await
        .problem(400);
    assert!(d.contains("JSON"), "{d}");
    let d = app
        .control("/api/v1/sampler/start", Some(r#"{"interval": 5}"#))
        .await
        .problem(400);
    assert!(d.contains("unknown field"), "{d}");
    let d = app
        .control("/api/v1/sampler/start", Some(r#"{"interval_seconds": -1}"#))
        .await
        .problem(400);
    assert!(d.contains("interval_seconds"), "{d}");
    let d = app
        .control(
            "/api/v1/sampler/start",
            Some(r#"{"interval_seconds": "fast"}"#),
        )
        .await
        .problem(400);
    assert!(d.contains("invalid type"), "{d}");
    assert_eq!(
        app.get("/api/v1/sampler").await.json()["running"],
        false,
        "a refused start starts nothing"
    );
    app.stop().await;
}

#[actix_web::test]
async fn bad_queries_times_and_durations_are_400() {
    let app = spawn_app().await;
    for (path, needle) in [
        ("/api/v1/checks?limit=0", "limit"),
        ("/api/v1/checks?limit=1001", "limit"),
        ("/api/v1/checks?limit=ten", "limit=ten"),
        ("/api/v1/checks?colour=red", "unknown field"),
        ("/api/v1/checks?since=yesterday", "since"),
        (
            "/api/v1/checks?since=2026-11-22T02:00:00Z&until=2026-11-22T01:00:00Z",
            "not be after",
        ),
        ("/api/v1/checks/cpu/history?size=0", "size"),
        ("/api/v1/checks/cpu/history?size=10001", "size"),
        ("/api/v1/checks/gpu/history", "unknown metric"),
        ("/api/v1/checks/cpu/series?step=often", "duration"),
        ("/api/v1/checks/cpu/series?step=1ms", "step"),
        // A step that could overflow the bucket arithmetic: 400, with the limit.
        ("/api/v1/checks/cpu/series?step=1000000d", "999999d"),
        ("/api/v1/checks/cpu/series?step=106751991167d", "999999d"),
        (
            "/api/v1/checks/cpu/series?since=2020-01-01T00:00:00Z&step=1s",
            "buckets",
        ),
        ("/api/v1/checks/summary?until=noon", "until"),
    ] {
        let d = app.get(path).await.problem(400);
        assert!(d.contains(needle), "{path}: {d}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_bad_path_is_400_an_unknown_route_404_and_a_wrong_method_405() {
    let app = spawn_app().await;
    let d = app.get("/api/v1/checks/abc").await.problem(400);
    assert!(d.contains("abc"), "{d}");
    app.get("/api/v1/nothing-here").await.problem(404);
    app.get("/nope").await.problem(404);
    let r = app
        .request("DELETE", "/api/v1/checks/latest", None, None)
        .await;
    r.problem(405);
    assert_eq!(r.headers.get("allow").unwrap(), "GET");
    let r = app
        .request("PUT", "/api/v1/checks", Some(CONTROL_TOKEN), None)
        .await;
    r.problem(405);
    assert_eq!(r.headers.get("allow").unwrap(), "GET, POST");
    app.request("GET", "/api/v1/sampler/start", None, None)
        .await
        .problem(405);
    app.stop().await;
}

#[actix_web::test]
async fn a_body_over_64_kib_is_413() {
    let app = spawn_app().await;
    let big = format!(
        r#"{{"interval_seconds": 1, "pad": "{}"}}"#,
        "x".repeat(70 * 1024)
    );
    app.control("/api/v1/sampler/start", Some(&big))
        .await
        .problem(413);
    // Just under the limit is read, and refused for what it says.
    let fits = format!(r#"{{"pad": "{}"}}"#, "x".repeat(60 * 1024));
    app.control("/api/v1/sampler/start", Some(&fits))
        .await
        .problem(400);
    app.stop().await;
}

#[actix_web::test]
async fn no_malformed_request_answers_5xx() {
    let app = spawn_app().await;
    let paths = [
        "/api/v1/checks?since=%ff%fe",
        "/api/v1/checks?limit=-1",
        "/api/v1/checks?before_id=99999999999999999999999",
        "/api/v1/checks/-1",
        "/api/v1/checks/99999999999999999999",
        "/api/v1/checks/%00/history",
        "/api/v1/checks/disk/history?mount=%00",
        "/api/v1/checks/cpu/series?since=9999-12-31T23:59:59Z",
        "/api/v1/checks/cpu/series?step=99999999999999999999d",
        "/api/v1/checks/summary?since=0000-01-01T00:00:00Z",
        "/api/v1/audit?limit=5&limit=6",
        "/api/v1/../../etc/passwd",
        "/swagger-ui/../../etc/passwd",
    ];
    for p in paths {
        let r = app.request("GET", p, Some(CONTROL_TOKEN), None).await;
        assert!(r.status < 500, "{p} answered {}: {}", r.status, r.text());
        if r.status >= 400 {
            assert_eq!(r.content_type, "application/problem+json", "{p}");
        }
    }
    for body in [
        "",
        "null",
        "[]",
        "1",
        "\"x\"",
        "{\"interval_seconds\": null}",
        "{\"interval_seconds\": 1e400}",
    ] {
        let r = app.control("/api/v1/sampler/start", Some(body)).await;
        assert!(
            r.status < 500,
            "{body:?} answered {}: {}",
            r.status,
            r.text()
        );
    }
    app.stop().await;
}
