//! Cheap readings for the watchdog's rules, taken as often as every 100 ms:
//! the processes that match a rule's name or command line ([`ProcWatch`]),
//! and the host's CPU, memory, swap, load and disks ([`HostWatch`]). Plain
//! data out; nothing here knows rules, HTTP or SQL.

mod host;
mod procs;
mod reader;
#[cfg(test)]
mod tests;

pub use host::{HostNow, HostWant, HostWatch, disk_percent};
pub use procs::{ProcSample, ProcWatch};

use crate::collect::procs::stat::COMM_LEN;

/// Which processes a rule watches.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// The process name, exactly: the kernel's `comm`. The kernel keeps only
    /// its first 15 bytes, so a longer name matches a process whose `comm`
    /// is its first 15 bytes and whose `argv[0]` or executable is named it
    /// in full.
    Name(String),
    /// The command line (arguments joined by spaces, as `ps` shows it)
    /// matched anywhere by the regex; the regex sees only its first 4 KiB.
    /// A process without one (a kernel thread, a zombie) never matches. A
    /// process's command line is read when it is first seen, on the next
    /// refresh, then, while it does not match, only when its name changes
    /// (exec): one that rewrites its arguments later without exec
    /// (`setproctitle`) is not seen to match.
    Cmdline(regex_lite::Regex),
}

impl Matcher {
    /// A long name whose cut `comm` matches and that needs `argv[0]` (or the
    /// executable) to confirm it.
    fn needs_confirming(&self, comm: &[u8]) -> bool {
        matches!(self, Self::Name(n) if n.len() > COMM_LEN && n.as_bytes()[..COMM_LEN] == *comm)
    }
}
