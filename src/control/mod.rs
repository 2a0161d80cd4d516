//! Acting on processes: signals and nice values behind the guards of SPEC §5
//! (never PID 1, the agent, or an ancestor of the agent), with errno turned
//! into meaning; and spawning, in `spawn`.

pub mod spawn;

use crate::domain::{Nice, Pid, Signal};
use rustix::{io::Errno, process};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no process has pid {0}")]
    NotFound(u32),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Failed(String),
}

/// Why the agent refuses to touch `pid`, if it does.
pub fn guard(pid: Pid) -> Result<(), ControlError> {
    let pid = pid.get();
    let me = std::process::id();
    if pid == 1 {
        return Err(ControlError::Forbidden(
            "pid 1 is the init process: hostwatch never signals or renices it".into(),
        ));
    }
    if pid == me {
        return Err(ControlError::Forbidden(format!(
            "pid {pid} is hostwatch itself"
        )));
    }
    if ancestors(me).contains(&pid) {
        return Err(ControlError::Forbidden(format!(
            "pid {pid} is an ancestor of hostwatch (signalling it could stop the agent)"
        )));
    }
    Ok(())
}

/// The chain of parents of `pid`, nearest first, up to PID 1.
fn ancestors(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut cur = pid as i32;
    while let Ok(stat) = procfs::process::Process::new(cur).and_then(|p| p.stat()) {
        if stat.ppid <= 0 || out.len() > 4096 {
            break;
        }
        out.push(stat.ppid as u32);
        cur = stat.ppid;
    }
    out
}

fn errno(pid: u32, what: &str, e: Errno) -> ControlError {
    match e {
        Errno::SRCH => ControlError::NotFound(pid),
        Errno::PERM | Errno::ACCESS => ControlError::Forbidden(format!(
            "the agent may not {what} pid {pid} (operation not permitted)"
        )),
        other => ControlError::Failed(format!("{what} pid {pid} failed: {other}")),
    }
}

fn rustix_pid(pid: Pid) -> Result<process::Pid, ControlError> {
    process::Pid::from_raw(pid.get() as i32).ok_or(ControlError::NotFound(pid.get()))
}

pub fn signal(pid: Pid, sig: Signal) -> Result<(), ControlError> {
    guard(pid)?;
    let s = match sig {
        Signal::Term => process::Signal::TERM,
        Signal::Kill => process::Signal::KILL,
        Signal::Int => process::Signal::INT,
        Signal::Hup => process::Signal::HUP,
        Signal::Quit => process::Signal::QUIT,
        Signal::Usr1 => process::Signal::USR1,
        Signal::Usr2 => process::Signal::USR2,
        Signal::Stop => process::Signal::STOP,
        Signal::Cont => process::Signal::CONT,
    };
    process::kill_process(rustix_pid(pid)?, s).map_err(|e| errno(pid.get(), "signal", e))
}

/// Sets the nice value and returns it as read back.
pub fn renice(pid: Pid, nice: Nice) -> Result<i32, ControlError> {
    guard(pid)?;
    let p = rustix_pid(pid)?;
    process::setpriority_process(Some(p), nice.get()).map_err(|e| errno(pid.get(), "renice", e))?;
    process::getpriority_process(Some(p)).map_err(|e| errno(pid.get(), "read the nice value of", e))
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

/// `name: cmdline` of a process, for the audit trail; `None` when gone.
pub fn describe(pid: Pid) -> Option<String> {
    let p = procfs::process::Process::new(pid.get() as i32).ok()?;
    let name = p.stat().ok()?.comm;
    let cmd = p.cmdline().unwrap_or_default().join(" ");
    Some(if cmd.is_empty() {
        name
    } else {
        format!("{name}: {cmd}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_1_the_agent_and_its_parent_are_guarded() {
        assert!(guard(Pid::new(1).unwrap()).is_err());
        assert!(guard(Pid::new(std::process::id()).unwrap()).is_err());
        let parent = std::os::unix::process::parent_id();
        let e = guard(Pid::new(parent).unwrap()).unwrap_err().to_string();
        // Run straight under init (a container's first process), the parent is PID 1.
        let why = if parent == 1 { "pid 1" } else { "ancestor" };
        assert!(e.contains(why), "{e}");
    }
}
