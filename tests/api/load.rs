//! Reads that cannot be turned into load: process listings go through a
//! bounded lane of their own, so clients looping on them neither starve the
//! cheap routes nor queue without bound.

use crate::helpers::{READ_TOKEN, TestApp, spawn_app};
use futures_util::{StreamExt, stream::FuturesUnordered};
use std::{
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering::SeqCst},
    time::{Duration, Instant},
};

/// Idle processes that make a listing of every field take a while; killed
/// and reaped when dropped.
struct Crowd(Vec<Child>);

impl Crowd {
    fn of(n: usize) -> Self {
        // `cat` waiting on a pipe: no name the other tests look for.
        let spawn = || {
            Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        };
        Self((0..n).map(|_| spawn()).collect())
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

const HEAVY: &str = "/api/v1/processes?fields=all";

/// How long a GET took, when it was served (200); `None` when refused (503).
async fn timed(app: &TestApp, path: &str) -> Option<Duration> {
    let t = Instant::now();
    let r = app.get(path).await;
    assert!(r.status == 200 || r.status == 503, "{path}: {}", r.text());
    (r.status == 200).then(|| t.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[actix_web::test]
async fn too_many_listings_at_once_are_told_to_retry_with_a_problem() {
    let _crowd = Crowd::of(100);
    let app = spawn_app().await;
    let mut refused = None;
    // Many more listings at once than the lane admits; a fast machine may
    // serve a round before it fills, so a few rounds are allowed. The first
    // refusal ends it: the requests still out are dropped.
    for _ in 0..5 {
        let mut answers: FuturesUnordered<_> = (0..40).map(|_| app.get(HEAVY)).collect();
        while let Some(r) = answers.next().await {
            assert!(r.status == 200 || r.status == 503, "{}", r.text());
            if r.status == 503 {
                refused = Some(r);
                break;
            }
        }
        if refused.is_some() {
            break;
        }
    }
    let r = refused.expect("40 listings at once were all admitted");
    let detail = r.problem(503);
    assert!(detail.contains("retry"), "{detail}");
    let retry: u32 = r
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    // The lane drains (of the dropped requests' readings too): a listing
    // is served again.
    let served = app
        .wait_until(Duration::from_secs(60), || async {
            app.get("/api/v1/processes?limit=1").await.status == 200
        })
        .await;
    assert!(served, "the lane did not drain");
    app.stop().await;
}

#[actix_web::test]
async fn anonymous_callers_filling_the_lane_leave_token_holders_their_own_share() {
    let _crowd = Crowd::of(100);
    let app = spawn_app().await;
    let stop = tokio_util::sync::CancellationToken::new();
    let refused = AtomicUsize::new(0);
    // Twenty anonymous clients looping on listings of every field: always
    // more than the lane admits, so their share stays full.
    let flood = (0..20).map(|_| async {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                t = timed(&app, HEAVY) => {
                    refused.fetch_add(usize::from(t.is_none()), SeqCst);
                }
            }
        }
    });
    let operator = async {
        let end = Instant::now() + Duration::from_secs(60);
        while refused.load(SeqCst) == 0 && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let full_at = refused.load(SeqCst);
        let mut statuses = Vec::new();
        for _ in 0..20 {
            let r = app
                .request("GET", "/api/v1/processes?limit=5", Some(READ_TOKEN), None)
                .await;
            statuses.push(r.status);
        }
        // Refusals went on while the token holder was being served.
        let during = refused.load(SeqCst) - full_at;
        stop.cancel();
        (full_at, statuses, during)
    };
    let (_, (full_at, statuses, during)) =
        futures_util::future::join(futures_util::future::join_all(flood), operator).await;
    assert!(full_at > 0, "twenty looping clients never filled the lane");
    assert!(during > 0, "the anonymous share was not full throughout");
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    app.stop().await;
}

#[actix_web::test]
async fn cheap_reads_do_not_wait_behind_listings() {
    let _crowd = Crowd::of(100);
    let app = spawn_app().await;
    let k = app.control("/api/v1/checks", None).await;
    assert_eq!(k.status, 201, "{}", k.text());
    let stop = tokio_util::sync::CancellationToken::new();
    let served = AtomicUsize::new(0);
    // Eight clients looping on listings of every field.
    let listers = (0..8).map(|_| async {
        let mut took = Vec::new();
        loop {
            // Done: the listing under way is dropped, not waited for.
            tokio::select! {
                _ = stop.cancelled() => break took,
                t = timed(&app, HEAVY) => {
                    served.fetch_add(usize::from(t.is_some()), SeqCst);
                    took.push(t);
                }
            }
        }
    });
    let cheap = async {
        // Let the listings get going first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut took = Vec::new();
        // Until several listings have ended too, bounded for a slow machine.
        let end = Instant::now() + Duration::from_secs(60);
        while (took.len() < 30 || served.load(SeqCst) < 8) && Instant::now() < end {
            took.push(timed(&app, "/api/v1/checks/latest").await.expect("served"));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.cancel();
        took
    };
    let (listings, mut cheap) =
        futures_util::future::join(futures_util::future::join_all(listers), cheap).await;
    let listing = median(listings.into_iter().flatten().flatten().collect());
    cheap.sort();
    // Measured against a listing on the same machine, so a slow machine
    // slows both: before the lane, a cheap read waited for several.
    let p90 = cheap[cheap.len() * 9 / 10];
    assert!(
        p90 < listing,
        "GET /checks/latest p90 {p90:?}, a listing's median {listing:?}"
    );
    app.stop().await;
}

#[actix_web::test]
async fn the_document_says_process_readings_may_answer_503_with_retry_after() {
    let app = spawn_app().await;
    let doc = app.get("/api-docs/openapi.json").await.json();
    for path in [
        "/api/v1/processes",
        "/api/v1/processes/{pid}",
        "/api/v1/users",
        "/api/v1/users/{username}/processes",
    ] {
        let r = &doc["paths"][path]["get"]["responses"]["503"];
        assert_eq!(
            r["$ref"], "#/components/responses/Overloaded",
            "{path}: {r}"
        );
    }
    let o = &doc["components"]["responses"]["Overloaded"];
    assert!(o["headers"]["Retry-After"].is_object(), "{o}");
    assert!(o["content"]["application/problem+json"].is_object(), "{o}");
    app.stop().await;
}
