//! SQLite storage behind one boundary: opening, migrating, and a writer
//! connection beside a few readers (WAL lets them run side by side). Nothing
//! here knows HTTP; every call is blocking, so async callers move it to a
//! blocking thread.

mod alerts;
mod audit;
mod checks;
mod faults;
mod history;
mod jobs;
mod migrate;
mod notifications;
mod plan;
mod remote_write;
pub mod retention;
pub mod rollups;
mod series;
mod silences;
mod summary;
mod vet;
mod watchdog;
mod watchdog_state;

pub use alerts::{
    ActionRecord, Alert, AlertDetail, AlertFilter, AlertState, Transition, WatchdogCounts,
};
pub use audit::{AuditEntry, AuditRecord};
pub use checks::LatestServices;
pub use history::{HistoryPoint, Resolution, ServicePoint};
pub use jobs::{Job, JobEnd};
pub use migrate::latest_version as schema_version;
pub use notifications::{Notification, NotificationFilter, NotificationStatus};
pub use remote_write::{Cursor, RolledHour};
pub use series::{MAX_RAW_ROWS, SeriesBucket};
pub use silences::{MAX_ACTIVE_SILENCES, NewSilence, Silence};
pub use summary::{ServiceAvailability, Stats, Summary};
pub use watchdog::{
    AlertRef, BudgetRow, DueNotification, NewAction, NewAlert, NewNotification, OpenAlert,
    PendingAction, StateChange,
};
pub use watchdog_state::Resolved;

use rusqlite::{Connection, OpenFlags};
use std::{
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error(
        "the database {path} has schema version {found}, newer than this hostwatch knows ({known}); \
         run a newer hostwatch or point storage.path at another file"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    /// The file at the configured path is not a hostwatch database this
    /// binary may use; nothing was written to it.
    #[error("the database {} {why}; the file was left untouched", path.display())]
    Refused { path: PathBuf, why: String },
    /// Another file now sits at the configured path.
    #[error(
        "the database file {} was replaced by another file under the running agent; checks are not stored until it is moved away (the agent then writes its own database back there)",
        path.display()
    )]
    Replaced { path: PathBuf },
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Sqlite(#[source] rusqlite::Error),
    /// Nothing can be written until space is freed on the database's filesystem.
    #[error("the database's filesystem is full ({}: {source})", .path.display())]
    Full {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// The database's filesystem (or, when `filesystem` is false, the file
    /// itself) refuses writes.
    #[error(
        "the database{} is read-only ({}: {source})",
        if *.filesystem { "'s filesystem" } else { " file" },
        .path.display()
    )]
    ReadOnly {
        path: PathBuf,
        filesystem: bool,
        source: rusqlite::Error,
    },
    /// A bound on what callers may store is reached; the text says which.
    #[error("{0}")]
    LimitReached(String),
    /// A question that would read more rows than one answer may; the text
    /// says what to ask instead.
    #[error("{0}")]
    TooBroad(String),
    #[error("cannot encode a value for the database: {0}")]
    Encode(String),
    #[error("a database connection was poisoned by a panic")]
    Poisoned,
    #[error("cannot create the database {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
            other => StoreError::Sqlite(other),
        }
    }
}

