//! glibc's allocator, tuned for a small always-on agent: few arenas (one per
//! thread that ever allocated is glibc's default, and each keeps its own free
//! memory), and free memory handed back after each check.

/// Call once, before threads start.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns free heap pages to the kernel, at most once in [`TRIM_EVERY`]:
/// a trim costs a walk of the free lists, and what it hands back the next
/// check faults in again, every second at a 1 s cycle. In between, a
/// check's allocations are reused by the next one; the trim keeps what is
/// left over from piling up.
pub fn release_free() {
    static LAST: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    {
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < TRIM_EVERY) {
            return;
        }
        *last = Some(std::time::Instant::now());
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases memory malloc owns and no one uses.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The least time between two trims.
pub const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Hands free heap pages back a few seconds after start (the HTTP workers
/// build their apps and leave freed memory behind) and then once a minute,
/// so the resident size does not depend on the sampler running. The first
/// time, the code start-up ran goes back too ([`shed_code`]).
pub async fn keep_trimmed(shutdown: tokio_util::sync::CancellationToken) {
    let start = tokio::time::Instant::now() + SHED_AFTER;
    let mut tick = tokio::time::interval_at(start, std::time::Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let shed = std::mem::take(&mut first);
        let _ = tokio::task::spawn_blocking(move || {
            release_free();
            if shed {
                match shed_code() {
                    Ok(bytes) => tracing::debug!(bytes, "start-up code handed back"),
                    Err(e) => tracing::debug!(error = %e, "start-up code kept"),
                }
            }
        })
        .await;
    }
}

/// How long after start the start-up code is handed back: by then the
/// workers have built their apps and the first check and tick have run.
pub const SHED_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

/// Hands the kernel back the pages of the agent's own executable (code and
/// read-only data) and asks it to read them again one page at a time, as
/// they are next run; returns the bytes of the mappings handed back.
///
/// Start-up runs code a steady minute never does again (arguments, config,
/// migrations, the OpenAPI document, TLS set-up), and the kernel reads the
/// file ahead by the device's `read_ahead_kb` (8 MiB on some virtual disks)
/// and maps 64 KiB around every fault from what it holds of the file:
/// without this the whole executable stays resident. These pages are clean
/// copies of the file, so dropping them loses nothing; a page run again
/// later costs one read of 4 KiB (a large folio that holds a page that is
/// running stays cached whole). A mapping with private copies (the
/// relocated read-only data) is left whole: dropping those would lose them.
/// Pages another process maps too (a second agent, the client) stay cached.
pub fn shed_code() -> std::io::Result<usize> {
    use std::os::unix::fs::MetadataExt;
    let exe = std::fs::read_link("/proc/self/exe")?;
    let file = std::fs::File::open("/proc/self/exe")?;
    let inode = file.metadata()?.ino();
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut shed = 0;
    for (start, end) in clean_exe_mappings(&smaps, &exe.to_string_lossy(), inode) {
        let (addr, len) = (start as *mut libc::c_void, end - start);
        // SAFETY: the range is a whole read-only, file-backed mapping of our
        // own executable with no private page: what it reads as is the file,
        // which the kernel reads again where a dropped page is next touched.
        unsafe {
            if libc::madvise(addr, len, libc::MADV_RANDOM) != 0
                || libc::madvise(addr, len, libc::MADV_DONTNEED) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        shed += len;
    }
    // Unmapped, the file's cached pages can go too: else the next fault
    // would map them back 64 KiB at a time.
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)?;
    Ok(shed)
}

/// The read-only mappings of `exe` (by path and inode) that hold no
/// private page, in a `/proc/self/smaps` text: start and end addresses.
fn clean_exe_mappings(smaps: &str, exe: &str, inode: u64) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    let mut private = false;
    let mut close = |current: &mut Option<(usize, usize)>, private: bool| {
        if let Some(range) = current.take().filter(|_| !private) {
            found.push(range);
        }
    };
    for line in smaps.lines() {
        if let Some(range) = mapping_line(line) {
            close(&mut current, private);
            private = false;
            current = range
                .filter(|m| m.path == exe && m.inode == inode && !m.writable)
                .map(|m| (m.start, m.end));
        } else if let Some(kib) = line.strip_prefix("Anonymous:") {
            private |= kib.trim().trim_end_matches("kB").trim() != "0";
        }
    }
    close(&mut current, private);
    found
}

struct Mapping<'a> {
    start: usize,
    end: usize,
    writable: bool,
    inode: u64,
    path: &'a str,
}

/// `Some` for a line that starts a mapping (`Some(None)` when it does not
/// parse), `None` for a line of its figures.
fn mapping_line(line: &str) -> Option<Option<Mapping<'_>>> {
    let mut f = line.splitn(6, ' ');
    let (start, end) = f.next()?.split_once('-')?;
    let (Ok(start), Ok(end)) = (
        usize::from_str_radix(start, 16),
        usize::from_str_radix(end, 16),
    ) else {
        return None;
    };
    let parsed = (|| {
        let perms = f.next()?;
        let (_offset, _dev, inode) = (f.next()?, f.next()?, f.next()?);
        Some(Mapping {
            start,
            end,
            writable: perms.contains('w'),
            inode: inode.parse().ok()?,
            path: f.next().unwrap_or("").trim(),
        })
    })();
    Some(parsed.filter(|m| m.end > m.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clean_read_only_mappings_of_that_file_are_shed() {
        let smaps = "\
5611a000-5611b000 r--p 00000000 fe:01 42    /usr/bin/hostwatch
Rss:                   4 kB
Anonymous:             0 kB
5611b000-5611f000 r-xp 00001000 fe:01 42    /usr/bin/hostwatch
Anonymous:             0 kB
VmFlags: rd ex mr mw me
5611f000-56120000 r--p 00005000 fe:01 42    /usr/bin/hostwatch
Anonymous:             4 kB
56120000-56121000 rw-p 00006000 fe:01 42    /usr/bin/hostwatch
Anonymous:             0 kB
56121000-56122000 r--p 00000000 fe:01 43    /usr/bin/hostwatch
Anonymous:             0 kB
7f000000-7f001000 r-xp 00000000 fe:01 77    /usr/lib/libc.so.6
Anonymous:             0 kB
7f100000-7f200000 rw-p 00000000 00:00 0 
Anonymous:          1024 kB
";
        assert_eq!(
            clean_exe_mappings(smaps, "/usr/bin/hostwatch", 42),
            [(0x5611a000, 0x5611b000), (0x5611b000, 0x5611f000)],
            "relocated data, the writable mapping, another inode at the path and other files are left"
        );
    }

    #[test]
    fn shedding_our_own_code_leaves_it_running() {
        let advised = shed_code().expect("madvise on our own executable");
        assert!(advised > 0, "no mapping of our own executable found");
    }
}
