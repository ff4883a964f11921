//! The process's heap, kept near what raydar holds: glibc's allocator left alone grows an arena
//! per worker thread and keeps what a relist freed (a fleet's list passes through as whole
//! objects, tens of kilobytes each, where only a few hundred bytes of each are kept). Holding
//! 10,000 RayClusters and 50,000 Ray pods (about 65 MiB of heap in use), raydar was 175 MiB
//! resident; with these and the watch's smaller pages, 115 (DESIGN.md's budget: 150 MB).
//! Elsewhere than Linux with glibc these do nothing.

/// Allocation arenas at most: tokio's workers and the blocking pool share these, rather than
/// growing one each that keeps its own free memory.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Caps glibc's arenas; called first thing in `main`, before any thread starts. The
/// `MALLOC_ARENA_MAX` environment variable, when set, has the last word.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a tunable of the allocator; no thread allocates yet.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
    }
}

/// Hands the heap's free pages back to the system: after a watch swapped in a complete list,
/// when the objects it was made from have just been freed.
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory; it takes the allocator's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
