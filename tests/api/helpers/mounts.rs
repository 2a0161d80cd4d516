//! Real filesystems for fault tests: mounted on fresh directories (root
//! only) and lazily unmounted when dropped, passed or not.

use std::{path::PathBuf, process::Command};

/// A filesystem mounted on a fresh temporary directory; lazily unmounted
/// when dropped, passed or not, even while the agent still holds files there.
pub struct Mounted {
    pub point: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.point).status();
    }
}

/// A test that cannot set up its filesystem: a failure under CI, elsewhere a
/// skip that says why (returns `None`).
pub fn unmet<T>(why: &str) -> Option<T> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why} (with CI=true this fails rather than skips)");
    }
    eprintln!("SKIPPED: {why}");
    None
}

pub fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Mounts what `args` names (after `mount`) on a new directory.
pub fn mount(args: &[&str]) -> Option<Mounted> {
    if !rustix::process::geteuid().is_root() {
        return unmet("mounting a test filesystem needs root; run the tests as root");
    }
    let dir = tempfile::tempdir().unwrap();
    // The kernel shows mount points canonical; so does this path.
    let point = dir.path().canonicalize().unwrap().join("mnt");
    std::fs::create_dir(&point).unwrap();
    match run(Command::new("mount").args(args).arg(&point)) {
        Ok(()) => Some(Mounted { point, _dir: dir }),
        Err(e) => unmet(&format!("cannot mount a test filesystem: {e}")),
    }
}
