//! One process as the API shows it. Every field is optional: `None` is
//! written as `null` (a field permissions hide), and a field not asked for
//! is not written at all.

use super::fields::FieldSet;
use chrono::{DateTime, Utc};
use serde::{Serialize, ser::SerializeMap};
use utoipa::ToSchema;

/// A process. CPU % is per core: 100 means one core fully busy, as in top.
#[derive(Debug, Clone, Default, ToSchema)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: Option<u32>,
    pub name: Option<String>,
    /// The arguments, of at most the first 4 KiB (4,096 bytes) of the
    /// command line; the same bound for every reader of it.
    pub cmdline: Option<Vec<String>>,
    /// Written with `cmdline`: true when the command line was longer than
    /// 4 KiB and `cmdline` holds its first 4 KiB only (the last argument
    /// may be cut); null when `cmdline` is.
    pub cmdline_truncated: Option<bool>,
    pub exe: Option<String>,
    pub cwd: Option<String>,
    pub username: Option<String>,
    pub uids: Option<Ids>,
    pub gids: Option<Ids>,
    /// running, sleeping, disk-sleep, zombie, stopped, tracing-stop, dead, idle …
    pub status: Option<String>,
    /// The controlling terminal, e.g. `pts/0`.
    pub terminal: Option<String>,
    pub create_time: Option<DateTime<Utc>>,
    /// Per core: 100 is one core fully busy. Over the last one to two seconds
    /// in which the agent read the process (or since it started, the first time).
    pub cpu_percent: Option<f64>,
    pub cpu_times: Option<CpuTimes>,
    /// Resident memory as a share of physical memory, 0–100.
    pub memory_percent: Option<f64>,
    pub memory_info: Option<MemoryInfo>,
    pub nice: Option<i64>,
    pub priority: Option<i64>,
    pub num_threads: Option<i64>,
    pub threads: Option<Vec<Thread>>,
    pub num_fds: Option<usize>,
    pub open_files: Option<Vec<OpenFile>>,
    pub connections: Option<Vec<Connection>>,
    pub memory_maps: Option<Vec<MemoryMap>>,
    pub num_ctx_switches: Option<CtxSwitches>,
    pub io_counters: Option<IoCounters>,
    /// Time spent waiting for block I/O (delay accounting).
    pub io_delay_seconds: Option<f64>,
    pub pgrp: Option<i32>,
    pub tty_nr: Option<i32>,
    /// Which fields to write; not part of the document.
    #[schema(ignore)]
    pub fields: Option<FieldSet>,
}

/// Real, effective and saved ids.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Ids {
    pub real: u32,
    pub effective: u32,
    pub saved: u32,
}

/// Seconds of CPU time the process and its waited-for children used.
// Named apart from the host's CPU times: one component name per shape.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ProcessCpuTimes)]
pub struct CpuTimes {
    pub user: f64,
    pub system: f64,
    pub children_user: f64,
    pub children_system: f64,
}

/// Bytes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemoryInfo {
    pub rss: u64,
    pub vms: u64,
    pub shared: u64,
    pub text: u64,
    pub data: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Thread {
    pub id: u32,
    pub user_time: f64,
    pub system_time: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OpenFile {
    pub path: String,
    pub fd: i32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Connection {
    pub fd: i32,
    /// `inet`, `inet6` or `unix`.
    pub family: String,
    /// `stream` or `dgram` (or `seqpacket` for unix sockets).
    #[serde(rename = "type")]
    pub kind: String,
    pub local: Option<String>,
    pub remote: Option<String>,
    /// TCP state such as `LISTEN` or `ESTABLISHED`; `NONE` for others.
    pub status: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemoryMap {
    /// `start-end` in hex.
    pub address: String,
    pub perms: String,
    pub path: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CtxSwitches {
    pub voluntary: u64,
    pub involuntary: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IoCounters {
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub read_chars: u64,
    pub write_chars: u64,
    /// Read and write system calls.
    pub syscalls: u64,
}

impl Serialize for ProcessInfo {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let fields = self.fields.unwrap_or_else(FieldSet::all);
        let mut m = ser.serialize_map(None)?;
        for name in fields.names() {
            match name {
                "pid" => m.serialize_entry(name, &self.pid)?,
                "ppid" => m.serialize_entry(name, &self.ppid)?,
                "name" => m.serialize_entry(name, &self.name)?,
                "cmdline" => {
                    m.serialize_entry(name, &self.cmdline)?;
                    m.serialize_entry("cmdline_truncated", &self.cmdline_truncated)?;
                }
                "exe" => m.serialize_entry(name, &self.exe)?,
                "cwd" => m.serialize_entry(name, &self.cwd)?,
                "username" => m.serialize_entry(name, &self.username)?,
                "uids" => m.serialize_entry(name, &self.uids)?,
                "gids" => m.serialize_entry(name, &self.gids)?,
                "status" => m.serialize_entry(name, &self.status)?,
                "terminal" => m.serialize_entry(name, &self.terminal)?,
                "create_time" => m.serialize_entry(name, &self.create_time)?,
                "cpu_percent" => m.serialize_entry(name, &self.cpu_percent)?,
                "cpu_times" => m.serialize_entry(name, &self.cpu_times)?,
                "memory_percent" => m.serialize_entry(name, &self.memory_percent)?,
                "memory_info" => m.serialize_entry(name, &self.memory_info)?,
                "nice" => m.serialize_entry(name, &self.nice)?,
                "priority" => m.serialize_entry(name, &self.priority)?,
                "num_threads" => m.serialize_entry(name, &self.num_threads)?,
                "threads" => m.serialize_entry(name, &self.threads)?,
                "num_fds" => m.serialize_entry(name, &self.num_fds)?,
                "open_files" => m.serialize_entry(name, &self.open_files)?,
                "connections" => m.serialize_entry(name, &self.connections)?,
                "memory_maps" => m.serialize_entry(name, &self.memory_maps)?,
                "num_ctx_switches" => m.serialize_entry(name, &self.num_ctx_switches)?,
                "io_counters" => m.serialize_entry(name, &self.io_counters)?,
                "io_delay_seconds" => m.serialize_entry(name, &self.io_delay_seconds)?,
                "pgrp" => m.serialize_entry(name, &self.pgrp)?,
                "tty_nr" => m.serialize_entry(name, &self.tty_nr)?,
                _ => {}
            }
        }
        m.end()
    }
}
