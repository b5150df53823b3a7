//! Starting and signalling the responder from a command (the only per-command cost is here:
//! a lock probe, a pidfile read and one kill(2) while a responder runs).

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use nsnet_store::Store;

use super::{LOCK_FILE, LOG_FILE, PID_FILE};

/// How often a command looks again at a lock held without a pidfile.
const POLL: Duration = Duration::from_micros(250);

/// How often a command that started the responder looks for its name: short, the command
/// waits on it; long enough not to spin a CPU against the child it waits for.
const NAMED_POLL: Duration = Duration::from_micros(50);

/// How long a command waits for a starting or exiting responder.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// The pid in the pidfile, when that process is a responder (`nsnet ... dns serve`): a
/// pidfile left by a killed responder may name a pid reused since, which must never get
/// our signals.
pub fn responder_pid(state_dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(state_dir.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    args.windows(2)
        .any(|w| w == [b"dns".as_slice(), b"serve"])
        .then_some(pid)
}

/// Whether a responder holds the lock (then it is running or about to exit).
fn lock_held(state_dir: &Path) -> Result<bool> {
    let path = state_dir.join(LOCK_FILE);
    let file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
    };
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(_unlocked_on_drop) => Ok(false),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(true),
        Err((_, e)) => Err(e).with_context(|| format!("lock {}", path.display())),
    }
}

/// After a change to networks or names: signals the running responder to reload, or starts
/// one when a network with DNS on exists and none runs. `store` is the command's own, still
/// open, when it has one: opened again while no other connection holds the store's shared
/// memory (no responder runs), it would rebuild its WAL index from the whole log.
pub fn sync(state_dir: &Path, store: Option<&mut Store>) -> Result<()> {
    if notify(state_dir)? {
        return Ok(());
    }
    let mut opened;
    let store = match store {
        Some(store) => store,
        None => {
            // Read-only: no schema check or pragmas, the command before this one did that.
            opened = Store::open_read_only(state_dir)
                .with_context(|| format!("open nsnet state in {}", state_dir.display()))?;
            &mut opened
        }
    };
    if store.read(|tx| tx.dns_needed())? {
        start(state_dir, store)?;
    }
    Ok(())
}

/// After a removal: signals the running responder to reload; Ok(false) when none runs
/// (nothing to tell: a removal never makes one needed).
pub fn notify(state_dir: &Path) -> Result<bool> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if !lock_held(state_dir)? {
            return Ok(false);
        }
        // Held with a pidfile: running. Held without one: starting (its pidfile comes next,
        // and it reads the store after) or exiting (then a new one is needed): wait.
        if let Some(pid) = responder_pid(state_dir) {
            return match kill(Pid::from_raw(pid), Signal::SIGHUP) {
                Ok(()) => Ok(true),
                Err(e) => Err(e).context(format!("signal the DNS responder (pid {pid})")),
            };
        }
        if Instant::now() > deadline {
            bail!(
                "the DNS responder of {} holds its lock without a pidfile",
                state_dir.display()
            );
        }
        // Short: a responder exiting (the last DNS network went just before this command
        // added one) lets go of the lock within a millisecond or two, and this command waits
        // for exactly that.
        std::thread::sleep(POLL);
    }
}

