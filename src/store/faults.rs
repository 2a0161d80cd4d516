//! Naming the write faults an operator can fix without touching the agent:
//! a full or read-only filesystem under the database. SQLite reports a full
//! disk itself, but most refused writes (EROFS, EDQUOT, a full shared-memory
//! file) come back as a bare "disk I/O error"; the errno SQLite kept and the
//! filesystem's own flags tell them apart.

use super::{Store, StoreError};
use rusqlite::{Connection, ErrorCode};
use std::path::Path;

impl Store {
    /// `e`, or the same failure as `Full` or `ReadOnly` when that is what it
    /// was. `c` is the connection that failed, before anything else ran on it.
    pub(super) fn unwritable(&self, c: &Connection, e: StoreError) -> StoreError {
        let StoreError::Sqlite(source) = e else {
            return e;
        };
        let code = source.sqlite_error_code();
        if !matches!(
            code,
            Some(ErrorCode::DiskFull | ErrorCode::ReadOnly | ErrorCode::SystemIoFailure)
        ) {
            return StoreError::Sqlite(source);
        }
        let errno = system_errno(c);
        let fs = filesystem_of(&self.path);
        let path = self.path.clone();
        let read_only = errno == libc::EROFS || fs.read_only;
        match code {
            Some(ErrorCode::DiskFull) => StoreError::Full { path, source },
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly {
                path,
                filesystem: read_only,
                source,
            },
            _ if read_only => StoreError::ReadOnly {
                path,
                filesystem: true,
                source,
            },
            _ if errno == libc::ENOSPC || errno == libc::EDQUOT || fs.full => {
                StoreError::Full { path, source }
            }
            // The file itself refuses writes (immutable, or its mode changed
            // under a non-root agent).
            _ if errno == libc::EPERM || errno == libc::EACCES => StoreError::ReadOnly {
                path,
                filesystem: false,
                source,
            },
            _ => StoreError::Sqlite(source),
        }
    }
}

/// The errno of the connection's last failed system call (0 when none).
fn system_errno(c: &Connection) -> i32 {
    // SAFETY: the handle is open for as long as `c` is borrowed, and
    // sqlite3_system_errno only reads a field of it.
    unsafe { rusqlite::ffi::sqlite3_system_errno(c.handle()) }
}

/// What the filesystem holding the database says about itself; all false
/// when it cannot be asked.
#[derive(Debug, Default)]
struct FsState {
    read_only: bool,
    full: bool,
}

fn filesystem_of(db: &Path) -> FsState {
    let dir = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    rustix::fs::statvfs(dir).map_or_else(
        |_| FsState::default(),
        |s| FsState {
            read_only: s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY),
            // No block left for anyone, or none left for an unprivileged writer.
            full: s.f_bfree == 0 || s.f_bavail == 0,
        },
    )
}
