//! [`ProcWatch`]: the processes that match each of a few matchers, read
//! cheaply enough for a 100 ms tick. Each refresh lists `/proc` (one
//! `getdents` into a kept buffer) and reads `stat` only of the processes
//! that match, through a descriptor kept open while they do. A process that
//! does not match has its name read when it is new, again on the next
//! refresh (a fork that execs a moment later changes its name), then at
//! most once per [`RECHECK`](super::reader::RECHECK) (exec can rename a
//! long-lived process); its command line only when a `Cmdline` matcher
//! needs it or to confirm a long name. What is remembered of a pid holds
//! its start time: a pid whose start time changed is a new process.

use super::{
    Matcher,
    reader::{Entry, Reader},
};
use crate::collect::CollectError;
use std::{collections::HashMap, time::Instant};

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
        Ok(Self {
            any_cmdline: matchers.iter().any(|m| matches!(m, Matcher::Cmdline(_))),
            matchers,
            read: Reader::new()?,
            pids: Vec::new(),
            entries: HashMap::new(),
            generation: 0,
        })
    }

    /// The matching processes now: one list per matcher, in the matchers'
    /// order, each by pid. The agent itself is not left out.
    pub fn refresh(&mut self) -> Vec<Vec<ProcSample>> {
        let now = Instant::now();
        self.generation += 1;
        if let Err(e) = self.read.list(&mut self.pids) {
            // Not expected once /proc is open; the known processes can
            // still be read through their own files.
            tracing::warn!("/proc cannot be listed: {e}");
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
            e.cpu = Some((s.ticks, now));
            let rss_bytes = s.rss_pages * self.read.page_size;
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
}
