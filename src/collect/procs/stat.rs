//! `/proc/<pid>/stat`, parsed from a stack buffer without the allocations
//! of a general parser: what the process list, the check's top processes
//! and the watchdog read of every process.

/// A process name as `stat` shows it: at most 15 bytes (the kernel's
/// `comm`), except kernel threads such as workqueue workers, shown with up
/// to 63.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comm {
    bytes: [u8; 64],
    len: u8,
}

impl Default for Comm {
    fn default() -> Self {
        Self {
            bytes: [0; 64],
            len: 0,
        }
    }
}

/// Bytes of `comm` the kernel keeps (TASK_COMM_LEN less the NUL).
pub const COMM_LEN: usize = 15;

impl Comm {
    pub fn new(name: &[u8]) -> Self {
        let mut c = Self::default();
        let n = name.len().min(c.bytes.len());
        c.bytes[..n].copy_from_slice(&name[..n]);
        c.len = n as u8;
        c
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The fields of one `stat` line that hostwatch uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub comm: Comm,
    /// `R`, `S`, `D`, `Z`…
    pub state: u8,
    pub ppid: u32,
    pub pgrp: i32,
    /// Field 9, the kernel's `PF_*` flags.
    pub flags: u64,
    pub tty_nr: i32,
    /// User and system CPU time, in clock ticks.
    pub utime: u64,
    pub stime: u64,
    /// Of waited-for children, in clock ticks.
    pub cutime: i64,
    pub cstime: i64,
    pub priority: i64,
    pub nice: i64,
    pub num_threads: i64,
    /// Field 22: clock ticks after boot when the process started.
    pub start_ticks: u64,
    pub vsize: u64,
    pub rss_pages: u64,
    /// Field 42, which kernels before 2.6.18 do not have.
    pub blkio_ticks: Option<u64>,
}

impl Stat {
    /// User plus system CPU time, in clock ticks.
    pub fn ticks(&self) -> u64 {
        self.utime + self.stime
    }

    /// A kernel thread (`PF_KTHREAD`), not a program.
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & 0x0020_0000 != 0
    }

    /// A zombie (or a process being reaped) is gone for the watchdog.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }
}

/// Parses `pid (comm) state ppid …` without allocating; the name may hold
/// spaces and parentheses, so it ends at the *last* `)`.
pub fn parse(line: &[u8]) -> Option<Stat> {
    let open = line.iter().position(|&b| b == b'(')?;
    let close = line.iter().rposition(|&b| b == b')')?;
    let comm = Comm::new(line.get(open + 1..close)?);
    let rest = std::str::from_utf8(line.get(close + 1..)?).ok()?;
    // f[0] is field 3 (state), the first after the name; field n is f[n - 3].
    let mut f = [""; 40];
    let mut n = 0;
    for (slot, word) in f.iter_mut().zip(rest.split_ascii_whitespace()) {
        *slot = word;
        n += 1;
    }
    if n < 22 {
        return None;
    }
    let u = |i: usize| f[i - 3].parse::<u64>().ok();
    let i = |i: usize| f[i - 3].parse::<i64>().ok();
    Some(Stat {
        comm,
        state: *f[0].as_bytes().first()?,
        ppid: u32::try_from(u(4)?).ok()?,
        pgrp: i32::try_from(i(5)?).ok()?,
        tty_nr: i32::try_from(i(7)?).ok()?,
        flags: u(9)?,
        utime: u(14)?,
        stime: u(15)?,
        cutime: i(16)?,
        cstime: i(17)?,
        priority: i(18)?,
        nice: i(19)?,
        num_threads: i(20)?,
        start_ticks: u(22)?,
        vsize: u(23)?,
        rss_pages: u64::try_from(i(24)?).unwrap_or(0),
        blkio_ticks: (n >= 40).then(|| u(42)).flatten(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &[u8] = b"4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
        150 25 0 0 20 0 3 0 987654 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn a_stat_line_gives_its_name_state_ticks_start_and_rss() {
        let s = parse(LINE).unwrap();
        assert_eq!(s.comm.as_bytes(), b"my (odd) name");
        assert_eq!(s.state, b'S');
        assert_eq!(s.ticks(), 175);
        assert_eq!((s.ppid, s.pgrp, s.tty_nr), (1, 4242, 0));
        assert_eq!((s.priority, s.nice, s.num_threads), (20, 0, 3));
        assert_eq!(s.vsize, 123_456_789);
        assert_eq!(s.blkio_ticks, Some(0));
        assert!(!s.is_kernel_thread(), "flags 4194560 lack PF_KTHREAD");
        assert_eq!(s.start_ticks, 987_654);
        assert_eq!(s.rss_pages, 2048);
        assert!(!s.is_dead());
    }

    #[test]
    fn a_zombie_is_dead_and_a_cut_line_is_rejected() {
        let z = String::from_utf8_lossy(LINE).replace(") S ", ") Z ");
        assert!(parse(z.as_bytes()).unwrap().is_dead());
        assert_eq!(parse(&LINE[..60]), None);
        // A kernel before field 42 existed.
        let old = &LINE[..LINE.len() - 14];
        assert_eq!(parse(old).unwrap().blkio_ticks, None);
        assert_eq!(parse(b"garbage"), None);
    }

    #[test]
    fn a_kernel_threads_long_name_is_kept_whole() {
        let name = "kworker/u8:2-events_unbound";
        let line = String::from_utf8_lossy(LINE)
            .replace("my (odd) name", name)
            .replace(" 4194560 ", " 69238880 ");
        let s = parse(line.as_bytes()).unwrap();
        assert_eq!(s.comm.as_bytes(), name.as_bytes());
        assert!(s.is_kernel_thread());
    }

    #[test]
    fn the_agents_own_stat_parses() {
        let line = std::fs::read("/proc/self/stat").unwrap();
        let s = parse(&line).unwrap();
        assert!(s.start_ticks > 0 && s.rss_pages > 0);
    }
}
