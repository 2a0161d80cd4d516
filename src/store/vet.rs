//! Looking at an existing file before anything writes to it. The agent
//! runs as root and would otherwise turn whatever `storage.path` names into
//! a WAL database with hostwatch's tables in it: a file that is not SQLite,
//! another program's database, one from a newer hostwatch or a corrupt one
//! is refused with its bytes left as they were.

use super::{Result, StoreError, migrate};
use rusqlite::{Connection, OpenFlags};
use std::{io::Read, path::Path};

/// hostwatch's mark in the SQLite header ("hstw"), set by migration 09.
pub const APPLICATION_ID: i32 = 0x6873_7477;

const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// `Ok` for a missing or empty file, or a hostwatch database this binary
/// can open; else why not, in words an operator can act on.
pub fn existing(path: &Path) -> Result<()> {
    let mut head = Vec::with_capacity(MAGIC.len());
    match std::fs::File::open(path) {
        Ok(f) => f
            .take(MAGIC.len() as u64)
            .read_to_end(&mut head)
            .map_err(|e| create(path, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(create(path, e)),
    };
    if head.is_empty() {
        return Ok(());
    }
    let refuse = |why: String| StoreError::Refused {
        path: path.to_path_buf(),
        why,
    };
    if head != MAGIC {
        return Err(refuse(
            "is not a SQLite database; point storage.path at another file (a missing one is created)"
                .into(),
        ));
    }
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let corrupt = |why: String| {
        refuse(format!(
            "is corrupt ({why}); restore it from a backup, or move it away (`sqlite3 FILE .recover` saves what can be read) and start with a new file"
        ))
    };
    let quick: String = c
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(|e| corrupt(e.to_string()))?;
    if quick != "ok" {
        return Err(corrupt(quick));
    }
    let id: i32 = c.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let version: u32 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let other = |what: String| {
        refuse(format!(
            "is {what}, not a hostwatch database; point storage.path at a file of hostwatch's own"
        ))
    };
    if id != 0 && id != APPLICATION_ID {
        return Err(other(format!(
            "the SQLite database of another program (application_id {id:#x})"
        )));
    }
    let known = migrate::latest_version();
    if version > known {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
            known,
        });
    }
    if id == APPLICATION_ID {
        return Ok(());
    }
    // Made before hostwatch marked its files: known by its tables.
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let ours = tables.iter().any(|t| t == "checks");
    match (version, tables.is_empty(), ours) {
        (_, true, _) => Ok(()),
        (v, false, true) if v > 0 => Ok(()),
        _ => Err(other(format!(
            "a SQLite database with other tables ({})",
            tables
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn create(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Create {
        path: path.to_path_buf(),
        source,
    }
}
