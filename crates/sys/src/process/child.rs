//! The child side of `clone`: setup, the init (PID 1 of the container) and the command.
//!
//! The parent may have other threads, so between `clone` and `execve` only async-signal-safe
//! system calls run here: no allocation, no locks, no logging. Everything (paths, argv, envp,
//! fds) is prepared by the parent in `Prepared`. A failed step is reported to the parent as
//! (step index, errno) on a close-on-exec pipe, which reads EOF once the command is exec'd.

use std::ffi::CString;
use std::os::fd::RawFd;

use super::setup::{Planned, Step};

/// Index reported when the command itself cannot be executed.
pub(crate) const EXEC_FAILED: u32 = u32::MAX;
/// Index reported when the init cannot fork the command.
pub(crate) const FORK_FAILED: u32 = u32::MAX - 1;
/// Index reported when a detached container's stdio cannot be set up.
pub(crate) const STDIO_FAILED: u32 = u32::MAX - 2;

/// Everything the child needs, built before `clone`.
pub(crate) struct Prepared<'a> {
    pub steps: &'a [Planned],
    pub netns_fd: RawFd,
    /// Write end of the error pipe (close-on-exec).
    pub err_fd: RawFd,
    /// File the init writes the command's exit code to (close-on-exec).
    pub exit_fd: RawFd,
    /// stdin, stdout, stderr of a detached container; None keeps the caller's.
    pub stdio: Option<[RawFd; 3]>,
    pub exe: &'a CString,
    /// NULL-terminated pointer arrays into CStrings the parent keeps alive.
    pub argv: &'a [*const libc::c_char],
    pub envp: &'a [*const libc::c_char],
    /// Where nsnet's own command line lives (`/proc/self/stat` arg_start, arg_end): the init
    /// overwrites it, so the container does not see nsnet's arguments (`--env` values,
    /// host paths) as PID 1's command line.
    pub cmdline: Option<(usize, usize)>,
}

/// The process name the init shows in `ps` (comm, at most 15 bytes).
const INIT_NAME: &[u8] = b"nsnet-init\0";

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Writes (index, errno) to the error pipe in one write (atomic: below PIPE_BUF).
unsafe fn report(fd: RawFd, index: u32, err: i32) {
    let mut rec = [0u8; 8];
    rec[..4].copy_from_slice(&index.to_ne_bytes());
    rec[4..].copy_from_slice(&err.to_ne_bytes());
    // SAFETY: rec is a valid buffer of 8 bytes.
    unsafe { libc::write(fd, rec.as_ptr().cast(), rec.len()) };
}

fn opt_ptr(s: &Option<CString>) -> *const libc::c_char {
    s.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
}

/// Runs one setup step; Err(errno) on failure.
unsafe fn run_step(step: &Step, netns_fd: RawFd) -> Result<(), i32> {
    // SAFETY (whole function): every pointer comes from a CString the parent keeps alive.
    let rc = unsafe {
        match step {
            Step::JoinNetns => libc::setns(netns_fd, libc::CLONE_NEWNET),
            Step::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => libc::mount(
                opt_ptr(source),
                target.as_ptr(),
                opt_ptr(fstype),
                *flags,
                opt_ptr(data).cast(),
            ),
            Step::Detach(target) => libc::umount2(target.as_ptr(), libc::MNT_DETACH),
            Step::Mkdir(path) => {
                if libc::mkdir(path.as_ptr(), 0o755) != 0 && errno() != libc::EEXIST {
                    -1
                } else {
                    0
                }
            }
            Step::Touch(path) => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                    0o644,
                );
                if fd < 0 {
                    // A directory or a device node is as good a mount point as a file.
                    if matches!(errno(), libc::EISDIR | libc::ENXIO) {
                        0
                    } else {
                        -1
                    }
                } else {
                    libc::close(fd);
                    0
                }
            }
            Step::PivotRoot(dir) => {
                let dot = c".".as_ptr();
                if libc::chdir(dir.as_ptr()) != 0
                    || libc::syscall(libc::SYS_pivot_root, dot, dot) != 0
                    || libc::umount2(dot, libc::MNT_DETACH) != 0
                    || libc::chdir(c"/".as_ptr()) != 0
                {
                    -1
                } else {
                    0
                }
            }
            Step::Chdir(dir) => libc::chdir(dir.as_ptr()),
            Step::Hostname(name) => libc::sethostname(name.as_ptr(), name.as_bytes().len()),
            Step::Setsid => {
                if libc::setsid() < 0 {
                    -1
                } else {
                    0
                }
            }
        }
    };
    if rc == 0 { Ok(()) } else { Err(errno()) }
}

/// Closes every fd except 0-2 and `keep` (sorted, all above 2).
unsafe fn close_others(keep: &mut [RawFd]) {
    keep.sort_unstable();
    let mut first: libc::c_uint = 3;
    for &fd in keep.iter() {
        let fd = fd as libc::c_uint;
        if fd > first {
            // SAFETY: close_range only closes descriptors.
            unsafe { libc::syscall(libc::SYS_close_range, first, fd - 1, 0) };
        }
        first = first.max(fd + 1);
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0) };
}

