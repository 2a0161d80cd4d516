//! A live snapshot of the host for `GET /api/v1/system`, and the counters
//! `/metrics` reads. It keeps its own [`HostReader`]: reading the
//! sampler's would shorten the interval that the next check's CPU figure
//! covers.

use super::{
    CollectError,
    host::{self, HostReader, Ticks},
};
use crate::domain::{Disk, Memory};
use serde::Serialize;
use sysinfo::System;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SystemSnapshot {
    pub host_name: Option<String>,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub uptime_seconds: Option<u64>,
    /// Boot time, seconds since the Unix epoch.
    pub boot_time: Option<u64>,
    /// Use of all cores together since the previous snapshot, 0–100.
    pub cpu_percent: f64,
    pub cores: Vec<CoreUsage>,
    /// Time all CPUs spent in each state since boot, in seconds.
    pub cpu_times: Option<CpuTimes>,
    pub load: Option<[f64; 3]>,
    pub memory: Option<Memory>,
    pub partitions: Vec<Partition>,
    /// Counters since boot of every block device.
    pub block_devices: Vec<BlockCounters>,
    /// Counters since boot of every network interface.
    pub network: Vec<NetworkCounters>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CoreUsage {
    pub core: String,
    /// 0–100 for this core.
    pub percent: f64,
    pub frequency_mhz: u64,
}

/// Seconds all CPUs spent in each state since boot.
// Named apart from a process's CPU times: one component name per shape.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = HostCpuTimes)]
pub struct CpuTimes {
    pub user: f64,
    pub nice: f64,
    pub system: f64,
    pub idle: f64,
    pub iowait: Option<f64>,
    pub irq: Option<f64>,
    pub softirq: Option<f64>,
    pub steal: Option<f64>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct Partition {
    #[serde(flatten)]
    pub disk: Disk,
    pub read_only: bool,
    pub removable: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BlockCounters {
    pub name: String,
    pub reads: u64,
    pub writes: u64,
    pub read_bytes: u64,
    pub written_bytes: u64,
    /// Seconds the device had I/O in flight.
    pub io_time_seconds: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NetworkCounters {
    pub interface: String,
    pub received_bytes: u64,
    pub sent_bytes: u64,
    pub received_packets: u64,
    pub sent_packets: u64,
    pub receive_errors: u64,
    pub send_errors: u64,
}

pub struct SystemReader {
    host: HostReader,
}

impl SystemReader {
    pub fn new() -> Result<Self, CollectError> {
        let mut host = HostReader::new()?;
        // The first snapshot measures from here.
        host.cpu(true)?;
        Ok(Self { host })
    }

    pub fn snapshot(&mut self) -> SystemSnapshot {
        let cpu = self.host.cpu(true).ok();
        let mhz = frequencies();
        let cores = cpu
            .as_ref()
            .map(|c| {
                c.cores
                    .iter()
                    .map(|&(n, percent)| CoreUsage {
                        core: format!("cpu{n}"),
                        percent: percent.unwrap_or(0.0),
                        frequency_mhz: mhz.get(&n).copied().unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        SystemSnapshot {
            host_name: super::host_name(),
            os: System::long_os_version().ok(),
            kernel: System::kernel_version().ok(),
            uptime_seconds: System::uptime().ok(),
            boot_time: System::boot_time().ok(),
            cpu_percent: cpu.as_ref().and_then(|c| c.percent).unwrap_or(0.0),
            cores,
            cpu_times: cpu.map(|c| cpu_times(&c.total)),
            load: self.host.load().ok(),
            memory: self.host.memory().ok(),
            partitions: partitions(),
            block_devices: block_devices(),
            network: network(),
        }
    }

    /// What `/metrics` reads at each scrape: counters since boot and levels
    /// now, without the per-core usage, OS names or uptime of a snapshot.
    pub fn counters(&mut self) -> HostCounters {
        HostCounters {
            cpu_times: self.host.totals().ok().map(|t| cpu_times(&t)),
            load: self.host.load().ok(),
            memory: self.host.memory().ok(),
            filesystems: partitions(),
            block_devices: block_devices(),
            network: network(),
        }
    }
}

/// The host read at one scrape (`SystemReader::counters`).
#[derive(Debug, Clone)]
pub struct HostCounters {
    pub cpu_times: Option<CpuTimes>,
    pub load: Option<[f64; 3]>,
    pub memory: Option<Memory>,
    pub filesystems: Vec<Partition>,
    pub block_devices: Vec<BlockCounters>,
    pub network: Vec<NetworkCounters>,
}

/// The filesystems as a check has them (`host::disks`, bounded the same
/// way), with their mount flags.
fn partitions() -> Vec<Partition> {
    host::disks(STATFS_DEADLINE)
        .unwrap_or_default()
        .into_iter()
        .map(|(m, disk)| Partition {
            removable: removable(&m.majmin),
            read_only: m.read_only,
            disk,
        })
        .collect()
}

/// How long an answer waits for a filesystem that does not answer `statfs`.
const STATFS_DEADLINE: std::time::Duration = std::time::Duration::from_millis(500);

/// The kernel's flag for the device under a mount (a partition's is its
/// disk's); false for what is not a block device.
fn removable(majmin: &str) -> bool {
    let dev = format!("/sys/dev/block/{majmin}");
    ["removable", "../removable"]
        .iter()
        .any(|f| std::fs::read_to_string(format!("{dev}/{f}")).is_ok_and(|v| v.trim() == "1"))
}

fn cpu_times(t: &Ticks) -> CpuTimes {
    let tps = procfs::ticks_per_second() as f64;
    let s = |i: usize| t.0[i] as f64 / tps;
    CpuTimes {
        user: s(0),
        nice: s(1),
        system: s(2),
        idle: s(3),
        iowait: Some(s(4)),
        irq: Some(s(5)),
        softirq: Some(s(6)),
        steal: Some(s(7)),
    }
}

/// Each core's clock now, in MHz, by core number: what cpufreq says, else
/// what `/proc/cpuinfo` says; none where neither tells.
fn frequencies() -> std::collections::HashMap<u32, u64> {
    let mut mhz = std::collections::HashMap::new();
    if let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") {
        let mut core = None;
        for line in info.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            match key.trim() {
                "processor" => core = value.trim().parse::<u32>().ok(),
                "cpu MHz" => {
                    if let (Some(n), Ok(f)) = (core, value.trim().parse::<f64>()) {
                        mhz.insert(n, f as u64);
                    }
                }
                _ => {}
            }
        }
    }
    let Ok(dir) = std::fs::read_dir("/sys/devices/system/cpu") else {
        return mhz;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix("cpu")?.parse().ok())
        else {
            continue;
        };
        let khz = std::fs::read_to_string(entry.path().join("cpufreq/scaling_cur_freq"));
        if let Some(khz) = khz.ok().and_then(|k| k.trim().parse::<u64>().ok()) {
            mhz.insert(n, khz / 1000);
        }
    }
    mhz
}

fn block_devices() -> Vec<BlockCounters> {
    procfs::diskstats()
        .unwrap_or_default()
        .into_iter()
        .map(|d| BlockCounters {
            name: d.name,
            reads: d.reads,
            writes: d.writes,
            read_bytes: d.sectors_read * 512,
            written_bytes: d.sectors_written * 512,
            io_time_seconds: d.time_in_progress as f64 / 1000.0,
        })
        .collect()
}

fn network() -> Vec<NetworkCounters> {
    let mut v: Vec<NetworkCounters> = procfs::net::dev_status()
        .unwrap_or_default()
        .into_values()
        .map(|d| NetworkCounters {
            interface: d.name,
            received_bytes: d.recv_bytes,
            sent_bytes: d.sent_bytes,
            received_packets: d.recv_packets,
            sent_packets: d.sent_packets,
            receive_errors: d.recv_errs,
            send_errors: d.sent_errs,
        })
        .collect();
    v.sort_by(|a, b| a.interface.cmp(&b.interface));
    v
}
