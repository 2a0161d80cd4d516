//! [`HostReader`]: `/proc/stat`, `/proc/meminfo` and `/proc/loadavg` read
//! through descriptors kept open (one `pread` each, into a kept buffer).
//! Each user (the check, the system snapshot and `/metrics`, the watchdog)
//! has its own, as CPU use is measured since that user's previous reading.

use crate::{
    collect::CollectError,
    domain::{Memory, check::percent},
};
use std::{fs::File, os::unix::fs::FileExt};

/// The CPU time of one `cpu` line of `/proc/stat`, in clock ticks: user,
/// nice, system, idle, iowait, irq, softirq, steal (guest time is already
/// in user time). Kernels without the later ones give 0 for them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ticks(pub [u64; 8]);

impl Ticks {
    /// All but idle and iowait, and all.
    fn busy_total(&self) -> (u64, u64) {
        let total: u64 = self.0.iter().sum();
        (total.saturating_sub(self.0[3] + self.0[4]), total)
    }

    /// Busy share of the time between `before` and `self`, 0–100; `None`
    /// when no tick passed.
    pub fn percent_since(&self, before: &Ticks) -> Option<f64> {
        let (busy, total) = self.busy_total();
        let (busy0, total0) = before.busy_total();
        let total = total.saturating_sub(total0);
        (total > 0).then(|| percent(busy.saturating_sub(busy0), total).clamp(0.0, 100.0))
    }
}

/// One reading of `/proc/stat`.
#[derive(Debug, Clone)]
pub struct CpuReading {
    /// All cores together, since the previous reading; `None` on the first
    /// or when no tick passed.
    pub percent: Option<f64>,
    /// All cores together since boot.
    pub total: Ticks,
    /// Each core (`cpu0`, `cpu1`…) since the previous reading, when asked
    /// for.
    pub cores: Vec<(u32, Option<f64>)>,
}

pub struct HostReader {
    stat: File,
    meminfo: File,
    loadavg: File,
    buf: Vec<u8>,
    last: Option<Ticks>,
    /// Each core's ticks at the previous reading, by core number (a core
    /// taken offline leaves a gap in the numbers).
    last_cores: Vec<(u32, Ticks)>,
}

fn open(path: &str) -> Result<File, CollectError> {
    File::open(path).map_err(|e| CollectError(format!("{path}: {e}")))
}

fn bad(path: &str) -> CollectError {
    CollectError(format!("{path} is not as expected"))
}

/// The most of `/proc/stat` read to find every core's line (a host with
/// thousands of cores).
const MAX_STAT: usize = 1 << 20;

impl HostReader {
    pub fn new() -> Result<Self, CollectError> {
        Ok(Self {
            stat: open("/proc/stat")?,
            meminfo: open("/proc/meminfo")?,
            loadavg: open("/proc/loadavg")?,
            buf: vec![0; 4096],
            last: None,
            last_cores: Vec::new(),
        })
    }

    /// Reads `/proc/stat`: the total line, and each core's when `cores`.
    pub fn cpu(&mut self, cores: bool) -> Result<CpuReading, CollectError> {
        const PATH: &str = "/proc/stat";
        let text = loop {
            let n = self
                .stat
                .read_at(&mut self.buf, 0)
                .map_err(|e| CollectError(format!("{PATH}: {e}")))?;
            let text = std::str::from_utf8(&self.buf[..n]).map_err(|_| bad(PATH))?;
            // The core lines come first; the buffer grows until they all fit.
            let whole = n < self.buf.len() || text.contains("\nintr ");
            if whole || !cores || self.buf.len() >= MAX_STAT {
                break &self.buf[..n];
            }
            let len = self.buf.len() * 2;
            self.buf.resize(len, 0);
        };
        let text = std::str::from_utf8(text).map_err(|_| bad(PATH))?;
        let mut lines = text.lines();
        let total = lines
            .next()
            .and_then(|l| ticks(l.strip_prefix("cpu ")?))
            .ok_or_else(|| bad(PATH))?;
        let percent = self
            .last
            .replace(total)
            .and_then(|before| total.percent_since(&before));
        let mut per_core = Vec::new();
        if cores {
            let mut now = Vec::with_capacity(self.last_cores.len());
            for line in lines {
                let Some(rest) = line.strip_prefix("cpu") else {
                    break;
                };
                let Some((n, t)) = rest.split_once(' ') else {
                    continue;
                };
                let (Ok(n), Some(t)) = (n.parse::<u32>(), ticks(t)) else {
                    continue;
                };
                let before = self.last_cores.iter().find(|(c, _)| *c == n);
                per_core.push((n, before.and_then(|(_, b)| t.percent_since(b))));
                now.push((n, t));
            }
            self.last_cores = now;
        }
        Ok(CpuReading {
            percent,
            total,
            cores: per_core,
        })
    }

