//! A process to act on, held by a pidfd. Opening it checks the guards of
//! SPEC §5 and pins its identity (pid and start time); signals then go
//! through the pidfd, so a pid that is freed and reused meanwhile is never
//! hit. The watchdog's kills take this same path.

use super::ControlError;
use crate::domain::{Nice, Pid, Signal};
use procfs::process::Process;
use rustix::{
    event::{PollFd, PollFlags, poll},
    fd::OwnedFd,
    io::Errno,
    process::{self, PidfdFlags},
};
use std::time::Duration;

/// An open handle on one process (a thread-group leader).
#[derive(Debug)]
pub struct Target {
    pid: Pid,
    fd: OwnedFd,
    /// Start time in clock ticks after boot: with the pid, the identity.
    start_ticks: u64,
    /// `name: cmdline`, for the audit trail.
    description: String,
}

/// What `/proc/<pid>/stat` and `status` say about the pid right now.
struct Seen {
    tgid: i32,
    start_ticks: u64,
}

fn see(pid: i32) -> Result<Seen, ControlError> {
    let gone = || ControlError::NotFound(pid as u32);
    let p = Process::new(pid).map_err(|_| gone())?;
    let stat = p.stat().map_err(|_| gone())?;
    let status = p.status().map_err(|_| gone())?;
    Ok(Seen {
        tgid: status.tgid,
        start_ticks: stat.starttime,
    })
}

impl Target {
    /// Opens `pid` for signalling or renicing. `expect_start` (clock ticks
    /// after boot, as `/proc/<pid>/stat` gives) makes sure it is still the
    /// process the caller measured; `None` takes whichever process has it.
    pub fn open(pid: Pid, expect_start: Option<u64>) -> Result<Self, ControlError> {
        let raw = pid.get() as i32;
        guard_numeric(pid)?;
        let before = see(raw)?;
        if before.tgid != raw {
            return Err(ControlError::NotThread {
                tid: pid.get(),
                process: before.tgid as u32,
            });
        }
        guard_ancestry(pid)?;
        let rpid = process::Pid::from_raw(raw).ok_or(ControlError::NotFound(pid.get()))?;
        let fd = process::pidfd_open(rpid, PidfdFlags::empty()).map_err(|e| match e {
            // The kernel refuses a pidfd for a thread that is not a leader.
            Errno::INVAL => ControlError::NotThread {
                tid: pid.get(),
                process: before.tgid as u32,
            },
            other => errno(pid.get(), "open", other),
        })?;
        // Read again through the now pinned pid: if the process we checked
        // ended and the pid was reused before pidfd_open, the start differs.
        let after = see(raw)?;
        if after.start_ticks != before.start_ticks {
            return Err(ControlError::NotFound(pid.get()));
        }
        if expect_start.is_some_and(|s| s != after.start_ticks) {
            return Err(ControlError::NotFound(pid.get()));
        }
        let target = Self {
            pid,
            fd,
            start_ticks: after.start_ticks,
            description: describe(raw).unwrap_or_default(),
        };
        if target.has_exited() {
            return Err(ControlError::NotFound(pid.get()));
        }
        Ok(target)
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// When the process started, as the process list's `create_time` says
    /// it (boot time plus its start in clock ticks, to the millisecond).
    pub fn started_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let boot = procfs::boot_time_secs().ok()? as f64;
        let secs = boot + self.start_ticks as f64 / procfs::ticks_per_second() as f64;
        chrono::DateTime::from_timestamp_millis((secs * 1000.0) as i64)
    }

    /// Refuses this process unless it started at `expected` (to within a
    /// tick or two): a listed process whose pid was freed and reused since
    /// is not the one the caller meant.
    pub fn expect_started(
        &self,
        expected: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), ControlError> {
        let started = self.started_at();
        match started {
            Some(s) if (s - expected).num_milliseconds().abs() <= 50 => Ok(()),
            _ => Err(ControlError::Replaced(format!(
                "pid {} is now another process (started {}, not {}): the one listed has ended; nothing was done",
                self.pid.get(),
                started.map_or_else(|| "at an unknown time".into(), crate::domain::time::rfc3339),
                crate::domain::time::rfc3339(expected),
            ))),
        }
    }

    pub fn start_ticks(&self) -> u64 {
        self.start_ticks
    }

    /// `name: cmdline` as read when it was opened.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Sends `sig` through the pidfd: it reaches this process or nothing.
    pub fn signal(&self, sig: Signal) -> Result<(), ControlError> {
        process::pidfd_send_signal(&self.fd, to_rustix(sig))
            .map_err(|e| errno(self.pid.get(), "signal", e))
    }

