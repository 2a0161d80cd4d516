//! Reading one process from `/proc/<pid>`: `stat` always, the rest only for
//! the fields asked for. A file the agent may not read leaves its fields
//! `None`; a process that is gone is `Err(Gone)`.

use super::{ProcDir, cpu, fields::FieldSet, info::*, sockets::Sockets, stat::Stat};
use chrono::DateTime;
use procfs::process::{FDTarget, MMapPath, Process};
use std::{collections::HashMap, sync::LazyLock, time::Instant};

/// The process exited (or never was) while it was being read.
#[derive(Debug)]
pub struct Gone;

/// What every process read shares.
pub struct Context<'a> {
    pub dir: &'a ProcDir,
    pub boot_secs: u64,
    /// Seconds since boot, for a first reading's CPU use over a lifetime.
    pub uptime: Option<f64>,
    pub mem_total: u64,
    pub now: Instant,
    pub users: &'a super::UserNames,
    pub sockets: Option<&'a Sockets>,
    /// pid → (start time in ticks, CPU ticks, when read) from the last reading.
    pub last_cpu: &'a HashMap<u32, (u64, u64, Instant)>,
}

/// CPU ticks read now, to measure the next reading against.
pub type CpuSample = (u64, u64, Instant);

/// The fields that need more than `stat`, `statm` and `cmdline`: read
/// through procfs, after the cheap ones.
const DEEP: [&str; 11] = [
    "exe",
    "cwd",
    "uids",
    "gids",
    "num_ctx_switches",
    "io_counters",
    "num_fds",
    "open_files",
    "connections",
    "threads",
    "memory_maps",
];

// Sets made once: looking names up for every process of a large table
// showed in profiles.
static DEEP_SET: LazyLock<FieldSet> = LazyLock::new(|| FieldSet::of(&DEEP));
static CMDLINE: LazyLock<FieldSet> = LazyLock::new(|| FieldSet::of(&["cmdline"]));
static MEMORY_INFO: LazyLock<FieldSet> = LazyLock::new(|| FieldSet::of(&["memory_info"]));

/// One process as read: what the API shows, and what a later [`fill`]
/// needs to add to it.
pub struct Row {
    pub info: ProcessInfo,
    /// The owner of its `/proc` files (its effective user, or root).
    pub uid: Option<u32>,
    /// From `stat`: which process this is (a pid is reused, a start time
    /// with it is not), and its sizes for `memory_info`.
    start_ticks: u64,
    rss: u64,
    vsize: u64,
}

/// A process's `stat` fields, then [`fill`] with the rest of `want`.
pub fn read(pid: u32, want: FieldSet, ctx: &Context<'_>) -> Result<(Row, CpuSample), Gone> {
    let (stat, uid) = ctx.dir.stat(pid, true).ok_or(Gone)?;
    let tps = ctx.dir.ticks_per_second;
    let sample = (stat.start_ticks, stat.ticks(), ctx.now);
    let mut info = ProcessInfo {
        pid,
        fields: Some(want),
        ..Default::default()
    };
    info.ppid = Some(stat.ppid);
    info.name = Some(String::from_utf8_lossy(stat.comm.as_bytes()).into_owned());
    info.status = Some(state_name(char::from(stat.state)).to_owned());
    info.nice = Some(stat.nice);
    info.priority = Some(stat.priority);
    info.num_threads = Some(stat.num_threads);
    info.pgrp = Some(stat.pgrp);
    info.tty_nr = Some(stat.tty_nr);
    info.terminal = terminal(stat.tty_nr);
    let started_secs = ctx.boot_secs as f64 + stat.start_ticks as f64 / tps;
    info.create_time = DateTime::from_timestamp_millis((started_secs * 1000.0) as i64);
    info.username = uid.map(|u| ctx.users.name(u));
    info.cpu_percent = Some(cpu_percent(pid, &stat, ctx));
    info.cpu_times = Some(CpuTimes {
        user: stat.utime as f64 / tps,
        system: stat.stime as f64 / tps,
        children_user: stat.cutime.max(0) as f64 / tps,
        children_system: stat.cstime.max(0) as f64 / tps,
    });
    let rss = stat.rss_pages * ctx.dir.page_size;
    info.memory_percent = Some(crate::domain::check::percent(rss, ctx.mem_total));
    info.io_delay_seconds = stat.blkio_ticks.map(|t| t as f64 / tps);
    let mut row = Row {
        info,
        uid,
        start_ticks: stat.start_ticks,
        rss,
        vsize: stat.vsize,
    };
    fill(&mut row, want, ctx);
    Ok((row, sample))
}

