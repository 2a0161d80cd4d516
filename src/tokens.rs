//! API tokens: making them, hashing them, and the generated control token
//! kept beside the database when the config names none.

use crate::config::{Scope, TokenSettings};
use sha2::{Digest, Sha256};
use std::{
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

/// Name of the token made at start-up when the config has none.
pub const GENERATED_NAME: &str = "generated";

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

/// Reads the generated token, or makes one and writes it with mode 0600.
pub fn load_or_create(db: &Path) -> std::io::Result<(TokenSettings, PathBuf)> {
    let path = token_file(db);
    let existing = match std::fs::read_to_string(&path) {
        Ok(s) => Some(s.trim().to_owned()).filter(|t| !t.is_empty()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let token = match existing {
        Some(t) => {
            // Whoever loosened it, the file holds a control token: keep it private.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            t
        }
        None => {
            let t = generate()?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)?;
            writeln!(f, "{t}")?;
            f.sync_all()?;
            t
        }
    };
    let settings = TokenSettings {
        name: GENERATED_NAME.into(),
        scope: Scope::Control,
        sha256: sha256(&token),
    };
    Ok((settings, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_reused_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("h.db");
        let (a, path) = load_or_create(&db).unwrap();
        let (b, _) = load_or_create(&db).unwrap();
        assert_eq!(a.sha256, b.sha256);
        assert_eq!(path, dir.path().join("h.db.token"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn two_generated_tokens_differ() {
        assert_ne!(generate().unwrap(), generate().unwrap());
        assert_eq!(generate().unwrap().len(), 67);
    }

    #[test]
    fn the_config_entry_holds_the_hash_not_the_token() {
        let e = config_entry("ops", Scope::Read, "hw_secret");
        assert!(!e.contains("hw_secret"));
        assert!(e.contains(&hex::encode(sha256("hw_secret"))));
    }
}
