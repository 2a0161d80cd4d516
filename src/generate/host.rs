//! The made-up host behind `hostwatch generate`: a seeded model of a small
//! web server whose checks look like a real one's.

use crate::domain::{
    Check, Cpu, Disk, Io, Memory, ServiceState, ServiceStatus, TopProcess, check::percent,
};
use chrono::{DateTime, Utc};
use std::f64::consts::TAU;

/// The made-up host's cores: its load follows cpu share times this.
const CORES: f64 = 4.0;
const MIB: f64 = (1u64 << 20) as f64;
const GIB: u64 = 1 << 30;
const DAY_S: f64 = 86_400.0;
/// Outages last 5 to 30 minutes (17.5 on average); one starting every
/// ~29 hours of uptime keeps a service running about 99 % of the time.
const OUTAGE_EVERY_S: f64 = 17.5 * 60.0 * 99.0;
/// The busiest programs of a small web host: name, user, typical cpu % of
/// one core, typical resident MiB.
const PROGRAMS: [(&str, &str, f64, f64); 14] = [
    ("java", "app", 12.0, 1400.0),
    ("httpd", "www-data", 8.0, 60.0),
    ("postgres", "postgres", 6.0, 220.0),
    ("node", "app", 5.0, 180.0),
    ("python3", "app", 3.0, 90.0),
    ("redis-server", "redis", 1.5, 40.0),
    ("nginx", "www-data", 1.2, 12.0),
    ("dockerd", "root", 1.0, 90.0),
    ("containerd", "root", 0.8, 50.0),
    ("kworker/0:2", "root", 0.3, 0.0),
    ("systemd-journal", "root", 0.3, 30.0),
    ("hostwatch", "hostwatch", 0.2, 10.0),
    ("rsyslogd", "syslog", 0.2, 6.0),
    ("sshd", "root", 0.1, 8.0),
];

/// How many of each list part a check holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// `/`, `/var`, `/home`, then `/data1`, `/data2` …
    pub mounts: usize,
    /// `httpd`, then `svc1`, `svc2` …
    pub services: usize,
    /// Top processes per check.
    pub processes: usize,
}

impl Default for Shape {
    /// What issue 10's figures are measured on.
    fn default() -> Self {
        Self {
            mounts: 3,
            services: 1,
            processes: 5,
        }
    }
}

/// splitmix64: small and good enough for made-up figures, so no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Mean 0, deviation 1, bell-shaped but bounded (±3.5): four uniforms
    /// summed, so one unlucky draw never makes a wild value.
    fn noise(&mut self) -> f64 {
        ((0..4).map(|_| self.unit()).sum::<f64>() - 2.0) * 3f64.sqrt()
    }
}

struct Mount {
    disk: Disk,
    /// Used share, 0–1.
    used: f64,
    /// Growth of the used share per second.
    growth: f64,
}

struct Service {
    name: String,
    /// Until when (ms) the current outage lasts.
    down_until: i64,
    down_as: ServiceStatus,
    probe_ms: f64,
}

struct Program {
    pid: u32,
    name: String,
    user: String,
    cpu: f64,
    rss: f64,
    base_rss: f64,
}

/// Makes one check after another for a made-up host whose state carries
/// over from check to check.
pub struct Generator {
    rng: Rng,
    last: Option<DateTime<Utc>>,
    spike_until: i64,
    /// load1, load5, load15; `None` before the first check.
    load: Option<[f64; 3]>,
    mem: f64,
    swap: f64,
    mounts: Vec<Mount>,
    services: Vec<Service>,
    programs: Vec<Program>,
    top: usize,
    next_pid: u32,
}