    /// Sets the nice value of every thread of the process (on Linux a nice
    /// value belongs to a thread: setpriority(2) on the pid alone leaves the
    /// others as they were) and returns the main thread's, as read back.
    /// setpriority has no pidfd form, so it acts by number and each act is
    /// checked after: a process still running by its pidfd then was the one
    /// set (a pid is not reused before its process is reaped), and a thread
    /// still listed under it was its own. A number that left us meanwhile
    /// is reported, not trusted.
    pub fn renice(&self, nice: Nice) -> Result<i32, ControlError> {
        let pid = self.pid.get();
        self.still_here()?;
        let main = process::Pid::from_raw(pid as i32).ok_or(ControlError::NotFound(pid))?;
        process::setpriority_process(Some(main), nice.get())
            .map_err(|e| errno(pid, "renice", e))?;
        self.still_here()?;
        let tids = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map_err(|_| ControlError::NotFound(pid))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&t| t != pid as i32)
            .filter_map(process::Pid::from_raw);
        for tid in tids {
            match process::setpriority_process(Some(tid), nice.get()) {
                // A thread that ended meanwhile has no nice value to set.
                Ok(()) | Err(Errno::SRCH) => {}
                Err(e) => return Err(errno(pid, "renice a thread of", e)),
            }
            self.thread_still_ours(tid, nice)?;
        }
        let now = process::getpriority_process(Some(main))
            .map_err(|e| errno(pid, "read the nice value of", e))?;
        self.still_here()?;
        Ok(now)
    }

    fn still_here(&self) -> Result<(), ControlError> {
        if self.has_exited() {
            return Err(ControlError::NotFound(self.pid.get()));
        }
        Ok(())
    }

    /// After acting on thread `tid` by number: it is still one of ours, or
    /// it ended and its number names no other process (a thread's id is
    /// freed the moment it ends, and could have been taken meanwhile).
    fn thread_still_ours(&self, tid: process::Pid, nice: Nice) -> Result<(), ControlError> {
        let (pid, raw) = (self.pid.get(), tid.as_raw_nonzero().get());
        self.still_here()?;
        if std::path::Path::new(&format!("/proc/{pid}/task/{raw}")).exists() {
            return Ok(());
        }
        match see(raw) {
            Ok(other) if other.tgid != pid as i32 => Err(ControlError::Replaced(format!(
                "thread {raw} of pid {pid} ended while being reniced and its id now belongs to pid {}, whose nice value may have been set to {}",
                other.tgid,
                nice.get()
            ))),
            _ => Ok(()),
        }
    }

    /// Whether the process has exited (a zombie counts: it will never run
    /// again, whenever its parent reaps it). The pidfd turns readable then.
    pub fn has_exited(&self) -> bool {
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
    }

    /// Waits until the process has exited or `limit` passes; says which.
    pub async fn wait_gone(self, limit: Duration) -> bool {
        use tokio::io::{Interest, unix::AsyncFd};
        // SAFETY: an OwnedFd stays open and names the same pidfd for as
        // long as the AsyncFd owns it.
        match unsafe { AsyncFd::register_with_interest(self.fd, Interest::READABLE) } {
            Ok(afd) => tokio::time::timeout(limit, afd.readable())
                .await
                .is_ok_and(|r| r.is_ok()),
            // No reactor to register with: fall back to polling /proc.
            Err(_) => super::wait_gone(self.pid, limit).await,
        }
    }
}

/// Refusals that need only the number: PID 1, the agent and its threads.
fn guard_numeric(pid: Pid) -> Result<(), ControlError> {
    let n = pid.get();
    let me = std::process::id();
    if n == 1 {
        return Err(ControlError::Forbidden(
            "pid 1 is the init process: hostwatch never signals or renices it".into(),
        ));
    }
    if n == me {
        return Err(ControlError::Forbidden(format!(
            "pid {n} is hostwatch itself"
        )));
    }
    // kill(2) on any thread id signals the whole process.
    if std::path::Path::new(&format!("/proc/self/task/{n}")).exists() {
        return Err(ControlError::Forbidden(format!(
            "pid {n} is a thread of hostwatch itself (pid {me})"
        )));
    }
    Ok(())
}

fn guard_ancestry(pid: Pid) -> Result<(), ControlError> {
    if ancestors(std::process::id()).contains(&pid.get()) {
        return Err(ControlError::Forbidden(format!(
            "pid {} is an ancestor of hostwatch (signalling it could stop the agent)",
            pid.get()
        )));
    }
    Ok(())
}

/// The chain of parents of `pid`, nearest first, up to PID 1.
fn ancestors(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut cur = pid as i32;
    while let Ok(stat) = Process::new(cur).and_then(|p| p.stat()) {
        if stat.ppid <= 0 || out.len() > 4096 {
            break;
        }
        out.push(stat.ppid as u32);
        cur = stat.ppid;
    }
    out
}

