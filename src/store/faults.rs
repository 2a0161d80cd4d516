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

/// Which file the connections have open: its device and inode.
pub(super) fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl Store {
    /// Before a write: the file at the path must still be the one the
    /// connections have open. Deleted (`rm`), writes would go to a file
    /// nobody can see and be lost at the next start: the open copy is
    /// written back to the path (`VACUUM INTO`) and the connections moved
    /// to it, so nothing is lost. Replaced by another file, nothing is
    /// written until that file is moved away.
    pub(super) fn keep_file(&self, writer: &mut Connection) -> super::Result<()> {
        let mut known = self.identity.lock().map_err(|_| StoreError::Poisoned)?;
        let now = identity(&self.path);
        if now.is_some() && now == *known {
            return Ok(());
        }
        if let Some(other) = now {
            // Seen for the first time (an open that could not stat): adopt it.
            if known.is_none() {
                *known = Some(other);
                return Ok(());
            }
            return Err(StoreError::Replaced {
                path: self.path.clone(),
            });
        }
        let restored = self
            .restore(writer)
            .map_err(|e| self.unwritable(writer, e))?;
        *known = identity(&self.path);
        tracing::warn!(path = %self.path.display(), bytes = restored, "the database file was deleted under the agent; wrote it back from the open copy and went on there");
        Ok(())
    }

    fn restore(&self, writer: &mut Connection) -> super::Result<u64> {
        let target = self
            .path
            .to_str()
            .ok_or_else(|| StoreError::Encode(format!("{} is not UTF-8", self.path.display())))?;
        // The WAL's name is shared with the new file's: fold it into the
        // old file and empty it before anything opens the new one.
        writer.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        // A new file or nothing: whatever appeared at the path since it was
        // found missing (a symlink, say) is never written through.
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&self.path)
                .map_err(|source| StoreError::Create {
                    path: self.path.clone(),
                    source,
                })?;
        }
        if let Err(e) = writer.execute("VACUUM INTO ?1", [target]) {
            let _ = std::fs::remove_file(&self.path);
            return Err(e.into());
        }
        // Closing the old connections removes the old WAL and shared-memory
        // files by name: all of them first, then the new ones are opened.
        for r in &self.readers {
            let mut r = r.lock().map_err(|_| StoreError::Poisoned)?;
            *r = Connection::open_in_memory()?;
        }
        *writer = Connection::open_in_memory()?;
        let mut fresh = Connection::open(&self.path)?;
        super::configure(&fresh)?;
        fresh.pragma_update(None, "journal_mode", "WAL")?;
        std::mem::swap(writer, &mut fresh);
        for r in &self.readers {
            let mut r = r.lock().map_err(|_| StoreError::Poisoned)?;
            *r = super::open_reader(&self.path)?;
        }
        Ok(std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0))
    }
}
