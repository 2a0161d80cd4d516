//! [`ProcDir`]: how hostwatch reads the cheap files of every process
//! (`stat`, `statm`, `cmdline`, `status`); procfs reads the rest (open
//! files, maps, threads…) for the few processes a page shows. The
//! directory is opened once; a listing is `getdents` into a kept buffer,
//! and a process's files are opened relative to it, so reading one `stat`
//! is an `openat`, a `read` and a `close` (and an `fstat` for its owner),
//! with nothing allocated.

use super::stat::{self, Stat};
use crate::collect::{CollectError, cmdline};
use rustix::fs::{Mode, OFlags, RawDir, SeekFrom};
use std::{fs::File, os::fd::OwnedFd, os::unix::fs::FileExt};

pub struct ProcDir {
    proc: OwnedFd,
    dirbuf: Vec<u8>,
    pub ticks_per_second: f64,
    pub page_size: u64,
}

impl ProcDir {
    pub fn open() -> Result<Self, CollectError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let proc = rustix::fs::open("/proc", flags, Mode::empty())
            .map_err(|e| CollectError(format!("/proc cannot be opened: {e}")))?;
        Ok(Self {
            proc,
            dirbuf: Vec::with_capacity(32 * 1024),
            ticks_per_second: procfs::ticks_per_second() as f64,
            page_size: procfs::page_size(),
        })
    }

    /// The pids in `/proc`, in its order (by pid), into `pids`.
    pub fn list(&mut self, pids: &mut Vec<u32>) -> Result<(), CollectError> {
        let err = |e| CollectError(format!("/proc cannot be listed: {e}"));
        pids.clear();
        rustix::fs::seek(&self.proc, SeekFrom::Start(0)).map_err(err)?;
        let mut dir = RawDir::new(&self.proc, self.dirbuf.spare_capacity_mut());
        while let Some(entry) = dir.next() {
            let entry = entry.map_err(err)?;
            let name = entry.file_name().to_bytes();
            if let Some(pid) = std::str::from_utf8(name).ok().and_then(|n| n.parse().ok()) {
                pids.push(pid);
            }
        }
        Ok(())
    }

    /// `/proc/<pid>/<file>`, opened for reading; `None` when the process is
    /// gone or the file may not be read.
    pub fn open_file(&self, pid: u32, file: &str) -> Option<File> {
        let mut buf = [0u8; 32];
        let path = pid_path(&mut buf, pid, file);
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        rustix::fs::openat(&self.proc, path, flags, Mode::empty())
            .ok()
            .map(File::from)
    }

    /// A process's `stat` and, when asked, its owner.
    pub fn stat(&self, pid: u32, with_uid: bool) -> Option<(Stat, Option<u32>)> {
        let file = self.open_file(pid, "stat")?;
        let stat = read_stat(&file)?;
        Some((stat, with_uid.then(|| owner(&file)).flatten()))
    }

    /// The start of `/proc/<pid>/<file>` as text, read into `buf`.
    fn read_text<'a>(&self, pid: u32, file: &str, buf: &'a mut [u8]) -> Option<&'a str> {
        let n = self.open_file(pid, file)?.read_at(buf, 0).ok()?;
        std::str::from_utf8(&buf[..n]).ok()
    }

    /// A process's command line, of at most [`cmdline::MAX`] bytes; `None`
    /// when it is gone or may not be read. One `read`: the kernel fills a
    /// `cmdline` read to the size asked unless the arguments end first
    /// (`get_mm_cmdline` loops page by page), so a short read is the whole
    /// line and one byte past the bound tells a longer one.
    pub fn cmdline(&self, pid: u32) -> Option<cmdline::Cmdline> {
        let mut buf = [0u8; cmdline::MAX + 1];
        let n = self.open_file(pid, "cmdline")?.read_at(&mut buf, 0).ok()?;
        Some(cmdline::Cmdline::from_raw(
            &buf[..n.min(cmdline::MAX)],
            n > cmdline::MAX,
        ))
    }

    /// Shared, text and data sizes from `statm`, in pages.
    pub fn statm(&self, pid: u32) -> Option<Statm> {
        let mut buf = [0u8; 256];
        let text = self.read_text(pid, "statm", &mut buf)?;
        let mut f = [0u64; 7];
        let mut got = 0;
        for (slot, word) in f.iter_mut().zip(text.split_ascii_whitespace()) {
            *slot = word.parse().ok()?;
            got += 1;
        }
        (got == 7).then_some(Statm {
            shared: f[2],
            text: f[3],
            data: f[5],
        })
    }

    /// The real user of a process, from `status`, as `ps` and `top` show
    /// it (the owner of its `/proc` files is its effective user, and root
    /// for a process that is not dumpable, such as a daemon's workers).
    pub fn real_uid(&self, pid: u32) -> Option<u32> {
        let mut buf = [0u8; 4096];
        let text = self.read_text(pid, "status", &mut buf)?;
        let line = text.lines().find(|l| l.starts_with("Uid:"))?;
        line[4..].split_ascii_whitespace().next()?.parse().ok()
    }
}