    /// CPU time since boot, all cores together, leaving the baseline of
    /// [`Self::cpu`] where it was (a `/metrics` scrape between two system
    /// snapshots does not shorten what the second one measures).
    pub fn totals(&mut self) -> Result<Ticks, CollectError> {
        let last = self.last;
        let reading = self.cpu(false);
        self.last = last;
        reading.map(|r| r.total)
    }

    /// Memory and swap; used is total less available.
    pub fn memory(&mut self) -> Result<Memory, CollectError> {
        const PATH: &str = "/proc/meminfo";
        let text = read(&self.meminfo, &mut self.buf, PATH)?;
        let kb = |key| meminfo_kb(text, key).ok_or_else(|| bad(PATH));
        // Kernels before 3.14 have no MemAvailable: free plus page cache.
        let available = match meminfo_kb(text, "MemAvailable:") {
            Some(a) => a,
            None => kb("MemFree:")? + kb("Buffers:")? + kb("Cached:")?,
        };
        let (total, available) = (kb("MemTotal:")? * 1024, available * 1024);
        let (swap_total, swap_free) = (kb("SwapTotal:")? * 1024, kb("SwapFree:")? * 1024);
        if total == 0 {
            return Err(bad(PATH));
        }
        let used = total.saturating_sub(available);
        let swap_used = swap_total.saturating_sub(swap_free);
        Ok(Memory {
            total_bytes: total,
            used_bytes: used,
            available_bytes: available,
            percent: percent(used, total),
            swap_total_bytes: swap_total,
            swap_used_bytes: swap_used,
            swap_percent: percent(swap_used, swap_total),
        })
    }

    /// The 1, 5 and 15 minute load averages.
    pub fn load(&mut self) -> Result<[f64; 3], CollectError> {
        const PATH: &str = "/proc/loadavg";
        let text = read(&self.loadavg, &mut self.buf, PATH)?;
        let mut f = text.split_ascii_whitespace().map(|v| v.parse().ok());
        let mut next = || f.next().flatten().ok_or_else(|| bad(PATH));
        Ok([next()?, next()?, next()?])
    }
}

/// A file read again from its beginning, as much as `buf` holds.
fn read<'a>(f: &File, buf: &'a mut [u8], path: &str) -> Result<&'a str, CollectError> {
    let n = f
        .read_at(buf, 0)
        .map_err(|e| CollectError(format!("{path}: {e}")))?;
    std::str::from_utf8(&buf[..n]).map_err(|_| bad(path))
}

/// The numbers of a `cpu` line after its name.
fn ticks(fields: &str) -> Option<Ticks> {
    let mut t = Ticks::default();
    let mut n = 0;
    for (slot, v) in t.0.iter_mut().zip(fields.split_ascii_whitespace()) {
        *slot = v.parse().ok()?;
        n += 1;
    }
    (n >= 4).then_some(t)
}

/// A `Key:   123 kB` line of `/proc/meminfo`, in kB.
pub fn meminfo_kb(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_time_leaves_out_idle_and_iowait() {
        let a = ticks("100 10 50 800 40 5 5 0 30 0").unwrap();
        assert_eq!(a.busy_total(), (170, 1010));
        let b = ticks("150 10 50 840 50 5 5 0 30 0").unwrap();
        assert_eq!(b.percent_since(&a), Some(50.0));
        assert_eq!(a.percent_since(&a), None, "no tick passed");
        assert_eq!(ticks("1 2"), None);
    }

    #[test]
    fn meminfo_values_are_read_by_key() {
        let m = "MemTotal:       16000 kB\nMemFree:  100 kB\nMemAvailable:   4000 kB\n";
        assert_eq!(meminfo_kb(m, "MemTotal:"), Some(16_000));
        assert_eq!(meminfo_kb(m, "MemAvailable:"), Some(4000));
        assert_eq!(meminfo_kb(m, "SwapTotal:"), None);
    }

    #[test]
    fn the_host_reads_in_range_with_every_core() {
        let mut r = HostReader::new().unwrap();
        let first = r.cpu(true).unwrap();
        assert_eq!(first.percent, None, "nothing to measure against yet");
        let cores = std::thread::available_parallelism().unwrap().get();
        assert!(first.cores.len() >= cores, "{:?}", first.cores);
        std::thread::sleep(std::time::Duration::from_millis(100));
        let second = r.cpu(true).unwrap();
        assert!(
            second
                .cores
                .iter()
                .all(|(_, p)| p.is_none_or(|p| (0.0..=100.0).contains(&p)))
        );
        let m = r.memory().unwrap();
        assert!(m.total_bytes > 0 && m.used_bytes <= m.total_bytes);
        assert!((0.0..=100.0).contains(&m.percent));
        let load = r.load().unwrap();
        assert!(load.iter().all(|l| *l >= 0.0));
    }

    #[test]
    fn a_small_buffer_grows_until_every_core_is_read() {
        let mut r = HostReader::new().unwrap();
        r.buf = vec![0; 64];
        let all = r.cpu(true).unwrap().cores.len();
        let cores = std::thread::available_parallelism().unwrap().get();
        assert!(all >= cores, "{all} of {cores}");
    }
}
