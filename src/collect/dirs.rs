//! Measuring a directory tree: bytes on disk, apparent bytes and files,
//! without following symlinks or leaving the root's filesystem, counting a
//! hard-linked file once, bounded in entries and in time and cancellable, so
//! a huge tree (`/`) never stalls the agent or its shutdown.

use rustix::{
    fd::OwnedFd,
    fs::{self, AtFlags, FileType, Mode, OFlags},
    io::Errno,
};
use std::{
    collections::HashSet,
    ffi::CString,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
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

/// Hard-linked files remembered so each is counted once (about 2 MiB at
/// most); past that, further links are counted again, as `du -l` would.
const MAX_LINKED: usize = 100_000;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DirSize {
    /// Allocated on disk (`du -x`): blocks × 512.
    pub bytes: u64,
    /// Sum of file lengths.
    pub apparent_bytes: u64,
    pub files: u64,
    pub dirs: u64,
    /// Total size of the filesystem the tree lives on.
    pub filesystem_bytes: Option<u64>,
    /// False when a limit or a cancel cut the walk short; the figures are
    /// then partial.
    pub complete: bool,
    /// Entries that could not be read (permissions, vanished).
    pub unreadable: u64,
}

impl DirSize {
    /// `bytes` as a percentage of the filesystem's *total* size (not its
    /// used bytes, which change under the walk), clamped to 0–100: blocks
    /// shared by files (reflinks, snapshots, hard links past `MAX_LINKED`)
    /// can add up to more than the filesystem holds. `None` when its size
    /// is unknown.
    pub fn share_percent(&self) -> Option<f64> {
        let total = self.filesystem_bytes.filter(|&t| t > 0)?;
        Some((self.bytes as f64 * 100.0 / total as f64).min(100.0))
    }
}

/// Walks the tree under `root`. Directories on another filesystem (mount
/// points: /proc, /sys, other disks) are neither counted nor entered, like
/// `du -x`. `cancel` is read at every entry: once set, the walk ends within
/// one `stat` and answers what it has, with `complete: false`.
pub fn measure(root: &Path, limits: Limits, cancel: &AtomicBool) -> Result<DirSize, String> {
    let fail = |e: rustix::io::Errno| format!("{}: {e}", root.display());
    let root_fd = fs::open(root, dir_flags(), Mode::empty()).map_err(|e| match e {
        Errno::NOTDIR | Errno::LOOP => format!("{} is not a directory", root.display()),
        other => fail(other),
    })?;
    let root_dev = fs::fstat(&root_fd).map_err(fail)?.st_dev;
    let started = Instant::now();
    let mut size = DirSize {
        complete: true,
        ..Default::default()
    };
    // Device and inode: on overlayfs a file's st_dev can be its lower
    // layer's, so the inode alone does not name a file.
    let mut linked: HashSet<(u64, u64)> = HashSet::new();
    // Directories are opened relative to their parent's descriptor, never by
    // path: a directory swapped for a symlink mid-walk is not followed
    // (O_NOFOLLOW), and its device is checked on what was opened. Siblings
    // share their parent's descriptor, so as many are open as the tree is deep.
    let mut stack: Vec<(Arc<OwnedFd>, Option<CString>)> = vec![(Arc::new(root_fd), None)];
    let mut seen = 0u64;
    'walk: while let Some((parent, name)) = stack.pop() {
        let fd = match name {
            None => parent,
            Some(name) => match fs::openat(&*parent, name.as_c_str(), dir_flags(), Mode::empty()) {
                Ok(fd) => Arc::new(fd),
                Err(_) => {
                    size.unreadable += 1;
                    continue;
                }
            },
        };
        match fs::fstat(&*fd) {
            Ok(st) if st.st_dev == root_dev => {}
            // Swapped for another filesystem's directory since it was listed.
            Ok(_) => continue,
            Err(_) => {
                size.unreadable += 1;
                continue;
            }
        }
        size.dirs += 1;
        let Ok(entries) = fs::Dir::read_from(&*fd) else {
            size.unreadable += 1;
            continue;
        };
        for entry in entries {
            seen += 1;
            if seen > limits.max_entries
                || cancel.load(Ordering::Relaxed)
                || (seen.is_multiple_of(1024) && started.elapsed() > limits.max_time)
            {
                size.complete = false;
                break 'walk;
            }
            let Ok(entry) = entry else {
                size.unreadable += 1;
                continue;
            };
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            let Ok(m) = fs::statat(&*fd, name, AtFlags::SYMLINK_NOFOLLOW) else {
                size.unreadable += 1;
                continue;
            };
            let blocks = m.st_blocks as u64 * 512;
            if FileType::from_raw_mode(m.st_mode) == FileType::Directory {
                // Only directories are compared, as `du -x` does: on
                // overlayfs, files may report their layer's device.
                if m.st_dev != root_dev {
                    continue;
                }
                size.bytes += blocks;
                stack.push((Arc::clone(&fd), Some(name.to_owned())));
                continue;
            }
            if m.st_nlink > 1 {
                let file = (m.st_dev, m.st_ino);
                if linked.contains(&file) {
                    continue;
                }
                if linked.len() < MAX_LINKED {
                    linked.insert(file);
                }
            }
            size.bytes += blocks;
            size.files += 1;
            size.apparent_bytes += m.st_size as u64;
        }
    }
    size.filesystem_bytes = rustix::fs::statvfs(root)
        .ok()
        .map(|s| s.f_blocks * s.f_frsize);
    Ok(size)
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::process::Command;

    fn walk(root: &Path) -> DirSize {
        measure(root, Limits::default(), &AtomicBool::new(false)).unwrap()
    }

    #[test]
    fn a_root_that_is_a_symlink_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink("/usr", &link).unwrap();
        let e = measure(&link, Limits::default(), &AtomicBool::new(false)).unwrap_err();
        assert!(e.contains("not a directory"), "{e}");
    }

    #[test]
    fn a_tree_is_counted_without_following_symlinks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/one"), vec![0u8; 1000]).unwrap();
        std::fs::write(d.path().join("a/b/two"), vec![0u8; 5000]).unwrap();
        std::os::unix::fs::symlink("/usr", d.path().join("a/usr")).unwrap();
        let s = walk(d.path());
        assert_eq!(
            (s.files, s.apparent_bytes - 6000 <= "/usr".len() as u64),
            (3, true)
        );
        assert!(s.complete);
        assert!(s.filesystem_bytes.unwrap() > 0);
    }

    #[test]
    fn a_hard_linked_file_is_counted_once() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("one"), vec![1u8; 8000]).unwrap();
        std::fs::hard_link(d.path().join("one"), d.path().join("two")).unwrap();
        std::fs::hard_link(d.path().join("one"), d.path().join("three")).unwrap();
        let s = walk(d.path());
        assert_eq!((s.files, s.apparent_bytes), (1, 8000));
        let blocks = std::fs::metadata(d.path().join("one")).unwrap().blocks();
        assert_eq!(s.bytes, blocks * 512);
    }

    #[test]
    fn an_entry_limit_stops_the_walk_and_says_so() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..50 {
            std::fs::write(d.path().join(i.to_string()), b"x").unwrap();
        }
        let limits = Limits {
            max_entries: 10,
            max_time: Duration::from_secs(5),
        };
        let s = measure(d.path(), limits, &AtomicBool::new(false)).unwrap();
        assert!(!s.complete);
        assert!(s.files <= 10);
    }

    #[test]
    fn a_cancelled_walk_stops_at_once_and_says_it_is_partial() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..50 {
            std::fs::write(d.path().join(i.to_string()), b"x").unwrap();
        }
        let s = measure(d.path(), Limits::default(), &AtomicBool::new(true)).unwrap();
        assert!(!s.complete);
        assert_eq!(s.files, 0);
    }

    #[test]
    fn cancelling_a_walk_of_the_root_ends_it_promptly() {
        let cancel = std::sync::Arc::new(AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&cancel);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(measure(Path::new("/"), Limits::default(), &flag));
        });
        std::thread::sleep(Duration::from_millis(200));
        cancel.store(true, Ordering::Relaxed);
        let s = rx
            .recv_timeout(Duration::from_secs(1))
            .expect("ended promptly");
        // A small root may have been walked whole within 200 ms.
        assert!(s.unwrap().files > 0);
    }

    #[test]
    fn the_share_of_the_filesystem_is_never_above_100_percent() {
        let at = |bytes, fs| {
            DirSize {
                bytes,
                filesystem_bytes: fs,
                ..Default::default()
            }
            .share_percent()
        };
        assert_eq!(at(50, Some(200)), Some(25.0));
        assert_eq!(at(300, Some(200)), Some(100.0));
        assert_eq!(at(u64::MAX, Some(1)), Some(100.0));
        assert_eq!(at(5, Some(0)), None);
        assert_eq!(at(5, None), None);
    }

    /// Unmounts what the test mounted, however the test ends.
    struct Mounted<'a>(&'a Path);

    impl Drop for Mounted<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }

    #[test]
    fn a_walk_does_not_enter_another_filesystem() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        if !rustix::process::geteuid().is_root() {
            assert!(!ci, "under CI this test runs as root, to mount a tmpfs");
            eprintln!("skipped: mounting a tmpfs needs root");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(d.path().join("here"), vec![1u8; 4096]).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "none"])
            .arg(&sub)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            assert!(!ci, "as root under CI, mounting a tmpfs must work");
            eprintln!("skipped: cannot mount a tmpfs here");
            return;
        }
        let _unmount = Mounted(&sub);
        std::fs::write(sub.join("there"), vec![1u8; 100_000]).unwrap();
        let s = walk(d.path());
        assert_eq!((s.files, s.dirs, s.apparent_bytes), (1, 1, 4096));
        assert!(s.bytes < 100_000, "{}", s.bytes);
    }
}
