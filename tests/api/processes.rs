//! Processes against real ones: a `sleep` the test starts, renice and
//! signal it, spawn through the API, the guards, and bad input.

use crate::helpers::{CONTROL_TOKEN, READ_TOKEN, TestApp, spawn_with};
use serde_json::{Value, json};
use std::{
    path::PathBuf,
    process::{Child, Command},
};

async fn allowing(list: &[&str]) -> TestApp {
    let allow: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    spawn_with(|s| s.control.spawn_allow = allow).await
}

fn sleeper() -> Child {
    Command::new("sleep").arg("300").spawn().unwrap()
}

/// Field 19 of /proc/<pid>/stat is the nice value.
fn nice_in_proc(pid: u32) -> i64 {
    nice_in(&format!("/proc/{pid}/stat"))
}

fn nice_in(stat_file: &str) -> i64 {
    let stat = std::fs::read_to_string(stat_file).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split_whitespace().nth(16).unwrap().parse().unwrap()
}

/// The nice value a child of this thread starts with: the test may run niced.
fn inherited_nice() -> i64 {
    nice_in("/proc/thread-self/stat")
}

/// The user this test runs as (and so the agent and its children): uid and name.
fn me() -> (u32, String) {
    let out = Command::new("id").arg("-un").output().unwrap();
    assert!(out.status.success(), "id -un: {out:?}");
    let name = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    (rustix::process::geteuid().as_raw(), name)
}

/// Where `PATH` finds `program`, symlinks resolved: the file the kernel
/// shows as the exe of a process started from it (`/bin` or `/usr/bin`, a
/// multi-call binary, wherever this machine keeps it).
fn resolved(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
        .canonicalize()
        .unwrap()
}

/// A read route as a token holder sees it: anonymous callers do not see
/// jobs, nor the exe, cwd, files and sockets of processes.
async fn read(app: &TestApp, path: &str) -> crate::helpers::Response {
    app.request("GET", path, Some(READ_TOKEN), None).await
}