/// Starts `nsnet dns serve` in its own session, socket-activation style: this command takes
/// the responder's lock and binds the gateways' sockets itself, the responder inherits both
/// (queries queue in the bound sockets until it reads them), and the pidfile names it before
/// this command returns. So the command does not wait for the responder to load the store
/// (2-5 ms of a cold `network create`): once it returns, the names are served, as before, and a
/// command right after it finds the responder running (lock held, pidfile written) and signals
/// it. What the responder cannot do at startup it says in its log, and the next command, `gc`
/// or `repair` starts a new one, as after any death.
fn start(state_dir: &Path, store: &mut Store) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let lock = loop {
        if let Some(lock) = lock_for_child(state_dir)? {
            break lock;
        }
        // Someone took it since our look: a responder starting, which reads the store after
        // taking it, or exiting (notify waits for that, then we try again).
        if notify(state_dir)? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the DNS responder lock of {} is held by a process that is no responder",
                state_dir.display()
            );
        }
    };
    let lock = above_stdio(lock.into()).map(File::from)?;
    let table = super::load::table(store)
        .with_context(|| format!("read the DNS names in {}", state_dir.display()))?;
    // Failures are left to the responder, which binds what is missing and says why in its log.
    let sockets = super::listen::bind_all(&table.listen_addrs())
        .into_iter()
        .map(above_stdio)
        .collect::<Result<Vec<_>>>()?;
    // The responder runs from `/`: a relative state directory would name another one there.
    let state_dir_arg = std::path::absolute(state_dir)
        .with_context(|| format!("resolve {}", state_dir.display()))?;
    let exe = std::env::current_exe().context("find the nsnet binary")?;
    let log_path = state_dir.join(LOG_FILE);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("open {}", log_path.display()))?;
    let log = above_stdio(log.into()).map(File::from)?;
    let mut env: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os()
        // The CNI face is this binary too: the responder must not take itself for a plugin.
        .filter(|(k, _)| !k.to_string_lossy().starts_with("CNI_"))
        .filter(|(k, _)| k != LOCK_FD_ENV && k != SOCKET_FDS_ENV)
        .collect();
    env.push((LOCK_FD_ENV.into(), lock.as_raw_fd().to_string().into()));
    env.push((
        SOCKET_FDS_ENV.into(),
        sockets
            .iter()
            .map(|s| s.as_raw_fd().to_string())
            .collect::<Vec<_>>()
            .join(",")
            .into(),
    ));
    let args: Vec<std::ffi::OsString> = vec![
        exe.clone().into(),
        "--state-dir".into(),
        state_dir_arg.into(),
        "dns".into(),
        "serve".into(),
    ];
    let inherit: Vec<i32> = std::iter::once(lock.as_raw_fd())
        .chain(sockets.iter().map(|s| s.as_raw_fd()))
        .collect();
    let pid = super::spawn::Launch::new(&exe, &args, &env, log.as_raw_fd(), inherit)
        .and_then(|launch| launch.start())
        .context("start the DNS responder")?;
    write_pidfile(state_dir, pid)?;
    until_named(state_dir, pid);
    // Our descriptors close here; the child's copies keep the lock (an flock belongs to the
    // open file, which the child shares) and the sockets.
    drop(lock);
    drop(sockets);
    Ok(())
}

/// Until the pidfile names the responder as [`responder_pid`] sees it: the exec that the
/// spawn waited for has replaced the child's memory, but its command line is in place only
/// once the kernel has finished loading the program, which a loaded machine may delay. A child
/// that died meanwhile ends the wait: the next command starts another.
fn until_named(state_dir: &Path, pid: u32) {
    let deadline = Instant::now() + READY_TIMEOUT;
    while responder_pid(state_dir) != Some(pid as i32) && Instant::now() < deadline {
        let mut status = 0;
        // SAFETY: waitpid on our own child, without blocking.
        if unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) } != 0 {
            return;
        }
        std::thread::sleep(NAMED_POLL);
    }
}

/// `fd` renumbered above stdin, stdout and stderr when it is one of them (a caller may start
/// nsnet with those closed): the child's standard streams are set up before it keeps the
/// inherited descriptors, and would replace one numbered there.
fn above_stdio(fd: OwnedFd) -> Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own returns a new one we then own.
    let dup = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return Err(std::io::Error::last_os_error()).context("renumber a DNS responder descriptor");
    }
    // SAFETY: `dup` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

/// Environment variable naming the lock file descriptor a responder inherits, locked.
const LOCK_FD_ENV: &str = "NSNET_DNS_LOCK_FD";
/// Environment variable naming the bound sockets a responder inherits (comma-separated).
const SOCKET_FDS_ENV: &str = "NSNET_DNS_SOCKET_FDS";

