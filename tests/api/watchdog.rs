//! The watchdog end to end: real processes killed by rules, a real HTTP
//! service whose latency a probe watches, real SMTP and webhook receivers,
//! and the agent's own alerts, messages and actions read back over the API.

use crate::helpers::{CONTROL_TOKEN, READ_TOKEN, TestApp, spawn_with};
use hostwatch::config::Settings;
use serde_json::Value;
use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Takes the watchdog sections of a TOML text into the settings.
pub fn watchdog_from(s: &mut Settings, text: &str) {
    let w = Settings::parse(text, Path::new("watchdog.toml"), std::iter::empty())
        .unwrap_or_else(|e| panic!("test config: {e}"));
    s.watchdog = w.watchdog;
    s.notifiers = w.notifiers;
    s.probes = w.probes;
    s.rules = w.rules;
    s.control = w.control;
    if !w.services.is_empty() && text.contains("[[services]]") {
        s.services = w.services;
    }
}

/// A process whose name (comm) is `name`: `sh` started through a symlink
/// of that name. Busy spins a core; idle waits on its stdin.
pub struct Worker {
    pub child: Child,
}

pub fn unique_name(prefix: &str) -> String {
    let mut r = [0u8; 4];
    getrandom::fill(&mut r).unwrap();
    format!("{prefix}{}", hex::encode(r))
}

impl Worker {
    pub fn start(dir: &Path, name: &str, busy: bool) -> Worker {
        let script = if busy {
            "while :; do :; done"
        } else {
            "read x"
        };
        Self::run(dir, name, script)
    }

