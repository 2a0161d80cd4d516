//! A file at `storage.path` that hostwatch must not use: the real binary
//! refuses to start, says which file and what to do, exits non-zero, and
//! leaves the file byte for byte as it was.

use hostwatch::store::Store;
use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

/// Starts the agent on `db` and expects it to refuse; returns its stderr.
fn refused(db: &Path) -> String {
    let before = std::fs::read(db).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .arg("serve")
        .env("HOSTWATCH_STORAGE__PATH", db)
        .env("HOSTWATCH_SERVER__LISTEN", "127.0.0.1:0")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the agent started on {}", db.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&db.display().to_string()),
        "the file is not named: {err}"
    );
    assert!(
        err.contains("left untouched") || err.contains("newer"),
        "{err}"
    );
    assert!(
        std::fs::read(db).unwrap() == before,
        "{} was changed",
        db.display()
    );
    for suffix in ["-wal", "-journal"] {
        let side = format!("{}{suffix}", db.display());
        assert!(!Path::new(&side).exists(), "{side} was made");
    }
    err
}

fn sqlite_with(db: &Path, sql: &str) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch(sql).unwrap();
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.txt");
    std::fs::write(&db, "meeting at ten\n".repeat(300)).unwrap();
    let err = refused(&db);
    assert!(err.contains("is not a SQLite database"), "{err}");
}

#[test]
fn the_database_of_another_program_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    // Without a mark of its own: known by its tables.
    let db = dir.path().join("places.sqlite");
    sqlite_with(
        &db,
        "CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT);
         INSERT INTO moz_places (url) VALUES ('https://example.org/');",
    );
    let err = refused(&db);
    assert!(err.contains("other tables (moz_places)"), "{err}");
    // With its own application_id (GeoPackage's), even with a `checks` table.
    let db = dir.path().join("map.gpkg");
    sqlite_with(
        &db,
        "PRAGMA application_id = 1196444487; PRAGMA user_version = 3;
         CREATE TABLE checks (id INTEGER PRIMARY KEY);",
    );
    let err = refused(&db);
    assert!(
        err.contains("another program (application_id 0x47504b47)"),
        "{err}"
    );
}

/// A hostwatch database with a few hundred checks, folded out of its WAL.
fn hostwatch_db(db: &Path) {
    drop(Store::open(db).unwrap());
    let c = rusqlite::Connection::open(db).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    for i in 0..400 {
        c.execute(
            "INSERT INTO checks (taken_at, duration_ms, cpu_percent, has_disks, has_services, has_top) \
             VALUES (?1, 1.5, 12.0, 0, 0, 0)",
            [now - i * 60_000],
        )
        .unwrap();
    }
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")
        .unwrap();
}

#[test]
fn a_database_from_a_newer_hostwatch_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hostwatch.db");
    hostwatch_db(&db);
    sqlite_with(&db, "PRAGMA user_version = 99;");
    let err = refused(&db);
    assert!(
        err.contains("schema version 99") && err.contains("newer"),
        "{err}"
    );
}

#[test]
fn a_corrupt_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hostwatch.db");
    hostwatch_db(&db);
    // Scribble over the header of every page after the first two: what a
    // torn write or a bad sector leaves.
    let mut bytes = std::fs::read(&db).unwrap();
    let page = 4096;
    assert!(bytes.len() > 4 * page, "{} bytes", bytes.len());
    for start in (2 * page..bytes.len()).step_by(page) {
        bytes[start..start + 12].fill(0xa5);
    }
    std::fs::write(&db, &bytes).unwrap();
    let err = refused(&db);
    assert!(
        err.contains("is corrupt") && err.contains("backup"),
        "{err}"
    );
}

#[test]
fn a_new_database_carries_hostwatchs_mark_and_an_empty_file_is_taken_as_new() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hostwatch.db");
    std::fs::write(&db, b"").unwrap();
    drop(Store::open(&db).unwrap());
    let id: i32 = rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .unwrap();
    assert_eq!(id, 0x6873_7477);
    // And it opens again.
    drop(Store::open(&db).unwrap());
}