impl StoreError {
    /// A fault of the file or its filesystem, which passes once someone
    /// frees space, makes it writable or moves the stranger away: what was
    /// to be written may wait for it.
    pub fn is_fault(&self) -> bool {
        match self {
            StoreError::Full { .. }
            | StoreError::ReadOnly { .. }
            | StoreError::Replaced { .. }
            | StoreError::Create { .. } => true,
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(
                    rusqlite::ErrorCode::SystemIoFailure
                        | rusqlite::ErrorCode::CannotOpen
                        | rusqlite::ErrorCode::DatabaseBusy
                        | rusqlite::ErrorCode::DatabaseLocked
                )
            ),
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The database. Cheap to share behind an `Arc`.
pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// Device and inode of the file the connections have open.
    identity: Mutex<Option<(u64, u64)>>,
}

const READERS: usize = 2;

impl Store {
    /// Opens (creating it when missing, mode 0600) and migrates the
    /// database at `path`. A file that is not a hostwatch database, is
    /// corrupt or is from a newer schema is refused before anything is
    /// written to it.
    pub fn open(path: &Path) -> Result<Self> {
        vet::existing(path)?;
        create_private(path)?;
        let mut writer = Connection::open(path)?;
        configure(&writer)?;
        // Before the first table is made, or it would not take: a new file
        // gives purged pages back (store::retention); an older one is
        // rewritten once, after its migrations, to do the same.
        writer.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        let found: u32 = writer.pragma_query_value(None, "user_version", |r| r.get(0))?;
        migrate::to_latest(&mut writer, path)?;
        retention::make_incremental(&writer);
        let readers = (0..READERS)
            .map(|_| open_reader(path).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        let store = Self {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
            identity: Mutex::new(faults::identity(path)),
        };
        let started = std::time::Instant::now();
        // Back-filled whole when the roll-ups are new to this file; else
        // only the newest hours are looked at, which a check can have
        // reached without its roll-up (written by another tool, say).
        let whole = found < rollups::SINCE_VERSION;
        match store.repair_rollups(whole)? {
            0 => {}
            hours => tracing::info!(
                hours,
                ms = started.elapsed().as_millis() as u64,
                "rebuilt hourly roll-ups from the raw checks"
            ),
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the database file and its WAL, in bytes.
    pub fn size_bytes(&self) -> u64 {
        let wal = PathBuf::from(format!("{}-wal", self.path.display()));
        [self.path.as_path(), wal.as_path()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        // Take the first idle reader, else wait for the one whose turn it is.
        for i in 0..self.readers.len() {
            if let Ok(c) = self.readers[(start + i) % self.readers.len()].try_lock() {
                return f(&c);
            }
        }
        let c = lock(&self.readers[start % self.readers.len()])?;
        f(&c)
    }

    /// Runs `f` on the one writer; a full or read-only filesystem comes back
    /// as `Full` or `ReadOnly`, so callers can say so in plain words.
    fn write<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut c = lock(&self.writer)?;
        self.keep_file(&mut c)?;
        f(&mut c).map_err(|e| self.unwritable(&c, e))
    }

    /// Runs a checkpoint so the WAL is folded into the main file (on shutdown).
    pub fn checkpoint(&self) -> Result<()> {
        self.write(|c| {
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
    }
}

/// A database made by an older hostwatch (or by hand) may be readable by
/// others; it holds job output and the audit. Files the agent owns are made
/// 0600; the database's mode is what SQLite gives new `-wal`/`-shm` files.
fn tighten_existing(path: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let me = rustix::process::geteuid().as_raw();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let p = PathBuf::from(p);
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_file() && m.uid() == me && m.mode() & 0o077 != 0 {
            match std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => {
                    tracing::warn!(file = %p.display(), "the database was readable by others: made it 0600")
                }
                Err(e) => {
                    tracing::warn!(file = %p.display(), error = %e, "the database is readable by others and could not be made 0600")
                }
            }
        }
    }
}

/// Makes a missing database file with mode 0600 before SQLite opens it, so
/// it is never readable by others, not even for a moment. SQLite gives the
/// `-wal`, `-shm` and `-journal` files it makes the database file's mode
/// (and, as root, its owner), so they are private from the start too. An
/// existing file the agent owns is made 0600.
fn create_private(path: &Path) -> Result<()> {
    let create = |source| StoreError::Create {
        path: path.to_owned(),
        source,
    };
    // O_CREAT|O_EXCL: never follows a symlink, never truncates.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            tighten_existing(path);
            // A symlink to nothing: SQLite would create its target with
            // the default mode (0644).
            match std::fs::metadata(path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err(create(std::io::Error::other(
                        "it is a symbolic link to a missing file; point storage.path at the file itself",
                    )))
                }
                _ => Ok(()),
            }
        }
        Err(e) => Err(create(e)),
    }
}

fn open_reader(path: &Path) -> Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&c)?;
    Ok(c)
}

fn lock(m: &Mutex<Connection>) -> Result<MutexGuard<'_, Connection>> {
    m.lock().map_err(|_| StoreError::Poisoned)
}

fn configure(c: &Connection) -> Result<()> {
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    c.pragma_update(None, "foreign_keys", "ON")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    // An agent, not a database server: keep each connection's cache small
    // (256 KiB); the kernel's page cache holds the rest.
    c.pragma_update(None, "cache_size", "-256")?;
    // A purge writes many pages through the WAL; once checkpointed, the WAL
    // file is cut back to 4 MiB rather than kept at its largest.
    c.pragma_update(None, "journal_size_limit", 4 * 1024 * 1024)?;
    Ok(())
}

#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod tests;
