//! The dashboard's page and assets as HTTP serves them (headers, gzip,
//! ETags), the rules its source keeps (no inline code, no HTML from
//! strings), and the one-request series it draws from. The page itself is
//! driven in a real browser by `dashboard.rs`.

use crate::helpers::{READ_TOKEN, Response, TestApp, spawn_app, spawn_with};
use chrono::{Duration, SecondsFormat, Utc};
use serde_json::Value;
use std::{io::Read, process::Command};

/// A GET with extra headers, past the contract check (bodies may be gzip).
async fn fetch(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = app.client.get(format!("{}{}", app.base, path));
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    Response::read(&mut req.send().await.unwrap()).await
}

fn header<'a>(r: &'a Response, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .expect("not gzip");
    out
}

#[actix_web::test]
async fn the_page_and_its_assets_load_without_a_token_under_a_strict_policy() {
    let app = spawn_with(|s| s.auth.public_read = false).await;
    let page = app.get("/").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    let csp = header(&page, "content-security-policy");
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{part} missing from {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    let html = page.text();
    // Relative, so the page also works behind a proxy under a sub-path.
    assert!(html.contains("\"ui/dashboard.js\"") && html.contains("\"ui/dashboard.css\""));
    for (file, kind) in [
        ("dashboard.js", "text/javascript; charset=utf-8"),
        ("dashboard.css", "text/css; charset=utf-8"),
    ] {
        let r = app.get(&format!("/ui/{file}")).await;
        assert_eq!((r.status, r.content_type.as_str()), (200, kind), "{file}");
        assert!(r.body.len() > 1000, "{file}: {} bytes", r.body.len());
    }
    // uPlot is in the script, with its licence kept beside it.
    assert!(app.get("/ui/dashboard.js").await.text().contains("uPlot"));
    // The page is public; the data is not.
    assert_eq!(app.get("/api/v1/sampler").await.status, 401);
    let missing = app.get("/ui/app.js").await;
    assert!(missing.problem(404).contains("dashboard.js"));
    app.stop().await;
}

#[actix_web::test]
async fn assets_are_gzipped_for_clients_that_ask_and_a_known_etag_is_a_304() {
    let app = spawn_app().await;
    for path in ["/", "/ui/dashboard.js", "/ui/dashboard.css"] {
        let plain = fetch(&app, path, &[]).await;
        let gz = fetch(&app, path, &[("accept-encoding", "br, gzip;q=0.8")]).await;
        assert_eq!((plain.status, gz.status), (200, 200), "{path}");
        assert!(plain.headers.get("content-encoding").is_none(), "{path}");
        assert_eq!(header(&gz, "content-encoding"), "gzip", "{path}");
        assert_eq!(gunzip(&gz.body), plain.body, "{path}");
        assert!(gz.body.len() < plain.body.len(), "{path}");
        let (tag, tag_gz) = (header(&plain, "etag"), header(&gz, "etag"));
        assert_ne!(tag, tag_gz, "{path}: two encodings, one tag");
        assert!(header(&plain, "vary").eq_ignore_ascii_case("accept-encoding"));

        let again = fetch(
            &app,
            path,
            &[("accept-encoding", "gzip"), ("if-none-match", tag_gz)],
        )
        .await;
        assert_eq!(again.status, 304, "{path}");
        assert!(again.body.is_empty());
        assert_eq!(header(&again, "etag"), tag_gz);
        let weak = format!("\"nope\", W/{tag}");
        let again = fetch(&app, path, &[("if-none-match", &weak)]).await;
        assert_eq!(again.status, 304, "{path}: a weak match");
        let other = fetch(&app, path, &[("if-none-match", "\"0123\"")]).await;
        assert_eq!((other.status, other.body.len()), (200, plain.body.len()));
    }
    // gzip: never for a client that refuses it.
    let refused = fetch(&app, "/ui/dashboard.js", &[("accept-encoding", "gzip;q=0")]).await;
    assert!(refused.headers.get("content-encoding").is_none());
    app.stop().await;
}

/// The page's own files, as the binary embeds them.
fn web_sources() -> Vec<(String, String)> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/web");
    let mut out = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(root)];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.ends_with("vendor") {
                continue;
            }
            if p.is_dir() {
                dirs.push(p);
            } else if let Some(ext) = p.extension().and_then(|e| e.to_str())
                && ["js", "html", "css"].contains(&ext)
            {
                out.push((
                    p.display().to_string(),
                    std::fs::read_to_string(&p).unwrap(),
                ));
            }
        }
    }
    out
}

