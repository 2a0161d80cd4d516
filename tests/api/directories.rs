//! Watched directories, measured in the background, against a tree the
//! test makes; and a walk of `/` that must not hold up shutdown.

use crate::{
    helpers::spawn_with,
    lifecycle::{get_json, signal, start_agent, wait_exit},
};
use hostwatch::config::DirectorySettings;
use std::{
    io::Write,
    os::unix::fs::MetadataExt,
    path::Path,
    time::{Duration, Instant},
};

/// Writes a file and waits until it is on disk, so its block count is final
/// (a compressing filesystem settles it only at writeback).
fn write_synced(path: &Path, data: &[u8]) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(data).unwrap();
    f.sync_all().unwrap();
}

/// What `du` counts under `root`: every entry's blocks, symlinks not followed.
fn allocated(root: &Path) -> u64 {
    std::fs::read_dir(root)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            m.blocks() * 512 + if m.is_dir() { allocated(&e.path()) } else { 0 }
        })
        .sum()
}

#[actix_web::test]
async fn a_watched_tree_is_measured_in_the_background() {
    let tree = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tree.path().join("logs/old")).unwrap();
    write_synced(&tree.path().join("logs/a.log"), &[b'a'; 10_000]);
    write_synced(&tree.path().join("logs/old/b.log"), &[b'b'; 250_000]);
    write_synced(&tree.path().join("c"), b"");
    let dirs = vec![
        DirectorySettings {
            name: "logs".into(),
            path: tree.path().to_path_buf(),
            refresh: Duration::from_secs(3600),
        },
        DirectorySettings {
            name: "gone".into(),
            path: tree.path().join("missing"),
            refresh: Duration::from_secs(3600),
        },
    ];
    let app = spawn_with(|s| s.directories = dirs).await;
    let measured = app
        .wait_until(Duration::from_secs(10), || async {
            app.get("/api/v1/directories")
                .await
                .json()
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["measured_at"].is_string())
        })
        .await;
    assert!(measured, "not measured in time");
    let list = app.get("/api/v1/directories").await.json();
    let logs = &list[0];
    assert_eq!(logs["name"], "logs");
    assert_eq!(logs["files"], 3);
    assert_eq!(logs["dirs"], 3);
    assert_eq!(logs["apparent_bytes"], 260_000);
    // Not >= the apparent size: a compressing filesystem stores less.
    assert_eq!(logs["bytes"], allocated(tree.path()));
    assert_eq!(logs["complete"], true);
    let share = logs["share_percent"].as_f64().unwrap();
    assert!(share > 0.0 && share < 100.0, "{share}");
    assert!(list[1]["error"].as_str().unwrap().contains("missing"));
    assert!(list[1]["bytes"].is_null());
    app.stop().await;
}

#[test]
fn sigterm_during_a_walk_of_the_root_stops_the_agent_within_5_seconds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hostwatch.toml"),
        "[[directories]]\nname = \"root\"\npath = \"/\"\nrefresh = \"5m\"\n",
    )
    .unwrap();
    let mut agent = start_agent(dir.path(), "1m");
    assert_eq!(get_json(agent.port, "/healthz")["status"], "ok");
    // The walk starts with the agent: let it get well under way.
    std::thread::sleep(Duration::from_millis(400));
    let walking = get_json(agent.port, "/api/v1/directories")[0]["measured_at"].is_null();
    let started = Instant::now();
    signal(&agent.child, rustix::process::Signal::TERM);
    let status = wait_exit(&mut agent.child, Duration::from_secs(5));
    assert!(status.success(), "exit status {status}");
    assert!(started.elapsed() < Duration::from_secs(5));
    if !walking {
        eprintln!("note: / was walked whole within 400 ms; the stop met no walk");
    }
}
