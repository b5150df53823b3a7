//! Starting and signalling the responder from a command (the only per-command cost is here:
//! a lock probe, a pidfile read and one kill(2) while a responder runs).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use nsnet_store::Store;

use super::{LOCK_FILE, LOG_FILE, PID_FILE};

/// How long a command waits for a new responder to report ready.
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
/// one when a network with DNS on exists and none runs.
pub fn sync(state_dir: &Path) -> Result<()> {
    if notify(state_dir)? {
        return Ok(());
    }
    // Read-only: no schema check or pragmas, the command before this one did that.
    let mut store = Store::open_read_only(state_dir)
        .with_context(|| format!("open nsnet state in {}", state_dir.display()))?;
    if store.read(|tx| tx.dns_needed())? {
        drop(store);
        start(state_dir)?;
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
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Starts `nsnet dns serve` in its own session and waits until it serves (or reports why
/// it cannot).
fn start(state_dir: &Path) -> Result<()> {
    let exe = std::env::current_exe().context("find the nsnet binary")?;
    let log_path = state_dir.join(LOG_FILE);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("open {}", log_path.display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--state-dir")
        .arg(state_dir)
        .args(["dns", "serve"])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    // The CNI face is this binary too: the responder must not take itself for a plugin.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CNI_") {
            cmd.env_remove(k);
        }
    }
    // SAFETY: setsid is async-signal-safe; the child leaves the caller's session so a
    // terminal hangup or the caller's process group signals do not reach it.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("start the DNS responder")?;
    let stdout = child.stdout.take().context("DNS responder stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(READY_TIMEOUT) {
        Ok(line) if line.trim() == "ready" => Ok(()),
        Ok(_) => {
            let _ = child.wait();
            bail!(
                "the DNS responder exited before serving (see {})",
                log_path.display()
            )
        }
        Err(_) => bail!(
            "the DNS responder did not report ready within {} s (see {})",
            READY_TIMEOUT.as_secs(),
            log_path.display()
        ),
    }
}

/// Holds the lock file exclusively for the life of the returned guard; Ok(None) when another
/// process holds it.
pub(super) fn take_lock(state_dir: &Path) -> Result<Option<Flock<File>>> {
    let path = state_dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
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
