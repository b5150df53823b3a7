//! Containers' processes: `clone` into new PID, mount, UTS and IPC namespaces joined to a
//! named network namespace, a tiny init as PID 1 (reaps orphans, forwards signals, records
//! the command's exit code), and joining a running container (`exec`).
//!
//! The engine uses this through the `Processes` seam; `LiveKernel` implements it for real and
//! `FakeKernel` records (see `fake.rs`).

mod child;
pub mod fake;
mod resolve;
mod setup;
mod status;

pub use resolve::resolve_command;
pub use status::{ForwardSignals, running, start_time};

use std::ffi::CString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::live::LiveKernel;
use crate::netns;

/// Name of the file (in a container's state directory) holding its command's exit code.
pub const EXIT_FILE: &str = "exit";
/// Name of the file (in a container's state directory) holding a detached container's output.
pub const LOG_FILE: &str = "log";

/// A process-level failure; each names what was being done.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{0}")]
    Invalid(String),
    #[error("command {program:?} not found in {root} (searched PATH {path})")]
    CommandNotFound {
        program: String,
        root: String,
        path: String,
    },
    #[error("{op}: {source}")]
    Sys {
        op: String,
        #[source]
        source: io::Error,
    },
}

impl ProcessError {
    pub(crate) fn sys(op: impl Into<String>, source: io::Error) -> Self {
        ProcessError::Sys {
            op: op.into(),
            source,
        }
    }
}

/// A container's process, fully specified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Container name, which is also its network namespace's (`/run/netns/NAME`).
    pub name: String,
    pub hostname: String,
    /// The command as given (argv[0] is shown by `ps`).
    pub argv: Vec<String>,
    /// The file to execute, as the container sees it (see `Processes::resolve`).
    pub exe: String,
    pub env: Vec<String>,
    pub rootfs: Option<PathBuf>,
    /// Detached: stdin from /dev/null, stdout and stderr to the log, own session.
    pub detach: bool,
    /// The container's state directory (exit code, log).
    pub dir: PathBuf,
}

/// A started container: its init's pid (in nsnet's PID namespace) and start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spawned {
    pub pid: u32,
    pub start: u64,
}

/// What the engine needs to run containers.
pub trait Processes {
    /// Finds `program` in `path` inside `root` ("/" without a rootfs); the path it returns is
    /// what the container will execute.
    fn resolve(&mut self, root: &Path, program: &str, path: &str) -> Result<String, ProcessError>;
    /// Starts the container's init in new namespaces; returns once the command was exec'd
    /// (or with the step that failed, and nothing left running).
    fn spawn(&mut self, spec: &ContainerSpec) -> Result<Spawned, ProcessError>;
    /// Whether process `pid` started at `start` still runs (a zombie does not).
    fn running(&mut self, pid: u32, start: u64) -> bool;
    /// Sends `signal` to that process; Ok(false) when it is gone (never signals a reused pid).
    fn signal(&mut self, pid: u32, start: u64, signal: i32) -> Result<bool, ProcessError>;
    /// The exit code the init recorded in `dir`, if any.
    fn exit_code(&mut self, dir: &Path) -> Option<i32>;
    /// Removes a container's state directory (missing is fine).
    fn remove_dir(&mut self, dir: &Path) -> Result<(), ProcessError>;
    /// Writes `/etc/netns/NETNS/FILE`, in place when it exists: running containers see it
    /// through a bind mount, which pins the file, not the name.
    fn write_etc(&mut self, netns: &str, file: &str, contents: &str) -> Result<(), ProcessError>;
    /// The host's `/etc/resolv.conf` (empty when missing).
    fn host_resolv_conf(&mut self) -> String;
    /// Whether process `pid` still runs (for garbage collection of interrupted operations,
    /// whose owner is known by pid alone).
    fn process_alive(&mut self, pid: u32) -> bool;
}

/// Opens `path` with `flags` (always close-on-exec) and `mode`.
fn open(path: &Path, opts: &mut fs::OpenOptions) -> Result<OwnedFd, ProcessError> {
    opts.custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| ProcessError::sys(format!("open {}", path.display()), e))
}

fn cstrings(what: &str, items: &[String]) -> Result<Vec<CString>, ProcessError> {
    items
        .iter()
        .map(|s| {
            CString::new(s.as_bytes())
                .map_err(|_| ProcessError::Invalid(format!("{what} {s:?} contains a NUL byte")))
        })
        .collect()
}

fn pointers(items: &[CString]) -> Vec<*const libc::c_char> {
    items
        .iter()
        .map(|c| c.as_ptr())
        .chain([std::ptr::null()])
        .collect()
}

