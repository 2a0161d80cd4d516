//! API tokens: making them, hashing them, and the generated control token
//! kept beside the database when the config names none.
//!
//! The agent usually runs as root, so the token file is treated as hostile
//! input: it is opened without following symlinks and checked on the opened
//! descriptor (no window between the check and the read), and a new one is
//! created exclusively, never written through something planted there.

use crate::config::{Scope, TokenSettings};
use sha2::{Digest, Sha256};
use std::{
    fs::File,
    io::{ErrorKind, Read, Write},
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

/// Name of the token made at start-up when the config has none.
pub const GENERATED_NAME: &str = "generated";

/// A token file is a line of 67 characters; anything much longer is not one.
const MAX_TOKEN_FILE: u64 = 4096;

/// Why the generated token's file could not be used. Each message names the
/// file, says what is wrong and how to put it right.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error(
        "the token file {} is a symbolic link; it must be a plain file: \
         remove it and restart to make a new one", .0.display()
    )]
    Symlink(PathBuf),
    #[error(
        "the token file {} is not a regular file: remove it and restart to make a new one",
        .0.display()
    )]
    NotAFile(PathBuf),
    #[error(
        "the token file {} is owned by uid {owner}, not by the agent's user (uid {agent}): \
         remove it and restart to make a new one", path.display()
    )]
    NotOwned {
        path: PathBuf,
        owner: u32,
        agent: u32,
    },
    #[error(
        "the token file {} has mode {mode:04o}: group or others may use it, and it holds a \
         control token: chmod 600 {} (or, if someone else may have read it, remove it and \
         restart to make a new one)", path.display(), path.display()
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error(
        "the token file {} appeared while the agent was creating it; \
         check who else writes to {}, then restart", path.display(), dir.display()
    )]
    Raced { path: PathBuf, dir: PathBuf },
    #[error("cannot read or write the token file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl TokenFileError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// A new random token: `hw_` and 64 hex digits (256 bits).
pub fn generate() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(format!("hw_{}", hex::encode(bytes)))
}

pub fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The config lines that grant `token` with `scope` under `name`.
pub fn config_entry(name: &str, scope: Scope, token: &str) -> String {
    format!(
        "[[auth.tokens]]\nname = \"{name}\"\nscope = \"{}\"\nsha256 = \"{}\"\n",
        scope.as_str(),
        hex::encode(sha256(token))
    )
}

/// Where the generated token lives: `<database file>.token`.
pub fn token_file(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".token");
    PathBuf::from(p)
}

/// Reads the generated token, or makes one in a new file of mode 0600.
/// A file that is a symlink, not a regular file, not the agent's, or open to
/// group or others is refused, never repaired: whoever could plant or loosen
/// it may have read or chosen the token.
pub fn load_or_create(db: &Path) -> Result<(TokenSettings, PathBuf), TokenFileError> {
    let path = token_file(db);
    let token = match read_existing(&path)? {
        Some(t) => t,
        None => create(&path)?,
    };
    let settings = TokenSettings {
        name: GENERATED_NAME.into(),
        scope: Scope::Control,
        sha256: sha256(&token),
    };
    Ok((settings, path))
}

/// The generated token beside `db`, as the client reads it: `None` when
/// there is none, or when this user may not use it.
pub fn read_generated(db: &Path) -> Option<String> {
    read_checked(&token_file(db), false).ok().flatten()
}

/// The token in an existing file; `None` when there is none to use.
fn read_existing(path: &Path) -> Result<Option<String>, TokenFileError> {
    read_checked(path, true)
}

/// `read_existing`; only the agent (`recover`) removes an empty file: a
/// client reading it may be looking between the agent's create and write.
fn read_checked(path: &Path, recover: bool) -> Result<Option<String>, TokenFileError> {
    // O_NOFOLLOW: a symlink fails (ELOOP) instead of being followed.
    // O_NONBLOCK: a planted FIFO cannot hang start-up before fstat shows it.
    let file = match File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(TokenFileError::Symlink(path.to_owned()));
        }
        Err(e) => return Err(TokenFileError::io(path)(e)),
    };
    // Checked on the descriptor that is read, so nothing can swap the file
    // between the check and the read.
    check(path, &file.metadata().map_err(TokenFileError::io(path))?)?;
    let mut text = String::new();
    file.take(MAX_TOKEN_FILE)
        .read_to_string(&mut text)
        .map_err(TokenFileError::io(path))?;
    let token = text.trim();
    if token.is_empty() {
        // A private, empty file of the agent's user: a start cut short
        // between creating the file and writing it. Start over.
        if recover {
            std::fs::remove_file(path).map_err(TokenFileError::io(path))?;
        }
        return Ok(None);
    }
    Ok(Some(token.to_owned()))
}

/// A regular file, owned by the effective user, with no access for group or others.
fn check(path: &Path, m: &std::fs::Metadata) -> Result<(), TokenFileError> {
    if !m.file_type().is_file() {
        return Err(TokenFileError::NotAFile(path.to_owned()));
    }
    let agent = rustix::process::geteuid().as_raw();
    if m.uid() != agent {
        return Err(TokenFileError::NotOwned {
            path: path.to_owned(),
            owner: m.uid(),
            agent,
        });
    }
    let mode = m.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(TokenFileError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Makes a token and writes it to a file that did not exist: O_CREAT|O_EXCL
/// never follows a symlink nor opens a file someone made in the meantime.
fn create(path: &Path) -> Result<String, TokenFileError> {
    let token = generate().map_err(TokenFileError::io(path))?;
    let mut f = match File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(TokenFileError::Raced {
                path: path.to_owned(),
                dir: path.parent().unwrap_or(Path::new(".")).to_owned(),
            });
        }
        Err(e) => return Err(TokenFileError::io(path)(e)),
    };
    if let Err(e) = writeln!(f, "{token}").and_then(|()| f.sync_all()) {
        // A half-written token would be read back as a different one.
        let _ = std::fs::remove_file(path);
        return Err(TokenFileError::io(path)(e));
    }
    Ok(token)
}

#[cfg(test)]
mod tests;
