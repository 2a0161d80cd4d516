//! The database on a filesystem that stops taking writes, for real: a small
//! tmpfs filled to its last block, and an ext4 image that the kernel turns
//! read-only after an error. The API stays up, the sampler says in plain
//! words what failed and keeps trying every interval, and once there is room
//! again it stores checks by itself. Mounting needs root.

use crate::helpers::{
    TestApp,
    mounts::{Mounted, mount, run, unmet},
    spawn_with,
};
use serde_json::Value;
use std::{io::Write, path::Path, process::Command, time::Duration};

async fn sampling_into(point: &Path) -> TestApp {
    let db = point.join("hostwatch.db");
    spawn_with(|s| {
        s.storage.path = db;
        s.sampler.autostart = true;
        s.sampler.interval = Duration::from_millis(100);
    })
    .await
}

async fn sampler(app: &TestApp) -> Value {
    let r = app.get("/api/v1/sampler").await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Polls the sampler's state until `f` holds; panics after 10 s.
async fn sampler_until(app: &TestApp, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = sampler(app).await;
        if f(&s) {
            return s;
        }
        assert!(tokio::time::Instant::now() < end, "{what}: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn at(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str().unwrap().parse().unwrap()
}

fn taken(s: &Value) -> u64 {
    s["checks_taken"].as_u64().unwrap()
}

/// Writes `path` until the filesystem has no block left; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0xa5u8; 64 * 1024];
    let mut written = 0;
    loop {
        match f.write(&block) {
            Ok(n) => written += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => return written,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}

/// While checks cannot be stored: the API answers, an on-demand check is a
/// 503 that says why, and the sampler keeps trying every interval without
/// storing anything. Returns the sampler's state.
async fn stays_up_while_unwritable(app: &TestApp, words: &str) -> Value {
    let s = sampler_until(app, "the sampler never reported the fault", |s| {
        s["storage_error"].is_string()
    })
    .await;
    let err = s["storage_error"].as_str().unwrap();
    assert!(
        err.starts_with("cannot store checks:") && err.contains(words),
        "{err}"
    );
    assert!(err.contains("hostwatch.db"), "names the file: {err}");
    assert_eq!(s["last_error"], s["storage_error"]);
    assert_eq!(s["running"], true);

    assert_eq!(app.get("/healthz").await.status, 200);
    let listed = app.get("/api/v1/checks").await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert!(listed.json().as_array().unwrap().len() >= 3);
    let d = app.control("/api/v1/checks", None).await.problem(503);
    assert!(
        d.contains("cannot store checks") && d.contains(words),
        "{d}"
    );

    let before = sampler(app).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = sampler(app).await;
    assert_eq!(taken(&after), taken(&before), "stored while unwritable");
    assert_eq!(after["running"], true);
    assert!(
        at(&after["last_error_at"]) > at(&before["last_error_at"]),
        "the sampler stopped trying: {before} then {after}"
    );
    after
}

/// The ids of the stored checks, as the API lists them.
async fn stored_ids(app: &TestApp) -> Vec<i64> {
    let r = app.get("/api/v1/checks?limit=1000").await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_i64().unwrap())
        .collect()
}

/// The database file passes SQLite's integrity check and still holds every
/// check in `ids`, each with its rows.
fn assert_intact(db: &Path, ids: &[i64]) {
    assert!(!ids.is_empty());
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok", "{}", db.display());
    for id in ids {
        let n: i64 = c
            .query_row("SELECT count(*) FROM checks WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1, "check {id} was lost from {}", db.display());
    }
}

#[actix_web::test]
async fn a_full_disk_is_reported_and_sampling_resumes_by_itself_once_there_is_room() {
    let Some(m) = mount(&["-t", "tmpfs", "-o", "size=4m", "tmpfs"]) else {
        return;
    };
    let app = sampling_into(&m.point).await;
    let db = m.point.join("hostwatch.db");
    sampler_until(&app, "no checks stored", |s| taken(s) >= 3).await;
    let before = stored_ids(&app).await;

    let filler = m.point.join("filler");
    assert!(fill(&filler) > 0);
    let stuck = stays_up_while_unwritable(&app, "filesystem is full").await;

    std::fs::remove_file(&filler).unwrap();
    let s = sampler_until(&app, "sampling did not resume", |s| {
        taken(s) > taken(&stuck) && s["storage_error"].is_null()
    })
    .await;
    assert_eq!(s["running"], true);
    // A part of the host this machine cannot read may still be reported.
    assert!(
        !s["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot store")),
        "{s}"
    );
    assert_eq!(app.control("/api/v1/checks", None).await.status, 201);
    assert_intact(&db, &before);
    app.stop().await;
}

/// The block device under `point`, e.g. `loop3`, from the kernel's mount table.
fn device_of(point: &Path) -> String {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let point = point.to_str().unwrap();
    // The last mount on a point is the one in effect.
    let dev = mounts
        .lines()
        .rev()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?, f.next()?))
        })
        .find(|&(_, at)| at == point)
        .unwrap_or_else(|| panic!("{point} is not in /proc/self/mounts"))
        .0;
    dev.rsplit('/').next().unwrap().to_owned()
}

