//! A throwaway sandbox for whole programs (`nsnet demo`, the benchmark): the calling process
//! moves into new network and mount namespaces, makes `/` private and mounts tmpfs over the
//! directories it must not share with the machine (always /run, so /run/netns is private, and
//! /etc/netns). When the process exits the kernel frees all of it: the machine's namespaces,
//! interfaces, firewall and files are left as they were.

use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

/// Why the sandbox could not be entered.
#[derive(Debug, thiserror::Error)]
#[error("sandbox: {step}: {cause}")]
pub struct SandboxError {
    step: String,
    cause: String,
}

fn fail(step: impl Into<String>, cause: impl ToString) -> SandboxError {
    SandboxError {
        step: step.into(),
        cause: cause.to_string(),
    }
}

/// An entered sandbox; dropping it removes an /etc/netns it had to create.
pub struct Sandbox {
    made_etc_netns: bool,
}

fn tmpfs(target: &str) -> Result<(), SandboxError> {
    mount(
        Some("nsnet-sandbox"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )
    .map_err(|e| fail(format!("mount tmpfs on {target}"), e))
}

impl Sandbox {
    /// Moves the calling thread into the sandbox, with tmpfs on /run, /etc/netns and each
    /// existing directory of `also_private`; threads and processes it starts later inherit it.
    /// Called while the process is single-threaded, that is the whole process (`nsnet demo`,
    /// the benchmark); on a thread of its own, just that thread (the tests' `testkit`).
    pub fn enter(also_private: &[&str]) -> Result<Sandbox, SandboxError> {
        if !nix::unistd::geteuid().is_root() {
            return Err(fail(
                "check privileges",
                "network and mount namespaces need root: run as root",
            ));
        }
        unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS)
            .map_err(|e| fail("unshare network and mount namespaces", e))?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| fail("make / private", e))?;
        tmpfs("/run")?;
        for dir in also_private {
            if Path::new(dir).is_dir() {
                tmpfs(dir)?;
            }
        }
        // iproute2 creates /etc/netns too; an empty directory made here is removed on drop.
        let made_etc_netns = !Path::new("/etc/netns").exists();
        if made_etc_netns {
            std::fs::create_dir("/etc/netns").map_err(|e| fail("create /etc/netns", e))?;
        }
        tmpfs("/etc/netns")?;
        std::fs::create_dir_all("/run/netns").map_err(|e| fail("create /run/netns", e))?;
        Ok(Sandbox { made_etc_netns })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.made_etc_netns {
            let _ = umount2("/etc/netns", MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir("/etc/netns");
        }
    }
}
