//! Starting the responder's process with `posix_spawn`.
//!
//! `std::process::Command` cannot block signals in the child, and its `pre_exec` hook (which
//! did) makes it fork the whole process and then wait for the child's exec on a pipe: the
//! page tables copied, the caller's next writes copy-on-write faults, and on a loaded machine
//! milliseconds waiting for the child to be scheduled at all. glibc's `posix_spawn` sets the
//! session, signal mask and descriptors itself, in a child that shares the caller's memory
//! (CLONE_VM | CLONE_VFORK) until its exec, which the caller still waits for: once this
//! returns, the pidfile can name a process that is visibly the responder (its command line),
//! as `responder_pid` checks.

use std::ffi::{CString, OsString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Signals blocked in the responder from before its exec: a command that finds its pidfile
/// may signal it at once, and the signal must wait for the responder's loop (which blocks the
/// same ones and takes them with sigtimedwait) instead of killing it (their default action).
const BLOCKED: [libc::c_int; 3] = [libc::SIGHUP, libc::SIGTERM, libc::SIGINT];

/// A process to start: its program, arguments and environment as C strings, the descriptor
/// its stderr is, and the descriptors it inherits (close-on-exec here, kept in the child).
pub(super) struct Launch {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    stderr: RawFd,
    inherit: Vec<RawFd>,
}

fn cstring(s: &[u8], what: &str) -> Result<CString> {
    CString::new(s).with_context(|| format!("{what} holds a NUL byte"))
}

/// A null-terminated array of pointers into `strings`, as execve takes them.
fn pointers(strings: &[CString]) -> Vec<*mut libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect()
}

/// An error of a posix_spawn* call (they return the error number instead of setting errno).
fn check(rc: libc::c_int, what: &str) -> Result<()> {
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc)).context(what.to_string());
    }
    Ok(())
}

/// A signal set of `signals`.
fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the zeroed set; sigaddset with valid signal numbers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// posix_spawn's attributes and file actions, destroyed on drop.
struct Spawn {
    attr: libc::posix_spawnattr_t,
    actions: libc::posix_spawn_file_actions_t,
}

impl Drop for Spawn {
    fn drop(&mut self) {
        // SAFETY: both were initialised in `Launch::start` before this value existed.
        unsafe {
            libc::posix_spawn_file_actions_destroy(&mut self.actions);
            libc::posix_spawnattr_destroy(&mut self.attr);
        }
    }
}

impl Launch {
    /// `argv[0]` is `args[0]`; `env` is the whole environment of the child.
    pub(super) fn new(
        program: &Path,
        args: &[OsString],
        env: &[(OsString, OsString)],
        stderr: RawFd,
        inherit: Vec<RawFd>,
    ) -> Result<Self> {
        let path = cstring(program.as_os_str().as_bytes(), "the program's path")?;
        let argv = args
            .iter()
            .map(|a| cstring(a.as_bytes(), "an argument"))
            .collect::<Result<_>>()?;
        let envp = env
            .iter()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                cstring(&kv, "an environment variable")
            })
            .collect::<Result<_>>()?;
        Ok(Launch {
            path,
            argv,
            envp,
            stderr,
            inherit,
        })
    }

    /// Starts the child in a session of its own, with stdin and stdout on /dev/null, `/` as
    /// its directory, [`BLOCKED`] blocked (and nothing else) and SIGPIPE back to its default
    /// (Rust's runtime ignores it, and an ignored signal stays ignored across exec); returns
    /// its pid once it has exec'd.
    pub(super) fn start(&self) -> Result<u32> {
        if self.inherit.iter().any(|&fd| fd <= 2) || self.stderr <= 2 {
            bail!("a descriptor for the child is a standard stream's number");
        }
        let argv = pointers(&self.argv);
        let envp = pointers(&self.envp);
        let blocked = sigset(&BLOCKED);
        let default = sigset(&[libc::SIGPIPE]);
        let flags = libc::POSIX_SPAWN_SETSIGMASK
            | libc::POSIX_SPAWN_SETSIGDEF
            | libc::c_int::from(libc::POSIX_SPAWN_SETSID);
        // SAFETY: the attribute and action objects are initialised before use and destroyed
        // by `Spawn`'s drop; every pointer handed to posix_spawn outlives the call.
        unsafe {
            let mut s = Spawn {
                attr: std::mem::zeroed(),
                actions: std::mem::zeroed(),
            };
            check(
                libc::posix_spawnattr_init(&mut s.attr),
                "posix_spawnattr_init",
            )?;
            check(
                libc::posix_spawn_file_actions_init(&mut s.actions),
                "posix_spawn_file_actions_init",
            )?;
            check(
                libc::posix_spawnattr_setsigmask(&mut s.attr, &blocked),
                "set the child's signal mask",
            )?;
            check(
                libc::posix_spawnattr_setsigdefault(&mut s.attr, &default),
                "set the child's default signals",
            )?;
            check(
                libc::posix_spawnattr_setflags(&mut s.attr, flags as libc::c_short),
                "set posix_spawn's flags",
            )?;
            let null = c"/dev/null".as_ptr();
            let a = &mut s.actions;
            check(
                libc::posix_spawn_file_actions_addopen(a, 0, null, libc::O_RDONLY, 0),
                "stdin on /dev/null",
            )?;
            check(
                libc::posix_spawn_file_actions_addopen(a, 1, null, libc::O_WRONLY, 0),
                "stdout on /dev/null",
            )?;
            check(
                libc::posix_spawn_file_actions_adddup2(a, self.stderr, 2),
                "stderr on the log",
            )?;
            check(
                libc::posix_spawn_file_actions_addchdir_np(a, c"/".as_ptr()),
                "chdir /",
            )?;
            // A dup2 onto itself clears the descriptor's close-on-exec flag (glibc 2.29+).
            for &fd in &self.inherit {
                check(
                    libc::posix_spawn_file_actions_adddup2(a, fd, fd),
                    &format!("keep descriptor {fd} for the child"),
                )?;
            }
            let mut pid: libc::pid_t = 0;
            check(
                libc::posix_spawn(
                    &mut pid,
                    self.path.as_ptr(),
                    &s.actions,
                    &s.attr,
                    argv.as_ptr(),
                    envp.as_ptr(),
                ),
                &format!("start {}", self.path.to_string_lossy()),
            )?;
            Ok(pid as u32)
        }
    }
}