/// A fresh 16 MiB ext4 image mounted with `options`; the image file must
/// outlive the mount, so it is returned with it.
pub fn ext4(options: &str) -> Option<(tempfile::NamedTempFile, Mounted)> {
    let image = tempfile::NamedTempFile::new().unwrap();
    image.as_file().set_len(16 << 20).unwrap();
    if let Err(e) = run(Command::new("mkfs.ext4").arg("-qF").arg(image.path())) {
        return unmet(&format!("cannot make an ext4 image: {e}"));
    }
    let path = image.path().to_str().unwrap().to_owned();
    let m = mount(&["-o", options, &path])?;
    Some((image, m))
}

#[actix_web::test]
async fn a_filesystem_the_kernel_turned_read_only_is_reported_and_the_api_stays_up() {
    let Some((_image, m)) = ext4("loop,errors=remount-ro") else {
        return;
    };
    let app = sampling_into(&m.point).await;
    let db = m.point.join("hostwatch.db");
    sampler_until(&app, "no checks stored", |s| taken(s) >= 3).await;
    let before = stored_ids(&app).await;

    // `mount -o remount,ro` is refused (EBUSY) while the agent holds the
    // database open for writing, so a filesystem can only turn read-only
    // under a running agent the way the kernel does it when ext4 meets an
    // error under errors=remount-ro. It stays so until unmounted: there is
    // no resuming to test here (the full-disk test covers it).
    let trigger = format!("/sys/fs/ext4/{}/trigger_fs_error", device_of(&m.point));
    std::fs::write(&trigger, "hostwatch test: read-only database").unwrap();
    stays_up_while_unwritable(&app, "filesystem is read-only").await;
    assert_intact(&db, &before);
    app.stop().await;
}

/// Sets or clears the immutable flag (`chattr ±i`) on the database and its WAL.
pub fn immutable(dir: &Path, on: bool) {
    for name in ["hostwatch.db", "hostwatch.db-wal"] {
        let flag = if on { "+i" } else { "-i" };
        run(Command::new("chattr").arg(flag).arg(dir.join(name)))
            .unwrap_or_else(|e| panic!("chattr {flag} {name}: {e}"));
    }
}

#[actix_web::test]
async fn a_database_file_made_read_only_is_reported_and_sampling_resumes_once_writable() {
    let Some((_image, m)) = ext4("loop") else {
        return;
    };
    let app = sampling_into(&m.point).await;
    let db = m.point.join("hostwatch.db");
    sampler_until(&app, "no checks stored", |s| taken(s) >= 3).await;
    let before = stored_ids(&app).await;

    // Immutable: not even root may write it, through descriptors already
    // open too; unlike a remount, it can be undone under the running agent.
    immutable(&m.point, true);
    let stuck = stays_up_while_unwritable(&app, "database file is read-only").await;
    immutable(&m.point, false);
    let s = sampler_until(&app, "sampling did not resume", |s| {
        taken(s) > taken(&stuck) && s["storage_error"].is_null()
    })
    .await;
    assert_eq!(s["running"], true);
    assert_eq!(app.control("/api/v1/checks", None).await.status, 201);
    assert_intact(&db, &before);
    app.stop().await;
}

#[actix_web::test]
async fn a_database_file_deleted_under_the_agent_is_written_back_whole_and_sampling_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let app = sampling_into(dir.path()).await;
    let db = dir.path().join("hostwatch.db");
    sampler_until(&app, "no checks stored", |s| taken(s) >= 3).await;
    let before = stored_ids(&app).await;
    std::fs::remove_file(&db).unwrap();
    let n = taken(&sampler(&app).await);
    let s = sampler_until(&app, "sampling did not go on", |s| taken(s) >= n + 3).await;
    assert!(s["storage_error"].is_null(), "{s}");
    assert!(db.exists(), "the database was not written back");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "written back readable by others");
    let after = stored_ids(&app).await;
    assert!(
        before.iter().all(|id| after.contains(id)),
        "{before:?} {after:?}"
    );
    app.stop().await;
    // What is on disk now holds it all: the checks from before the delete
    // and those after it.
    assert_intact(&db, &after);
}

#[actix_web::test]
async fn a_database_file_replaced_under_the_agent_is_not_written_into_and_sampling_resumes_once_it_is_moved_away()
 {
    let dir = tempfile::tempdir().unwrap();
    let app = sampling_into(dir.path()).await;
    let db = dir.path().join("hostwatch.db");
    sampler_until(&app, "no checks stored", |s| taken(s) >= 3).await;
    let before = stored_ids(&app).await;
    let moved = dir_of(&db).join("hostwatch.db.old");
    std::fs::rename(&db, &moved).unwrap();
    let foreign = b"somebody else's file\n".repeat(100);
    std::fs::write(&db, &foreign).unwrap();
    let stuck = stays_up_while_unwritable(&app, "was replaced by another file").await;
    assert_eq!(
        std::fs::read(&db).unwrap(),
        foreign,
        "the other file was written into"
    );
    std::fs::remove_file(&db).unwrap();
    let s = sampler_until(&app, "sampling did not resume", |s| {
        taken(s) > taken(&stuck) && s["storage_error"].is_null()
    })
    .await;
    assert_eq!(s["running"], true);
    assert_intact(&db, &before);
    app.stop().await;
}

fn dir_of(p: &Path) -> &Path {
    p.parent().unwrap()
}
