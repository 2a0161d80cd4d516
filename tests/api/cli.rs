//! The client (`hostwatch status`, `ps`, …) against a real agent on
//! loopback: every subcommand, its table and `--json`, the exit codes of a
//! wrong token, a refusal and an agent that is not there.

use crate::{
    helpers::{CONTROL_TOKEN, READ_TOKEN, Reaped},
    lifecycle::{signal, start_with_config, wait_exit},
};
use std::{
    path::Path,
    process::{Command, Output},
    time::{Duration, Instant},
};

fn config(dir: &Path) -> std::path::PathBuf {
    let hash = |t: &str| hex::encode(hostwatch::tokens::sha256(t));
    let up = dir.join("up");
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
workers = 1
[storage]
path = "{db}"
[sampler]
interval = "1s"
[watchdog]
interval = "100ms"
[control]
spawn_allow = ["/bin/true"]
[auth]
public_read = false
[[auth.tokens]]
name = "reader"
scope = "read"
sha256 = "{read}"
[[auth.tokens]]
name = "operator"
scope = "control"
sha256 = "{control}"
[[services]]
name = "web"
manager = "command"
status = "test -f {up}"
start = "touch {up}"
stop = "rm -f {up}"
[[rules]]
name = "web-down"
metric = "service.up"
service = "web"
below = 1
"#,
        db = dir.join("hostwatch.db").display(),
        read = hash(READ_TOKEN),
        control = hash(CONTROL_TOKEN),
        up = up.display(),
    );
    let path = dir.join("hostwatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `hostwatch ARGS` as a user types it, with `token` in HOSTWATCH_TOKEN.
fn hw(port: u16, token: Option<&str>, args: &[&str]) -> Output {
    // An empty working directory: no ./hostwatch.toml of anyone's.
    let cwd = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_hostwatch"));
    c.args(args)
        .arg("--url")
        .arg(format!("http://127.0.0.1:{port}"))
        .env_remove("HOSTWATCH_TOKEN")
        .env_remove("HOSTWATCH_CONFIG")
        .current_dir(cwd.path());
    if let Some(t) = token {
        c.env("HOSTWATCH_TOKEN", t);
    }
    c.output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{o:?}");
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn eventually(limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "never happened");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A POST with the control token, as a script would send one.
fn post(port: u16, path: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {CONTROL_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn every_client_command_answers_from_a_real_agent() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, port, _log) = start_with_config(&config(dir.path()));
    let mut agent = Reaped(vec![agent]);
    let read = Some(READ_TOKEN);
    let control = Some(CONTROL_TOKEN);

    // status: the stopped service and its firing alert are the problems.
    eventually(Duration::from_secs(20), || {
        ok(&hw(port, read, &["status"])).contains("alert web-down")
    });
    let status = ok(&hw(port, read, &["status"]));
    assert!(
        status.starts_with("sampler   running · every 1 s"),
        "{status}"
    );
    assert!(status.contains("service web is stopped"), "{status}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&hw(port, read, &["status", "--json"]))).unwrap();
    assert_eq!(json["sampler"]["running"], true, "{json}");
    assert!(!json["partitions"].as_array().unwrap().is_empty(), "{json}");

    // services, and service start with a read token: refused (exit 5).
    let services = ok(&hw(port, read, &["services"]));
    let row = services
        .lines()
        .find(|l| l.trim_start().starts_with("web"))
        .unwrap();
    assert!(row.contains("stopped"), "{services}");
    let refused = hw(port, read, &["service", "start", "web"]);
    assert_eq!(code(&refused), 5, "{refused:?}");
    assert!(stderr(&refused).contains("control"), "{}", stderr(&refused));
    let started = ok(&hw(port, control, &["service", "start", "web"]));
    assert!(started.contains("running"), "{started}");
    eventually(Duration::from_secs(20), || {
        !ok(&hw(port, read, &["status"])).contains("service web is stopped")
    });

    // alerts: the rule's alert, in a table with its columns.
    let alerts = ok(&hw(port, read, &["alerts"]));
    assert!(alerts.lines().next().unwrap().contains("RULE"), "{alerts}");
    assert!(alerts.contains("web-down"), "{alerts}");

    // silence: a control token; the silence is then listed by the API.
    let silenced = ok(&hw(port, control, &["silence", "web-down", "--for", "30m"]));
    assert!(
        silenced.starts_with("silenced web-down until "),
        "{silenced}"
    );
    let silences = crate::lifecycle::get_json_as(port, "/api/v1/silences", Some(READ_TOKEN));
    assert_eq!(silences[0]["rule"], "web-down", "{silences}");
    let unknown = hw(port, control, &["silence", "no-such-rule"]);
    assert_eq!(code(&unknown), 5);
    assert!(
        stderr(&unknown).contains("no-such-rule"),
        "{}",
        stderr(&unknown)
    );

    // ps: n rows, sorted, and the JSON the API gave.
    let ps = ok(&hw(port, read, &["ps", "-n", "3", "--sort", "mem"]));
    let lines: Vec<&str> = ps.lines().collect();
    assert!(
        lines[0].contains("PID") && lines[0].contains("COMMAND"),
        "{ps}"
    );
    assert_eq!(lines.len(), 5, "header, 3 rows, the count: {ps}");
    assert!(lines[4].starts_with("3 of "), "{ps}");
    let json: serde_json::Value = serde_json::from_str(&ok(&hw(
        port,
        read,
        &["ps", "-n", "2", "--user", "root", "--json"],
    )))
    .unwrap();
    let procs = json["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 2, "{json}");
    assert!(procs.iter().all(|p| p["username"] == "root"), "{json}");

    // On a terminal 60 columns wide: every line fits, and status has
    // colour unless NO_COLOR says no (script(1) gives the terminal).
    let on_tty = |no_color: bool, args: &str| {
        let bin = env!("CARGO_BIN_EXE_hostwatch");
        let out = Command::new("script")
            .args(["-qec"])
            .arg(format!(
                "stty cols 60; {bin} {args} --url http://127.0.0.1:{port}"
            ))
            .arg("/dev/null")
            .env("HOSTWATCH_TOKEN", READ_TOKEN)
            .env("NO_COLOR", if no_color { "1" } else { "" })
            .output()
            .unwrap_or_else(|e| panic!("cannot run script (util-linux): {e}"));
        ok(&out).replace('\r', "")
    };
    let long = "a-command-line-longer-than-the-terminal-is-wide-".repeat(3);
    // perl (essential on Debian) keeps its argv, and is what a kill ends.
    let mut wide = Command::new("perl")
        .args(["-e", "sleep 300", &long])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let narrow = on_tty(false, "ps -n 10000");
    let pid = wide.id().to_string();
    let _ = wide.kill();
    let _ = wide.wait();
    // Its row is there, wrapped to the width.
    let row = narrow
        .lines()
        .position(|l| l.split_whitespace().next() == Some(pid.as_str()))
        .unwrap_or_else(|| panic!("no row for {pid}: {narrow}"));
    assert!(
        narrow
            .lines()
            .nth(row + 1)
            .is_some_and(|l| l.starts_with("  ")),
        "{narrow}"
    );
    assert!(narrow.lines().all(|l| l.chars().count() <= 60), "{narrow}");
    assert!(on_tty(false, "status").contains("\u{1b}[32mrunning"));
    assert!(!on_tty(true, "status").contains('\u{1b}'));

    // history: once a few checks are in.
    crate::lifecycle::wait_for_checks_as(port, 3, READ_TOKEN);
    let history = ok(&hw(port, read, &["history", "cpu", "--since", "1h"]));
    assert!(
        history.starts_with("cpu over the last 1h: min "),
        "{history}"
    );
    assert!(
        history.lines().nth(1).is_some_and(|l| !l.is_empty()),
        "{history}"
    );
    let bad = hw(port, read, &["history", "nonsense"]);
    assert_eq!(code(&bad), 5, "{bad:?}");

    // kill: a process of ours goes; PID 1 is refused.
    let mut victim = Command::new("sleep").arg("300").spawn().unwrap();
    let pid = victim.id().to_string();
    let sent = ok(&hw(port, control, &["kill", &pid, "--signal", "TERM"]));
    assert_eq!(sent, format!("sent TERM to {pid}\n"));
    assert!(!victim.wait().unwrap().success());
    let init = hw(port, control, &["kill", "1"]);
    assert_eq!(code(&init), 5, "{init:?}");
    assert!(stderr(&init).contains("init process"), "{}", stderr(&init));

    // jobs: one started through the API, listed once it ended.
    let spawned = post(port, "/api/v1/processes", r#"{"command": "/bin/true"}"#);
    assert!(spawned.starts_with("HTTP/1.1 201"), "{spawned}");
    eventually(Duration::from_secs(10), || {
        ok(&hw(port, control, &["jobs"])).contains("/bin/true")
    });
    let jobs = ok(&hw(port, control, &["jobs"]));
    let row = jobs.lines().find(|l| l.contains("/bin/true")).unwrap();
    assert!(row.contains("exited") && row.contains("operator"), "{jobs}");

    // A wrong token: exit 4, and the problem's detail.
    let wrong = hw(port, Some("not-a-token"), &["status"]);
    assert_eq!(code(&wrong), 4, "{wrong:?}");
    assert!(
        stderr(&wrong).contains("HOSTWATCH_TOKEN"),
        "{}",
        stderr(&wrong)
    );
    let none = hw(port, None, &["services"]);
    assert_eq!(code(&none), 4, "{none:?}");

    // Found from the config: the same server.listen, no --url.
    let client = dir.path().join("client.toml");
    std::fs::write(
        &client,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[storage]\npath = \"{}\"\n",
            dir.path().join("x.db").display()
        ),
    )
    .unwrap();
    let via_config = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(["services", "--config"])
        .arg(&client)
        .env("HOSTWATCH_TOKEN", READ_TOKEN)
        .env_remove("HOSTWATCH_URL")
        .output()
        .unwrap();
    assert!(ok(&via_config).contains("web"), "{via_config:?}");

    // A ./hostwatch.toml others may write is not taken: root run in a
    // shared directory must not send a token where a planted file says.
    let shared = tempfile::tempdir().unwrap();
    let planted = shared.path().join("hostwatch.toml");
    std::fs::write(
        &planted,
        format!("[server]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(
        &planted,
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .arg("services")
        .current_dir(shared.path())
        .env("HOSTWATCH_TOKEN", READ_TOKEN)
        .env_remove("HOSTWATCH_URL")
        .env_remove("HOSTWATCH_CONFIG")
        .output()
        .unwrap();
    assert_eq!(code(&refused), 1, "{refused:?}");
    assert!(
        stderr(&refused).contains("--config"),
        "{}",
        stderr(&refused)
    );

    // The agent stopped: exit 3, naming where it looked.
    signal(&agent.0[0], rustix::process::Signal::TERM);
    assert!(wait_exit(&mut agent.0[0], Duration::from_secs(10)).success());
    let gone = hw(port, read, &["status"]);
    assert_eq!(code(&gone), 3, "{gone:?}");
    assert!(
        stderr(&gone).contains(&format!("127.0.0.1:{port}")),
        "{}",
        stderr(&gone)
    );
}

#[test]
fn completions_and_the_man_page_come_from_the_command_line_definition() {
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
            .args(args)
            .output()
            .unwrap();
        ok(&o)
    };
    for shell in ["bash", "zsh", "fish"] {
        let text = run(&["completions", shell]);
        for sub in ["status", "services", "silence", "kill"] {
            assert!(text.contains(sub), "{shell} completions lack {sub}");
        }
    }
    // Bash reads its completions without a syntax error.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostwatch.bash");
    std::fs::write(&file, run(&["completions", "bash"])).unwrap();
    let checked = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(checked.status.success(), "{checked:?}");
    let man = run(&["man"]);
    assert!(man.contains(".TH hostwatch 1"), "{man}");
    for sub in ["status", "ps", "history", "completions"] {
        assert!(man.contains(sub), "the man page lacks {sub}");
    }
    assert_eq!(
        code(
            &Command::new(env!("CARGO_BIN_EXE_hostwatch"))
                .args(["completions", "tcsh"])
                .output()
                .unwrap()
        ),
        2
    );
}

#[test]
fn over_https_the_client_trusts_the_configs_certificate_and_acts_on_a_service() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    crate::helpers::smtp::make_cert(&certs);
    let text = std::fs::read_to_string(config(dir.path()))
        .unwrap()
        .replace(
            "workers = 1\n",
            &format!(
                "workers = 1\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
                certs.join("cert.pem").display(),
                certs.join("key.pem").display()
            ),
        );
    let agent_config = dir.path().join("agent.toml");
    std::fs::write(&agent_config, &text).unwrap();
    let (agent, port, _log) = start_with_config(&agent_config);
    let _agent = Reaped(vec![agent]);
    // The client's config: the agent's address and certificate, no --url.
    let client = dir.path().join("client.toml");
    std::fs::write(
        &client,
        text.replace("127.0.0.1:0", &format!("127.0.0.1:{port}")),
    )
    .unwrap();
    let hw = |token: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hostwatch"))
            .args(args)
            .arg("--config")
            .arg(&client)
            .env("HOSTWATCH_TOKEN", token)
            .env_remove("HOSTWATCH_URL")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    for (action, state) in [
        ("start", "running"),
        ("restart", "running"),
        ("stop", "stopped"),
    ] {
        let out = ok(&hw(CONTROL_TOKEN, &["service", action, "web"]));
        let row = out
            .lines()
            .find(|l| l.trim_start().starts_with("web"))
            .unwrap();
        assert!(row.contains(state), "{action}: {out}");
    }
    let status = ok(&hw(READ_TOKEN, &["status"]));
    assert!(status.contains("service web is stopped"), "{status}");
    assert!(!status.contains('\u{1b}'), "colour in a pipe: {status:?}");
    // Another CA: the certificate is not trusted, and that is said.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    crate::helpers::smtp::make_cert(&other);
    let mut c = Command::new(env!("CARGO_BIN_EXE_hostwatch"));
    let distrust = c
        .args(["status", "--config"])
        .arg(&client)
        .arg("--ca")
        .arg(other.join("cert.pem"))
        .env("HOSTWATCH_TOKEN", READ_TOKEN)
        .output()
        .unwrap();
    assert_eq!(code(&distrust), 3, "{distrust:?}");
    assert!(
        stderr(&distrust).to_lowercase().contains("certificate"),
        "{}",
        stderr(&distrust)
    );
}
