//! Schema migrations: the SQL files under `migrations/`, compiled in and
//! applied in order; the version is SQLite's `user_version`.

use super::{Result, StoreError};
use include_dir::{Dir, include_dir};
use rusqlite::Connection;
use rusqlite_migration::Migrations;
use std::path::Path;

static DIR: Dir = include_dir!("$CARGO_MANIFEST_DIR/migrations");

fn migrations() -> Result<Migrations<'static>> {
    Migrations::from_directory(&DIR).map_err(|e| StoreError::Migration(e.to_string()))
}

/// How many migrations this binary knows: the newest schema version.
pub fn latest_version() -> u32 {
    DIR.dirs().count() as u32
}

pub fn to_latest(c: &mut Connection, path: &Path) -> Result<()> {
    let found: u32 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = latest_version();
    if found > known {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    if found < known {
        tracing::info!(from = found, to = known, "migrating the database schema");
    }
    migrations()?
        .to_latest(c)
        .map_err(|e| StoreError::Migration(e.to_string()))
}
