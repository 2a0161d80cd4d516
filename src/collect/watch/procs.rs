//! [`ProcWatch`]: the processes that match each of a few matchers, read
//! cheaply enough for a 100 ms tick. Each refresh lists `/proc` (into a
//! kept buffer; not at all when no matcher is given) and reads `stat` only
//! of the processes that match, through a descriptor kept open while they do (for the first
//! [`MAX_KEPT`] of them; the others' is opened and closed each time). A
//! process that does not match has its name read when it is new, again on
//! the next refresh (a fork that execs a moment later changes its name),
//! then at most once per [`RECHECK`] (exec can rename a long-lived process).
//! Its command line is read, when a `Cmdline` matcher needs it or to
//! confirm a long name, only at those first two sightings and when its name
//! changes: never once a second for every process on the host. What is
//! remembered of a pid holds its start time: a pid whose start time changed
//! is a new process.

use super::{
    Matcher,
    reader::{Kept, MAX_KEPT, Reader},
};
use crate::collect::{
    CollectError,
    procs::stat::{Comm, Stat},
};
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// How often the name of a process that does not match is looked at again
/// (and the command line of one that does, when a `Cmdline` matcher exists).
pub const RECHECK: Duration = Duration::from_secs(1);

/// One matching process now.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProcSample {
    pub pid: u32,
    /// Field 22 of `stat`, what `control::Target::open` pins the pid with.
    pub start_ticks: u64,
    /// The kernel's name (`comm`), or the matcher's longer name it confirmed.
    pub name: String,
    /// The command line, cut to about 200 bytes, for messages.
    pub cmdline: String,
    /// Per core, like `top` (100 = one core busy): since this process's
    /// previous reading, or over its lifetime on its first. `None` when it
    /// cannot be told.
    pub cpu_percent: Option<f64>,
    /// Resident size over the host's `MemTotal`.
    pub memory_percent: f64,
    pub rss_bytes: u64,
}

pub struct ProcWatch {
    matchers: Vec<Matcher>,
    any_cmdline: bool,
    read: Reader,
    pids: Vec<u32>,
    entries: HashMap<u32, Entry>,
    generation: u64,
}

impl ProcWatch {
    pub fn new(matchers: Vec<Matcher>) -> Result<Self, CollectError> {
        Self::with_max_kept(matchers, MAX_KEPT)
    }

    /// Whether a refresh reads `/proc` at all.
    pub fn watches_any(&self) -> bool {
        !self.matchers.is_empty()
    }

    /// One that keeps at most `max_kept` `stat` files open.
    pub(super) fn with_max_kept(
        matchers: Vec<Matcher>,
        max_kept: usize,
    ) -> Result<Self, CollectError> {
        Ok(Self {
            any_cmdline: matchers.iter().any(|m| matches!(m, Matcher::Cmdline(_))),
            matchers,
            read: Reader::new(max_kept)?,
            pids: Vec::new(),
            entries: HashMap::new(),
            generation: 0,
        })
    }

    /// The matching processes now: one list per matcher, in the matchers'
    /// order, each by pid. The agent itself is not left out.
    pub fn refresh(&mut self) -> Vec<Vec<ProcSample>> {
        // Nothing to match: no rule watches a process, and /proc is not read.
        if self.matchers.is_empty() {
            return Vec::new();
        }
        let now = Instant::now();
        self.generation += 1;
        if let Err(e) = self.read.list(&mut self.pids) {
            // Not expected once /proc is open; the known processes can
            // still be read through their own files.
            tracing::warn!("{e}");
            self.pids.clear();
            self.pids.extend(self.entries.keys());
        }
        let mut out = vec![Vec::new(); self.matchers.len()];
        let mut uptime = None;
        for &pid in &self.pids {
            let e = self.entries.entry(pid).or_default();
            e.mark = self.generation;
            let Some(s) = self
                .read
                .visit(&self.matchers, self.any_cmdline, pid, e, now)
            else {
                continue;
            };
            let cpu = self.read.cpu_percent(&s, e.cpu, now, &mut uptime);
            e.cpu = Some((s.ticks(), now));
            let rss_bytes = s.rss_pages * self.read.page_size();
            let sample = ProcSample {
                pid,
                start_ticks: s.start_ticks,
                name: e.name.clone(),
                cmdline: e.cmdline.clone(),
                cpu_percent: cpu,
                memory_percent: crate::domain::check::percent(rss_bytes, self.read.mem_total),
                rss_bytes,
            };
            for &i in &e.matches {
                out[i].push(sample.clone());
            }
        }
        let generation = self.generation;
        self.entries.retain(|_, e| e.mark == generation);
        out
    }

    /// How many `stat` files are kept open now.
    #[cfg(test)]
    pub(super) fn kept(&self) -> usize {
        self.read.kept()
    }
}

/// What is remembered of one pid between refreshes.
#[derive(Debug, Default)]
pub(super) struct Entry {
    start_ticks: Option<u64>,
    /// Refreshes it was seen in (up to 2).
    seen: u8,
    /// When it was last looked at: its `stat` read while it does not match,
    /// its matches worked out while it does.
    checked: Option<Instant>,
    comm: Comm,
    /// Indexes of the matchers it matches; empty for most processes.
    pub(super) matches: Vec<usize>,
    /// `stat`, kept open while it matches, when a slot was free.
    pub(super) stat: Option<Kept>,
    /// CPU ticks and when, at the previous reading.
    pub(super) cpu: Option<(u64, Instant)>,
    pub(super) name: String,
    pub(super) cmdline: String,
    /// The refresh that last saw it in `/proc`.
    pub(super) mark: u64,
}

impl Entry {
    /// Whether a pid's name is due to be read: new, on the refresh after,
    /// then once per [`RECHECK`].
    pub(super) fn due(&self, now: Instant) -> bool {
        self.seen < 2
            || self
                .checked
                .is_none_or(|t| now.saturating_duration_since(t) >= RECHECK)
    }

    /// Takes a fresh `stat` (read because it matches or is due); answers
    /// whether the matches must be worked out again now (which may read the
    /// command line): new, renamed or dead; when it does not match, on its
    /// second sighting too (a fork that execs a moment later); when it
    /// matches, once per [`RECHECK`] if a `Cmdline` matcher exists. A
    /// process that does not match is not worked out again (its command
    /// line not read again) until its name changes. Another start time is
    /// another process: all is forgotten.
    pub(super) fn observe(&mut self, s: &Stat, now: Instant, any_cmdline: bool) -> bool {
        if self.start_ticks != Some(s.start_ticks) {
            *self = Self {
                start_ticks: Some(s.start_ticks),
                mark: self.mark,
                stat: self.stat.take(),
                ..Self::default()
            };
        }
        let renamed = std::mem::replace(&mut self.comm, s.comm) != s.comm;
        let unmatched = self.matches.is_empty();
        let again = self.checked.is_none()
            || renamed
            || s.is_dead()
            || if unmatched {
                self.seen < 2
            } else {
                any_cmdline && self.due(now)
            };
        self.seen = self.seen.saturating_add(1).min(2);
        if again || unmatched {
            self.checked = Some(now);
        }
        again
    }
}
