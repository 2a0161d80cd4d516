//! An anonymous caller sees of other users' processes what an unprivileged
//! local user sees in /proc; a read token sees everything; jobs need a token.

use crate::helpers::{READ_TOKEN, spawn_app};
use std::process::{Child, Command, Stdio};

/// The fields /proc keeps from an unprivileged user, with the file each
/// comes from.
const PRIVATE: [(&str, &str); 6] = [
    ("exe", "exe"),
    ("cwd", "cwd"),
    ("io_counters", "io"),
    ("memory_maps", "maps"),
    ("open_files", "fd"),
    ("num_fds", "fd"),
];

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Which of `/proc/<pid>/<file>` the user `nobody` can read, asked of a
/// real process running as nobody.
fn readable_by_nobody(pid: u32) -> Vec<String> {
    let script = format!(
        "for f in exe cwd; do readlink /proc/{pid}/$f >/dev/null 2>&1 && echo $f; done; \
         for f in io maps; do cat /proc/{pid}/$f >/dev/null 2>&1 && echo $f; done; \
         ls /proc/{pid}/fd/ >/dev/null 2>&1 && echo fd; true"
    );
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
            &script,
        ])
        .output()
        .expect("setpriv (util-linux) runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn root_sleeper() -> Child {
    Command::new("sleep")
        .arg("300")
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

#[actix_web::test]
async fn anonymous_callers_get_the_unprivileged_view_of_other_users_processes() {
    assert!(
        is_root(),
        "this test compares the agent's view with nobody's: run it as root (scripts/test does)"
    );
    let app = spawn_app().await;
    let mut child = root_sleeper();
    let pid = child.id();
    let readable = readable_by_nobody(pid);
    for (field, file) in PRIVATE {
        assert!(
            !readable.iter().any(|r| r == file),
            "nobody can read /proc/{pid}/{file} on this kernel, so {field} is not private here"
        );
    }

    let anon = app.get(&format!("/api/v1/processes/{pid}")).await.json();
    let full = app
        .request(
            "GET",
            &format!("/api/v1/processes/{pid}"),
            Some(READ_TOKEN),
            None,
        )
        .await
        .json();
    for (field, _) in PRIVATE {
        assert!(
            anon[field].is_null(),
            "{field} hidden from anonymous: {}",
            anon[field]
        );
        assert!(!full[field].is_null(), "{field} shown to a read token");
    }
    // What /proc shows everyone is shown to anonymous callers too.
    for field in ["name", "cmdline", "username", "memory_info", "threads"] {
        assert!(!anon[field].is_null(), "{field} is public in /proc");
    }

    let list = app
        .get("/api/v1/processes?fields=all&name=sleep")
        .await
        .json();
    let row = list["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .cloned()
        .expect("the sleep is listed");
    for (field, _) in PRIVATE {
        assert!(row[field].is_null(), "{field} hidden in the list too");
    }
    let listed = app
        .request(
            "GET",
            "/api/v1/processes?fields=exe&name=sleep",
            Some(READ_TOKEN),
            None,
        )
        .await
        .json();
    assert!(
        listed["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pid"] == pid && p["exe"].as_str().is_some_and(|e| e.ends_with("sleep"))),
        "{listed}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    app.stop().await;
}

#[actix_web::test]
async fn jobs_need_a_token_even_when_reads_are_public() {
    let app = spawn_app().await;
    for path in ["/api/v1/jobs", "/api/v1/jobs/1", "/api/v1/audit"] {
        app.get(path).await.problem(401);
    }
    let r = app
        .request("GET", "/api/v1/jobs", Some(READ_TOKEN), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    app.stop().await;
}
