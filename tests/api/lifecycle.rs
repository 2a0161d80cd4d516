//! Restarts, signals and schema upgrades, on the real binary where the
//! process itself is what is being tested.

use crate::helpers::{spawn_in, test_settings};
use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

/// The real binary, serving on a free loopback port with its database in `dir`.
pub(crate) struct Agent {
    pub(crate) child: Child,
    pub(crate) port: u16,
    pub(crate) lines: mpsc::Receiver<String>,
}

pub(crate) fn start_agent(dir: &std::path::Path, interval: &str) -> Agent {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .arg("serve")
        .current_dir(dir)
        .env("HOSTWATCH_SERVER__LISTEN", "127.0.0.1:0")
        .env("HOSTWATCH_STORAGE__PATH", dir.join("hostwatch.db"))
        .env("HOSTWATCH_SAMPLER__INTERVAL", interval)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (port, _, rx) = await_listening(&mut child);
    Agent {
        child,
        port,
        lines: rx,
    }
}

/// The real binary with `--config FILE` (whose `[server] listen` should be
/// port 0), once it listens: the child, its port, the rest of its log.
pub(crate) fn start_with_config(config: &std::path::Path) -> (Child, u16, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (port, _, lines) = await_listening(&mut child);
    (child, port, lines)
}

/// Follows a starting agent's stderr, line by line on a thread of its own,
/// until it logs its port (20 s at most). Returns the port, the lines up to
/// that one, and the rest as they come (the channel closes at end of file).
pub(crate) fn await_listening(child: &mut Child) -> (u16, Vec<String>, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut before = Vec::new();
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| {
                panic!(
                    "the agent did not log that it listens: {:?} {before:#?}",
                    child.try_wait()
                )
            });
        let port = line
            .split("port=")
            .nth(1)
            .filter(|_| line.contains("listening"))
            .map(|p| p.trim().parse().expect("a port number"));
        before.push(line);
        if let Some(port) = port {
            return (port, before, rx);
        }
    }
}

/// A plain HTTP/1.1 GET over loopback, for tests that run without an async runtime.
pub(crate) fn get_json(port: u16, path: &str) -> serde_json::Value {
    get_json_as(port, path, None)
}

/// `get_json` with a bearer token.
pub(crate) fn get_json_as(port: u16, path: &str, token: Option<&str>) -> serde_json::Value {
    serde_json::from_str(&get_text_as(port, path, token)).unwrap()
}

/// The body of a GET that must answer 200.
pub(crate) fn get_text_as(port: u16, path: &str, token: Option<&str>) -> String {
    use std::io::{Read, Write};
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
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    body.to_owned()
}

pub(crate) fn signal(child: &Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
}

pub(crate) fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < end,
            "the agent did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn integrity(db: &std::path::Path) -> (String, i64) {
    let c = rusqlite::Connection::open(db).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    let n: i64 = c
        .query_row("SELECT COUNT(*) FROM checks", [], |r| r.get(0))
        .unwrap();
    (ok, n)
}

pub(crate) fn wait_for_checks(port: u16, n: usize) {
    wait_for_checks_with(port, n, None);
}

/// `wait_for_checks` on an agent that reads only with a token.
pub(crate) fn wait_for_checks_as(port: u16, n: usize, token: &str) {
    wait_for_checks_with(port, n, Some(token));
}

