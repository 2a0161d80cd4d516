//! The auth matrix: no token, a wrong token, a read token and a control
//! token against read and control routes; and refusals in the audit trail.

use crate::helpers::{CONTROL_TOKEN, READ_TOKEN, spawn_app, spawn_with};

const READ_ROUTES: [&str; 4] = [
    "/api/v1/sampler",
    "/api/v1/checks",
    "/api/v1/system",
    "/metrics",
];

#[actix_web::test]
async fn control_routes_need_a_control_token() {
    let app = spawn_app().await;
    for (token, status) in [
        (None, 401),
        (Some("hw_wrong"), 401),
        (Some(READ_TOKEN), 403),
    ] {
        for path in ["/api/v1/sampler/stop", "/api/v1/checks"] {
            let r = app.request("POST", path, token, None).await;
            let d = r.problem(status);
            assert!(d.contains("control") || d.contains("not valid"), "{d}");
            if status == 401 {
                assert_eq!(r.headers.get("www-authenticate").unwrap(), "Bearer");
            }
        }
        app.request("GET", "/api/v1/audit", token, None)
            .await
            .problem(status);
    }
    let r = app
        .request("POST", "/api/v1/sampler/stop", Some(CONTROL_TOKEN), None)
        .await;
    assert_eq!(r.status, 200);
    app.stop().await;
}

#[actix_web::test]
async fn read_routes_are_public_by_default_but_a_wrong_token_is_refused() {
    let app = spawn_app().await;
    for path in READ_ROUTES {
        assert_eq!(
            app.request("GET", path, None, None).await.status,
            200,
            "{path}"
        );
        assert_eq!(
            app.request("GET", path, Some(READ_TOKEN), None)
                .await
                .status,
            200,
            "{path}"
        );
        assert_eq!(
            app.request("GET", path, Some(CONTROL_TOKEN), None)
                .await
                .status,
            200,
            "{path}"
        );
        app.request("GET", path, Some("hw_wrong"), None)
            .await
            .problem(401);
    }
    app.stop().await;
}

#[actix_web::test]
async fn with_public_read_off_read_routes_need_a_token() {
    let app = spawn_with(|s| s.auth.public_read = false).await;
    for path in READ_ROUTES {
        app.request("GET", path, None, None).await.problem(401);
        assert_eq!(
            app.request("GET", path, Some(READ_TOKEN), None)
                .await
                .status,
            200,
            "{path}"
        );
    }
    assert_eq!(
        app.get("/healthz").await.status,
        200,
        "liveness needs no token"
    );
    app.stop().await;
}

#[actix_web::test]
async fn refused_control_actions_are_audited() {
    let app = spawn_app().await;
    app.request("POST", "/api/v1/sampler/start", Some(READ_TOKEN), None)
        .await
        .problem(403);
    app.request("POST", "/api/v1/sampler/start", None, None)
        .await
        .problem(401);
    let rows = app
        .request("GET", "/api/v1/audit", Some(CONTROL_TOKEN), None)
        .await
        .json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["actor"], "(no token)");
    assert_eq!(rows[1]["actor"], "reader");
    assert!(
        rows.iter()
            .all(|r| r["outcome"] == "refused" && r["action"] == "sampler.start")
    );
    assert_eq!(app.get("/api/v1/sampler").await.json()["running"], false);
    app.stop().await;
}
