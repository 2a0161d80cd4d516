//! The 64 KiB body limit holds on every route, also those that read no
//! body, whether the length is declared or the body comes chunked.

use crate::helpers::{CONTROL_TOKEN, READ_TOKEN, spawn_app};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Sends raw bytes and returns the status line and the whole answer.
fn raw(base: &str, request: &[u8]) -> String {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer and close before it has read everything.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends `request` and answers the status line's code.
async fn status_of(base: &str, request: Vec<u8>) -> String {
    let base = base.to_owned();
    let out = tokio::task::spawn_blocking(move || raw(&base, &request))
        .await
        .unwrap();
    assert!(
        out.contains("application/problem+json") || out.starts_with("HTTP/1.1 2"),
        "{out}"
    );
    out.get(9..12).unwrap_or("").to_owned()
}

fn declared(method: &str, path: &str, token: Option<&str>, size: usize) -> Vec<u8> {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: {size}\r\nConnection: close\r\n\r\n{}",
        "x".repeat(size)
    )
    .into_bytes()
}

fn chunked(method: &str, path: &str, token: Option<&str>, size: usize) -> Vec<u8> {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    let chunk = vec![b'x'; 4096];
    for _ in 0..size / 4096 {
        req.extend_from_slice(b"1000\r\n");
        req.extend_from_slice(&chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    req
}

#[actix_web::test]
async fn a_declared_body_over_64_kib_is_413() {
    let app = spawn_app().await;
    let big = 70 * 1024;
    for (method, path) in [("GET", "/api/v1/checks"), ("GET", "/healthz")] {
        let code = status_of(&app.base, declared(method, path, None, big)).await;
        assert_eq!(code, "413", "{method} {path}");
    }
    let code = status_of(
        &app.base,
        declared("POST", "/api/v1/sampler/stop", Some(CONTROL_TOKEN), big),
    )
    .await;
    assert_eq!(code, "413");
    app.stop().await;
}

#[actix_web::test]
async fn a_chunked_body_over_64_kib_is_413_and_one_under_it_is_read() {
    let app = spawn_app().await;
    let path = "/api/v1/sampler/stop";
    for (size, status) in [(80 * 1024, "413"), (16 * 1024, "200")] {
        let code = status_of(&app.base, chunked("POST", path, Some(CONTROL_TOKEN), size)).await;
        assert_eq!(code, status, "{size} bytes");
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_route_that_reads_no_body_refuses_even_a_small_one() {
    let app = spawn_app().await;
    for req in [
        declared("GET", "/api/v1/checks", None, 10),
        chunked("GET", "/api/v1/checks", None, 4096),
        declared("DELETE", "/api/v1/silences/1", Some(CONTROL_TOKEN), 10),
    ] {
        let code = status_of(&app.base, req.clone()).await;
        assert_eq!(code, "413", "{}", String::from_utf8_lossy(&req[..40]));
    }
    // No body, or an empty one, is fine.
    assert_eq!(
        status_of(&app.base, declared("GET", "/api/v1/checks", None, 0)).await,
        "200"
    );
    app.stop().await;
}

/// A caller without a control token is refused before its body is read: a
/// chunked body that never comes does not hold the agent for the body's
/// ten seconds, and one that does is not buffered first.
#[actix_web::test]
async fn a_body_from_a_caller_without_a_control_token_is_refused_unread() {
    let app = spawn_app().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    for token in [None, Some(READ_TOKEN)] {
        let addr = addr.clone();
        let started = std::time::Instant::now();
        let out = tokio::task::spawn_blocking(move || {
            let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
            let mut s = TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            // The headers, and a first chunk; the rest never comes.
            let head = format!(
                "POST /api/v1/processes HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{{\"command\":\"/bin"
            );
            s.write_all(head.as_bytes()).unwrap();
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).unwrap_or(0);
            String::from_utf8_lossy(&buf[..n]).into_owned()
        })
        .await
        .unwrap();
        let want = if token.is_none() { "401" } else { "403" };
        assert!(
            out.starts_with(&format!("HTTP/1.1 {want}")),
            "{token:?}: {out}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "answered after {:?}",
            started.elapsed()
        );
    }
    app.stop().await;
}

/// A method no route serves is the router's 405 (or 404), body or not: the
/// body rules are for routes that exist, and the body is not read first,
/// so one that never ends does not delay the answer.
#[actix_web::test]
async fn a_body_sent_with_a_method_no_route_serves_gets_405_unread() {
    let app = spawn_app().await;
    for (method, path, want) in [
        ("TRACE", "/api/v1/processes", "405"),
        ("PUT", "/api/v1/sampler/start", "405"),
        ("TRACE", "/api/v1/silences", "405"),
        ("POST", "/api/v1/no-such-route", "404"),
    ] {
        let code = status_of(&app.base, declared(method, path, Some(CONTROL_TOKEN), 10)).await;
        assert_eq!(code, want, "{method} {path}");
    }
    let addr = app.base.trim_start_matches("http://").to_owned();
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let head = "TRACE /api/v1/processes HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nnever-ending";
        s.write_all(head.as_bytes()).unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .unwrap();
    assert!(out.starts_with("HTTP/1.1 405"), "{out}");
    assert!(out.contains("allow:") || out.contains("Allow:"), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    app.stop().await;
}