#[test]
fn the_page_runs_no_inline_code_and_builds_no_html_from_strings() {
    let files = web_sources();
    assert!(files.iter().filter(|(p, _)| p.ends_with(".js")).count() >= 3);
    let attr = regex_lite::Regex::new(r#"(?i)\s(on[a-z]+|style)\s*="#).unwrap();
    for (path, text) in &files {
        if path.ends_with(".html") {
            let lower = text.to_ascii_lowercase();
            assert!(!lower.contains("<style"), "{path}: inline style");
            for tag in lower.split("<script").skip(1) {
                let open = tag.split('>').next().unwrap_or("");
                assert!(open.contains("src="), "{path}: inline script");
            }
            assert!(!attr.is_match(text), "{path}: an inline handler or style");
        }
        if path.ends_with(".js") {
            for bad in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "localStorage",
                "sessionStorage",
                "document.cookie",
            ] {
                assert!(!text.contains(bad), "{path} uses {bad}");
            }
        }
    }
}

fn q(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[actix_web::test]
async fn all_series_answers_each_metric_as_its_own_series_route_does() {
    let app = spawn_app().await;
    let out = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(["generate", "--days", "2", "--mounts", "2", "--db"])
        .arg(app.db_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let until = Utc::now() + Duration::minutes(1);
    for (since, step) in [
        (until - Duration::hours(6), "5m"),
        (until - Duration::days(3), "1h"),
    ] {
        let window = format!("since={}&until={}&step={step}", q(since), q(until));
        let all = app
            .request(
                "GET",
                &format!("/api/v1/checks/series?{window}"),
                Some(READ_TOKEN),
                None,
            )
            .await
            .json();
        let series = all["series"].as_array().unwrap();
        let names: Vec<&str> = series
            .iter()
            .map(|s| s["metric"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["cpu", "memory", "swap", "load1", "disk", "disk"],
            "{step}"
        );
        let mounts: Vec<&str> = series[4..]
            .iter()
            .map(|s| s["mount"].as_str().unwrap())
            .collect();
        assert!(mounts.windows(2).all(|w| w[0] < w[1]), "{mounts:?}");
        assert_eq!(all["more_mounts"], false);
        for s in series {
            let metric = s["metric"].as_str().unwrap();
            let mount = s["mount"]
                .as_str()
                .map(|m| format!("&mount={}", url_escape(m)))
                .unwrap_or_default();
            let one = app
                .get(&format!("/api/v1/checks/{metric}/series?{window}{mount}"))
                .await
                .json();
            assert!(
                !one.as_array().unwrap().is_empty(),
                "{metric}{mount} {step}"
            );
            assert_eq!(s["buckets"], one, "{metric}{mount} {step}");
        }
    }
    // Asked for gzip, the JSON comes gzipped and reads the same.
    let path = "/api/v1/checks/series?step=1m";
    let gz = fetch(&app, path, &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&gz, "content-encoding"), "gzip");
    let v: Value = serde_json::from_slice(&gunzip(&gz.body)).unwrap();
    assert!(
        v["series"][0]["buckets"].as_array().unwrap().len() >= 50,
        "{v}"
    );
    app.stop().await;
}

fn url_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[actix_web::test]
async fn all_series_refuses_a_bad_window_or_step_in_plain_words() {
    let app = spawn_app().await;
    let now = Utc::now();
    for (query, says) in [
        ("step=0s", "step"),
        ("step=500ms", "step"),
        ("step=1s&since=2020-01-01T00:00:00Z", "too many"),
        // A chart needs no more than 2000 buckets (one per 2 px of 4K).
        (
            &format!("step=1m&since={}", q(now - Duration::days(2))),
            "at most 2000",
        ),
        (
            &format!("since={}&until={}", q(now), q(now - Duration::hours(1))),
            "not be after",
        ),
        ("since=yesterday", "since"),
        ("mount=/", "mount"),
    ] {
        let r = app.get(&format!("/api/v1/checks/series?{query}")).await;
        let detail = r.problem(400);
        assert!(detail.contains(says), "{query}: {detail}");
    }
    // An empty database: every host metric, no mounts, no buckets.
    let v = app.get("/api/v1/checks/series").await.json();
    assert_eq!(v["series"].as_array().unwrap().len(), 4, "{v}");
    assert_eq!(v["step_seconds"], 300.0);
    app.stop().await;
}
