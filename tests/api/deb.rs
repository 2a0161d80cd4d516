//! The Debian package, as an operator installs it: `dpkg -i` into this
//! machine, its files, modes and owners, `hostwatch check` and the agent as
//! installed with `hostwatch status` against it, then `dpkg -r` (state and
//! config kept) and `dpkg -P` (all gone). scripts/test builds the package
//! (scripts/package) and names it in HW_DEB; without it the test builds it.
//! There is no systemd as PID 1 here: the unit is checked by
//! `systemd-analyze verify` (tests/api/packaging.rs), not started.

use crate::{
    helpers::{Reaped, prometheus::free_port},
    lifecycle::{await_listening, signal, wait_exit},
};
use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::Duration,
};

fn package() -> PathBuf {
    if let Ok(p) = std::env::var("HW_DEB") {
        return PathBuf::from(p);
    }
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/package"))
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "scripts/package failed");
    let name = String::from_utf8(out.stdout).unwrap();
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name.trim())
}

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{o:?}");
    String::from_utf8(o.stdout).unwrap()
}

/// Purges the package whatever happens, so that the machine is left as found.
struct Purged;
impl Drop for Purged {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", "hostwatch"]);
    }
}

fn mode_owner(path: &str) -> (u32, u32, u32) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

#[test]
fn the_package_installs_runs_answers_the_client_and_purges_cleanly() {
    let deb = package();
    assert!(deb.is_file(), "{}", deb.display());
    assert!(
        run("dpkg", &["-s", "hostwatch"]).stdout.is_empty()
            || !Path::new("/usr/bin/hostwatch").exists(),
        "hostwatch is installed on this machine already"
    );
    let _purged = Purged;
    ok(run("dpkg", &["-i", deb.to_str().unwrap()]));

    for (path, mode) in [
        ("/usr/bin/hostwatch", 0o755),
        ("/etc/hostwatch/hostwatch.toml", 0o640),
        ("/var/lib/hostwatch", 0o700),
        ("/usr/lib/systemd/system/hostwatch.service", 0o644),
        ("/usr/share/man/man1/hostwatch.1.gz", 0o644),
        ("/usr/share/bash-completion/completions/hostwatch", 0o644),
        ("/usr/share/zsh/vendor-completions/_hostwatch", 0o644),
        ("/usr/share/fish/vendor_completions.d/hostwatch.fish", 0o644),
    ] {
        assert_eq!(mode_owner(path), (mode, 0, 0), "{path}");
    }
    let conffiles = ok(run(
        "dpkg-query",
        &["--showformat=${Conffiles}", "--show", "hostwatch"],
    ));
    assert!(
        conffiles.contains("/etc/hostwatch/hostwatch.toml"),
        "{conffiles}"
    );
    let unit = std::fs::read_to_string("/usr/lib/systemd/system/hostwatch.service").unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/hostwatch serve --config /etc/hostwatch/hostwatch.toml")
    );
    assert!(unit.contains("ProtectSystem=strict") && unit.contains("StateDirectoryMode=0700"));

    // As installed: one check, then the agent and the client beside it.
    let check = ok(run(
        "/usr/bin/hostwatch",
        &["check", "--config", "/etc/hostwatch/hostwatch.toml"],
    ));
    let check: serde_json::Value = serde_json::from_str(&check).unwrap();
    assert!(check["taken_at"].is_string(), "{check}");
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let mut agent = Command::new("/usr/bin/hostwatch")
        .args(["serve", "--config", "/etc/hostwatch/hostwatch.toml"])
        .env("HOSTWATCH_SERVER__LISTEN", &listen)
        .env("RUST_LOG", "info")
        .current_dir("/")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = await_listening(&mut agent);
    let mut agent = Reaped(vec![agent]);
    assert_eq!(
        mode_owner("/var/lib/hostwatch/hostwatch.db.token"),
        (0o600, 0, 0)
    );
    // The client as an operator types it: no flags, from /, the installed
    // config and the generated token.
    let client = |args: &[&str]| {
        Command::new("/usr/bin/hostwatch")
            .args(args)
            .env("HOSTWATCH_SERVER__LISTEN", &listen)
            .env_remove("HOSTWATCH_TOKEN")
            .env_remove("HOSTWATCH_CONFIG")
            .current_dir("/")
            .output()
            .unwrap()
    };
    let status = ok(client(&["status"]));
    assert!(status.starts_with("sampler   running"), "{status}");
    // jobs needs a token: the generated one was found.
    assert!(client(&["jobs"]).status.success());
    signal(&agent.0[0], rustix::process::Signal::TERM);
    assert!(wait_exit(&mut agent.0[0], Duration::from_secs(10)).success());

    // Removed: the binary goes, the config and the history stay.
    ok(run("dpkg", &["-r", "hostwatch"]));
    assert!(!Path::new("/usr/bin/hostwatch").exists());
    assert!(Path::new("/etc/hostwatch/hostwatch.toml").exists());
    assert!(Path::new("/var/lib/hostwatch/hostwatch.db").exists());
    // Purged: nothing left.
    ok(run("dpkg", &["-P", "hostwatch"]));
    assert!(!Path::new("/etc/hostwatch").exists());
    assert!(!Path::new("/var/lib/hostwatch").exists());
    assert!(run("dpkg", &["-s", "hostwatch"]).stdout.is_empty());
}
