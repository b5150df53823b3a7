//! A throwaway sandbox for `nsnet demo`: this process moves into new network and mount
//! namespaces, with private tmpfs on /run (so /run/netns is private) and /etc/netns, and a
//! state directory inside it. When the process exits, the kernel frees all of it: the
//! machine is left as it was.

use std::path::PathBuf;

use anyhow::{Context, Result};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

/// Where the sandbox keeps nsnet's state.
pub const STATE_DIR: &str = "/run/nsnet-sandbox/state";

/// An entered sandbox.
pub struct Sandbox {
    made_etc_netns: bool,
}

fn tmpfs(target: &str) -> Result<()> {
    mount(
        Some("nsnet-sandbox"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )
    .with_context(|| format!("mount tmpfs on {target}"))
}

impl Sandbox {
    /// Moves the calling process (which must still be single-threaded) into the sandbox.
    pub fn enter() -> Result<Sandbox> {
        if !nix::unistd::geteuid().is_root() {
            anyhow::bail!("the sandbox needs root (network and mount namespaces): run as root");
        }
        unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS)
            .context("unshare network and mount namespaces")?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .context("make / private in the sandbox")?;
        tmpfs("/run")?;
        let made_etc_netns = !std::path::Path::new("/etc/netns").exists();
        if made_etc_netns {
            std::fs::create_dir("/etc/netns").context("create /etc/netns")?;
        }
        tmpfs("/etc/netns")?;
        std::fs::create_dir_all("/run/netns").context("create /run/netns")?;
        std::fs::create_dir_all(STATE_DIR).context("create sandbox state dir")?;
        Ok(Sandbox { made_etc_netns })
    }

    /// The state directory inside the sandbox.
    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(STATE_DIR)
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
