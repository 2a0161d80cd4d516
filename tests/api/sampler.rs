//! The sampler through the API: start, interval changes, stop, resume.

use crate::helpers::spawn_app;
use std::time::Duration;

async fn stored(app: &crate::helpers::TestApp) -> usize {
    app.get("/api/v1/checks?limit=1000")
        .await
        .json()
        .as_array()
        .unwrap()
        .len()
}

#[actix_web::test]
async fn a_sub_second_sampler_fills_history_stop_halts_it_and_start_resumes_it() {
    let app = spawn_app().await;
    let s = app.get("/api/v1/sampler").await.json();
    assert_eq!(s["running"], false);
    assert_eq!(s["checks_taken"], 0);

    let r = app
        .control(
            "/api/v1/sampler/start",
            Some(r#"{"interval_seconds": 0.1}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["running"], true);
    assert_eq!(r.json()["interval_seconds"], 0.1);
    assert!(
        app.wait_until(Duration::from_secs(10), || async {
            stored(&app).await >= 5
        })
        .await
    );

    let r = app.control("/api/v1/sampler/stop", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["running"], false);
    let after_stop = stored(&app).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        stored(&app).await,
        after_stop,
        "no check may be taken after stop answered"
    );
    let status = app.get("/api/v1/sampler").await.json();
    assert_eq!(
        status["checks_taken"].as_u64().unwrap() as usize,
        after_stop
    );
    assert!(status["last_check_at"].is_string());

    let r = app.control("/api/v1/sampler/start", None).await;
    assert_eq!(r.status, 200);
    assert!(
        app.wait_until(Duration::from_secs(10), || async {
            stored(&app).await > after_stop + 2
        })
        .await
    );
    app.stop().await;
}

#[actix_web::test]
async fn starting_a_running_sampler_changes_only_its_interval() {
    let app = spawn_app().await;
    let first = app
        .control("/api/v1/sampler/start", Some(r#"{"interval_seconds": 30}"#))
        .await
        .json();
    let again = app
        .control(
            "/api/v1/sampler/start",
            Some(r#"{"interval_seconds": 0.2}"#),
        )
        .await;
    assert_eq!(again.status, 200);
    let again = again.json();
    assert_eq!(again["interval_seconds"], 0.2);
    assert_eq!(again["started_at"], first["started_at"]);
    // The 30 s sampler took one check at start; the new interval brings more soon.
    assert!(
        app.wait_until(Duration::from_secs(5), || async { stored(&app).await >= 3 })
            .await
    );
    app.stop().await;
}

#[actix_web::test]
async fn the_sampler_starts_by_itself_when_autostart_is_on() {
    let app = crate::helpers::spawn_with(|s| s.sampler.autostart = true).await;
    assert!(
        app.wait_until(Duration::from_secs(5), || async { stored(&app).await >= 1 })
            .await
    );
    assert_eq!(app.get("/api/v1/sampler").await.json()["running"], true);
    app.stop().await;
}