/// The row of `pid` in a process list.
fn row(list: &Value, pid: u32) -> Value {
    list["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .cloned()
        .unwrap_or_else(|| panic!("pid {pid} is not listed"))
}

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> crate::helpers::Response {
    app.request(method, path, Some(CONTROL_TOKEN), body.map(str::as_bytes))
        .await
}

#[actix_web::test]
async fn a_sleep_the_test_started_is_listed_with_its_fields() {
    let app = allowing(&[]).await;
    let (uid, user) = me();
    let mut child = sleeper();
    let pid = child.id();
    let list = app.get("/api/v1/processes?name=sleep").await.json();
    let p = row(&list, pid);
    assert_eq!(p["ppid"], std::process::id());
    assert_eq!(p["name"], "sleep");
    assert_eq!(p["cmdline"], json!(["sleep", "300"]));
    assert_eq!(p["username"], user.as_str());
    assert_eq!(p["nice"], inherited_nice());
    assert!(
        p.get("connections").is_none(),
        "expensive fields only when asked for"
    );
    assert!(p["memory_info"]["rss"].as_u64().unwrap() > 0);
    assert!(list["total"].as_u64().unwrap() >= 1);

    let one = read(&app, &format!("/api/v1/processes/{pid}")).await.json();
    for field in [
        "exe",
        "cwd",
        "uids",
        "gids",
        "cpu_times",
        "threads",
        "num_fds",
        "open_files",
        "connections",
        "memory_maps",
        "num_ctx_switches",
        "io_counters",
        "pgrp",
        "tty_nr",
        "priority",
    ] {
        assert!(one.get(field).is_some(), "{field} missing");
    }
    assert_eq!(one["exe"], resolved("sleep").to_str().unwrap());
    assert_eq!(one["uids"]["effective"], uid);
    assert_eq!(
        one["cwd"],
        std::env::current_dir().unwrap().to_str().unwrap()
    );
    assert_eq!(one["threads"].as_array().unwrap().len(), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    app.get(&format!("/api/v1/processes/{pid}"))
        .await
        .problem(404);
    app.stop().await;
}

#[actix_web::test]
async fn listing_filters_sorts_pages_and_picks_fields() {
    let app = allowing(&[]).await;
    let mut kids: Vec<Child> = (0..3).map(|_| sleeper()).collect();
    let page = app
        .get("/api/v1/processes?name=sleep&sort=pid&order=asc&limit=2&fields=pid,nice")
        .await
        .json();
    assert!(page["total"].as_u64().unwrap() >= 3);
    let procs = page["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 2);
    assert!(procs[0]["pid"].as_u64() < procs[1]["pid"].as_u64());
    assert_eq!(
        procs[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["nice", "pid"]
    );
    // Another user's sleep may be listed too; look at one of ours.
    let all = read(&app, "/api/v1/processes?name=sleep&fields=all")
        .await
        .json();
    let ours = row(&all, kids[0].id());
    assert_eq!(ours["connections"], json!([]), "a sleep has no sockets");
    assert!(ours["open_files"].is_array(), "{ours}");
    let (_, user) = me();
    let mine = app
        .get(&format!("/api/v1/users/{user}/processes?name=sleep"))
        .await
        .json();
    for k in &kids {
        row(&mine, k.id());
    }
    for k in &mut kids {
        k.kill().unwrap();
        k.wait().unwrap();
    }
    app.stop().await;
}

#[actix_web::test]
async fn users_are_listed_with_their_process_counts() {
    let app = allowing(&[]).await;
    let (uid, user) = me();
    let mut child = sleeper();
    let users = app.get("/api/v1/users").await.json();
    let mine = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["uid"] == uid)
        .unwrap_or_else(|| panic!("uid {uid} runs this test: {users}"));
    assert_eq!(mine["username"], user.as_str());
    // This test and its sleep, at least.
    assert!(mine["running"].as_u64().unwrap() >= 2, "{mine}");
    child.kill().unwrap();
    child.wait().unwrap();
    app.get("/api/v1/users/no-such-user-here/processes")
        .await
        .problem(404);
    app.stop().await;
}

#[actix_web::test]
async fn a_renice_shows_in_proc_and_a_signal_ends_the_process() {
    let app = allowing(&[]).await;
    let mut child = sleeper();
    let pid = child.id();
    // A value other than the one it started with; raising it needs no privilege.
    let nice = if inherited_nice() < 19 { 19 } else { 18 };
    let r = send(
        &app,
        "PATCH",
        &format!("/api/v1/processes/{pid}"),
        Some(&format!(r#"{{"nice": {nice}}}"#)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["nice"], nice);
    assert_eq!(nice_in_proc(pid), nice);
    let r = send(
        &app,
        "DELETE",
        &format!("/api/v1/processes/{pid}?signal=KILL&wait=5s"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["gone"], true);
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let audit = send(&app, "GET", "/api/v1/audit", None).await.json();
    let entry = |action: &str| -> Value {
        audit
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["action"] == action)
            .cloned()
            .unwrap_or_else(|| panic!("no {action} in the audit: {audit}"))
    };
    let (renice, kill) = (entry("process.renice"), entry("process.signal"));
    for (e, detail) in [(&renice, format!("nice {nice}")), (&kill, "SIGKILL".into())] {
        assert_eq!(e["actor"], "operator", "{e}");
        assert_eq!(e["outcome"], "ok", "{e}");
        let target = e["target"].as_str().unwrap();
        assert!(
            target.contains(&format!("pid {pid}")) && target.contains("sleep 300"),
            "{e}"
        );
        assert!(e["detail"].as_str().unwrap().contains(&detail), "{e}");
    }
    assert!(
        kill["id"].as_i64() > renice["id"].as_i64(),
        "newest first: {audit}"
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_spawned_echo_leaves_its_exit_code_and_output_in_the_job_and_no_zombie() {
    let echo = resolved("echo").to_str().unwrap().to_owned();
    let app = allowing(&[&echo]).await;
    let body = json!({"command": echo, "args": ["hello", "job"]}).to_string();
    let r = send(&app, "POST", "/api/v1/processes", Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let job_id = r.json()["job_id"].as_i64().unwrap();
    let pid = r.json()["pid"].as_u64().unwrap();
    let path = format!("/api/v1/jobs/{job_id}");
    assert!(
        app.wait_until(std::time::Duration::from_secs(5), || async {
            read(&app, &path).await.json()["state"] == "exited"
        })
        .await
    );
    let job = read(&app, &path).await.json();
    assert_eq!(job["exit_code"], 0);
    assert_eq!(job["stdout"], "hello job\n");
    assert_eq!(job["pid"], pid);
    assert_eq!(job["args"], json!(["hello", "job"]));
    assert!(
        read(&app, "/api/v1/jobs")
            .await
            .json()
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == job_id)
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the spawned child was not reaped"
    );
    read(&app, "/api/v1/jobs/999").await.problem(404);
    app.stop().await;
}

#[actix_web::test]
async fn an_empty_cwd_is_a_cwd_left_out() {
    let app = allowing(&["/bin/echo"]).await;
    let r = send(
        &app,
        "POST",
        "/api/v1/processes",
        Some(r#"{"command": "/bin/echo", "cwd": ""}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    app.stop().await;
}

#[actix_web::test]
async fn spawning_is_refused_unless_allowed_and_needs_a_real_program() {
    let off = allowing(&[]).await;
    let d = send(
        &off,
        "POST",
        "/api/v1/processes",
        Some(r#"{"command": "/bin/echo"}"#),
    )
    .await
    .problem(403);
    assert!(d.contains("spawn_allow"), "{d}");
    off.stop().await;
    let app = allowing(&["/bin/echo", "/nonexistent/prog"]).await;
    let d = send(
        &app,
        "POST",
        "/api/v1/processes",
        Some(r#"{"command": "/bin/sh", "args": ["-c", "id"]}"#),
    )
    .await
    .problem(403);
    assert!(d.contains("not in control.spawn_allow"), "{d}");
    let d = send(
        &app,
        "POST",
        "/api/v1/processes",
        Some(r#"{"command": "/nonexistent/prog"}"#),
    )
    .await
    .problem(400);
    assert!(d.contains("no executable"), "{d}");
    send(
        &app,
        "POST",
        "/api/v1/processes",
        Some(r#"{"command": "/bin/echo", "cwd": "/nope"}"#),
    )
    .await
    .problem(400);
    send(
        &app,
        "POST",
        "/api/v1/processes",
        Some(r#"{"command": "/bin/echo", "shell": true}"#),
    )
    .await
    .problem(400);
    let audit = send(&app, "GET", "/api/v1/audit", None).await.json();
    let rows = audit.as_array().unwrap();
    for target in ["/bin/sh -c id", "/nonexistent/prog", "/bin/echo"] {
        let r = rows
            .iter()
            .find(|r| r["target"] == target)
            .unwrap_or_else(|| panic!("no audit row for {target}: {audit}"));
        assert_eq!(r["action"], "process.spawn", "{r}");
        assert_eq!(r["actor"], "operator", "{r}");
        assert!(r["detail"].as_str().is_some_and(|d| !d.is_empty()), "{r}");
    }
    // Every refusal, the malformed body included where it is recorded.
    assert!(
        rows.iter()
            .all(|r| r["action"] == "process.spawn" && r["outcome"] == "refused"),
        "{audit}"
    );
    app.stop().await;
}

#[actix_web::test]
async fn pid_1_the_agent_and_its_parent_are_guarded() {
    let app = allowing(&[]).await;
    // The app runs inside this test process: it is the agent.
    let me = std::process::id();
    let parent = std::os::unix::process::parent_id();
    for pid in [1, me, parent] {
        let d = send(&app, "DELETE", &format!("/api/v1/processes/{pid}"), None)
            .await
            .problem(403);
        assert!(!d.is_empty());
        send(
            &app,
            "PATCH",
            &format!("/api/v1/processes/{pid}"),
            Some(r#"{"nice": 5}"#),
        )
        .await
        .problem(403);
    }
    app.stop().await;
}

#[actix_web::test]
async fn bad_process_input_is_400_and_a_missing_pid_404() {
    let app = allowing(&[]).await;
    let mut child = sleeper();
    let pid = child.id();
    let d = send(
        &app,
        "DELETE",
        &format!("/api/v1/processes/{pid}?signal=SEGV"),
        None,
    )
    .await
    .problem(400);
    assert!(d.contains("TERM"), "{d}");
    send(
        &app,
        "PATCH",
        &format!("/api/v1/processes/{pid}"),
        Some(r#"{"nice": 20}"#),
    )
    .await
    .problem(400);
    send(
        &app,
        "PATCH",
        &format!("/api/v1/processes/{pid}"),
        Some(r#"{"nice": -21}"#),
    )
    .await
    .problem(400);
    send(&app, "PATCH", &format!("/api/v1/processes/{pid}"), Some(""))
        .await
        .problem(400);
    send(
        &app,
        "PATCH",
        "/api/v1/processes/abc",
        Some(r#"{"nice": 1}"#),
    )
    .await
    .problem(400);
    send(&app, "DELETE", "/api/v1/processes/abc", None)
        .await
        .problem(400);
    app.get("/api/v1/processes/abc").await.problem(400);
    app.get("/api/v1/processes/0").await.problem(400);
    send(&app, "DELETE", "/api/v1/processes/2147483000", None)
        .await
        .problem(404);
    app.get("/api/v1/processes/2147483000").await.problem(404);
    app.get("/api/v1/processes?sort=size").await.problem(400);
    app.get("/api/v1/processes?fields=pid,colour")
        .await
        .problem(400);
    app.request(
        "DELETE",
        &format!("/api/v1/processes/{pid}"),
        Some(READ_TOKEN),
        None,
    )
    .await
    .problem(403);
    assert_eq!(
        nice_in_proc(pid),
        inherited_nice(),
        "no refused request may change the process"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "a refused signal was sent"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    app.stop().await;
}

#[actix_web::test]
async fn a_job_running_when_the_agent_stops_is_lost_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path());
    settings.control.spawn_allow = vec!["sleep".into()];
    let app = crate::helpers::spawn_in(dir, settings.clone()).await;
    let r = send(
        &app,
        "POST",
        "/api/v1/processes",
        Some(r#"{"command": "sleep", "args": ["30"]}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let (pid, job) = (
        r.json()["pid"].as_i64().unwrap(),
        r.json()["job_id"].as_i64().unwrap(),
    );
    assert_eq!(
        read(&app, &format!("/api/v1/jobs/{job}")).await.json()["state"],
        "running"
    );
    let dir = app.stop().await;
    let app = crate::helpers::spawn_in(dir, settings).await;
    assert_eq!(
        read(&app, &format!("/api/v1/jobs/{job}")).await.json()["state"],
        "lost"
    );
    let _ = Command::new("kill").arg(pid.to_string()).status();
    app.stop().await;
}

/// A child killed and reaped however the test ends, so a failed assertion
/// leaves no busy loop behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|v| v.parse().unwrap())
        .collect();
    f[0] + f[1]
}

#[actix_web::test]
async fn cpu_percent_is_per_core_over_the_last_second_or_so() {
    let app = allowing(&[]).await;
    let busy = Reaped(
        Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap(),
    );
    let idle = Reaped(sleeper());
    let (bp, ip) = (busy.0.id(), idle.0.id());
    let cpu = |list: &Value, pid: u32| -> f64 { row(list, pid)["cpu_percent"].as_f64().unwrap() };
    let path = "/api/v1/processes?sort=cpu&fields=pid,cpu_percent,exe";
    let (t0, c0) = (std::time::Instant::now(), cpu_ticks(bp));
    app.get(path).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let list = app.get(path).await.json();
    let (t1, c1) = (std::time::Instant::now(), cpu_ticks(bp));
    // What the loop really got over a span that holds the agent's own:
    // however loaded the machine, the agent must agree with /proc.
    let tps = procfs::ticks_per_second() as f64;
    let truth = (c1 - c0) as f64 / tps / (t1 - t0).as_secs_f64() * 100.0;
    let (b, i) = (cpu(&list, bp), cpu(&list, ip));
    assert!(
        truth > 1.0,
        "the loop never ran ({truth} %): the test says nothing"
    );
    assert!(
        b > truth * 0.5 && b < truth * 1.5 + 10.0 && b <= 110.0,
        "the agent says {b} %, /proc says {truth} % over a slightly longer span"
    );
    assert!(i < 5.0 && i < b, "a sleep used {i} %, the loop {b} %");
    // Sorted by CPU, the busy loop comes before the sleep.
    let order: Vec<u64> = list["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    let pos = |pid: u32| order.iter().position(|&p| p == pid as u64).unwrap();
    assert!(pos(bp) < pos(ip));
    drop((busy, idle));
    app.stop().await;
}
