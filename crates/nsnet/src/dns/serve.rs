//! `nsnet dns serve`: the responder process. It holds the lock file, writes the pidfile,
//! reads the store read-only, listens on every DNS network's gateway addresses, reloads on
//! SIGHUP (and when the store changed without a signal) keeping its sockets, and exits when
//! no network needs it or its state directory is gone.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, pthread_sigmask};
use nix::unistd::Pid;
use nsnet_store::{DB_FILE, Store};

use super::control::{inherited_lock, inherited_sockets, responder_pid, take_lock, write_pidfile};
use super::listen::Listeners;
use super::{PID_FILE, load};

/// How often the responder looks for changes nobody signalled and for its state directory.
const TICK: Duration = Duration::from_secs(1);

/// A reload used to read every name again (1.2 s of CPU over a fill of 1000 containers, one
/// reload per command, competing with the commands for the CPUs); it now reads what changed
/// ([`load::Served`]), but still scans the endpoint ids. After a reload
/// taking `t`, signals are gathered for `RELOAD_SPACING * t` and answered with one reload:
/// the responder then spends at most a tenth of a CPU on reloads at any rate of change, and
/// a new name waits at most about eleven reloads' time (a millisecond for a few dozen names,
/// about 25 ms with 1000; a change after a quiet spell is loaded at once, as before).
const RELOAD_SPACING: u32 = 10;

/// Runs the responder until nothing needs it.
pub fn serve(state_dir: &Path) -> Result<()> {
    // Blocked before the pidfile exists: a SIGHUP sent as soon as it does must wait for the
    // loop below, not kill us (its default action). Threads inherit the mask.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGHUP, Signal::SIGTERM, Signal::SIGINT] {
        signals.add(s);
    }
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&signals), None)?;
    let Some(_lock) = lock_or_defer(state_dir)? else {
        return ready();
    };
    write_pidfile(state_dir, std::process::id())?;
    let result = run(state_dir, &signals);
    remove_pidfile(state_dir);
    result
}

/// Takes the lock, or, when another responder holds it, tells that one to reload (it serves
/// our change) and returns None.
fn lock_or_defer(state_dir: &Path) -> Result<Option<nix::fcntl::Flock<std::fs::File>>> {
    // Started by a command, which took the lock for us.
    if let Some(lock) = inherited_lock(state_dir) {
        return Ok(Some(lock));
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Some(lock) = take_lock(state_dir)? {
            return Ok(Some(lock));
        }
        if let Some(pid) = responder_pid(state_dir)
            && kill(Pid::from_raw(pid), Signal::SIGHUP).is_ok()
        {
            return Ok(None);
        }
        // Held without a pidfile: a command probing, or a responder starting or exiting.
        anyhow::ensure!(
            Instant::now() < deadline,
            "another process holds the DNS responder lock in {}",
            state_dir.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn run(state_dir: &Path, signals: &SigSet) -> Result<()> {
    let mut store = Store::open_read_only(state_dir)
        .with_context(|| format!("open nsnet state in {}", state_dir.display()))?;
    let listeners = Arc::new(Listeners::new());
    // The sockets the command that started us bound: their queued queries are ours.
    listeners.adopt(inherited_sockets());
    let mut version = store.data_version()?;
    let mut served = load::Served::default();
    listeners.update(served.reload(&mut store)?);
    if listeners.is_empty() && may_exit(state_dir)? {
        return ready();
    }
    ready()?;
    let mut quiet_until = Instant::now();
    loop {
        let reload = match wait(signals, TICK) {
            Some(Signal::SIGHUP) => {
                if gather(signals, quiet_until) {
                    return Ok(());
                }
                true
            }
            Some(_) => return Ok(()),
            None => {
                if !state_dir.join(DB_FILE).exists() {
                    return Ok(());
                }
                // The lock is ours, so the pidfile must name us: a command that started us and
                // wrote it late (after a responder before us removed it on its way out) is
                // corrected here, so signals reach whoever serves.
                let me = std::process::id();
                if responder_pid(state_dir) != Some(me as i32)
                    && let Err(e) = write_pidfile(state_dir, me)
                {
                    eprintln!("nsnet dns: {e:#}");
                }
                let now = store.data_version()?;
                let changed = now != version;
                version = now;
                // Binds that failed (an address not there yet) are retried too.
                changed || listeners.has_failed()
            }
        };
        if reload {
            // A failed read (the store busy past its timeout) keeps the current table: the
            // next tick tries again, as the version it saw is not recorded.
            let started = Instant::now();
            let loaded = store
                .data_version()
                .and_then(|v| Ok((v, served.reload(&mut store)?)));
            let now = Instant::now();
            quiet_until = now + (now - started) * RELOAD_SPACING;
            match loaded {
                Ok((v, table)) => {
                    version = v;
                    listeners.update(table);
                }
                Err(e) => {
                    eprintln!("nsnet dns: reload: {e}");
                    version = -1;
                    continue;
                }
            }
            if listeners.is_empty() && may_exit(state_dir)? {
                return Ok(());
            }
        }
    }
}

/// Whether the responder may exit: decided inside a write transaction, which serialises it
/// with commands recording networks. When no network needs DNS the pidfile goes in it, so a
/// command committing after sees no responder and starts one; one committing before was seen.
fn may_exit(state_dir: &Path) -> Result<bool> {
    if !state_dir.join(DB_FILE).exists() {
        return Ok(true);
    }
    let mut store = Store::open(state_dir)?;
    store.write(|tx| {
        if tx.dns_needed()? {
            return Ok(false);
        }
        remove_pidfile(state_dir);
        Ok::<_, anyhow::Error>(true)
    })
}

/// Says on stdout that we serve, then closes it: for a `dns serve` run by hand (a command starting
/// us gives us /dev/null and does not wait: it bound our sockets itself).
fn ready() -> Result<()> {
    let mut out = std::io::stdout();
    let _ = out.write_all(b"ready\n");
    let _ = out.flush();
    let devnull = std::fs::File::open("/dev/null")?;
    nix::unistd::dup2_stdout(&devnull)?;
    Ok(())
}

/// Gathers reload signals until `until`; true when a signal to stop came meanwhile.
fn gather(signals: &SigSet, until: Instant) -> bool {
    loop {
        let Some(left) = until.checked_duration_since(Instant::now()) else {
            return false;
        };
        match wait(signals, left) {
            Some(Signal::SIGHUP) => continue,
            Some(_) => return true,
            None => return false,
        }
    }
}

/// Waits up to `timeout` for one of `signals`.
fn wait(signals: &SigSet, timeout: Duration) -> Option<Signal> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: the set is a valid sigset_t, info may be null, ts lives across the call.
    let n = unsafe { libc::sigtimedwait(signals.as_ref(), std::ptr::null_mut(), &ts) };
    if n < 0 {
        return None;
    }
    Signal::try_from(n).ok()
}

/// Removes the pidfile when it names this process.
fn remove_pidfile(state_dir: &Path) {
    if responder_pid(state_dir) == Some(std::process::id() as i32) {
        let _ = std::fs::remove_file(state_dir.join(PID_FILE));
    }
}