/// The lock file, locked exclusively, to hand to a child: a plain file whose drop closes it
/// without unlocking (the child's copy holds the lock); Ok(None) when another process holds it.
fn lock_for_child(state_dir: &Path) -> Result<Option<File>> {
    let (path, file) = open_lock_file(state_dir)?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(Some(file));
    }
    match std::io::Error::last_os_error() {
        e if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(None),
        e => Err(e).with_context(|| format!("lock {}", path.display())),
    }
}

/// Writes `pid` to the pidfile, atomically (a reader sees the old content or the new). The
/// temporary file is named after the writer: a responder and the command that started it may
/// write the same pid at the same time.
pub(super) fn write_pidfile(state_dir: &Path, pid: u32) -> Result<()> {
    let path = state_dir.join(PID_FILE);
    let tmp = state_dir.join(format!("{PID_FILE}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, format!("{pid}\n"))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("write {}", path.display()))
}

/// In a responder started by [`start`]: the lock its starter took for it, when it is this
/// state directory's lock file (compared by inode, so a stray variable is ignored).
pub(super) fn inherited_lock(state_dir: &Path) -> Option<Flock<File>> {
    let fd: i32 = std::env::var(LOCK_FD_ENV).ok()?.parse().ok()?;
    let meta = std::fs::metadata(state_dir.join(LOCK_FILE)).ok()?;
    let st = fstat(fd)?;
    if (st.st_dev, st.st_ino) != (meta.dev(), meta.ino()) {
        return None;
    }
    // SAFETY: the descriptor was handed to us for this and nothing else owns it.
    let file = unsafe { File::from_raw_fd(fd) };
    // Locking again through the same open file succeeds: the lock is already ours.
    Flock::lock(file, FlockArg::LockExclusiveNonblock).ok()
}

/// fstat of a descriptor number that may not be open (then None).
fn fstat(fd: i32) -> Option<libc::stat> {
    // SAFETY: fstat only reads the descriptor table; a closed number is EBADF.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some(st)
    }
}

/// In a responder started by [`start`]: the sockets its starter bound (those that are sockets
/// at all; anything else named is left alone).
pub(super) fn inherited_sockets() -> Vec<OwnedFd> {
    let Ok(list) = std::env::var(SOCKET_FDS_ENV) else {
        return Vec::new();
    };
    list.split(',')
        .filter_map(|f| f.parse::<i32>().ok())
        .filter(|&fd| fstat(fd).is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFSOCK))
        // SAFETY: the descriptors were handed to us for this and nothing else owns them.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect()
}

/// The responder's lock file (made if missing), and its path for errors.
fn open_lock_file(state_dir: &Path) -> Result<(std::path::PathBuf, File)> {
    let path = state_dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    Ok((path, file))
}

/// Holds the lock file exclusively for the life of the returned guard; Ok(None) when another
/// process holds it.
pub(super) fn take_lock(state_dir: &Path) -> Result<Option<Flock<File>>> {
    let (path, file) = open_lock_file(state_dir)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(e).with_context(|| format!("lock {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pidfile_naming_another_program_names_no_responder() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(responder_pid(dir.path()), None);
        // This test process is alive but no responder: never to be signalled.
        std::fs::write(
            dir.path().join(PID_FILE),
            format!("{}\n", std::process::id()),
        )
        .unwrap();
        assert_eq!(responder_pid(dir.path()), None);
        assert!(
            !lock_held(dir.path()).unwrap(),
            "no lock file: nothing runs"
        );
        let held = take_lock(dir.path()).unwrap().unwrap();
        assert!(lock_held(dir.path()).unwrap());
        assert!(take_lock(dir.path()).unwrap().is_none());
        drop(held);
        assert!(!lock_held(dir.path()).unwrap());
        // Nothing runs: notify has nobody to tell, and signals nobody.
        assert!(!notify(dir.path()).unwrap());
    }
}