/// `fork` without glibc's atfork handlers and malloc locks, which another thread of the
/// parent may have held at `clone` time.
pub(crate) unsafe fn raw_fork() -> libc::pid_t {
    // SAFETY: a plain clone(SIGCHLD) returns twice like fork; no stack or TLS is shared.
    unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0, 0, 0, 0) as _ }
}

/// Blocks every signal of the calling thread.
pub(crate) unsafe fn block_all() {
    // SAFETY: plain signal-mask calls on stack values.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
    }
}

/// Default dispositions and an empty mask, as a freshly exec'd program expects (Rust's
/// runtime ignores SIGPIPE, and an ignored signal stays ignored across exec).
pub(crate) unsafe fn reset_signals() {
    // SAFETY: sigaction with a zeroed action (SIG_DFL); KILL/STOP just fail.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for sig in 1..libc::SIGRTMAX() {
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

/// The command: signals reset, then exec; reports and exits 127 when exec fails.
pub(crate) unsafe fn exec_command(p: &Prepared<'_>) -> ! {
    // SAFETY: only async-signal-safe calls on data prepared by the parent.
    unsafe {
        reset_signals();
        libc::execve(p.exe.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
        report(p.err_fd, EXEC_FAILED, errno());
        libc::_exit(127)
    }
}

/// Entry point of the cloned child: PID 1 of the new PID namespace. Never returns.
pub(crate) unsafe fn container_main(p: &Prepared<'_>) -> ! {
    // SAFETY (whole function): async-signal-safe system calls only.
    unsafe {
        // Signals stay blocked in the init for good: it takes them with sigwaitinfo, which
        // also works for PID 1, whose default-action signals the kernel would drop.
        block_all();
        if let Some(stdio) = p.stdio {
            for (target, fd) in stdio.into_iter().enumerate() {
                if libc::dup2(fd, target as RawFd) < 0 {
                    report(p.err_fd, STDIO_FAILED, errno());
                    libc::_exit(126);
                }
            }
        }
        close_others(&mut [p.err_fd, p.exit_fd, p.netns_fd]);
        for (i, planned) in p.steps.iter().enumerate() {
            if let Err(err) = run_step(&planned.step, p.netns_fd)
                && !planned.optional
            {
                report(p.err_fd, i as u32, err);
                libc::_exit(126);
            }
        }
        libc::close(p.netns_fd);
        libc::prctl(libc::PR_SET_NAME, INIT_NAME.as_ptr());
        if let Some((start, end)) = p.cmdline
            && end - start >= INIT_NAME.len()
        {
            // Our copy of the argument strings: nothing reads them in this process any more.
            std::ptr::write_bytes(start as *mut u8, 0, end - start);
            std::ptr::copy_nonoverlapping(INIT_NAME.as_ptr(), start as *mut u8, INIT_NAME.len());
        }
        let command = raw_fork();
        if command == 0 {
            exec_command(p);
        }
        if command < 0 {
            report(p.err_fd, FORK_FAILED, errno());
            libc::_exit(126);
        }
        libc::close(p.err_fd);
        init(command, p.exit_fd)
    }
}

/// The init loop: reap every child (orphans are reparented here), forward every signal to
/// the command, and when the command ends record its exit code and exit with it (the kernel
/// then kills whatever is left in the namespace).
unsafe fn init(command: libc::pid_t, exit_fd: RawFd) -> ! {
    // SAFETY (whole function): async-signal-safe system calls on stack values.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        loop {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let sig = libc::sigwaitinfo(&all, &mut info);
            if sig < 0 {
                continue;
            }
            if sig != libc::SIGCHLD {
                libc::kill(command, sig);
                continue;
            }
            loop {
                let mut status = 0;
                let pid = libc::waitpid(-1, &mut status, libc::WNOHANG);
                if pid <= 0 {
                    break;
                }
                if pid != command {
                    continue;
                }
                let code = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else if libc::WIFSIGNALED(status) {
                    128 + libc::WTERMSIG(status)
                } else {
                    continue;
                };
                write_code(exit_fd, code);
                libc::_exit(code);
            }
        }
    }
}

/// Writes `code` and a newline in decimal, without allocating.
unsafe fn write_code(fd: RawFd, code: i32) {
    let mut buf = [0u8; 12];
    let mut n = buf.len();
    buf[n - 1] = b'\n';
    n -= 1;
    let mut v = code.unsigned_abs();
    loop {
        n -= 1;
        buf[n] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if code < 0 {
        n -= 1;
        buf[n] = b'-';
    }
    // SAFETY: buf[n..] is initialised.
    unsafe { libc::write(fd, buf[n..].as_ptr().cast(), buf.len() - n) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_written_in_decimal() {
        let mut fds = [0; 2];
        // SAFETY: pipe fills fds; both ends are closed below.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        for code in [0, 7, 143, 255, -1] {
            // SAFETY: fds[1] is the write end of a fresh pipe.
            unsafe { write_code(fds[1], code) };
        }
        // SAFETY: closing our own fds.
        unsafe { libc::close(fds[1]) };
        let text = std::fs::read_to_string(format!("/proc/self/fd/{}", fds[0])).unwrap();
        // SAFETY: as above.
        unsafe { libc::close(fds[0]) };
        assert_eq!(text, "0\n7\n143\n255\n-1\n");
    }
}
