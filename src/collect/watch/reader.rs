//! How [`super::ProcWatch`] reads `/proc`: `stat` through a descriptor kept
//! open while a process matches (for at most [`MAX_KEPT`] processes), the
//! name and command line only when they are due.

use super::{Matcher, procs::Entry};
use crate::collect::{
    CollectError,
    procs::{
        ProcDir, cpu,
        dir::read_stat,
        stat::{COMM_LEN, Stat},
    },
};
use std::{
    fs::File,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::Relaxed},
    },
    time::Instant,
};

/// Bytes of a command line kept in a sample, for messages.
pub const CMDLINE_SHORT: usize = 200;
/// The most `stat` files one reader keeps open. Anyone can start processes
/// that match a rule; past this many, the others' `stat` is opened, read and
/// closed at each refresh, so they cannot use up the agent's descriptors.
pub const MAX_KEPT: usize = 128;

/// A `stat` file kept open; it holds one of its reader's [`MAX_KEPT`] slots
/// until it is closed.
#[derive(Debug)]
pub(super) struct Kept {
    file: File,
    slots: Arc<AtomicUsize>,
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.slots.fetch_sub(1, Relaxed);
    }
}

/// Reads `/proc` for [`super::ProcWatch`].
pub(super) struct Reader {
    dir: ProcDir,
    /// The `stat` files kept open now, and the most there may be.
    kept: Arc<AtomicUsize>,
    max_kept: usize,
    /// The last command line read, arguments joined by spaces.
    cmdline: Vec<u8>,
    /// Where its `argv[0]` ends.
    argv0_len: usize,
    pub(super) mem_total: u64,
}

impl Reader {
    /// A reader that keeps at most `max_kept` `stat` files open.
    pub(super) fn new(max_kept: usize) -> Result<Self, CollectError> {
        let dir = ProcDir::open()?;
        let meminfo = std::fs::read_to_string("/proc/meminfo")
            .map_err(|e| CollectError(format!("/proc/meminfo: {e}")))?;
        let mem_total = crate::collect::host::meminfo_kb(&meminfo, "MemTotal:")
            .filter(|&kb| kb > 0)
            .ok_or_else(|| CollectError("/proc/meminfo has no MemTotal".into()))?;
        Ok(Self {
            dir,
            kept: Arc::default(),
            max_kept,
            cmdline: Vec::new(),
            argv0_len: 0,
            mem_total: mem_total * 1024,
        })
    }

    /// The pids in `/proc`, in its order (by pid).
    pub(super) fn list(&mut self, pids: &mut Vec<u32>) -> Result<(), CollectError> {
        self.dir.list(pids)
    }

    pub(super) fn page_size(&self) -> u64 {
        self.dir.page_size
    }

    fn open(&self, pid: u32, file: &str) -> Option<File> {
        self.dir.open_file(pid, file)
    }

    /// How many `stat` files are kept open now.
    #[cfg(test)]
    pub(super) fn kept(&self) -> usize {
        self.kept.load(Relaxed)
    }

    /// Reads what is due of one pid; its `stat` when it matches, kept open
    /// if a slot is free. A pid that is gone is marked for dropping.
    pub(super) fn visit(
        &mut self,
        matchers: &[Matcher],
        any_cmdline: bool,
        pid: u32,
        e: &mut Entry,
        now: Instant,
    ) -> Option<Stat> {
        if e.matches.is_empty() && !e.due(now) {
            return None;
        }
        let mut opened = None;
        let Some(s) = self.stat(pid, e.stat.as_ref(), &mut opened) else {
            e.mark = 0;
            return None;
        };
        if e.observe(&s, now, any_cmdline) {
            self.work_out(matchers, any_cmdline, pid, &s, e);
        }
        if e.matches.is_empty() {
            e.stat = None;
            e.cpu = None;
            return None;
        }
        if e.stat.is_none() {
            e.stat = opened.and_then(|file| self.keep(file));
        }
        Some(s)
    }

