//! The 64 KiB body limit holds on every route, also those that read no
//! body, whether the length is declared or the body comes chunked.

use crate::helpers::spawn_app;
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

#[actix_web::test]
async fn a_declared_body_over_64_kib_is_413_on_a_route_that_reads_none() {
    let app = spawn_app().await;
    for (method, path) in [
        ("GET", "/api/v1/checks"),
        ("GET", "/healthz"),
        ("POST", "/api/v1/sampler/stop"),
    ] {
        let base = app.base.clone();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            70 * 1024,
            "x".repeat(70 * 1024)
        );
        let out = tokio::task::spawn_blocking(move || raw(&base, req.as_bytes()))
            .await
            .unwrap();
        assert!(out.starts_with("HTTP/1.1 413"), "{method} {path}: {out}");
        assert!(out.contains("application/problem+json"), "{out}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_chunked_body_over_64_kib_is_413_and_one_under_it_is_read() {
    let app = spawn_app().await;
    let chunked = |size: usize| {
        let mut req =
            b"GET /api/v1/checks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                .to_vec();
        let chunk = vec![b'x'; 4096];
        for _ in 0..size / 4096 {
            req.extend_from_slice(b"1000\r\n");
            req.extend_from_slice(&chunk);
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"0\r\n\r\n");
        req
    };
    for (size, status) in [(80 * 1024, "413"), (16 * 1024, "200")] {
        let base = app.base.clone();
        let req = chunked(size);
        let out = tokio::task::spawn_blocking(move || raw(&base, &req))
            .await
            .unwrap();
        assert!(
            out.starts_with(&format!("HTTP/1.1 {status}")),
            "{size}: {out}"
        );
    }
    app.stop().await;
}
