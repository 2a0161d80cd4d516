//! Process control cannot be turned on the agent through one of its
//! threads, and a thread id is not a process.

use crate::helpers::{CONTROL_TOKEN, spawn_app};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Thread ids of this process (the agent runs in the test process) other
/// than the main thread's.
fn agent_threads() -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&t| t != me)
        .collect()
}

#[actix_web::test]
async fn a_thread_of_the_agent_cannot_be_signalled_or_reniced() {
    let app = spawn_app().await;
    let threads = agent_threads();
    assert!(!threads.is_empty(), "the agent runs worker threads");
    for tid in threads {
        let r = app
            .request(
                "DELETE",
                &format!("/api/v1/processes/{tid}?signal=KILL"),
                Some(CONTROL_TOKEN),
                None,
            )
            .await;
        let detail = r.problem(403);
        assert!(detail.contains("thread of hostwatch"), "{detail}");
        let r = app
            .request(
                "PATCH",
                &format!("/api/v1/processes/{tid}"),
                Some(CONTROL_TOKEN),
                Some(br#"{"nice": 19}"#),
            )
            .await;
        r.problem(403);
    }
    // Still here, and answering.
    assert_eq!(app.get("/healthz").await.status, 200);
    app.stop().await;
}

#[actix_web::test]
async fn a_thread_of_another_process_is_not_a_process() {
    let app = spawn_app().await;
    // A child with a second thread: the thread's id is in /proc, not a process.
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import threading,time\n\
             threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n\
             time.sleep(60)",
        ])
        .stdin(Stdio::null())
        .spawn()
        .expect("python3 runs (scripts/test installs it)");
    let pid = child.id();
    let mut tid = None;
    for _ in 0..100 {
        tid = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .find(|&t| t != pid);
        if tid.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let tid = tid.expect("the child started its thread");
    for (method, body) in [("DELETE", None), ("PATCH", Some(&br#"{"nice": 5}"#[..]))] {
        let r = app
            .request(
                method,
                &format!("/api/v1/processes/{tid}"),
                Some(CONTROL_TOKEN),
                body,
            )
            .await;
        let detail = r.problem(404);
        assert!(detail.contains(&format!("act on pid {pid}")), "{detail}");
    }
    // Neither the thread's process was touched.
    assert!(child.try_wait().unwrap().is_none(), "the child still runs");
    child.kill().unwrap();
    child.wait().unwrap();
    app.stop().await;
}

#[actix_web::test]
async fn another_name_for_an_allowed_program_is_not_allowed() {
    // A multi-call binary acts by the name it is called with: allowing it
    // under one name must not allow its other names.
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("listing");
    std::fs::copy("/bin/true", &real).unwrap();
    let alias = dir.path().join("shell");
    std::os::unix::fs::symlink(&real, &alias).unwrap();
    let allowed = real.display().to_string();
    let app = crate::helpers::spawn_with(|s| s.control.spawn_allow = vec![allowed]).await;
    let body = |p: &std::path::Path| format!(r#"{{"command": "{}"}}"#, p.display());
    let r = app
        .request(
            "POST",
            "/api/v1/processes",
            Some(CONTROL_TOKEN),
            Some(body(&alias).as_bytes()),
        )
        .await;
    let detail = r.problem(403);
    assert!(detail.contains("spawn_allow"), "{detail}");
    let r = app
        .request(
            "POST",
            "/api/v1/processes",
            Some(CONTROL_TOKEN),
            Some(body(&real).as_bytes()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    app.stop().await;
}

/// The `create_time` the process list gives for `pid`.
async fn listed_start(app: &crate::helpers::TestApp, pid: u32) -> chrono::DateTime<chrono::Utc> {
    let listed = app.get(&format!("/api/v1/processes/{pid}")).await.json();
    listed["create_time"]
        .as_str()
        .unwrap_or_else(|| panic!("no create_time: {listed}"))
        .parse()
        .unwrap()
}

/// An instant as a query value.
fn q(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .replace('+', "%2B")
}

#[actix_web::test]
async fn a_signal_for_a_process_started_at_another_time_is_refused_and_nothing_is_sent() {
    let app = spawn_app().await;
    let mut child = Command::new("sleep").arg("300").spawn().unwrap();
    let pid = child.id();
    let started = listed_start(&app, pid).await;
    // What a page drawn before the pid was reused would send.
    let other = started - chrono::Duration::seconds(7);
    let r = app
        .request(
            "DELETE",
            &format!("/api/v1/processes/{pid}?signal=KILL&started={}", q(other)),
            Some(CONTROL_TOKEN),
            None,
        )
        .await;
    let detail = r.problem(409);
    assert!(detail.contains("another process"), "{detail}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(child.try_wait().unwrap().is_none(), "it was signalled");
    let r = app
        .request(
            "DELETE",
            &format!("/api/v1/processes/{pid}?signal=TERM&started={}", q(started)),
            Some(CONTROL_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(15)
    );
    let audit = app
        .request("GET", "/api/v1/audit", Some(CONTROL_TOKEN), None)
        .await
        .json();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "refused"
                && e["detail"]
                    .as_str()
                    .unwrap_or("")
                    .contains("another process")),
        "{audit}"
    );
    app.stop().await;
}

/// Field 19 of /proc/<pid>/stat is the nice value.
fn nice_of(pid: u32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split_whitespace().nth(16).unwrap().parse().unwrap()
}

#[actix_web::test]
async fn a_renice_for_a_process_started_at_another_time_is_refused_and_nothing_changes() {
    let app = spawn_app().await;
    let mut child = Command::new("sleep").arg("300").spawn().unwrap();
    let pid = child.id();
    let before = nice_of(pid);
    // Raising it needs no privilege; any value other than the current one.
    let nice = if before < 19 { 19 } else { 18 };
    let started = listed_start(&app, pid).await;
    let body = format!(r#"{{"nice": {nice}}}"#);
    let other = started - chrono::Duration::seconds(7);
    let r = app
        .request(
            "PATCH",
            &format!("/api/v1/processes/{pid}?started={}", q(other)),
            Some(CONTROL_TOKEN),
            Some(body.as_bytes()),
        )
        .await;
    let detail = r.problem(409);
    assert!(detail.contains("another process"), "{detail}");
    assert_eq!(nice_of(pid), before, "it was reniced");
    let r = app
        .request(
            "PATCH",
            &format!("/api/v1/processes/{pid}?started={}", q(started)),
            Some(CONTROL_TOKEN),
            Some(body.as_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(nice_of(pid), nice);
    child.kill().unwrap();
    child.wait().unwrap();
    app.stop().await;
}
