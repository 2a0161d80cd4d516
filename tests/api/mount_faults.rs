//! Mounts that misbehave, for real: a FUSE filesystem whose daemon never
//! answers (`helpers/fuse_hung.py`, mounted from /dev/fuse), as a dead NFS
//! server or a stuck FUSE daemon would, and a mount point whose name is not
//! UTF-8. Checks keep coming on time with the hung mount `null` and named,
//! it comes back once it answers, and the agent still stops on SIGTERM.

use crate::{
    helpers::{
        Response, TestApp,
        mounts::{mount, unmet},
        spawn_with,
    },
    lifecycle::{get_json, signal, start_agent, wait_exit},
};
use serde_json::Value;
use std::{
    io::{BufRead, BufReader},
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The hung filesystem: 1000 blocks of 4 KiB once it answers.
const ANSWERED_TOTAL: u64 = 1000 * 4096;

/// A FUSE mount whose daemon does not answer until `release` is called;
/// unmounted lazily and its daemon killed when dropped (which also ends any
/// call still stuck on it).
struct HungMount {
    point: PathBuf,
    release: PathBuf,
    daemon: Child,
    _dir: tempfile::TempDir,
}

impl HungMount {
    fn start() -> Option<Self> {
        if !rustix::process::geteuid().is_root() {
            return unmet("mounting a FUSE filesystem needs root; run the tests as root");
        }
        if !Path::new("/dev/fuse").exists() {
            return unmet("no /dev/fuse: load the fuse module (modprobe fuse)");
        }
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let point = base.join("hung");
        std::fs::create_dir(&point).unwrap();
        let release = base.join("release");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/helpers/fuse_hung.py");
        let mut daemon = Command::new("python3")
            .arg(script)
            .arg(&point)
            .arg(&release)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim() != "mounted" {
            let _ = daemon.kill();
            let _ = daemon.wait();
            return unmet(&format!("the hung FUSE filesystem did not mount: {line:?}"));
        }
        Some(Self {
            point,
            release,
            daemon,
            _dir: dir,
        })
    }

    fn name(&self) -> String {
        self.point.to_str().unwrap().to_owned()
    }

    /// From now on the daemon answers, and the calls stuck on it return.
    fn release(&self) {
        std::fs::write(&self.release, b"").unwrap();
    }
}

impl Drop for HungMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.point).status();
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// The entry for `mount` in a check's (or the system's) list of disks.
fn disk<'a>(list: &'a Value, mount: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|d| d["mount"] == mount)
}

async fn timed_get(app: &TestApp, path: &str) -> (Response, Duration) {
    let started = Instant::now();
    let r = app.get(path).await;
    (r, started.elapsed())
}

/// Threads of this process named `statfs` (the bounded prober's workers).
fn statfs_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim() == "statfs")
        .count()
}

#[actix_web::test]
async fn a_hung_mount_is_null_in_each_check_which_stays_on_time_and_it_comes_back_once_it_answers()
{
    let app = spawn_with(|s| {
        s.sampler.autostart = true;
        s.sampler.interval = Duration::from_millis(500);
    })
    .await;
    // Mounted while the agent runs.
    let Some(hung) = HungMount::start() else {
        return;
    };
    let name = hung.name();
    let since = chrono::Utc::now();
    tokio::time::sleep(Duration::from_secs(5)).await;

    let r = app.get("/api/v1/checks?limit=100").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut checks: Vec<Value> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| {
            k["taken_at"]
                .as_str()
                .unwrap()
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap()
                > since + chrono::Duration::milliseconds(600)
        })
        .cloned()
        .collect();
    checks.reverse();
    assert!(checks.len() >= 7, "checks stopped coming: {}", checks.len());
    let times: Vec<chrono::DateTime<chrono::Utc>> = checks
        .iter()
        .map(|k| k["taken_at"].as_str().unwrap().parse().unwrap())
        .collect();
    for w in times.windows(2) {
        let gap = (w[1] - w[0]).num_milliseconds();
        // A tick skipped would make a gap of two intervals.
        assert!(
            gap < 1000,
            "a check came {gap} ms after the one before (interval 500 ms)"
        );
    }
    for k in &checks {
        let d = disk(&k["disks"], &name).unwrap_or_else(|| panic!("the hung mount is listed: {k}"));
        assert!(d["total_bytes"].is_null() && d["percent"].is_null(), "{d}");
        assert!(
            d["error"].as_str().is_some_and(|e| e.contains("statfs")),
            "{d}"
        );
        let root = disk(&k["disks"], "/").unwrap_or_else(|| panic!("/ is listed: {k}"));
        assert!(
            root["total_bytes"].as_u64().is_some_and(|t| t > 0),
            "{root}"
        );
        assert!(k["duration_ms"].as_f64().unwrap() < 400.0, "{k}");
    }
    let s = app.get("/api/v1/sampler").await.json();
    assert!(
        s["last_error"].as_str().is_some_and(|e| e.contains(&name)),
        "{s}"
    );

    // The live views are bounded the same way and share the stuck call.
    let (r, took) = timed_get(&app, "/api/v1/system").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        took < Duration::from_secs(2),
        "/api/v1/system took {took:?}"
    );
    let sys = r.json();
    let p = disk(&sys["partitions"], &name).unwrap_or_else(|| panic!("{sys}"));
    assert!(p["total_bytes"].is_null() && p["error"].is_string(), "{p}");
    let (r, took) = timed_get(&app, "/metrics").await;
    assert_eq!(r.status, 200);
    assert!(took < Duration::from_secs(2), "/metrics took {took:?}");
    let text = r.text();
    let error_line = text
        .lines()
        .find(|l| {
            l.starts_with("hostwatch_filesystem_device_error{")
                && l.contains(&format!("mountpoint=\"{name}\""))
        })
        .unwrap_or_else(|| panic!("no error series for {name}"));
    assert!(error_line.ends_with(" 1"), "{error_line}");
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("hostwatch_filesystem_size_bytes{") && l.contains(&name)),
        "a size for a mount that did not answer"
    );
    // One call is stuck per hung mount (other tests may have theirs up),
    // plus the worker that answers: however often the mount is asked again,
    // no more threads are left on it.
    for _ in 0..5 {
        assert_eq!(app.get("/metrics").await.status, 200);
        assert_eq!(app.get("/api/v1/system").await.status, 200);
    }
    let stuck = statfs_threads();
    // As bytes: another test's mount point may not be UTF-8.
    let hung_mounts = String::from_utf8_lossy(&std::fs::read("/proc/self/mountinfo").unwrap())
        .lines()
        .filter(|l| l.contains(" - fuse.hung "))
        .count();
    assert!(
        (1..=hung_mounts + 1).contains(&stuck),
        "{stuck} statfs threads for {hung_mounts} hung mounts"
    );

    hung.release();
    let back = app
        .wait_until(Duration::from_secs(5), || async {
            let k = app.get("/api/v1/checks/latest").await.json();
            disk(&k["disks"], &name).is_some_and(|d| d["total_bytes"] == ANSWERED_TOTAL)
        })
        .await;
    assert!(back, "the mount did not come back once it answered");
    let d = disk(
        &app.get("/api/v1/checks/latest").await.json()["disks"],
        &name,
    )
    .cloned()
    .unwrap();
    assert!(d.get("error").is_none() && d["percent"] == 50.0, "{d}");
    app.stop().await;
}

