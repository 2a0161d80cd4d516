//! [`HostWatch`]: the host's CPU, memory, swap and load through the
//! host's one reader ([`HostReader`], an instance of its own), and disk use
//! by `statvfs`.

use crate::{
    collect::{CollectError, host::HostReader},
    domain::check::percent,
};
use std::time::Duration;

/// The host now: what was asked for ([`HostWant`]), `None` for the rest.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct HostNow {
    /// All cores, 0–100, since the previous read; `None` on the first.
    pub cpu_percent: Option<f64>,
    /// Used (total less available, as the sampler counts it) over total.
    pub memory_percent: Option<f64>,
    /// 0 when there is no swap.
    pub swap_percent: Option<f64>,
    pub load1: Option<f64>,
}

/// Which of the host's files a reading reads: each is a file the kernel
/// writes out afresh for every read, every tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostWant {
    /// `/proc/stat`
    pub cpu: bool,
    /// `/proc/meminfo`: memory and swap.
    pub memory: bool,
    /// `/proc/loadavg`
    pub load: bool,
}

impl HostWant {
    pub const ALL: Self = Self {
        cpu: true,
        memory: true,
        load: true,
    };

    pub fn any(self) -> bool {
        self.cpu || self.memory || self.load
    }
}

pub struct HostWatch(HostReader);

impl HostWatch {
    pub fn new() -> Result<Self, CollectError> {
        HostReader::new().map(Self)
    }

    /// Reads what `want` names, now; an error names the file that could
    /// not be read.
    pub fn read(&mut self, want: HostWant) -> Result<HostNow, CollectError> {
        let mut now = HostNow::default();
        if want.cpu {
            now.cpu_percent = self.0.cpu(false)?.percent;
        }
        if want.memory {
            let memory = self.0.memory()?;
            now.memory_percent = Some(memory.percent);
            now.swap_percent = Some(memory.swap_percent);
        }
        if want.load {
            now.load1 = Some(self.0.load()?[0]);
        }
        Ok(now)
    }
}

/// Used over used plus available to unprivileged users, like `df`; `None`
/// when `mount` cannot be read, holds nothing, or does not answer within
/// half a second (bounded as the check's disks are: `mounts::statfs_all`).
pub fn disk_percent(mount: &str) -> Option<f64> {
    let path = std::path::Path::new(mount);
    let answer = crate::collect::mounts::statfs_all(&[path], Duration::from_millis(500));
    let Some(crate::collect::mounts::Answer::Usage(u)) = answer.into_iter().next() else {
        return None;
    };
    let used = u.total_bytes.saturating_sub(u.free_bytes);
    let avail = u.available_bytes;
    (used + avail > 0).then(|| percent(used, used + avail))
}