impl Generator {
    pub fn new(seed: u64, shape: Shape) -> Self {
        let mut rng = Rng(seed);
        let mounts = (0..shape.mounts)
            .map(|i| {
                let (mount, device, fs_type, gib) = match i {
                    0 => ("/".into(), "/dev/vda1".into(), "ext4", 40),
                    1 => ("/var".into(), "/dev/vda2".into(), "ext4", 100),
                    2 => ("/home".into(), "/dev/vda3".into(), "ext4", 250),
                    n => (
                        format!("/data{}", n - 2),
                        format!("/dev/vdb{}", n - 2),
                        "xfs",
                        2048,
                    ),
                };
                let disk = Disk::sized(mount, device, fs_type.into(), gib * GIB, 0);
                let growth = rng.between(0.05, 0.2) / (30.0 * DAY_S);
                let used = rng.between(0.25, 0.6);
                Mount { disk, used, growth }
            })
            .collect();
        let services = (0..shape.services)
            .map(|i| Service {
                name: if i == 0 {
                    "httpd".into()
                } else {
                    format!("svc{i}")
                },
                down_until: i64::MIN,
                down_as: ServiceStatus::Stopped,
                probe_ms: rng.between(1.0, 6.0),
            })
            .collect();
        let mut next_pid = rng.between(300.0, 2000.0) as u32;
        let programs = (0..(shape.processes + 5).max(PROGRAMS.len()))
            .map(|i| {
                let (name, user, cpu, mib) = match PROGRAMS.get(i) {
                    Some(&(n, u, c, m)) => (n.to_string(), u, c, m),
                    None => (
                        format!("worker{}", i - PROGRAMS.len() + 1),
                        "app",
                        0.5,
                        30.0,
                    ),
                };
                next_pid += rng.between(1.0, 400.0) as u32;
                let base_rss = mib * MIB * rng.between(0.7, 1.3);
                Program {
                    pid: next_pid,
                    name,
                    user: user.into(),
                    cpu,
                    rss: base_rss,
                    base_rss,
                }
            })
            .collect();
        let mem = rng.between(0.4, 0.6);
        Self {
            rng,
            last: None,
            spike_until: i64::MIN,
            load: None,
            mem,
            swap: 0.02,
            mounts,
            services,
            programs,
            top: shape.processes,
            next_pid,
        }
    }

    /// The check taken at `t`; its state follows on from the previous call
    /// (times should increase, every interval or so).
    pub fn check_at(&mut self, t: DateTime<Utc>) -> Check {
        // Seconds since the previous check: what rates and chances scale by.
        let dt = self.last.map_or(60.0, |l| {
            ((t - l).num_milliseconds() as f64 / 1000.0).max(0.001)
        });
        self.last = Some(t);
        let cpu = self.cpu(t, dt);
        let memory = self.memory(dt);
        let disks = self.disks(dt);
        let io = self.io(cpu.percent, dt);
        let services = self.services(t, cpu.percent, dt);
        let top = self.top_processes(cpu.percent, dt);
        let probes = services
            .iter()
            .filter_map(|s| s.probe_ms)
            .fold(0.0, f64::max);
        Check {
            id: None,
            taken_at: t,
            duration_ms: (6.0 + self.top as f64 * 0.4 + self.rng.noise()).max(2.0) + probes,
            cpu: Some(cpu),
            memory: Some(memory),
            disks: Some(disks),
            io: Some(io),
            services: Some(services),
            top_processes: Some(top),
        }
    }

    fn cpu(&mut self, t: DateTime<Utc>, dt: f64) -> Cpu {
        let ms = t.timestamp_millis();
        // Quietest at 03:00 UTC, busiest at 15:00; spikes (a backup, a
        // deploy, a crawler) of 1–15 minutes about twice a day.
        let day = ms.rem_euclid(86_400_000) as f64 / 86_400_000.0;
        let cycle = 0.5 - 0.5 * (TAU * (day - 0.125)).cos();
        if ms >= self.spike_until && self.rng.chance(dt / (12.0 * 3600.0)) {
            self.spike_until = ms + (self.rng.between(1.0, 15.0) * 60_000.0) as i64;
        }
        let percent = if ms < self.spike_until {
            self.rng.between(85.0, 100.0)
        } else {
            8.0 + 30.0 * cycle + 4.0 * self.rng.noise()
        }
        .clamp(0.0, 100.0);
        // As the kernel does: each average decays toward the runnable count.
        let runnable = (percent / 100.0 * CORES * (1.0 + 0.15 * self.rng.noise())).max(0.0);
        let mut load = self.load.unwrap_or([runnable; 3]);
        for (l, period) in load.iter_mut().zip([60.0, 300.0, 900.0]) {
            let keep = (-dt / period).exp();
            *l = *l * keep + runnable * (1.0 - keep);
        }
        self.load = Some(load);
        let [load1, load5, load15] = load.map(|l| (l * 100.0).round() / 100.0);
        Cpu {
            percent,
            load1,
            load5,
            load15,
        }
    }

    fn memory(&mut self, dt: f64) -> Memory {
        // A slow walk pulled back toward 55 %, kept within 30–80 %; swap
        // stays near 2 % unless memory has been high for a while.
        self.mem +=
            (0.55 - self.mem) * 0.5 * dt / DAY_S + 0.0015 * (dt / 60.0).sqrt() * self.rng.noise();
        self.mem = self.mem.clamp(0.30, 0.80);
        let want = 0.02 + 1.5 * (self.mem - 0.65).max(0.0);
        self.swap += (want - self.swap) * (1.0 - (-dt / 3600.0).exp());
        self.swap = (self.swap + 0.0005 * self.rng.noise()).clamp(0.0, 1.0);
        let (total, swap_total) = (16 * GIB, 4 * GIB);
        let used = (total as f64 * self.mem) as u64;
        let swap_used = (swap_total as f64 * self.swap) as u64;
        Memory {
            total_bytes: total,
            used_bytes: used,
            available_bytes: total - used,
            percent: percent(used, total),
            swap_total_bytes: swap_total,
            swap_used_bytes: swap_used,
            swap_percent: percent(swap_used, swap_total),
        }
    }

