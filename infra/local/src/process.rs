//! Child processes: every process the local runtime starts dies with it, even on SIGKILL.

/// Asks Linux to SIGKILL the child when the runtime's thread that spawned it dies. The runtime
/// spawns from tokio's worker threads, which live as long as the runtime itself.
pub fn die_with_parent(command: &mut tokio::process::Command) {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec here.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

pub fn kill(pid: u32, signal: i32) {
    if let Ok(pid) = i32::try_from(pid)
        && pid > 0
    {
        // SAFETY: plain syscall on a pid we started.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Peak resident set size of a live process (`VmHWM`), which is what Lambda's "Max Memory Used" reports.
pub fn max_rss_mb(pid: u32) -> Option<u64> {
    status_mb(pid, "VmHWM:")
}

/// Resident set size of a live process now (`VmRSS`): what a memory limit bounds.
pub fn rss_mb(pid: u32) -> Option<u64> {
    status_mb(pid, "VmRSS:")
}

/// A `kB` field of `/proc/<pid>/status`, in MB rounded up.
fn status_mb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.div_ceil(1024))
}

pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
