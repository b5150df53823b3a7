//! Is a container's init still the process we started, signalling it safely, and waiting for
//! a child while passing signals on.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::ProcessError;

/// State letter and start time (clock ticks after boot) from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Fields after the name start at 3 (state); starttime is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Start and end address of this process's argument strings (fields 48 and 49 of
/// `/proc/self/stat`).
pub(crate) fn arg_area() -> Option<(usize, usize)> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(45);
    let start = fields.next()?.parse().ok()?;
    let end = fields.next()?.parse().ok()?;
    (start < end).then_some((start, end))
}

/// Start time of process `pid` (clock ticks after boot), None when it does not exist.
pub fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// Whether process `pid` that started at `start` is alive (not a zombie, not a reused pid).
pub fn running(pid: u32, start: u64) -> bool {
    matches!(stat(pid), Some((state, s)) if s == start && !matches!(state, 'Z' | 'X'))
}

/// Signals `pid` only if it is still the process that started at `start`: the pidfd pins the
/// process, so checking the start time after opening it rules out pid reuse.
pub(crate) fn signal(pid: u32, start: u64, sig: i32) -> Result<bool, ProcessError> {
    // SAFETY: pidfd_open takes a pid and flags.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ESRCH) {
            return Ok(false);
        }
        return Err(ProcessError::sys(format!("open process {pid}"), err));
    }
    // SAFETY: a fresh fd that we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    if !running(pid, start) {
        return Ok(false);
    }
    // SAFETY: pidfd_send_signal with a null siginfo sends like kill(2).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ESRCH) {
            return Ok(false);
        }
        return Err(ProcessError::sys(
            format!("send signal {sig} to process {pid}"),
            err,
        ));
    }
    Ok(true)
}

/// Signals a foreground `run` or `exec` passes on to its child.
const FORWARDED: &[i32] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// While alive, the calling thread holds the forwarded signals (and SIGCHLD) blocked, so
/// none is lost or kills nsnet between starting a child and waiting for it.
pub struct ForwardSignals {
    set: libc::sigset_t,
    old: libc::sigset_t,
}

impl ForwardSignals {
    /// Blocks the forwarded signals and SIGCHLD on the calling thread.
    pub fn block() -> Self {
        // SAFETY: signal-set manipulation on owned values.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in FORWARDED.iter().chain([&libc::SIGCHLD]) {
                libc::sigaddset(&mut set, *sig);
            }
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            ForwardSignals { set, old }
        }
    }

    /// Waits for child `pid` to end, passing signals on to it, and returns its exit code
    /// (128 + signal when a signal ended it). A signal the terminal sent (`SI_KERNEL`) is not
    /// passed on: the child is in the same process group and got it already.
    pub fn wait(&self, pid: u32) -> Result<i32, ProcessError> {
        let pid = pid as libc::pid_t;
        let timeout = libc::timespec {
            tv_sec: 0,
            tv_nsec: 200_000_000,
        };
        loop {
            let mut status = 0;
            // SAFETY: waiting for our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(ProcessError::sys(format!("wait for process {pid}"), err));
            }
            if r == pid {
                if libc::WIFEXITED(status) {
                    return Ok(libc::WEXITSTATUS(status));
                }
                if libc::WIFSIGNALED(status) {
                    return Ok(128 + libc::WTERMSIG(status));
                }
            }
            // SAFETY: info is written by sigtimedwait.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: valid set, info and timeout.
            let sig = unsafe { libc::sigtimedwait(&self.set, &mut info, &timeout) };
            if sig > 0 && sig != libc::SIGCHLD && info.si_code != libc::SI_KERNEL {
                // SAFETY: kill on our own child.
                unsafe { libc::kill(pid, sig) };
            }
        }
    }
}

impl Drop for ForwardSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `block`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_running_and_stat_parses() {
        let me = std::process::id();
        let start = start_time(me).unwrap();
        assert!(running(me, start));
        assert!(!running(me, start + 1));
        assert!(!running(u32::MAX - 1, start));
        // A wrong start time never gets a signal.
        assert!(!signal(me, start + 1, 0).unwrap());
        assert!(signal(me, start, 0).unwrap());
        let (a, b) = arg_area().unwrap();
        let len = std::fs::read(format!("/proc/{me}/cmdline")).unwrap().len();
        assert_eq!(b - a, len);
    }

    #[test]
    fn wait_returns_exit_code_and_signal_code() {
        let fwd = ForwardSignals::block();
        for (script, want) in [("exit 3", 3), ("kill -9 $$", 137)] {
            #[allow(clippy::zombie_processes)] // reaped by `wait`
            let child = std::process::Command::new("sh")
                .args(["-c", script])
                .spawn()
                .unwrap();
            assert_eq!(fwd.wait(child.id()).unwrap(), want, "{script}");
        }
    }
}