    /// `stat` through `kept`, or through a file opened into `opened` (closed
    /// when dropped, unless the caller keeps it).
    fn stat(&self, pid: u32, kept: Option<&Kept>, opened: &mut Option<File>) -> Option<Stat> {
        let file = match kept {
            Some(k) => &k.file,
            None => opened.insert(self.open(pid, "stat")?),
        };
        read_stat(file)
    }

    /// `file` kept open if one of the slots is free; otherwise it is closed.
    fn keep(&self, file: File) -> Option<Kept> {
        let max = self.max_kept;
        self.kept
            .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
            .ok()?;
        Some(Kept {
            file,
            slots: Arc::clone(&self.kept),
        })
    }

    /// Works out which matchers the process matches, with its name and
    /// command line for samples when it matches any.
    fn work_out(
        &mut self,
        matchers: &[Matcher],
        any_cmdline: bool,
        pid: u32,
        s: &Stat,
        e: &mut Entry,
    ) {
        e.matches.clear();
        e.name.clear();
        e.cmdline.clear();
        if s.is_dead() {
            return;
        }
        let comm = s.comm.as_bytes();
        let confirm = matchers.iter().any(|m| m.needs_confirming(comm));
        let read = (any_cmdline || confirm) && self.read_cmdline(pid);
        // Borrowed, not copied, when it is UTF-8.
        let text = read.then(|| String::from_utf8_lossy(&self.cmdline));
        let mut name = None;
        for (i, m) in matchers.iter().enumerate() {
            let hit = match m {
                Matcher::Name(n) if n.len() <= COMM_LEN => n.as_bytes() == comm,
                Matcher::Name(n) => {
                    let hit = m.needs_confirming(comm) && self.confirms(n, pid);
                    if hit {
                        name = Some(n.as_str());
                    }
                    hit
                }
                Matcher::Cmdline(re) => text
                    .as_deref()
                    .is_some_and(|t| !t.is_empty() && re.is_match(t)),
            };
            if hit {
                e.matches.push(i);
            }
        }
        if e.matches.is_empty() {
            return;
        }
        e.name = name.map_or_else(|| String::from_utf8_lossy(comm).into_owned(), str::to_owned);
        let kept = text.map(|t| short(&t));
        e.cmdline = match kept {
            Some(kept) => kept,
            None if self.read_cmdline(pid) => short(&String::from_utf8_lossy(&self.cmdline)),
            None => String::new(),
        };
    }

    /// Reads `cmdline` into `self.cmdline`, its arguments joined by spaces
    /// as `ps` shows them (in place: no copy), and notes where `argv[0]`
    /// ends. A regex sees the first `cmdline::MAX` bytes, as the API shows.
    fn read_cmdline(&mut self, pid: u32) -> bool {
        self.cmdline.clear();
        let read = self
            .open(pid, "cmdline")
            .is_some_and(|f| crate::collect::cmdline::read_raw(f, &mut self.cmdline).is_ok());
        if self.cmdline.last() == Some(&0) {
            self.cmdline.pop();
        }
        self.argv0_len = self
            .cmdline
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.cmdline.len());
        for b in &mut self.cmdline {
            if *b == 0 {
                *b = b' ';
            }
        }
        read
    }

    /// A long name is confirmed by `argv[0]`'s file name or the executable's
    /// (read after the command line, which is still in `self.cmdline`).
    fn confirms(&self, name: &str, pid: u32) -> bool {
        let argv0 = &self.cmdline[..self.argv0_len];
        let base = argv0.rsplit(|&b| b == b'/').next().unwrap_or_default();
        base == name.as_bytes()
            || std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|exe| exe.file_name().is_some_and(|f| f == name))
    }

    pub(super) fn cpu_percent(
        &self,
        s: &Stat,
        last: Option<(u64, Instant)>,
        now: Instant,
        uptime: &mut Option<Option<f64>>,
    ) -> Option<f64> {
        cpu::since(s, last, now, self.dir.ticks_per_second, uptime)
    }
}

/// At most [`CMDLINE_SHORT`] bytes, cut on a character boundary.
fn short(text: &str) -> String {
    let mut end = text.len().min(CMDLINE_SHORT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