fn to_rustix(sig: Signal) -> process::Signal {
    match sig {
        Signal::Term => process::Signal::TERM,
        Signal::Kill => process::Signal::KILL,
        Signal::Int => process::Signal::INT,
        Signal::Hup => process::Signal::HUP,
        Signal::Quit => process::Signal::QUIT,
        Signal::Usr1 => process::Signal::USR1,
        Signal::Usr2 => process::Signal::USR2,
        Signal::Stop => process::Signal::STOP,
        Signal::Cont => process::Signal::CONT,
    }
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

/// `name: cmdline` of a process; `None` when gone.
fn describe(pid: i32) -> Option<String> {
    let p = Process::new(pid).ok()?;
    let name = p.stat().ok()?.comm;
    let cmd = p
        .open_relative("cmdline")
        .ok()
        .and_then(|f| crate::collect::cmdline::read(f).ok())
        .unwrap_or_default()
        .args
        .join(" ");
    Some(if cmd.is_empty() {
        name
    } else {
        format!("{name}: {cmd}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(n: u32) -> Pid {
        Pid::new(n).unwrap()
    }

    #[test]
    fn pid_1_the_agent_and_its_parent_are_guarded() {
        assert!(Target::open(pid(1), None).is_err());
        assert!(matches!(
            Target::open(pid(std::process::id()), None),
            Err(ControlError::Forbidden(_))
        ));
        let parent = std::os::unix::process::parent_id();
        let e = Target::open(pid(parent), None).unwrap_err();
        // Run straight under init (a container's first process), the parent is PID 1.
        let why = if parent == 1 { "pid 1" } else { "ancestor" };
        assert!(e.to_string().contains(why), "{e}");
    }

    #[test]
    fn a_thread_of_the_agent_is_guarded_like_the_agent() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            tx.send(rustix::thread::gettid().as_raw_nonzero().get() as u32)
                .unwrap();
            let _ = stop_rx.recv();
        });
        let tid = rx.recv().unwrap();
        let e = Target::open(pid(tid), None).unwrap_err();
        stop_tx.send(()).unwrap();
        t.join().unwrap();
        assert!(matches!(e, ControlError::Forbidden(_)), "{e}");
        assert!(e.to_string().contains("thread of hostwatch"), "{e}");
    }

    #[test]
    fn a_child_is_opened_signalled_and_seen_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let t = Target::open(pid(child.id()), None).unwrap();
        assert!(t.description().starts_with("sleep"), "{}", t.description());
        assert!(!t.has_exited());
        t.signal(Signal::Kill).unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert!(t.has_exited());
    }

    /// Field 19 of /proc/<pid>/task/<tid>/stat is the nice value.
    fn thread_nices(pid: u32) -> Vec<i64> {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .map(|e| {
                let stat = std::fs::read_to_string(e.unwrap().path().join("stat")).unwrap();
                let after = &stat[stat.rfind(')').unwrap() + 2..];
                after.split_whitespace().nth(16).unwrap().parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn renice_reaches_every_thread_of_the_process() {
        let mut child = std::process::Command::new("python3")
            .args([
                "-c",
                "import threading,time\n\
                 threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n\
                 time.sleep(30)",
            ])
            .spawn()
            .expect("python3 runs (scripts/test installs it)");
        let id = child.id();
        while thread_nices(id).len() < 2 {
            std::thread::sleep(Duration::from_millis(10));
        }
        let t = Target::open(pid(id), None).unwrap();
        let got = t.renice(Nice::new(13).unwrap()).unwrap();
        let nices = thread_nices(id);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(got, 13);
        assert!(
            nices.len() >= 2 && nices.iter().all(|&n| n == 13),
            "{nices:?}"
        );
    }

    #[test]
    fn a_thread_number_that_now_names_another_process_is_reported() {
        let spawn = || {
            std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .unwrap()
        };
        let (mut ours, mut stranger) = (spawn(), spawn());
        let t = Target::open(pid(ours.id()), None).unwrap();
        let nice = Nice::new(19).unwrap();
        let as_tid = |n: u32| process::Pid::from_raw(n as i32).unwrap();
        // Its own main thread is listed under it.
        let own = t.thread_still_ours(as_tid(ours.id()), nice);
        // What a thread id freed and taken by another process looks like.
        let taken = t.thread_still_ours(as_tid(stranger.id()), nice);
        stranger.kill().unwrap();
        stranger.wait().unwrap();
        // A number nobody holds now: the thread just ended, nothing else was hit.
        let free = t.thread_still_ours(as_tid(stranger.id()), nice);
        ours.kill().unwrap();
        ours.wait().unwrap();
        // Once the process itself has exited, that is what is reported.
        let gone = t.thread_still_ours(as_tid(stranger.id()), nice);
        assert!(own.is_ok(), "{own:?}");
        let e = taken.unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("belongs to pid {}", stranger.id())),
            "{e}"
        );
        assert!(free.is_ok(), "{free:?}");
        assert!(matches!(gone, Err(ControlError::NotFound(_))), "{gone:?}");
    }

    #[test]
    fn a_start_time_that_does_not_match_is_not_found() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let t = Target::open(pid(child.id()), None).unwrap();
        let e = Target::open(pid(child.id()), Some(t.start_ticks() + 1)).unwrap_err();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(matches!(e, ControlError::NotFound(_)), "{e}");
    }

    #[test]
    fn a_pidfd_never_reaches_a_process_that_was_reaped() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let t = Target::open(pid(child.id()), None).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        // Whatever has the pid now, the pidfd still names the dead process.
        assert!(matches!(
            t.signal(Signal::Term),
            Err(ControlError::NotFound(_))
        ));
    }
}
