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

/// Returns free heap pages to the kernel. Costs a walk of the free lists.
pub fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases memory malloc owns and no one uses.
    unsafe {
        libc::malloc_trim(0);
    }
}
