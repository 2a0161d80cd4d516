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
/// so the resident size does not depend on the sampler running.
pub async fn keep_trimmed(shutdown: tokio_util::sync::CancellationToken) {
    let start = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut tick = tokio::time::interval_at(start, std::time::Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let _ = tokio::task::spawn_blocking(release_free).await;
    }
}
