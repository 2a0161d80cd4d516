//! Made-up but realistic checks, for scale (issue 10): `hostwatch generate`
//! fills a database with days of history in seconds, so anyone can reproduce
//! the figures in benches/README.md. Nothing here reads the host. The same
//! seed and the same calls give the same checks, so a figure can be measured
//! again on the same data; only the times move with the clock.

use crate::domain::{
    Check, Cpu, Disk, Io, Memory, ServiceState, ServiceStatus, TopProcess, check::percent,
};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use std::{f64::consts::TAU, time::Duration};

/// Checks per transaction: commits stay rare, progress still shows often.
const BATCH: usize = 2_000;
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
                let disk = Disk {
                    mount,
                    device,
                    fs_type: fs_type.into(),
                    total_bytes: gib * GIB,
                    used_bytes: 0,
                    percent: 0.0,
                };
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
                m.disk.used_bytes = (m.disk.total_bytes as f64 * m.used) as u64;
                m.disk.percent = percent(m.disk.used_bytes, m.disk.total_bytes);
                m.disk.clone()
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

/// Whether `fill` may write to the database at `path`, looked at without
/// changing it: a missing or empty file may be filled; one that holds
/// checks only with `append` (made-up checks mixed into real ones by a typo
/// would be hard to undo), and only when its schema is this binary's, so
/// that a database an older agent still runs on is never migrated under it.
pub fn may_fill(path: &std::path::Path, append: bool) -> Result<(), String> {
    use rusqlite::{Connection, OpenFlags};
    if std::fs::metadata(path).map_or(true, |m| m.len() == 0) {
        return Ok(());
    }
    let shown = path.display();
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    let version: u32 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| format!("{shown} is not a database: {e}"))?;
    let held: i64 = c
        .query_row("SELECT count(*) FROM checks", [], |r| r.get(0))
        .map_err(|_| format!("{shown} is not a hostwatch database"))?;
    if held > 0 && !append {
        return Err(format!(
            "{shown} already holds {held} checks; pass --append to add more, or give a new --db"
        ));
    }
    let latest = crate::store::schema_version();
    if version != latest {
        return Err(format!(
            "{shown} has schema version {version}, this hostwatch writes {latest}; \
             let the agent of that version migrate it, or give a new --db"
        ));
    }
    Ok(())
}

/// Writes made-up checks every `interval` (at least 1 ms) from `days` ago to
/// now, in transactions of 2,000 (roll-ups kept up as the agent does),
/// calling `progress(written, total)` after each. Returns how many were
/// written.
pub fn fill(
    store: &Store,
    days: u32,
    interval: Duration,
    shape: Shape,
    seed: u64,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, StoreError> {
    let span_ms = i64::from(days) * 86_400_000;
    let step_ms = interval.as_millis().clamp(1, span_ms.max(1) as u128) as i64;
    let total = (span_ms / step_ms) as u64;
    let first = Utc::now() - chrono::Duration::milliseconds(span_ms);
    let mut generator = Generator::new(seed, shape);
    let mut batch = Vec::with_capacity(BATCH);
    let mut written = 0;
    // The last check falls on now, the first one interval after `days` ago.
    for i in 1..=total {
        let t = first + chrono::Duration::milliseconds(i as i64 * step_ms);
        batch.push(generator.check_at(t));
        if batch.len() == BATCH || i == total {
            store.insert_checks(&batch)?;
            written += batch.len() as u64;
            batch.clear();
            progress(written, total);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A check a minute for `days`, starting at the last midnight a week ago
    /// (the same for every call of one test).
    fn minutes(g: &mut Generator, days: i64) -> Vec<Check> {
        let week_ago = Utc::now().timestamp() - 7 * 86_400;
        let start = DateTime::from_timestamp(week_ago / 86_400 * 86_400, 0).unwrap();
        (0..days * 1440)
            .map(|i| g.check_at(start + chrono::Duration::minutes(i)))
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_checks() {
        let a = minutes(&mut Generator::new(7, Shape::default()), 1);
        let b = minutes(&mut Generator::new(7, Shape::default()), 1);
        let c = minutes(&mut Generator::new(8, Shape::default()), 1);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn every_check_has_the_shape_asked_for_and_values_in_range() {
        let shape = Shape {
            mounts: 5,
            services: 2,
            processes: 20,
        };
        for k in minutes(&mut Generator::new(1, shape), 2) {
            let cpu = k.cpu.unwrap();
            let mem = k.memory.unwrap();
            let disks = k.disks.unwrap();
            assert!((0.0..=100.0).contains(&cpu.percent) && cpu.load1 >= 0.0);
            assert!((30.0..=80.0).contains(&mem.percent), "{mem:?}");
            assert!((0.0..=100.0).contains(&mem.swap_percent));
            let mounts: Vec<_> = disks.iter().map(|d| d.mount.as_str()).collect();
            assert_eq!(mounts, ["/", "/var", "/home", "/data1", "/data2"]);
            assert!(disks.iter().all(|d| d.used_bytes <= d.total_bytes));
            let names: Vec<_> = k.services.unwrap().into_iter().map(|s| s.name).collect();
            assert_eq!(names, ["httpd", "svc1"]);
            let top = k.top_processes.unwrap();
            assert_eq!(top.len(), 20);
            assert!(top.windows(2).all(|w| w[0].cpu_percent >= w[1].cpu_percent));
        }
    }

    #[test]
    fn a_service_runs_about_99_percent_of_the_time_with_short_outages() {
        let checks = minutes(&mut Generator::new(3, Shape::default()), 60);
        let down = checks
            .iter()
            .filter(|k| k.services.as_ref().unwrap()[0].state != ServiceStatus::Running)
            .count();
        let share = down as f64 / checks.len() as f64;
        assert!((0.002..0.03).contains(&share), "down {share}");
    }

    #[test]
    fn cpu_is_busier_in_the_afternoon_than_before_dawn() {
        let checks = minutes(&mut Generator::new(5, Shape::default()), 7);
        let mean_at = |hour: u32| {
            use chrono::Timelike as _;
            let v: Vec<f64> = checks
                .iter()
                .filter(|k| k.taken_at.hour() == hour)
                .map(|k| k.cpu.as_ref().unwrap().percent)
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        assert!(mean_at(15) > mean_at(3) + 15.0);
    }

    #[test]
    fn fill_writes_a_check_every_interval_up_to_now() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).unwrap();
        let mut calls = Vec::new();
        let n = fill(
            &store,
            3,
            Duration::from_secs(60),
            Shape::default(),
            1,
            |d, t| calls.push((d, t)),
        )
        .unwrap();
        assert_eq!(n, 3 * 1440);
        assert_eq!(store.count_checks().unwrap(), n);
        assert_eq!(calls.last(), Some(&(n, n)));
        assert_eq!(calls.len(), 3);
        let age = Utc::now() - store.latest_check().unwrap().taken_at;
        assert!(age < chrono::Duration::seconds(5));
    }
}
