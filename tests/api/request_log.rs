//! The request log of the real binary: one line per request with the route
//! pattern, status and the caller's token name, and never the token.

use std::{
    io::{Read, Write},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Status of a plain HTTP/1.1 GET over loopback.
fn get(port: u16, path: &str, token: Option<&str>) -> u16 {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let head = String::from_utf8_lossy(&raw);
    head.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn each_request_is_logged_with_its_route_status_and_token_name_never_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .arg("serve")
        .env("HOSTWATCH_SERVER__LISTEN", "127.0.0.1:0")
        .env("HOSTWATCH_STORAGE__PATH", dir.path().join("hostwatch.db"))
        .env("HOSTWATCH_SAMPLER__AUTOSTART", "false")
        .env("HOSTWATCH_SERVICES", "[]")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (port, mut log, rx) = crate::lifecycle::await_listening(&mut child);
    // No token in the config: the agent made one, named `generated`.
    let token = std::fs::read_to_string(dir.path().join("hostwatch.db.token")).unwrap();
    let token = token.trim();
    let wrong = "hw_not_a_token_of_this_agent";
    assert_eq!(get(port, "/api/v1/processes/1", Some(token)), 200);
    assert_eq!(get(port, "/api/v1/checks/latest", Some(wrong)), 401);
    assert_eq!(get(port, "/api/v1/sampler", None), 200);
    assert_eq!(get(port, "/no/such/place", Some(token)), 404);

    // Wait until the four lines are out, then stop the agent.
    let end = Instant::now() + Duration::from_secs(10);
    while log.iter().filter(|l| l.contains(" request ")).count() < 4 && Instant::now() < end {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            log.push(l);
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The channel closes once the agent's stderr has been read to its end.
    log.extend(rx.iter());

    let line = |route: &str| {
        log.iter()
            .find(|l| l.contains(" request ") && l.contains(&format!("route={route} ")))
            .unwrap_or_else(|| panic!("no request line for {route}: {log:#?}"))
            .clone()
    };
    let one = line("/api/v1/processes/{pid}");
    assert!(one.contains("method=GET"), "{one}");
    assert!(one.contains("status=200"), "{one}");
    assert!(one.contains(r#"caller="generated""#), "{one}");
    assert!(one.contains("duration_ms="), "{one}");
    let bad = line("/api/v1/checks/latest");
    assert!(bad.contains("status=401"), "{bad}");
    assert!(bad.contains(r#"caller="(invalid token)""#), "{bad}");
    let anon = line("/api/v1/sampler");
    assert!(anon.contains(r#"caller="anonymous""#), "{anon}");
    let lost = line("(no route)");
    assert!(lost.contains("status=404"), "{lost}");
    // A route that does not check the token still names its owner.
    assert!(lost.contains(r#"caller="generated""#), "{lost}");
    for l in &log {
        assert!(!l.contains(token), "the token is in the log: {l}");
        assert!(!l.contains(wrong), "a sent token is in the log: {l}");
        assert!(
            !l.contains("/no/such/place"),
            "a raw path is in the log: {l}"
        );
    }
}
