//! The dashboard in a real browser (issue 12, SPEC §9): Debian's Chromium,
//! driven by playwright-core (`tests/browser/dashboard.mjs`), against the
//! real binary on a database that holds a year of checks, with the sampler
//! running. The script checks the page (no console error or CSP violation,
//! charts for 1 h and 1 y, zoom, the sampler and a kill from the page, a
//! phone's width, dark and light) and measures the first load against the
//! issue's budget; this test seeds, starts, bounds it in time and reads
//! the audit the page's actions left.
//!
//! Never skipped: without Chromium, node or `tests/browser/node_modules`
//! (all installed by `scripts/test`) it fails, in CI and out of it.

use crate::{
    helpers::{CONTROL_TOKEN, READ_TOKEN},
    lifecycle::{get_json_as, signal, start_with_config, wait_exit},
};
use std::{
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The script's own limit; this test ends it a little later.
const SCRIPT_LIMIT: Duration = Duration::from_secs(100);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// The agent and the browser script (in a process group of its own, with
/// Chromium and the process it spawns to be killed): ended however the
/// test ends.
struct Reaped {
    agent: Option<Child>,
    script: Option<Child>,
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(c) = &mut self.script
            && let Some(pid) = rustix::process::Pid::from_raw(c.id() as i32)
        {
            // TERM first: Playwright closes Chromium and the script its
            // victim; whatever is left of the group then goes.
            use rustix::process::{Signal, kill_process_group};
            let _ = kill_process_group(pid, Signal::TERM);
            let end = Instant::now() + Duration::from_secs(3);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = kill_process_group(pid, Signal::KILL);
            let _ = c.wait();
        }
        if let Some(c) = &mut self.agent {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn version_in(file: &Path, pointer: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.pointer(pointer)?.as_str().map(str::to_owned)
}

/// What the script needs, as `scripts/test` installs it; a failure that
/// says so otherwise. Returns the `node` to run.
fn prerequisites() -> String {
    let fix = "run scripts/test, which installs it (this test fails rather than skips, with CI=true or not)";
    let node = std::env::var("HW_NODE").unwrap_or_else(|_| "node".into());
    let version = Command::new(&node).arg("--version").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "node ({node}) does not run: {version:?}; {fix}"
    );
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing (Debian's chromium); {fix}"
    );
    let dir = browser_dir();
    let locked = version_in(
        &dir.join("package-lock.json"),
        "/packages/node_modules~1playwright-core/version",
    )
    .expect("tests/browser/package-lock.json names playwright-core's version");
    let installed = version_in(
        &dir.join("node_modules/playwright-core/package.json"),
        "/version",
    );
    assert_eq!(
        installed.as_deref(),
        Some(locked.as_str()),
        "playwright-core {locked} is not installed in tests/browser/node_modules \
         (found {installed:?}); {fix}"
    );
    node
}

fn hostwatch(args: &[&str], db: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(["generate", "--db"])
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "generate {args:?}: {out:?}");
}

/// A year of checks an hour apart (hourly roll-ups for the 1 y chart; the
/// agent purges the raw ones past 30 days), then the last two days a
/// minute apart, as the sampler leaves them at its default interval (60 s),
/// which the agent keeps: the budget is measured as most agents run.
fn seed(db: &Path) {
    hostwatch(&["--days", "366", "--interval", "1h"], db);
    hostwatch(&["--days", "2", "--interval", "60s", "--append"], db);
}

fn config(dir: &Path) -> PathBuf {
    let config = dir.join("hostwatch.toml");
    let hash = |t: &str| hex::encode(hostwatch::tokens::sha256(t));
    std::fs::write(
        &config,
        format!(
            r#"services = []
[server]
listen = "127.0.0.1:0"
workers = 2
[storage]
path = "{db}"
[sampler]
autostart = true
[[auth.tokens]]
name = "reader"
scope = "read"
sha256 = "{read}"
[[auth.tokens]]
name = "operator"
scope = "control"
sha256 = "{control}"
# Nothing listens there: the problems strip shows it failing.
[[remote_write]]
name = "central"
url = "http://127.0.0.1:{closed}/api/v1/write"
"#,
            db = dir.join("hostwatch.db").display(),
            closed = crate::helpers::prometheus::free_port(),
            read = hash(READ_TOKEN),
            control = hash(CONTROL_TOKEN),
        ),
    )
    .unwrap();
    config
}

#[test]
fn the_dashboard_works_in_chromium_within_its_budget() {
    let node = prerequisites();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    seed(&dir.path().join("hostwatch.db"));
    let seeded = started.elapsed();
    let (agent, port, _log) = start_with_config(&config(dir.path()));
    let mut reaped = Reaped {
        agent: Some(agent),
        script: None,
    };

    let out_path = dir.path().join("browser.out");
    let out = std::fs::File::create(&out_path).unwrap();
    let script = Command::new(&node)
        .arg(browser_dir().join("dashboard.mjs"))
        .current_dir(browser_dir())
        .env("HW_BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("HW_READ_TOKEN", READ_TOKEN)
        .env("HW_CONTROL_TOKEN", CONTROL_TOKEN)
        .env("HW_CHROMIUM", CHROMIUM)
        .env("HW_TIME_LIMIT_MS", SCRIPT_LIMIT.as_millis().to_string())
        .env_remove("HW_SCREENSHOT_DIR")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .unwrap();
    reaped.script = Some(script);
    let end = Instant::now() + SCRIPT_LIMIT + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = reaped.script.as_mut().unwrap().try_wait().unwrap() {
            // Reaped: its pid, and so its group's id, may be reused now.
            reaped.script = None;
            break Some(s);
        }
        if Instant::now() > end {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    println!(
        "seeded in {:.1} s; browser script:\n{output}",
        seeded.as_secs_f64()
    );
    let status = status.unwrap_or_else(|| {
        panic!(
            "tests/browser/dashboard.mjs did not end within {:?}",
            SCRIPT_LIMIT + Duration::from_secs(15)
        )
    });
    assert!(
        status.success(),
        "tests/browser/dashboard.mjs failed ({status}); its output is above"
    );
    assert!(
        output.lines().any(|l| l.starts_with("BUDGET {")),
        "no BUDGET line"
    );

    // What the page did, as the agent recorded it.
    let audit = get_json_as(port, "/api/v1/audit?limit=1000", Some(CONTROL_TOKEN));
    let rows = audit.as_array().unwrap();
    let did = |actor: &str, action: &str, outcome: &str| {
        rows.iter()
            .any(|r| r["actor"] == actor && r["action"] == action && r["outcome"] == outcome)
    };
    for (actor, action, outcome) in [
        ("operator", "sampler.stop", "ok"),
        ("operator", "sampler.start", "ok"),
        ("reader", "sampler.stop", "refused"),
        ("operator", "process.signal", "ok"),
    ] {
        assert!(
            did(actor, action, outcome),
            "no audit row {actor} {action} {outcome}: {audit:#}"
        );
    }
    let sampler = get_json_as(port, "/api/v1/sampler", Some(READ_TOKEN));
    assert_eq!(sampler["running"], true, "{sampler}");

    let agent = reaped.agent.as_mut().unwrap();
    assert!(
        agent.try_wait().unwrap().is_none(),
        "the agent exited under the page"
    );
    signal(agent, rustix::process::Signal::TERM);
    assert!(wait_exit(agent, Duration::from_secs(10)).success());
    println!(
        "the whole test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
