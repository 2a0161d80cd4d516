//! `/proc/<pid>/stat`, parsed from a stack buffer: only the fields the
//! watchdog reads, without the allocations of a general parser.

/// A process name as the kernel keeps it (`comm`): at most 15 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Comm {
    bytes: [u8; 16],
    len: u8,
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

/// The fields of one `stat` line the watchdog uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub comm: Comm,
    /// `R`, `S`, `D`, `Z`…
    pub state: u8,
    /// User and system CPU time, in clock ticks.
    pub ticks: u64,
    /// Field 22: clock ticks after boot when the process started.
    pub start_ticks: u64,
    pub rss_pages: u64,
}

impl Stat {
    /// A zombie (or a process being reaped) is gone for the watchdog.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }
}

/// Parses `pid (comm) state ppid …`; the name may hold spaces and
/// parentheses, so it ends at the *last* `)`.
pub fn parse(line: &[u8]) -> Option<Stat> {
    let open = line.iter().position(|&b| b == b'(')?;
    let close = line.iter().rposition(|&b| b == b')')?;
    let comm = Comm::new(line.get(open + 1..close)?);
    let rest = std::str::from_utf8(line.get(close + 1..)?).ok()?;
    // Field 3 (state) is the first after the name.
    let mut fields = rest.split_ascii_whitespace();
    let state = *fields.next()?.as_bytes().first()?;
    let mut num = |skip: usize| -> Option<u64> { fields.nth(skip)?.parse().ok() };
    let utime = num(10)?; // field 14
    let stime = num(0)?; // 15
    let start_ticks = num(6)?; // 22
    let rss: i64 = fields.nth(1)?.parse().ok()?; // 24
    Some(Stat {
        comm,
        state,
        ticks: utime + stime,
        start_ticks,
        rss_pages: u64::try_from(rss).unwrap_or(0),
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
        assert_eq!(s.ticks, 175);
        assert_eq!(s.start_ticks, 987_654);
        assert_eq!(s.rss_pages, 2048);
        assert!(!s.is_dead());
    }

    #[test]
    fn a_zombie_is_dead_and_a_cut_line_is_rejected() {
        let z = String::from_utf8_lossy(LINE).replace(") S ", ") Z ");
        assert!(parse(z.as_bytes()).unwrap().is_dead());
        assert_eq!(parse(&LINE[..60]), None);
        assert_eq!(parse(b"garbage"), None);
    }

    #[test]
    fn the_agents_own_stat_parses() {
        let line = std::fs::read("/proc/self/stat").unwrap();
        let s = parse(&line).unwrap();
        assert!(s.start_ticks > 0 && s.rss_pages > 0);
    }
}