/// Adds to a row read by [`read`] the fields of `want` that need more than
/// `stat`: the command line and `statm` from the files next to it, the rest
/// through procfs. Fields already read are read again only if asked for.
pub fn fill(row: &mut Row, want: FieldSet, ctx: &Context<'_>) {
    let (pid, info) = (row.info.pid, &mut row.info);
    if want.intersects(*CMDLINE)
        && let Some(c) = ctx.dir.cmdline(pid)
    {
        info.cmdline = Some(c.args);
        info.cmdline_truncated = Some(c.truncated);
    }
    if want.intersects(*MEMORY_INFO) {
        let page = ctx.dir.page_size;
        let statm = ctx.dir.statm(pid);
        info.memory_info = Some(MemoryInfo {
            rss: row.rss,
            vms: row.vsize,
            shared: statm.map_or(0, |m| m.shared * page),
            text: statm.map_or(0, |m| m.text * page),
            data: statm.map_or(0, |m| m.data * page),
        });
    }
    if !want.intersects(*DEEP_SET) {
        return;
    }
    let tps = ctx.dir.ticks_per_second;
    // The rest through one open `/proc/<pid>`, which stays the process it
    // was opened for. Exited since its `stat` was read, or the pid taken by
    // another process since: what was read stands, and no more.
    let Ok(p) = Process::new(pid as i32) else {
        return;
    };
    if p.stat().map(|s| s.starttime).ok() != Some(row.start_ticks) {
        return;
    }
    if want.has("exe") {
        info.exe = p.exe().ok().map(|e| e.display().to_string());
    }
    if want.has("cwd") {
        info.cwd = p.cwd().ok().map(|e| e.display().to_string());
    }
    if want.needs_status()
        && let Ok(st) = p.status()
    {
        info.uids = Some(Ids {
            real: st.ruid,
            effective: st.euid,
            saved: st.suid,
        });
        info.gids = Some(Ids {
            real: st.rgid,
            effective: st.egid,
            saved: st.sgid,
        });
        info.num_ctx_switches = match (st.voluntary_ctxt_switches, st.nonvoluntary_ctxt_switches) {
            (Some(voluntary), Some(involuntary)) => Some(CtxSwitches {
                voluntary,
                involuntary,
            }),
            _ => None,
        };
    }
    if want.has("io_counters") {
        info.io_counters = p.io().ok().map(|io| IoCounters {
            read_bytes: io.read_bytes,
            write_bytes: io.write_bytes,
            read_chars: io.rchar,
            write_chars: io.wchar,
            syscalls: io.syscr + io.syscw,
        });
    }
    if want.has("num_fds") {
        info.num_fds = p.fd_count().ok();
    }
    if want.has("open_files") || want.has("connections") {
        read_fds(&p, want, ctx, info);
    }
    if want.has("threads") {
        info.threads = p.tasks().ok().map(|tasks| {
            tasks
                .flatten()
                .filter_map(|t| t.stat().ok())
                .map(|s| Thread {
                    id: s.pid as u32,
                    user_time: s.utime as f64 / tps,
                    system_time: s.stime as f64 / tps,
                })
                .collect()
        });
    }
    if want.has("memory_maps") {
        info.memory_maps = p.maps().ok().map(|maps| {
            maps.into_iter()
                .map(|m| MemoryMap {
                    address: format!("{:x}-{:x}", m.address.0, m.address.1),
                    perms: m.perms.as_str(),
                    path: map_path(&m.pathname),
                })
                .collect()
        });
    }
}

fn read_fds(p: &Process, want: FieldSet, ctx: &Context<'_>, info: &mut ProcessInfo) {
    let Ok(fds) = p.fd() else { return };
    let (mut files, mut conns) = (Vec::new(), Vec::new());
    for fd in fds.flatten() {
        match fd.target {
            FDTarget::Path(path) if path.is_absolute() => files.push(OpenFile {
                path: path.display().to_string(),
                fd: fd.fd,
            }),
            FDTarget::Socket(inode) => {
                if let Some(c) = ctx.sockets.and_then(|s| s.connection(inode, fd.fd)) {
                    conns.push(c);
                }
            }
            _ => {}
        }
    }
    if want.has("open_files") {
        info.open_files = Some(files);
    }
    if want.has("connections") {
        info.connections = Some(conns);
    }
}

/// Per core ([`cpu`]), over the time since the last reading of this same
/// process (same pid and start time) when that is long enough to mean
/// something, else over its life.
fn cpu_percent(pid: u32, stat: &Stat, ctx: &Context<'_>) -> f64 {
    let last = ctx
        .last_cpu
        .get(&pid)
        .filter(|&&(start, _, at)| {
            start == stat.start_ticks && ctx.now.saturating_duration_since(at).as_millis() > 50
        })
        .map(|&(_, ticks, at)| (ticks, at));
    let mut uptime = Some(ctx.uptime);
    cpu::since(stat, last, ctx.now, ctx.dir.ticks_per_second, &mut uptime).unwrap_or(0.0)
}

fn state_name(c: char) -> &'static str {
    match c {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk-sleep",
        'Z' => "zombie",
        'T' => "stopped",
        't' => "tracing-stop",
        'X' | 'x' => "dead",
        'I' => "idle",
        'K' => "wake-kill",
        'W' => "waking",
        'P' => "parked",
        _ => "unknown",
    }
}

/// `tty_nr` packs major and minor device numbers; name the usual terminals.
fn terminal(tty_nr: i32) -> Option<String> {
    if tty_nr == 0 {
        return None;
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    Some(match major {
        136..=143 => format!("pts/{}", minor + (major - 136) * 256),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        _ => format!("{major}:{minor}"),
    })
}

fn map_path(p: &MMapPath) -> Option<String> {
    match p {
        MMapPath::Path(p) => Some(p.display().to_string()),
        MMapPath::Heap => Some("[heap]".into()),
        MMapPath::Stack => Some("[stack]".into()),
        MMapPath::TStack(t) => Some(format!("[stack:{t}]")),
        MMapPath::Vdso => Some("[vdso]".into()),
        MMapPath::Vvar => Some("[vvar]".into()),
        MMapPath::Vsyscall => Some("[vsyscall]".into()),
        MMapPath::Anonymous => None,
        MMapPath::Other(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminals_are_named_from_their_device_numbers() {
        assert_eq!(terminal(0), None);
        assert_eq!(terminal((136 << 8) | 3).as_deref(), Some("pts/3"));
        assert_eq!(terminal((4 << 8) | 1).as_deref(), Some("tty1"));
    }
}
