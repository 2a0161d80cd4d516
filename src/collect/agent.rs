//! The agent's own footprint, from `/proc/self`.

use super::CollectError;
use serde::Serialize;
use std::time::Instant;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentStats {
    pub pid: u32,
    pub uptime_seconds: f64,
    /// When the agent started, seconds since the Unix epoch: taken once,
    /// so it does not move between readings.
    pub start_time_seconds: f64,
    /// User plus system CPU time since start.
    pub cpu_seconds: f64,
    /// CPU use since the previous reading (or since start), per core: 100 is one core.
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    pub threads: i64,
    pub open_fds: Option<usize>,
    pub read_bytes: Option<u64>,
    pub write_bytes: Option<u64>,
}

/// Reads the agent's own figures; keeps the previous reading for CPU %.
pub struct AgentReader {
    started: Instant,
    started_at: f64,
    /// When, and the CPU ticks then, at the previous reading.
    last: Option<(Instant, u64)>,
}

impl AgentReader {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            started_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            last: None,
        }
    }

    pub fn read(&mut self) -> Result<AgentStats, CollectError> {
        let err = |e: String| CollectError(format!("/proc/self: {e}"));
        let line = std::fs::read("/proc/self/stat").map_err(|e| err(e.to_string()))?;
        let stat = super::procs::stat::parse(&line)
            .ok_or_else(|| err("stat is not as expected".into()))?;
        let tps = procfs::ticks_per_second() as f64;
        let ticks = stat.ticks();
        let now = Instant::now();
        let (since, before) = self.last.replace((now, ticks)).unwrap_or((self.started, 0));
        let wall = now.duration_since(since).as_secs_f64();
        let me = procfs::process::Process::myself().ok();
        let io = me.as_ref().and_then(|m| m.io().ok());
        Ok(AgentStats {
            pid: std::process::id(),
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            start_time_seconds: self.started_at,
            cpu_seconds: ticks as f64 / tps,
            cpu_percent: super::procs::cpu::percent(ticks.saturating_sub(before), wall, tps)
                .unwrap_or(0.0),
            rss_bytes: stat.rss_pages * procfs::page_size(),
            threads: stat.num_threads,
            open_fds: me.and_then(|m| m.fd_count().ok()),
            read_bytes: io.as_ref().map(|i| i.read_bytes),
            write_bytes: io.as_ref().map(|i| i.write_bytes),
        })
    }
}

impl Default for AgentReader {
    fn default() -> Self {
        Self::new()
    }
}