fn wait_for_checks_with(port: u16, n: usize, token: Option<&str>) {
    let end = Instant::now() + Duration::from_secs(20);
    while get_json_as(port, "/api/v1/checks?limit=1000", token)
        .as_array()
        .unwrap()
        .len()
        < n
    {
        assert!(Instant::now() < end, "the sampler did not take {n} checks");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_stops_the_agent_with_exit_0_and_an_intact_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = start_agent(dir.path(), "50ms");
    wait_for_checks(agent.port, 5);
    let started = Instant::now();
    signal(&agent.child, rustix::process::Signal::TERM);
    let status = wait_exit(&mut agent.child, Duration::from_secs(5));
    assert!(status.success(), "exit status {status}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let log: Vec<String> = agent.lines.try_iter().collect();
    assert!(log.iter().any(|l| l.contains("stopped")), "{log:?}");
    let (ok, n) = integrity(&dir.path().join("hostwatch.db"));
    assert_eq!(ok, "ok");
    assert!(n >= 5);
    // The checkpoint on the way out folded the WAL into the database.
    let wal = dir.path().join("hostwatch.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
}

#[test]
fn sigkill_while_sampling_leaves_every_committed_check_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = start_agent(dir.path(), "10ms");
    wait_for_checks(agent.port, 20);
    let seen = get_json(agent.port, "/api/v1/checks/latest")["id"]
        .as_i64()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    signal(&agent.child, rustix::process::Signal::KILL);
    wait_exit(&mut agent.child, Duration::from_secs(5));
    let db = dir.path().join("hostwatch.db");
    let (ok, n) = integrity(&db);
    assert_eq!(ok, "ok");
    assert!(n >= seen);
    let c = rusqlite::Connection::open(&db).unwrap();
    let exists: i64 = c
        .query_row("SELECT COUNT(*) FROM checks WHERE id = ?1", [seen], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(exists, 1, "a check the API served is gone");
    let half: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM checks k WHERE k.has_disks = 1 \
             AND NOT EXISTS (SELECT 1 FROM check_disks d WHERE d.check_id = k.id)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(half, 0, "a check was stored without its disks");
}

#[test]
fn a_database_newer_than_the_binary_stops_start_up_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hostwatch.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", 42)
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .env("HOSTWATCH_STORAGE__PATH", &db)
        .env("HOSTWATCH_SERVER__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("schema version 42") && err.contains("newer"),
        "{err}"
    );
}

#[test]
fn a_bad_config_file_names_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostwatch.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[sampler]\nintervall = \"5s\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("intervall") && err.contains("line 5"), "{err}");
}

#[actix_web::test]
async fn a_restart_keeps_history_and_the_generated_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.auth.tokens.clear();
    let app = spawn_in(dir, settings.clone()).await;
    let token_file = app.dir.path().join("hostwatch.db.token");
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_owned();
    let r = app
        .request("POST", "/api/v1/checks", Some(&token), None)
        .await;
    assert_eq!(r.status, 201);
    let id = r.json()["id"].clone();
    let dir = app.stop().await;

    let app = spawn_in(dir, settings).await;
    assert_eq!(std::fs::read_to_string(&token_file).unwrap().trim(), token);
    assert_eq!(app.get("/api/v1/checks/latest").await.json()["id"], id);
    let r = app
        .request("POST", "/api/v1/checks", Some(&token), None)
        .await;
    assert_eq!(
        r.status,
        201,
        "the generated token still works: {}",
        r.text()
    );
    app.stop().await;
}

#[actix_web::test]
async fn an_older_schema_is_migrated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hostwatch.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        let v1 = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/migrations/01-initial/up.sql"
        ))
        .unwrap();
        c.execute_batch(&v1).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        // A minute old: inside the retention, whatever the date.
        let taken_at = (chrono::Utc::now() - chrono::Duration::minutes(1)).timestamp_millis();
        c.execute(
            "INSERT INTO checks (id, taken_at, duration_ms, cpu_percent, load1, load5, load15, has_disks, has_services, has_top) \
             VALUES (7, ?1, 2.0, 12.5, 0.1, 0.2, 0.3, 0, 0, 0)",
            [taken_at],
        )
        .unwrap();
    }
    let settings = test_settings(dir.path());
    let app = spawn_in(dir, settings).await;
    let k = app.get("/api/v1/checks/7").await.json();
    assert_eq!(k["cpu"]["percent"], 12.5);
    assert!(k["disks"].is_null());
    // The audit table came with a later migration.
    let r = app
        .request(
            "GET",
            "/api/v1/audit",
            Some(crate::helpers::CONTROL_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let v: i64 = rusqlite::Connection::open(app.db_path())
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count() as i64;
    assert_eq!(v, migrations, "every migration was applied");
    app.stop().await;
}

#[test]
fn a_port_in_use_stops_start_up_with_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .current_dir(dir.path())
        .env("HOSTWATCH_SERVER__LISTEN", &addr)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot listen on") && err.contains(&addr),
        "{err}"
    );
}