    /// `sh -c script` under the name `name`.
    pub fn run(dir: &Path, name: &str, script: &str) -> Worker {
        assert!(name.len() <= 15, "the kernel keeps 15 bytes of a name");
        let link = dir.join(name);
        if !link.exists() {
            std::os::unix::fs::symlink("/bin/sh", &link).unwrap();
        }
        let child = Command::new(&link)
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Worker { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has ended (and is reaped).
    pub fn ended(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// Waits up to `limit` for it to end (without blocking the runtime the
    /// agent under test runs on); says how long it took.
    pub async fn wait_end(&mut self, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.ended() {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn alerts(app: &TestApp, query: &str) -> Vec<Value> {
    let r = app
        .request(
            "GET",
            &format!("/api/v1/alerts?{query}"),
            Some(READ_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().as_array().cloned().unwrap_or_default()
}

pub async fn alert(app: &TestApp, id: i64) -> Value {
    let r = app
        .request(
            "GET",
            &format!("/api/v1/alerts/{id}"),
            Some(READ_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Polls until `f` answers Some or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Some(v) = f().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// A `command` service that runs while `dir/on` exists.
fn flag_service(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "[[services]]\nname = \"flag\"\nmanager = \"command\"\nstatus = \"test -e '{d}/on'\"\n\
         start = \"touch '{d}/on'\"\nstop = \"rm -f '{d}/on'\"\ntimeout = \"5s\"\n"
    )
}

fn runaway_rule(name: &str, for_: &str, action: &str) -> String {
    format!(
        r#"
[watchdog]
interval = "100ms"

[[rules]]
name = "runaway"
metric = "process.cpu_percent"
process = "{name}"
above = 20
for = "{for_}"
{action}
"#
    )
}

const KILL: &str = "[[rules.actions]]\nkind = \"kill\"\nsignal = \"TERM\"\ngrace = \"1s\"\n";

#[actix_web::test]
async fn a_busy_process_is_killed_after_for_and_an_idle_one_of_the_same_name_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("wk");
    let text = runaway_rule(&name, "1s", KILL);
    let app = spawn_with(|s| watchdog_from(s, &text)).await;
    let mut idle = Worker::start(dir.path(), &name, false);
    let started = Instant::now();
    let mut busy = Worker::start(dir.path(), &name, true);
    // `for` is 1 s and the loop ticks every 100 ms: the kill is due at
    // 1.2 s; the bound leaves room for a loaded machine.
    let took = busy.wait_end(Duration::from_secs(6)).await;
    let took = took.unwrap_or_else(|| panic!("the busy worker still runs after 6 s"));
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "killed before `for` had passed: {:?}",
        started.elapsed()
    );
    eprintln!("busy worker killed {took:?} after it started (for = 1s, interval = 100ms)");
    assert!(!idle.ended(), "the idle worker of the same name was killed");

    // The alert fired, its action ran, and it resolved when the process went.
    let firing = eventually(Duration::from_secs(5), || async {
        alerts(&app, "rule=runaway&state=resolved")
            .await
            .into_iter()
            .find(|a| {
                a["subject"]
                    .as_str()
                    .is_some_and(|s| s.contains(&busy.pid().to_string()))
            })
    })
    .await
    .expect("a resolved alert for the busy worker");
    assert!(firing["fired_at"].is_string(), "{firing}");
    let detail = alert(&app, firing["id"].as_i64().unwrap()).await;
    let actions = detail["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{detail}");
    assert_eq!(actions[0]["kind"], "kill");
    assert_eq!(actions[0]["status"], "done", "{detail}");
    let states: Vec<&str> = detail["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["to"].as_str())
        .collect();
    assert_eq!(states, ["pending", "firing", "resolved"], "{detail}");

    // Audited as the watchdog's, with the outcome.
    let audit = app
        .request("GET", "/api/v1/audit?limit=50", Some(CONTROL_TOKEN), None)
        .await
        .json();
    let kill = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "watchdog.kill")
        .unwrap_or_else(|| panic!("no watchdog.kill in the audit: {audit}"));
    assert_eq!(kill["actor"], "watchdog");
    assert_eq!(kill["outcome"], "ok", "{kill}");
    app.stop().await;
}

#[actix_web::test]
async fn dry_run_records_the_kill_and_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("wd");
    let text = runaway_rule(&name, "0s", &format!("{KILL}dry_run = true\n"));
    let app = spawn_with(|s| watchdog_from(s, &text)).await;
    let mut busy = Worker::start(dir.path(), &name, true);
    let action = eventually(Duration::from_secs(6), || async {
        let list = alerts(&app, "rule=runaway&state=firing").await;
        let a = list.first()?;
        let d = alert(&app, a["id"].as_i64()?).await;
        d["actions"].as_array()?.first().cloned()
    })
    .await
    .expect("a firing alert with its action");
    assert_eq!(action["status"], "dry_run", "{action}");
    assert!(
        action["outcome"]
            .as_str()
            .unwrap()
            .contains("would send TERM"),
        "{action}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!busy.ended(), "a dry run killed the worker");
    app.stop().await;
}

#[actix_web::test]
async fn a_silence_keeps_the_kill_and_the_message_from_happening() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("ws");
    let text = format!(
        "{}\n[[notifiers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n",
        runaway_rule(&name, "0s", KILL)
            .replace("for = \"0s\"", "for = \"0s\"\nnotify = [\"hook\"]")
    );
    let app = spawn_with(|s| watchdog_from(s, &text)).await;
    let r = app
        .control(
            "/api/v1/silences",
            Some(r#"{"rule": "runaway", "for": "1h", "comment": "maintenance"}"#),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // A silence counts from the next tick: no wait for the once-a-second read.
    let mut busy = Worker::start(dir.path(), &name, true);
    let detail = eventually(Duration::from_secs(6), || async {
        let list = alerts(&app, "rule=runaway&state=firing").await;
        let d = alert(&app, list.first()?["id"].as_i64()?).await;
        (!d["actions"].as_array()?.is_empty()).then_some(d)
    })
    .await
    .expect("a firing alert");
    assert_eq!(detail["actions"][0]["status"], "silenced", "{detail}");
    assert_eq!(detail["notifications"][0]["status"], "silenced", "{detail}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!busy.ended(), "a silenced rule killed the worker");
    app.stop().await;
}

#[actix_web::test]
async fn an_exec_action_runs_as_a_job_with_the_alert_in_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("we");
    let out = dir.path().join("alert.env");
    let action = format!(
        "[[rules.actions]]\nkind = \"exec\"\ncommand = \"/bin/sh\"\nargs = [\"-c\", \"env > {}\"]\n\n[control]\nspawn_allow = [\"/bin/sh\"]\n",
        out.display()
    );
    let text = runaway_rule(&name, "0s", &action);
    let app = spawn_with(|s| watchdog_from(s, &text)).await;
    let _busy = Worker::start(dir.path(), &name, true);
    let env = eventually(Duration::from_secs(6), || async {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|s| s.contains("HOSTWATCH_ALERT_ID"))
    })
    .await
    .expect("the exec action wrote its environment");
    assert!(env.contains("HOSTWATCH_ALERT_RULE=runaway"), "{env}");
    assert!(env.contains("HOSTWATCH_ALERT_STATE=firing"), "{env}");
    assert!(
        env.contains(&format!("HOSTWATCH_ALERT_SUBJECT={name} (pid")),
        "{env}"
    );
    // The agent's own environment does not reach it.
    assert!(!env.contains("CARGO"), "{env}");
    let jobs = app
        .request("GET", "/api/v1/jobs", Some(READ_TOKEN), None)
        .await
        .json();
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .any(|j| j["actor"] == "watchdog"),
        "{jobs}"
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_service_that_is_down_is_restarted_through_its_manager_and_the_alert_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let flag = flag_service(dir.path());
    let text = format!(
        r#"
[watchdog]
interval = "100ms"

{flag}
[[rules]]
name = "flag-down"
metric = "service.up"
service = "flag"
below = 1
[[rules.actions]]
kind = "restart"
"#
    );
    let app = spawn_with(|s| watchdog_from(s, &text)).await;
    let on = dir.path().join("on");
    let resolved = eventually(Duration::from_secs(10), || async {
        let list = alerts(&app, "rule=flag-down&state=resolved").await;
        list.first().cloned()
    })
    .await
    .expect("the alert resolved once the service ran again");
    assert!(on.exists(), "the restart did not run the start command");
    let detail = alert(&app, resolved["id"].as_i64().unwrap()).await;
    assert_eq!(detail["actions"][0]["kind"], "restart", "{detail}");
    assert_eq!(detail["actions"][0]["status"], "done", "{detail}");
    assert_eq!(resolved["subject"], "flag");
    app.stop().await;
}

#[actix_web::test]
async fn a_process_that_ignores_term_gets_kill_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("wt");
    let kill = "[[rules.actions]]\nkind = \"kill\"\nsignal = \"TERM\"\ngrace = \"500ms\"\n";
    let text = runaway_rule(&name, "0s", kill);
    let app = spawn_with(|s| watchdog_from(s, &text)).await;
    let mut stubborn = Worker::run(dir.path(), &name, "trap '' TERM; while :; do :; done");
    let took = stubborn.wait_end(Duration::from_secs(8)).await;
    assert!(took.is_some(), "a process ignoring TERM outlived the grace");
    let status = stubborn.child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "it took KILL: {status:?}");
    let action = eventually(Duration::from_secs(5), || async {
        let list = alerts(&app, "rule=runaway").await;
        let d = alert(&app, list.first()?["id"].as_i64()?).await;
        d["actions"]
            .as_array()?
            .first()
            .filter(|a| a["status"] == "done")
            .cloned()
    })
    .await
    .expect("the kill action finished");
    let outcome = action["outcome"].as_str().unwrap();
    assert!(outcome.contains("sent KILL"), "{outcome}");
    app.stop().await;
}

#[actix_web::test]
async fn a_subject_that_resolves_does_not_fire_again_within_the_flap_guard() {
    let dir = tempfile::tempdir().unwrap();
    let flag = flag_service(dir.path());
    let text = format!(
        r#"
[watchdog]
interval = "100ms"
flap_guard = "1h"

{flag}
[[rules]]
name = "flag-down"
metric = "service.up"
service = "flag"
below = 1
"#
    );
    let app = spawn_with(|s| watchdog_from(s, &text)).await;
    let on = dir.path().join("on");
    let state = |want: &'static str| {
        let app = &app;
        async move {
            let rules = app.get("/api/v1/rules").await.json();
            (rules[0]["subjects"][0]["state"] == want).then_some(())
        }
    };
    assert!(
        eventually(Duration::from_secs(5), || state("firing"))
            .await
            .is_some()
    );
    std::fs::write(&on, "").unwrap();
    assert!(
        eventually(Duration::from_secs(5), || state("inactive"))
            .await
            .is_some()
    );
    std::fs::remove_file(&on).unwrap();
    // Down again at once: pending (it shows), but no second alert fires.
    assert!(
        eventually(Duration::from_secs(5), || state("pending"))
            .await
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        state("pending").await.is_some(),
        "it fired again within the guard"
    );
    let all = alerts(&app, "rule=flag-down").await;
    assert_eq!(
        all.iter().filter(|a| a["fired_at"].is_string()).count(),
        1,
        "{all:?}"
    );
    app.stop().await;
}

#[actix_web::test]
async fn an_anonymous_reader_sees_no_exec_arguments_or_probe_output() {
    let text = r#"
[watchdog]
interval = "100ms"

[control]
spawn_allow = ["/bin/sh"]

[[probes]]
name = "script"
kind = "exec"
command = "/bin/sh"
args = ["-c", "echo top-secret-output >&2; exit 1"]
interval = "200ms"

[[rules]]
name = "script-fails"
metric = "probe.ok"
probe = "script"
below = 1
[[rules.actions]]
kind = "exec"
command = "/bin/sh"
args = ["-c", "echo secret-argument"]
"#;
    let app = spawn_with(|s| watchdog_from(s, text)).await;
    let firing = eventually(Duration::from_secs(5), || async {
        let list = alerts(&app, "rule=script-fails").await;
        let d = alert(&app, list.first()?["id"].as_i64()?).await;
        (d["actions"][0]["status"] == "done").then_some(d["id"].as_i64()?)
    })
    .await
    .expect("the exec action ran");
    let with_token = app
        .request(
            "GET",
            "/api/v1/probes/script/results",
            Some(READ_TOKEN),
            None,
        )
        .await
        .text();
    assert!(with_token.contains("top-secret-output"), "{with_token}");
    for path in [
        "/api/v1/probes".to_owned(),
        "/api/v1/probes/script/results".to_owned(),
        "/api/v1/rules".to_owned(),
        format!("/api/v1/alerts/{firing}"),
    ] {
        let body = app.get(&path).await.text();
        assert!(!body.contains("top-secret-output"), "{path}: {body}");
        assert!(!body.contains("secret-argument"), "{path}: {body}");
    }
    app.stop().await;
}
