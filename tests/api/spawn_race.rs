//! The spawn allow list judges a file, and that file is what runs: a
//! symlink the caller swaps between the check and the exec cannot make
//! the agent run, as root, a program that is not allowed.

use crate::helpers::{CONTROL_TOKEN, spawn_with};
use serde_json::json;
use std::{
    os::unix::fs::{PermissionsExt, symlink},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

/// Points `link` at `target` in one step, as an attacker would.
fn swap(link: &Path, target: &Path) {
    let tmp = link.with_extension("next");
    let _ = std::fs::remove_file(&tmp);
    symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, link).unwrap();
}

/// A script that leaves a line in `marker` when it runs.
fn write_evil(script: &Path, marker: &Path) {
    std::fs::write(
        script,
        format!("#!/bin/sh\necho ran >> '{}'\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn on_path(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}

#[actix_web::test]
async fn a_symlink_swapped_in_a_loop_never_runs_what_is_not_allowed() {
    // As PATH finds it, not resolved: where `true` is a multi-call binary,
    // the allow list names `true`, not the binary behind it.
    let truth = on_path("true");
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("evil-ran");
    let evil = work.path().join("evil.sh");
    write_evil(&evil, &marker);
    std::fs::create_dir(work.path().join("bin")).unwrap();
    let link = work.path().join("bin/true");
    swap(&link, &truth);

    let allowed = truth.to_str().unwrap().to_owned();
    let app = spawn_with(|s| s.control.spawn_allow = vec![allowed]).await;

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, link, truth, evil) = (Arc::clone(&stop), link.clone(), truth.clone(), evil);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                swap(&link, &truth);
                swap(&link, &evil);
            }
        })
    };
    let body = json!({"command": link}).to_string();
    let (mut ran, mut refused, mut jobs) = (0, 0, Vec::new());
    for _ in 0..300 {
        let r = app
            .request(
                "POST",
                "/api/v1/processes",
                Some(CONTROL_TOKEN),
                Some(body.as_bytes()),
            )
            .await;
        match r.status {
            201 => {
                ran += 1;
                jobs.push(r.json()["job_id"].as_i64().unwrap());
            }
            403 => refused += 1,
            // Not found as an executable at the instant it was looked up.
            400 => {}
            s => panic!("unexpected {s}: {}", r.text()),
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(ran > 0 && refused > 0, "ran {ran}, refused {refused}");

    let mut codes = Vec::new();
    for job in jobs {
        let path = format!("/api/v1/jobs/{job}");
        assert!(
            app.wait_until(Duration::from_secs(10), || async {
                app.request("GET", &path, Some(CONTROL_TOKEN), None)
                    .await
                    .json()["state"]
                    == "exited"
            })
            .await,
            "job {job} did not end"
        );
        let j = app
            .request("GET", &path, Some(CONTROL_TOKEN), None)
            .await
            .json();
        codes.push(j["exit_code"].clone());
    }
    assert!(
        !marker.exists(),
        "a program not in the allow list ran: {}",
        std::fs::read_to_string(&marker).unwrap_or_default()
    );
    // And what ran was `true` itself, each time.
    assert!(codes.iter().all(|c| *c == 0), "{codes:?}");
    app.stop().await;
}

#[actix_web::test]
async fn an_allowed_file_seen_through_another_mount_namespace_runs_only_as_allowed() {
    let truth = on_path("true");
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("evil-ran");
    let evil = work.path().join("true");
    write_evil(&evil, &marker);
    // In a namespace of its own, the allowed file is mounted over the
    // caller's own `true`: through /proc/<pid>/root it is the allowed file,
    // by its path in the agent's namespace it is the caller's.
    let ready = work.path().join("ready");
    let mut ns = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount --bind '{}' '{}' && touch '{}' && exec sleep 30",
            truth.display(),
            evil.display(),
            ready.display()
        ))
        .spawn()
        .expect("unshare runs (util-linux)");
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while !ready.exists() && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ready.exists(), "the namespace did not get its mount");
    // `exec sleep`: the process unshare started is the one in the namespace.
    let command = format!("/proc/{}/root{}", ns.id(), evil.display());
    let allowed = truth.to_str().unwrap().to_owned();
    let app = spawn_with(|s| s.control.spawn_allow = vec![allowed]).await;
    let body = json!({"command": command}).to_string();
    let r = app
        .request(
            "POST",
            "/api/v1/processes",
            Some(CONTROL_TOKEN),
            Some(body.as_bytes()),
        )
        .await;
    if r.status == 201 {
        let path = format!("/api/v1/jobs/{}", r.json()["job_id"]);
        app.wait_until(Duration::from_secs(10), || async {
            app.request("GET", &path, Some(CONTROL_TOKEN), None)
                .await
                .json()["state"]
                == "exited"
        })
        .await;
    } else {
        r.problem(403);
    }
    let _ = ns.kill();
    let _ = ns.wait();
    assert!(
        !marker.exists(),
        "the caller's own file ran as root through another namespace"
    );
    app.stop().await;
}
