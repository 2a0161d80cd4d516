//! The processes using most CPU, for a check: every process's `stat` read
//! through [`ProcDir`], CPU use measured since the previous check.

use super::{cpu, dir::ProcDir, users::UserNames};
use crate::{collect::CollectError, domain::TopProcess};
use std::{collections::HashMap, time::Instant};

pub struct TopReader {
    dir: ProcDir,
    pids: Vec<u32>,
    /// pid → start time, CPU ticks and when, at the previous reading.
    last: HashMap<u32, (u64, u64, Instant)>,
    next: HashMap<u32, (u64, u64, Instant)>,
    users: UserNames,
}

impl TopReader {
    /// Makes the reader and takes the reading the first check measures from.
    pub fn new() -> Result<Self, CollectError> {
        let mut r = Self {
            dir: ProcDir::open()?,
            pids: Vec::new(),
            last: HashMap::new(),
            next: HashMap::new(),
            users: UserNames::default(),
        };
        r.read(0)?;
        Ok(r)
    }

    /// The `n` processes using most CPU since the previous reading, most
    /// first (ties by pid).
    pub fn read(&mut self, n: usize) -> Result<Vec<TopProcess>, CollectError> {
        self.dir.list(&mut self.pids)?;
        let now = Instant::now();
        let tps = self.dir.ticks_per_second;
        let mut uptime = None;
        let mut rows = Vec::with_capacity(self.pids.len());
        self.next.clear();
        for &pid in &self.pids {
            let Some((s, _)) = self.dir.stat(pid, false) else {
                continue;
            };
            // Kernel threads are not programs (nor were they in sysinfo's list).
            if s.is_kernel_thread() {
                continue;
            }
            let last = self
                .last
                .get(&pid)
                .filter(|(start, ..)| *start == s.start_ticks)
                .map(|&(_, ticks, at)| (ticks, at));
            let cpu = cpu::since(&s, last, now, tps, &mut uptime).unwrap_or(0.0);
            self.next.insert(pid, (s.start_ticks, s.ticks(), now));
            rows.push((pid, cpu, s));
        }
        // What is gone is forgotten: the map is the size of the table.
        std::mem::swap(&mut self.last, &mut self.next);
        if n == 0 {
            return Ok(Vec::new());
        }
        rows.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        rows.truncate(n);
        self.users.refresh();
        Ok(rows
            .into_iter()
            .map(|(pid, cpu_percent, s)| TopProcess {
                pid,
                name: String::from_utf8_lossy(s.comm.as_bytes()).into_owned(),
                user: self.dir.real_uid(pid).map(|u| self.users.name(u)),
                cpu_percent,
                rss_bytes: s.rss_pages * self.dir.page_size,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_child_is_listed_by_cpu_with_its_name_user_and_memory() {
        let mut r = TopReader::new().unwrap();
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let pid = child.id();
        // One reading sees it (over its short life), the next measures it.
        r.read(5).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        // All of them: on a loaded machine five others may be busier.
        let top = r.read(usize::MAX).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        let me = top.iter().find(|p| p.pid == pid);
        let me = me.unwrap_or_else(|| panic!("{pid} not listed: {top:?}"));
        let mut names = UserNames::default();
        names.refresh();
        let uid = rustix::process::getuid().as_raw();
        assert_eq!(me.name, "sh");
        assert_eq!(me.user, Some(names.name(uid)));
        assert!(me.cpu_percent > 1.0, "{me:?}");
        assert!(me.rss_bytes > 0);
        assert!(top.windows(2).all(|w| w[0].cpu_percent >= w[1].cpu_percent));
        // Init is a program; kernel threads (kthreadd, pid 2, and its
        // children) are left out.
        assert!(top.iter().any(|p| p.pid == 1), "init listed");
        assert!(
            top.iter().all(|p| p.pid != 2 || p.name != "kthreadd"),
            "{top:?}"
        );
    }
}
