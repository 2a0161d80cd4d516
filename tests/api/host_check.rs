//! DNS rebinding: a page at evil.example that rebinds its name to
//! 127.0.0.1 reaches the agent with `Host: evil.example`; such a request
//! is 421, while the agent's addresses, `localhost` and the configured
//! names are answered.

use crate::helpers::{spawn_app, spawn_with};
use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

/// GETs `target` with `Host: host` and answers the status code and body.
async fn get_as(base: &str, target: &str, host: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://").to_owned();
    let req = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let out = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
    .unwrap();
    let code = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, out)
}

#[actix_web::test]
async fn a_request_naming_another_host_is_421_and_the_agents_own_names_are_answered() {
    let app = spawn_app().await;
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    for path in [
        "/api/v1/checks",
        "/api/v1/processes",
        "/healthz",
        "/",
        "/swagger-ui/",
    ] {
        for host in [
            format!("evil.example:{port}"),
            "evil.example".to_owned(),
            format!("localhost.evil.example:{port}"),
        ] {
            let (code, out) = get_as(&app.base, path, &host).await;
            assert_eq!(code, 421, "{path} as {host}: {out}");
            assert!(out.contains("application/problem+json"), "{out}");
            assert!(out.contains("server.allowed_hosts"), "{out}");
        }
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "LocalHost".to_owned(),
        format!("[::1]:{port}"),
    ] {
        let (code, out) = get_as(&app.base, "/api/v1/checks", &host).await;
        assert_eq!(code, 200, "{host}: {out}");
    }
    // The authority of an absolute-form target is the one that counts.
    let (code, _) = get_as(
        &app.base,
        "http://evil.example/api/v1/checks",
        &format!("127.0.0.1:{port}"),
    )
    .await;
    assert_eq!(code, 421);
    app.stop().await;
}

#[actix_web::test]
async fn configured_names_are_answered() {
    let app = spawn_with(|s| {
        s.server.allowed_hosts = vec!["monitor.example".into(), "*.fleet.example".into()];
    })
    .await;
    for (host, want) in [
        ("monitor.example:8080", 200),
        ("Monitor.Example.", 200),
        ("a.fleet.example", 200),
        ("fleet.example", 200),
        ("other.example", 421),
    ] {
        let (code, out) = get_as(&app.base, "/api/v1/checks", host).await;
        assert_eq!(code, want, "{host}: {out}");
    }
    app.stop().await;
}
