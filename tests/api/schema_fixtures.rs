//! A database left by every released schema (`tests/fixtures/schema/vN.sql`,
//! frozen when that version was released) is migrated in place by the
//! agent with all of its rows, and served.

use crate::helpers::{CONTROL_TOKEN, spawn_in, test_settings};
use std::path::Path;

/// Rows each fixture holds, by table and the version that made the table.
const ROWS: &[(&str, u32, i64)] = &[
    ("checks", 1, 3),
    ("check_disks", 1, 3),
    ("check_services", 1, 3),
    ("check_processes", 1, 3),
    ("audit", 2, 2),
    ("jobs", 3, 1),
    ("alerts", 5, 1),
    ("alert_transitions", 5, 2),
    ("notifications", 5, 1),
    ("actions", 5, 1),
    ("silences", 5, 1),
    ("check_disk_faults", 9, 1),
];

fn fixtures() -> Vec<(u32, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema");
    let mut v: Vec<(u32, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let n = name.strip_prefix('v')?.strip_suffix(".sql")?.parse().ok()?;
            Some((n, std::fs::read_to_string(dir.join(&name)).ok()?))
        })
        .collect();
    v.sort();
    v
}

fn count(c: &rusqlite::Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[actix_web::test]
async fn a_database_of_every_released_schema_is_migrated_with_all_its_rows() {
    let all = fixtures();
    let latest = hostwatch::store::schema_version();
    // One per released version: all before this binary's, perhaps its own.
    let versions: Vec<u32> = all.iter().map(|(v, _)| *v).collect();
    assert!(
        (1..latest).all(|v| versions.contains(&v)),
        "a fixture per released schema (1..{latest}), found {versions:?}; \
         run tests/fixtures/schema/make.py N when a version is released"
    );
    for (version, sql) in all {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("hostwatch.db");
        let now = chrono::Utc::now().timestamp_millis();
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(&sql.replace("NOW", &now.to_string()))
            .unwrap();

        let app = spawn_in(dir, test_settings(db.parent().unwrap())).await;
        let k = app.get("/api/v1/checks/2").await;
        assert_eq!(k.status, 200, "v{version}: {}", k.text());
        let k = k.json();
        assert_eq!(k["cpu"]["percent"], 20.0, "v{version}: {k}");
        assert_eq!(k["disks"][0]["mount"], "/", "v{version}: {k}");
        assert_eq!(k["disks"][0]["used_bytes"], 2000, "v{version}: {k}");
        assert_eq!(k["services"][0]["state"], "stopped", "v{version}: {k}");
        assert_eq!(k["top_processes"][0]["pid"], 102, "v{version}: {k}");
        let list = app.get("/api/v1/checks?limit=10").await.json();
        assert_eq!(list.as_array().map(Vec::len), Some(3), "v{version}: {list}");
        // The hourly roll-ups hold the three checks, made by the migration
        // where the fixture had none.
        let since = (chrono::Utc::now() - chrono::Duration::days(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let s = app
            .get(&format!("/api/v1/checks/summary?since={since}"))
            .await;
        assert_eq!(s.status, 200, "v{version}: {}", s.text());
        assert_eq!(s.json()["count"], 3, "v{version}: {}", s.text());
        if version >= 2 {
            let r = app
                .request("GET", "/api/v1/audit", Some(CONTROL_TOKEN), None)
                .await;
            assert_eq!(r.status, 200, "v{version}: {}", r.text());
        }
        let db = app.db_path();
        let _dir = app.stop().await;

        let c = rusqlite::Connection::open(&db).unwrap();
        let v: u32 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, latest, "v{version} was migrated to the latest");
        for &(table, since, rows) in ROWS.iter().filter(|(_, since, _)| *since <= version) {
            let n = count(&c, &format!("SELECT count(*) FROM {table}"));
            assert_eq!(
                n, rows,
                "v{version}: {table} (since v{since}) keeps its rows"
            );
        }
        let rolled = count(&c, "SELECT coalesce(sum(checks), 0) FROM rollup_host");
        assert_eq!(rolled, 3, "v{version}: roll-ups of the three checks");
        let stale = count(
            &c,
            "SELECT count(*) FROM check_disks d JOIN checks k ON k.id = d.check_id WHERE d.taken_at != k.taken_at",
        );
        assert_eq!(stale, 0, "v{version}: disk rows carry their check's time");
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok", "v{version}");
    }
}