#[test]
fn the_agent_stops_on_sigterm_while_a_mount_is_hung() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = start_agent(dir.path(), "1s");
    let Some(hung) = HungMount::start() else {
        return;
    };
    let name = hung.name();
    crate::lifecycle::wait_for_checks(agent.port, 1);
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let k = get_json(agent.port, "/api/v1/checks/latest");
        if disk(&k["disks"], &name).is_some_and(|d| d["error"].is_string()) {
            break;
        }
        assert!(Instant::now() < end, "no check saw the hung mount: {k}");
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(&agent.child, rustix::process::Signal::TERM);
    let status = wait_exit(&mut agent.child, Duration::from_secs(5));
    assert!(status.success(), "{status}");
}

#[actix_web::test]
async fn a_mount_point_that_is_not_utf8_is_kept_with_its_bytes_escaped() {
    let Some(plain) = mount(&["-t", "tmpfs", "-o", "size=1m", "tmpfs"]) else {
        return;
    };
    // A directory named with a Latin-1 "é" (byte 0xe9), as an old tool would make it.
    let mut odd = plain.point.as_os_str().as_bytes().to_vec();
    odd.extend_from_slice(b"/caf\xe9");
    let odd = PathBuf::from(std::ffi::OsString::from(
        <std::ffi::OsStr as OsStrExt>::from_bytes(&odd),
    ));
    std::fs::create_dir(&odd).unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&odd)
        .status()
        .unwrap();
    assert!(status.success());
    let _odd_mounted = Unmount(odd);
    let name = format!("{}/caf\\xe9", plain.point.display());

    let app = spawn_with(|_| {}).await;
    let r = app.control("/api/v1/checks", None).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let k = r.json();
    let d = disk(&k["disks"], &name).unwrap_or_else(|| panic!("{name} is not in {k}"));
    assert_eq!(d["total_bytes"], 2 * 1024 * 1024, "{d}");
    // The others are all still there.
    assert!(disk(&k["disks"], "/").is_some());
    assert!(disk(&k["disks"], plain.point.to_str().unwrap()).is_some());
    // Stored and read back the same.
    let id = k["id"].as_i64().unwrap();
    let stored = app.get(&format!("/api/v1/checks/{id}")).await.json();
    assert_eq!(disk(&stored["disks"], &name), Some(d));

    let sys = app.get("/api/v1/system").await.json();
    assert!(
        disk(&sys["partitions"], &name).is_some(),
        "{}",
        sys["partitions"]
    );
    let metrics = app.get("/metrics").await.text();
    let label = format!("mountpoint=\"{}\"", name.replace('\\', "\\\\"));
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("hostwatch_filesystem_size_bytes{") && l.contains(&label)),
        "no series with {label}"
    );
    app.stop().await;
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[actix_web::test]
async fn a_watched_directory_on_a_hung_mount_is_said_to_be_stuck_and_the_agent_stops() {
    let Some(hung) = HungMount::start() else {
        return;
    };
    let app = spawn_with(|s| {
        s.directories = vec![hostwatch::config::DirectorySettings {
            name: "hung".into(),
            path: hung.point.clone(),
            refresh: Duration::from_secs(1),
        }];
    })
    .await;
    // A walk gives up by itself after 30 s between two calls; one still
    // running a second after that is stuck in a call.
    let said = app
        .wait_until(Duration::from_secs(45), || async {
            let (r, took) = timed_get(&app, "/api/v1/directories").await;
            assert!(
                took < Duration::from_secs(1),
                "/api/v1/directories took {took:?}"
            );
            r.json()[0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("stuck"))
        })
        .await;
    assert!(said, "{}", app.get("/api/v1/directories").await.text());
    let started = Instant::now();
    app.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopping took {:?}",
        started.elapsed()
    );
}
