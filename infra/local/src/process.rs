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

/// Lambda's task root is read-only and only `/tmp` is writable: the process starts in its task
/// root, in a mount namespace of its own where that directory is a read-only bind mount of
/// itself (nothing changes outside the process). That needs CAP_SYS_ADMIN (root, as in CI);
/// without it the directory stays writable, and [`task_roots_are_read_only`] says so.
pub fn read_only_task_root(command: &mut tokio::process::Command, dir: &std::path::Path) {
    // Absolute: the mount runs after the child moved into the directory.
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    command.current_dir(&dir);
    let Some(path) = c_path(&dir) else { return };
    // SAFETY: unshare, mount and chdir are plain syscalls on memory prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            bind_read_only(&path);
            Ok(())
        });
    }
}

fn c_path(dir: &std::path::Path) -> Option<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()
}

/// In a fresh mount namespace: `/` made private (nothing propagates out), `path` bound onto
/// itself and remounted read-only, and the process moved into it. Best effort: a step the
/// process may not take leaves the directory writable (and the process where it was).
fn bind_read_only(path: &std::ffi::CStr) {
    let none = std::ptr::null();
    // SAFETY: syscalls with valid NUL-terminated paths; called between fork and exec.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return;
        }
        let private = libc::mount(none, c"/".as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, std::ptr::null());
        if private == 0
            && libc::mount(path.as_ptr(), path.as_ptr(), none, libc::MS_BIND | libc::MS_REC, std::ptr::null()) == 0
        {
            let flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY;
            libc::mount(none, path.as_ptr(), none, flags, std::ptr::null());
        }
        libc::chdir(path.as_ptr());
    }
}

/// Whether this machine lets the runtime make task roots read-only: a child started as the
/// functions are tries to write in its (scratch) task root. Probed once.
pub fn task_roots_are_read_only() -> bool {
    static PROBED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PROBED.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("roost-task-root-probe-{}", std::process::id()));
        if std::fs::create_dir_all(&dir).is_err() {
            return false;
        }
        let Some(path) = c_path(&dir) else { return false };
        let mut probe = std::process::Command::new("sh");
        probe.args(["-c", "touch probe"]).current_dir(&dir);
        // SAFETY: as in read_only_task_root.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut probe, move || {
                bind_read_only(&path);
                Ok(())
            });
        }
        let wrote = probe.output().map(|o| o.status.success()).unwrap_or(true);
        let _ = std::fs::remove_dir_all(&dir);
        !wrote
    })
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
