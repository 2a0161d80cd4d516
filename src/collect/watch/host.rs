//! [`HostWatch`]: the host's CPU, memory, swap and load through the
//! host's one reader ([`HostReader`], an instance of its own), and disk use
//! by `statvfs`.

use crate::{
    collect::{CollectError, host::HostReader},
    domain::check::percent,
};
use std::time::Duration;

/// The host now.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct HostNow {
    /// All cores, 0–100, since the previous read; `None` on the first.
    pub cpu_percent: Option<f64>,
    /// Used (total less available, as the sampler counts it) over total.
    pub memory_percent: f64,
    /// 0 when there is no swap.
    pub swap_percent: f64,
    pub load1: f64,
}

pub struct HostWatch(HostReader);

impl HostWatch {
    pub fn new() -> Result<Self, CollectError> {
        HostReader::new().map(Self)
    }

    /// Reads the host now; an error names the file that could not be read.
    pub fn read(&mut self) -> Result<HostNow, CollectError> {
        let cpu = self.0.cpu(false)?;
        let memory = self.0.memory()?;
        let [load1, ..] = self.0.load()?;
        Ok(HostNow {
            cpu_percent: cpu.percent,
            memory_percent: memory.percent,
            swap_percent: memory.swap_percent,
            load1,
        })
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
