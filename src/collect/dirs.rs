//! Measuring a directory tree: bytes on disk, apparent bytes and files,
//! without following symlinks, bounded in entries and in time so a huge tree
//! never stalls the agent.

use std::{
    os::unix::fs::MetadataExt,
    path::Path,
    time::{Duration, Instant},
};

/// Limits of one measurement.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: u64,
    pub max_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 2_000_000,
            max_time: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DirSize {
    /// Allocated on disk (`du`): blocks × 512.
    pub bytes: u64,
    /// Sum of file lengths.
    pub apparent_bytes: u64,
    pub files: u64,
    pub dirs: u64,
    /// Size of the filesystem the tree lives on.
    pub filesystem_bytes: Option<u64>,
    /// False when a limit cut the walk short; the figures are then partial.
    pub complete: bool,
    /// Entries that could not be read (permissions, vanished).
    pub unreadable: u64,
}

pub fn measure(root: &Path, limits: Limits) -> Result<DirSize, String> {
    let meta = std::fs::symlink_metadata(root).map_err(|e| format!("{}: {e}", root.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", root.display()));
    }
    let started = Instant::now();
    let mut size = DirSize {
        complete: true,
        ..Default::default()
    };
    let mut stack = vec![root.to_path_buf()];
    let mut seen = 0u64;
    'walk: while let Some(dir) = stack.pop() {
        size.dirs += 1;
        let Ok(entries) = std::fs::read_dir(&dir) else {
            size.unreadable += 1;
            continue;
        };
        for entry in entries {
            seen += 1;
            if seen > limits.max_entries
                || (seen.is_multiple_of(1024) && started.elapsed() > limits.max_time)
            {
                size.complete = false;
                break 'walk;
            }
            let Ok(entry) = entry else {
                size.unreadable += 1;
                continue;
            };
            let Ok(m) = entry.metadata() else {
                size.unreadable += 1;
                continue;
            };
            size.bytes += m.blocks() * 512;
            if m.is_dir() {
                stack.push(entry.path());
            } else {
                size.files += 1;
                size.apparent_bytes += m.len();
            }
        }
    }
    size.filesystem_bytes = rustix::fs::statvfs(root)
        .ok()
        .map(|s| s.f_blocks * s.f_frsize);
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_is_counted_without_following_symlinks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/one"), vec![0u8; 1000]).unwrap();
        std::fs::write(d.path().join("a/b/two"), vec![0u8; 5000]).unwrap();
        std::os::unix::fs::symlink("/usr", d.path().join("a/usr")).unwrap();
        let s = measure(d.path(), Limits::default()).unwrap();
        assert_eq!(
            (s.files, s.apparent_bytes - 6000 <= "/usr".len() as u64),
            (3, true)
        );
        assert!(s.complete);
        assert!(s.filesystem_bytes.unwrap() > 0);
    }

    #[test]
    fn an_entry_limit_stops_the_walk_and_says_so() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..50 {
            std::fs::write(d.path().join(i.to_string()), b"x").unwrap();
        }
        let s = measure(
            d.path(),
            Limits {
                max_entries: 10,
                max_time: Duration::from_secs(5),
            },
        )
        .unwrap();
        assert!(!s.complete);
        assert!(s.files <= 10);
    }
}