/// Of `statm`, in pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statm {
    pub shared: u64,
    pub text: u64,
    pub data: u64,
}

/// `stat` read again from its start through a file kept open.
pub fn read_stat(file: &File) -> Option<Stat> {
    let mut buf = [0u8; 1024];
    let n = file.read_at(&mut buf, 0).ok()?;
    stat::parse(&buf[..n])
}

/// Who owns a file of `/proc/<pid>`: the process's effective user, or root
/// for one that is not dumpable (what procfs's `Process::uid` answers).
fn owner(file: &File) -> Option<u32> {
    rustix::fs::fstat(file).ok().map(|s| s.st_uid)
}

/// `<pid>/<file>` (relative to `/proc`) formatted into `buf`, without
/// allocating.
fn pid_path<'a>(buf: &'a mut [u8; 32], pid: u32, file: &str) -> &'a str {
    use std::io::Write;
    let mut w = &mut buf[..];
    let _ = write!(w, "{pid}/{file}");
    let len = 32 - w.len();
    std::str::from_utf8(&buf[..len]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_lists_itself_and_reads_its_own_files() {
        let mut dir = ProcDir::open().unwrap();
        let mut pids = Vec::new();
        dir.list(&mut pids).unwrap();
        let me = std::process::id();
        assert!(pids.contains(&me), "{pids:?}");
        assert!(pids.windows(2).all(|w| w[0] < w[1]), "by pid");
        let (s, uid) = dir.stat(me, true).unwrap();
        assert_eq!(uid, Some(rustix::process::geteuid().as_raw()));
        assert_eq!(
            s.ppid,
            rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32)
        );
        assert!(s.num_threads >= 1 && s.rss_pages > 0);
        let m = dir.statm(me).unwrap();
        assert!(m.text > 0 && m.data > 0, "{m:?}");
        assert!(dir.stat(u32::MAX, true).is_none(), "no such process");
        let own = std::fs::read("/proc/self/cmdline").unwrap();
        let c = dir.cmdline(me).unwrap();
        assert_eq!(
            c.args,
            crate::collect::cmdline::read(&own[..]).unwrap().args
        );
        assert!(!c.truncated && !c.args.is_empty());
        assert_eq!(dir.real_uid(me), Some(rustix::process::getuid().as_raw()));
    }

    #[test]
    fn a_command_line_past_the_bound_is_cut_there_and_says_so() {
        let dir = ProcDir::open().unwrap();
        let long = "x".repeat(cmdline::MAX * 2);
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read _", &long])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A vfork'd child lets its parent go before its new arguments are
        // in place (`exec_mmap` comes first): until then the file is empty.
        let mut c = None;
        for _ in 0..500 {
            c = dir.cmdline(child.id()).filter(|c| !c.args.is_empty());
            if c.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let _ = child.kill();
        let _ = child.wait();
        let c = c.unwrap();
        assert!(
            c.truncated,
            "{:?}",
            c.args.iter().map(|a| a.len()).collect::<Vec<_>>()
        );
        assert_eq!(
            c.args.iter().map(|a| a.len() + 1).sum::<usize>() - 1,
            cmdline::MAX
        );
        assert_eq!(&c.args[..2], ["sh", "-c"]);
    }
}