fn pipe() -> Result<(OwnedFd, OwnedFd), ProcessError> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills fds; both are owned below.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(ProcessError::sys("create pipe", io::Error::last_os_error()));
    }
    // SAFETY: fresh fds owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Reads the child's (step, errno) report; None when the pipe closed without one (exec'd).
fn read_report(rd: OwnedFd) -> Result<Option<(u32, i32)>, ProcessError> {
    let mut f = fs::File::from(rd);
    let mut rec = Vec::with_capacity(8);
    loop {
        match Read::by_ref(&mut f).take(8).read_to_end(&mut rec) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ProcessError::sys("read the container's setup report", e)),
        }
    }
    if rec.len() < 8 {
        return Ok(None);
    }
    let index = u32::from_ne_bytes(rec[..4].try_into().expect("4 bytes"));
    let errno = i32::from_ne_bytes(rec[4..8].try_into().expect("4 bytes"));
    Ok(Some((index, errno)))
}

fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
}

/// Describes a failed step of a container's setup.
fn failure(steps: &[setup::Planned], spec: &ContainerSpec, index: u32, errno: i32) -> ProcessError {
    let op = match index {
        child::EXEC_FAILED => format!(
            "exec {} ({}) in container {}",
            spec.argv[0], spec.exe, spec.name
        ),
        child::FORK_FAILED => format!("fork the command of container {}", spec.name),
        child::STDIO_FAILED => format!("redirect the output of container {}", spec.name),
        i => steps.get(i as usize).map_or_else(
            || format!("set up container {}", spec.name),
            |s| format!("set up container {}: {}", spec.name, s.what),
        ),
    };
    ProcessError::sys(op, io::Error::from_raw_os_error(errno))
}

/// Starts a container: see `Processes::spawn`.
pub fn spawn(spec: &ContainerSpec) -> Result<Spawned, ProcessError> {
    if spec.argv.is_empty() {
        return Err(ProcessError::Invalid("the command is empty".into()));
    }
    let etc = Path::new(netns::ETC_NETNS_DIR).join(&spec.name);
    let etc_files = [
        ("hosts", etc.join("hosts")),
        ("resolv.conf", etc.join("resolv.conf")),
    ];
    let steps = setup::plan(&setup::SetupSpec {
        netns: &spec.name,
        hostname: &spec.hostname,
        rootfs: spec.rootfs.as_deref(),
        etc_files: &etc_files,
        detach: spec.detach,
    })?;
    let argv = cstrings("argument", &spec.argv)?;
    let env = cstrings("environment variable", &spec.env)?;
    let exe = CString::new(spec.exe.as_bytes())
        .map_err(|_| ProcessError::Invalid(format!("command {:?} contains NUL", spec.exe)))?;
    let (argv_ptrs, envp_ptrs) = (pointers(&argv), pointers(&env));

    let netns_fd = netns::open(&spec.name)
        .map_err(|e| ProcessError::Invalid(format!("container {}: {e}", spec.name)))?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&spec.dir)
        .map_err(|e| ProcessError::sys(format!("create {}", spec.dir.display()), e))?;
    let exit_fd = open(
        &spec.dir.join(EXIT_FILE),
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600),
    )?;
    let stdio_files = if spec.detach {
        let null = open(
            Path::new("/dev/null"),
            fs::OpenOptions::new().read(true).write(true),
        )?;
        let log = open(
            &spec.dir.join(LOG_FILE),
            fs::OpenOptions::new().append(true).create(true).mode(0o600),
        )?;
        Some((null, log))
    } else {
        None
    };
    let (rd, wr) = pipe()?;
    let prepared = child::Prepared {
        steps: &steps,
        netns_fd: netns_fd.as_raw_fd(),
        err_fd: wr.as_raw_fd(),
        exit_fd: exit_fd.as_raw_fd(),
        stdio: stdio_files
            .as_ref()
            .map(|(null, log)| [null.as_raw_fd(), log.as_raw_fd(), log.as_raw_fd()]),
        exe: &exe,
        argv: &argv_ptrs,
        envp: &envp_ptrs,
        cmdline: status::arg_area(),
    };
    let flags = libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    // SAFETY: clone without CLONE_VM gives the child a copy of our memory, like fork; the
    // child only runs `container_main`, which never returns and makes only system calls.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0,
            0,
            0,
            0,
        )
    };
    if pid == 0 {
        // SAFETY: see above; everything `prepared` points to outlives the child's use of it.
        unsafe { child::container_main(&prepared) }
    }
    if pid < 0 {
        return Err(ProcessError::sys(
            format!("clone the init of container {}", spec.name),
            io::Error::last_os_error(),
        ));
    }
    let pid = pid as libc::pid_t;
    drop(wr);
    if let Some((index, errno)) = read_report(rd)? {
        reap(pid);
        return Err(failure(&steps, spec, index, errno));
    }
    let pid = pid.unsigned_abs();
    let start = start_time(pid).ok_or_else(|| {
        ProcessError::Invalid(format!(
            "container {}: its command exited before it could be recorded",
            spec.name
        ))
    })?;
    tracing::debug!(container = %spec.name, pid, "started container init");
    Ok(Spawned { pid, start })
}