    fn disks(&mut self, dt: f64) -> Vec<Disk> {
        let rng = &mut self.rng;
        self.mounts
            .iter_mut()
            .map(|m| {
                // Logs and data pile up; about once a week, or when nearly
                // full, someone cleans up.
                m.used += m.growth * dt + 0.0002 * rng.noise();
                if m.used > 0.9 || rng.chance(dt / (7.0 * DAY_S)) {
                    m.used -= rng.between(0.05, 0.25);
                }
                m.used = m.used.clamp(0.05, 0.99);
                let total = m.disk.total_bytes.unwrap_or_default();
                let used = (total as f64 * m.used) as u64;
                Disk::sized(
                    m.disk.mount.clone(),
                    m.disk.device.clone(),
                    m.disk.fs_type.clone(),
                    total,
                    used,
                )
            })
            .collect()
    }

    fn io(&mut self, cpu: f64, dt: f64) -> Io {
        let busy = cpu / 100.0;
        let mut bytes = |idle_kib: f64, busy_mib: f64| {
            let rate = idle_kib * 1024.0 + busy * busy_mib * MIB;
            (rate * dt * (0.5 * self.rng.noise()).exp()) as u64
        };
        Io {
            interval_ms: (dt * 1000.0) as u64,
            read_bytes: bytes(64.0, 8.0),
            written_bytes: bytes(128.0, 4.0),
            received_bytes: bytes(32.0, 2.0),
            sent_bytes: bytes(48.0, 6.0),
        }
    }

    fn services(&mut self, t: DateTime<Utc>, cpu: f64, dt: f64) -> Vec<ServiceState> {
        let ms = t.timestamp_millis();
        let rng = &mut self.rng;
        self.services
            .iter_mut()
            .map(|s| {
                if ms >= s.down_until && rng.chance(dt / OUTAGE_EVERY_S) {
                    s.down_until = ms + (rng.between(5.0, 30.0) * 60_000.0) as i64;
                    s.down_as = if rng.chance(0.3) {
                        ServiceStatus::Failed
                    } else {
                        ServiceStatus::Stopped
                    };
                }
                // A stopped service refuses the probe at once, as the real
                // probe records it; a running one answers slower when busy,
                // and now and then not well.
                let (state, healthy, probe_ms) = if ms < s.down_until {
                    (s.down_as, false, rng.between(0.1, 0.5))
                } else if rng.chance(0.002) {
                    (ServiceStatus::Running, false, rng.between(1000.0, 5000.0))
                } else {
                    let ms = s.probe_ms * (1.0 + cpu / 50.0) * (0.25 * rng.noise()).exp();
                    (ServiceStatus::Running, true, ms)
                };
                ServiceState {
                    name: s.name.clone(),
                    state,
                    healthy: Some(healthy),
                    probe_ms: Some(probe_ms),
                }
            })
            .collect()
    }

    fn top_processes(&mut self, cpu: f64, dt: f64) -> Vec<TopProcess> {
        let rng = &mut self.rng;
        let mut all: Vec<TopProcess> = self
            .programs
            .iter_mut()
            .map(|p| {
                // Now and then a program restarts under a new pid; other
                // processes have come and gone meanwhile.
                if rng.chance(dt / (3.0 * DAY_S)) {
                    self.next_pid = (self.next_pid + rng.between(1.0, 400.0) as u32) % 4_194_304;
                    p.pid = self.next_pid.max(300);
                    p.rss = p.base_rss;
                }
                p.rss =
                    (p.rss * (0.01 * rng.noise()).exp()).clamp(p.base_rss / 2.0, p.base_rss * 2.0);
                TopProcess {
                    pid: p.pid,
                    name: p.name.clone(),
                    user: Some(p.user.clone()),
                    cpu_percent: p.cpu * (0.3 + cpu / 30.0) * (0.5 * rng.noise()).exp(),
                    rss_bytes: p.rss as u64,
                }
            })
            .collect();
        all.sort_by(|a, b| b.cpu_percent.total_cmp(&a.cpu_percent));
        all.truncate(self.top);
        all
    }
}
