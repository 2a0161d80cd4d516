//! [`HostWatch`]: the host's CPU, memory, swap and load from `/proc`, read
//! through descriptors kept open (one `pread` each), and disk use by
//! `statvfs`.

use crate::{collect::CollectError, domain::check::percent};
use std::{fs::File, os::unix::fs::FileExt, time::Duration};

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

pub struct HostWatch {
    stat: File,
    meminfo: File,
    loadavg: File,
    /// Busy and total CPU ticks at the previous read.
    last: Option<(u64, u64)>,
    buf: Vec<u8>,
}

fn open(path: &str) -> Result<File, CollectError> {
    File::open(path).map_err(|e| CollectError(format!("{path}: {e}")))
}

impl HostWatch {
    pub fn new() -> Result<Self, CollectError> {
        Ok(Self {
            stat: open("/proc/stat")?,
            meminfo: open("/proc/meminfo")?,
            loadavg: open("/proc/loadavg")?,
            last: None,
            buf: vec![0; 4096],
        })
    }

    /// Reads the host now; an error names the file that could not be read.
    pub fn read(&mut self) -> Result<HostNow, CollectError> {
        let cpu = read(&self.stat, &mut self.buf, "/proc/stat")
            .and_then(|t| cpu_ticks(t).ok_or_else(|| bad("/proc/stat")))?;
        let cpu_percent = self.last.replace(cpu).and_then(|(busy, total)| {
            let (busy, total) = (cpu.0.saturating_sub(busy), cpu.1.saturating_sub(total));
            (total > 0).then(|| percent(busy, total).clamp(0.0, 100.0))
        });
        let mem = read(&self.meminfo, &mut self.buf, "/proc/meminfo")?;
        let kb = |key| meminfo_kb(mem, key).ok_or_else(|| bad("/proc/meminfo"));
        let (total, available) = (kb("MemTotal:")?, kb("MemAvailable:")?);
        let (swap_total, swap_free) = (kb("SwapTotal:")?, kb("SwapFree:")?);
        let memory_percent = percent(total.saturating_sub(available), total);
        let swap_percent = percent(swap_total.saturating_sub(swap_free), swap_total);
        let load = read(&self.loadavg, &mut self.buf, "/proc/loadavg")?;
        let load1 = load
            .split_whitespace()
            .next()
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| bad("/proc/loadavg"))?;
        Ok(HostNow {
            cpu_percent,
            memory_percent,
            swap_percent,
            load1,
        })
    }
}

fn bad(path: &str) -> CollectError {
    CollectError(format!("{path} is not as expected"))
}

/// The start of a `/proc` file read again from its beginning (enough of
/// `/proc/stat` for its first line, all of the others).
fn read<'a>(f: &File, buf: &'a mut [u8], path: &str) -> Result<&'a str, CollectError> {
    let n = f
        .read_at(buf, 0)
        .map_err(|e| CollectError(format!("{path}: {e}")))?;
    std::str::from_utf8(&buf[..n]).map_err(|_| bad(path))
}

/// Busy and total ticks of the first (`cpu`) line of `/proc/stat`: busy is
/// all but idle and iowait; guest time is already in user time.
fn cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = v.iter().sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// A `Key:   123 kB` line of `/proc/meminfo`, in kB.
pub(super) fn meminfo_kb(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_leave_out_idle_and_iowait() {
        let stat = "cpu  100 10 50 800 40 5 5 0 30 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1 2\n";
        assert_eq!(cpu_ticks(stat), Some((170, 1010)));
        assert_eq!(cpu_ticks("intr 1"), None);
    }

    #[test]
    fn meminfo_values_are_read_by_key() {
        let m = "MemTotal:       16000 kB\nMemFree:  100 kB\nMemAvailable:   4000 kB\n";
        assert_eq!(meminfo_kb(m, "MemTotal:"), Some(16_000));
        assert_eq!(meminfo_kb(m, "MemAvailable:"), Some(4000));
        assert_eq!(meminfo_kb(m, "SwapTotal:"), None);
    }
}
