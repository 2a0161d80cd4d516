//! Acting on processes: signals and nice values behind the guards of SPEC §5
//! (never PID 1, the agent or any of its threads, or an ancestor of the
//! agent), through a pidfd so a reused pid is never hit (`target`), with
//! errno turned into meaning; and spawning, in `spawn`.

pub mod spawn;
mod target;

pub use target::Target;

use crate::domain::Pid;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no process has pid {0}")]
    NotFound(u32),
    #[error("pid {tid} is a thread of process {process}, not a process: act on pid {process}")]
    NotThread { tid: u32, process: u32 },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Failed(String),
    /// The pid is held by another process than the one the caller saw.
    #[error("{0}")]
    Replaced(String),
}

/// Whether the process is gone: no `/proc/<pid>`, or a zombie (dead, waiting
/// for a parent to reap it, which PID 1 may do late).
pub fn is_gone(pid: Pid) -> bool {
    match procfs::process::Process::new(pid.get() as i32).and_then(|p| p.stat()) {
        Ok(stat) => matches!(stat.state, 'Z' | 'X' | 'x'),
        Err(_) => true,
    }
}

/// Polls until the process is gone or `limit` passes; says whether it went.
pub async fn wait_gone(pid: Pid, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    loop {
        if is_gone(pid) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
