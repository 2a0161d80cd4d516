//! One run of a probe, of each kind: the outcome and how long it took.

use super::ProbeResult;
use crate::{
    config::watchdog::{ProbeKind, ProbeSettings},
    control::spawn::{SPAWN_LANG, SPAWN_PATH},
};
use chrono::Utc;
use std::{
    os::unix::process::ExitStatusExt,
    process::{ExitStatus, Stdio},
    time::{Duration, Instant},
};
use tokio::{
    io::AsyncReadExt,
    net::TcpStream,
    process::{ChildStderr, Command},
};

/// Bytes of an exec probe's standard error kept for its error text.
const STDERR_KEEP: usize = 200;

pub async fn once(p: &ProbeSettings) -> ProbeResult {
    let at = Utc::now();
    let started = Instant::now();
    let outcome = match p.kind {
        ProbeKind::Http => http(p.url.as_deref().unwrap_or_default(), p.timeout).await,
        ProbeKind::Tcp => tcp(p.address.as_deref().unwrap_or_default(), p.timeout).await,
        ProbeKind::Exec => exec(p.command.as_deref().unwrap_or_default(), &p.args, p.timeout).await,
    };
    ProbeResult {
        at,
        ok: outcome.is_ok(),
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        error: outcome.err(),
    }
}

/// A 2xx within `timeout`; a redirect is not what a watchdog probe asks for.
async fn http(url: &str, timeout: Duration) -> Result<(), String> {
    let p = crate::services::probe::get(url, timeout, 200..300).await;
    match p.error {
        None if p.healthy => Ok(()),
        None => Err("unhealthy".to_owned()),
        Some(e) => Err(e),
    }
}

async fn tcp(address: &str, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("cannot connect to {address}: {e}")),
        Err(_) => Err(format!(
            "cannot connect to {address} within {} ms",
            timeout.as_millis()
        )),
    }
}

/// Kills the command's process group unless disarmed: on a timeout, and when
/// the run is dropped (the agent stops). Only armed while the child is not
/// yet reaped, so its pid (the group's id) cannot have been reused.
struct GroupKill(Option<i32>);

impl GroupKill {
    fn fire(&mut self) {
        if let Some(pgid) = self.0.take() {
            let pid = rustix::process::Pid::from_raw(pgid);
            if let Some(pid) = pid {
                // The group may be gone already; nothing to do then.
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.fire();
    }
}

/// Runs `command args` in its own process group with a clean environment;
/// ok when it exits 0 within `timeout`. The child is always reaped: waited
/// for on a timeout, and by tokio (`kill_on_drop`) when the run is dropped.
async fn exec(command: &str, args: &[String], timeout: Duration) -> Result<(), String> {
    let mut child = Command::new(command)
        .args(args)
        .env_clear()
        .env("PATH", SPAWN_PATH)
        .env("LANG", SPAWN_LANG)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{command} could not be started: {e}"))?;
    let mut group = GroupKill(child.id().and_then(|id| i32::try_from(id).ok()));
    let mut stderr = child.stderr.take();
    let mut kept = Vec::new();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let status = tokio::select! {
        status = child.wait() => Some(status),
        () = read_stderr(&mut stderr, &mut kept) => None,
        () = &mut deadline => None,
    };
    let status = match status {
        Some(status) => status,
        None => {
            // Only the deadline ends the select without a status: the
            // stderr reader never finishes by itself.
            group.fire();
            let _ = child.wait().await;
            return Err(format!(
                "{command} did not finish within {} ms and was killed",
                timeout.as_millis()
            ));
        }
    };
    group.0 = None;
    let status = status.map_err(|e| format!("{command}: cannot wait for it: {e}"))?;
    if status.success() {
        return Ok(());
    }
    // What it wrote just before it exited may still be in the pipe; a
    // background child holding the pipe open must not hold the probe.
    if stderr.is_some() {
        let _ = tokio::time::timeout(
            Duration::from_millis(50),
            read_stderr(&mut stderr, &mut kept),
        )
        .await;
    }
    Err(describe(command, status, &kept))
}

/// Reads standard error to its end (then drops it), keeping the first
/// bytes, and waits forever: it never ends a `select!` by itself.
async fn read_stderr(stderr: &mut Option<ChildStderr>, kept: &mut Vec<u8>) {
    if let Some(pipe) = stderr {
        let mut buf = [0u8; 512];
        while let Ok(n @ 1..) = pipe.read(&mut buf).await {
            let room = STDERR_KEEP.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
        *stderr = None;
    }
    std::future::pending::<()>().await;
}

fn describe(command: &str, status: ExitStatus, stderr: &[u8]) -> String {
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("{command} exited with status {code}"),
        (None, Some(sig)) => format!("{command} was killed by signal {sig}"),
        (None, None) => format!("{command} ended ({status})"),
    };
    let said = String::from_utf8_lossy(stderr);
    let said = said.trim();
    if said.is_empty() {
        how
    } else {
        format!("{how}: {said}")
    }
}