/// Runs `argv` inside the running container whose init is `pid` (started at `start`): joins
/// its PID, IPC, UTS, network and mount namespaces; forwards signals; returns the exit code.
pub fn exec_in(pid: u32, start: u64, argv: &[String], env: &[String]) -> Result<i32, ProcessError> {
    if argv.is_empty() {
        return Err(ProcessError::Invalid("exec needs a command".into()));
    }
    if !running(pid, start) {
        return Err(ProcessError::Invalid("the container is not running".into()));
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let path = nsnet_core::container::path_of(env);
    let exe = resolve_command(&proc_dir.join("root"), &argv[0], path)?;
    let open_ns = |kind: &str| {
        open(
            &proc_dir.join("ns").join(kind),
            fs::OpenOptions::new().read(true),
        )
    };
    let pid_ns = open_ns("pid")?;
    // The mount namespace last: after it, paths are the container's.
    let others = [
        open_ns("ipc")?,
        open_ns("uts")?,
        open_ns("net")?,
        open_ns("mnt")?,
    ];
    let argv_c = cstrings("argument", argv)?;
    let env_c = cstrings("environment variable", env)?;
    let exe_c = CString::new(exe.as_bytes())
        .map_err(|_| ProcessError::Invalid(format!("command {exe:?} contains NUL")))?;
    let (argv_ptrs, envp_ptrs) = (pointers(&argv_c), pointers(&env_c));
    let other_fds: Vec<i32> = others.iter().map(AsRawFd::as_raw_fd).collect();
    let (rd, wr) = pipe()?;
    let wr_fd = wr.as_raw_fd();

    // A PID namespace applies to children only: join it here, then fork into it.
    // SAFETY: setns on a namespace fd we opened.
    if unsafe { libc::setns(pid_ns.as_raw_fd(), libc::CLONE_NEWPID) } != 0 {
        return Err(ProcessError::sys(
            "join the container's PID namespace",
            io::Error::last_os_error(),
        ));
    }
    let forward = ForwardSignals::block();
    // SAFETY: the child makes only system calls on data prepared above, then execs or exits.
    let child = unsafe { child::raw_fork() };
    if child == 0 {
        // SAFETY: async-signal-safe calls only.
        unsafe {
            for (i, fd) in other_fds.iter().enumerate() {
                if libc::setns(*fd, 0) != 0 {
                    let err = io::Error::last_os_error()
                        .raw_os_error()
                        .unwrap_or(libc::EIO);
                    let mut rec = [0u8; 8];
                    rec[..4].copy_from_slice(&(i as u32).to_ne_bytes());
                    rec[4..].copy_from_slice(&err.to_ne_bytes());
                    libc::write(wr_fd, rec.as_ptr().cast(), 8);
                    libc::_exit(126);
                }
            }
            child::reset_signals();
            libc::execve(exe_c.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr());
            let err = io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            let mut rec = [0u8; 8];
            rec[..4].copy_from_slice(&child::EXEC_FAILED.to_ne_bytes());
            rec[4..].copy_from_slice(&err.to_ne_bytes());
            libc::write(wr_fd, rec.as_ptr().cast(), 8);
            libc::_exit(127)
        }
    }
    if child < 0 {
        return Err(ProcessError::sys("fork", io::Error::last_os_error()));
    }
    drop(wr);
    if let Some((index, errno)) = read_report(rd)? {
        reap(child);
        let kinds = ["IPC", "UTS", "network", "mount"];
        let op = match kinds.get(index as usize) {
            Some(k) => format!("join the container's {k} namespace"),
            None => format!("exec {} ({exe}) in the container", argv[0]),
        };
        return Err(ProcessError::sys(op, io::Error::from_raw_os_error(errno)));
    }
    forward.wait(child.unsigned_abs())
}

/// Rewrites `/etc/netns/NETNS/FILE` in place, or creates it atomically when missing.
pub fn write_etc(netns_name: &str, file: &str, contents: &str) -> Result<(), ProcessError> {
    let path = Path::new(netns::ETC_NETNS_DIR).join(netns_name).join(file);
    let existing = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path);
    match existing {
        Ok(mut f) => {
            let mut rewrite = || -> io::Result<()> {
                // Write first, then cut: a reader never sees an empty file.
                f.write_all(contents.as_bytes())?;
                f.set_len(contents.len() as u64)?;
                f.sync_all()
            };
            rewrite().map_err(|e| ProcessError::sys(format!("rewrite {}", path.display()), e))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            netns::write_etc_file(netns_name, file, contents)
                .map_err(|e| ProcessError::Invalid(e.to_string()))
        }
        Err(e) => Err(ProcessError::sys(format!("open {}", path.display()), e)),
    }
}

