//! The throwaway sandbox the whole benchmark runs in: new network and mount namespaces entered
//! at start (while single-threaded), `/` made private, tmpfs on /run (so /run/netns and every
//! peer's runtime files are private), on /etc/netns and on /var/lib (where host-local, netavark
//! and nsnet keep state by default), and a state directory under /run. Each measured scenario then
//! runs on a thread that moved into a further fresh network namespace, so one subject's
//! firewall rules, bridges and sysctls never meet another's. When the process exits the kernel
//! frees all of it: the machine's own namespace, interfaces and firewall are never touched.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, unshare};

/// Root of the benchmark's scratch files and state directories (on the sandbox's /run tmpfs).
pub const WORK_DIR: &str = "/run/nsnet-bench";

/// An entered sandbox (see `nsnet_sys::sandbox`); /var/lib is private too, since
/// host-local, netavark and nsnet keep state there by default.
pub struct Sandbox {
    _inner: nsnet_sys::sandbox::Sandbox,
}

impl Sandbox {
    /// Moves the calling process (which must still be single-threaded) into the sandbox.
    pub fn enter() -> Result<Sandbox> {
        let inner = nsnet_sys::sandbox::Sandbox::enter(&["/var/lib"])?;
        std::fs::create_dir_all(WORK_DIR).context("create the benchmark's work dir")?;
        Ok(Sandbox { _inner: inner })
    }

    /// A fresh directory under the work dir for one scenario.
    pub fn dir(name: &str) -> Result<PathBuf> {
        let d = Path::new(WORK_DIR).join(name);
        std::fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
        Ok(d)
    }
}

/// Runs `f` on a new thread inside a new, empty network namespace (loopback up). Processes the
/// scenario starts, and threads it spawns, inherit that namespace; it dies with the thread
/// unless something keeps it alive, and everything in it goes with it.
pub fn in_fresh_netns<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET).context("unshare a fresh network namespace")?;
        crate::run::ok("ip", &["link", "set", "lo", "up"], None)?;
        f()
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Runs `f` on a new thread inside the named namespace /run/netns/NAME.
pub fn in_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<T>> {
    let fd = nsnet_sys::netns::open(name).with_context(|| format!("open netns {name}"))?;
    Ok(std::thread::spawn(move || {
        nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns into a bench netns");
        f()
    }))
}
