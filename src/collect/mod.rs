//! Reading the host. Plain data out, no HTTP and no SQL in. `/proc` has one
//! reader for the host as a whole ([`host::HostReader`]) and one for
//! processes ([`procs::ProcDir`]); each user keeps its own baselines, as
//! CPU use and I/O are differences between two of its own readings. The
//! long-lived `Collector` is the check's, primed once when it is made.

mod agent;
pub mod cmdline;
pub mod dirs;
mod host;
mod io;
pub mod mounts;
pub mod procs;
mod system;
pub mod watch;

pub use agent::{AgentReader, AgentStats};

/// This host's name, as the kernel has it (what `/api/v1/system` shows).
pub fn host_name() -> Option<String> {
    sysinfo::System::host_name()
        .ok()
        .filter(|h| !h.trim().is_empty())
}
pub use system::{
    BlockCounters, HostCounters, NetworkCounters, Partition, SystemReader, SystemSnapshot,
};

use crate::domain::{Cpu, Disk, Io, Memory, PartErrors, TopProcess};
use std::time::{Duration, Instant};
use sysinfo::Networks;

/// A part of the host that could not be read, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct CollectError(pub String);

/// Everything a check holds that comes from reading the host.
#[derive(Debug, Clone, Default)]
pub struct HostParts {
    pub cpu: Option<Cpu>,
    pub memory: Option<Memory>,
    pub disks: Option<Vec<Disk>>,
    pub io: Option<Io>,
    pub top_processes: Option<Vec<TopProcess>>,
    pub errors: PartErrors,
}

/// The least time the first check's CPU use is measured over: a few of
/// the kernel's ticks.
const FIRST_SPAN: Duration = Duration::from_millis(200);

pub struct Collector {
    host: host::HostReader,
    networks: Networks,
    io: io::IoCounter,
    /// `None` when checks leave processes out.
    top: Option<procs::TopReader>,
    top_n: usize,
    primed_at: Instant,
}

impl Collector {
    /// Makes the collector and takes the first readings that later ones are
    /// measured against. `top_n` of 0 leaves processes out of checks.
    pub fn new(top_n: usize) -> Result<Self, CollectError> {
        let err = |e: sysinfo::Error| CollectError(e.to_string());
        let host = host::HostReader::new()?;
        let mut c = Self {
            host,
            networks: Networks::new_with_refreshed_list().map_err(err)?,
            io: io::IoCounter::default(),
            top: (top_n > 0).then(procs::TopReader::new).transpose()?,
            top_n,
            primed_at: Instant::now(),
        };
        // Priming only: a failure here shows again, with its reason, in the first check.
        let _ = c.host.cpu(false);
        let _ = c.io.read(&c.networks);
        Ok(c)
    }

    /// How long after `new` the first CPU reading means something.
    pub fn ready_in(&self) -> std::time::Duration {
        FIRST_SPAN.saturating_sub(self.primed_at.elapsed())
    }

    /// Reads every part; one that fails is `None` with its reason in
    /// `errors`. A filesystem that does not answer within `statfs_deadline`
    /// has no sizes in `disks`, and is named in `errors`.
    pub fn take(&mut self, statfs_deadline: Duration) -> HostParts {
        let mut errors = PartErrors::default();
        let cpu = errors.keep("cpu", self.cpu());
        let memory = errors.keep("memory", self.host.memory());
        let disks = errors
            .keep("disks", host::disks(statfs_deadline))
            .map(|all| {
                all.into_iter()
                    .map(|(_, d)| {
                        if let Some(e) = &d.error {
                            errors.0.push(("disks", format!("{}: {e}", d.mount)));
                        }
                        d
                    })
                    .collect()
            });
        self.networks.refresh(true);
        let io = errors.keep("io", self.io.read(&self.networks));
        let top_processes = errors.keep("top_processes", self.top_processes());
        HostParts {
            cpu,
            memory,
            disks,
            io,
            top_processes,
            errors,
        }
    }

    fn cpu(&mut self) -> Result<Cpu, CollectError> {
        let now = self.host.cpu(false)?;
        let [load1, load5, load15] = self.host.load()?;
        Ok(Cpu {
            // No tick since the previous reading: nothing ran to count.
            percent: now.percent.unwrap_or(0.0),
            load1,
            load5,
            load15,
        })
    }

    fn top_processes(&mut self) -> Result<Vec<TopProcess>, CollectError> {
        match &mut self.top {
            Some(top) => top.read(self.top_n),
            None => Ok(Vec::new()),
        }
    }
}