impl Processes for LiveKernel {
    fn resolve(&mut self, root: &Path, program: &str, path: &str) -> Result<String, ProcessError> {
        resolve_command(root, program, path)
    }

    fn spawn(&mut self, spec: &ContainerSpec) -> Result<Spawned, ProcessError> {
        spawn(spec)
    }

    fn running(&mut self, pid: u32, start: u64) -> bool {
        running(pid, start)
    }

    fn signal(&mut self, pid: u32, start: u64, signal: i32) -> Result<bool, ProcessError> {
        status::signal(pid, start, signal)
    }

    fn exit_code(&mut self, dir: &Path) -> Option<i32> {
        fs::read_to_string(dir.join(EXIT_FILE))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn remove_dir(&mut self, dir: &Path) -> Result<(), ProcessError> {
        match fs::remove_dir_all(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(ProcessError::sys(format!("remove {}", dir.display()), e))
            }
            _ => Ok(()),
        }
    }

    fn write_etc(&mut self, netns: &str, file: &str, contents: &str) -> Result<(), ProcessError> {
        write_etc(netns, file, contents)
    }

    fn host_resolv_conf(&mut self) -> String {
        fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
    }

    fn process_alive(&mut self, pid: u32) -> bool {
        let Ok(pid) = i32::try_from(pid) else {
            return false;
        };
        !matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{in_sandbox, scratch_dir};

    fn spec(dir: &Path, argv: &[&str], exe: &str) -> ContainerSpec {
        ContainerSpec {
            name: "box".into(),
            hostname: "boxhost".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            exe: exe.into(),
            env: vec!["PATH=/usr/bin:/bin".into()],
            rootfs: None,
            detach: true,
            dir: dir.to_path_buf(),
        }
    }

    #[test]
    fn spawn_isolates_pid_and_uts_and_records_the_exit_code() {
        crate::require_root!();
        in_sandbox(|| {
            netns::create("box").unwrap();
            write_etc("box", "hosts", "127.0.0.1 localhost\n10.0.0.9 box\n").unwrap();
            write_etc("box", "resolv.conf", "nameserver 192.0.2.1\n").unwrap();
            let dir = scratch_dir("spawn");
            let script = "echo $$; hostname; cat /etc/hosts; pwd; exit 5";
            let s = spawn(&spec(&dir, &["sh", "-c", script], "/bin/sh")).unwrap();
            assert!(running(s.pid, s.start) || start_time(s.pid).is_some());
            reap(s.pid as libc::pid_t);
            assert_eq!(fs::read_to_string(dir.join(EXIT_FILE)).unwrap(), "5\n");
            assert_eq!(
                fs::read_to_string(dir.join(LOG_FILE)).unwrap(),
                "2\nboxhost\n127.0.0.1 localhost\n10.0.0.9 box\n/\n"
            );
            // An in-place rewrite keeps the inode a running container has bind-mounted.
            let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
            let hosts = Path::new(netns::ETC_NETNS_DIR).join("box/hosts");
            let before = ino(&hosts);
            write_etc("box", "hosts", "127.0.0.1 localhost\n").unwrap();
            assert_eq!(ino(&hosts), before);
            assert_eq!(fs::read_to_string(&hosts).unwrap(), "127.0.0.1 localhost\n");
            let _ = fs::remove_dir_all(&dir);
        });
    }

    #[test]
    fn spawn_failures_name_the_step() {
        crate::require_root!();
        in_sandbox(|| {
            netns::create("box").unwrap();
            write_etc("box", "hosts", "127.0.0.1 localhost\n").unwrap();
            let dir = scratch_dir("spawn-fail");
            let err = spawn(&spec(&dir, &["nope"], "/no/such/file")).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.starts_with("exec nope (/no/such/file) in container box: No such file"),
                "{msg}"
            );
            let mut bad_root = spec(&dir, &["sh"], "/bin/sh");
            bad_root.rootfs = Some(dir.join("missing-root"));
            let msg = spawn(&bad_root).unwrap_err().to_string();
            assert!(
                msg.contains("set up container box: bind-mount rootfs")
                    && msg.contains("No such file"),
                "{msg}"
            );
            let _ = fs::remove_dir_all(&dir);
        });
    }
}
