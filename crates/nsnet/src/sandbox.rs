//! The sandbox `nsnet demo` runs in (see `nsnet_sys::sandbox`), with its state directory.

use std::path::PathBuf;

use anyhow::Result;

/// Where the sandbox keeps nsnet's state (on its private /run).
pub const STATE_DIR: &str = "/run/nsnet-sandbox/state";

/// An entered sandbox.
pub struct Sandbox {
    _inner: nsnet_sys::sandbox::Sandbox,
}

impl Sandbox {
    /// Moves the calling process (which must still be single-threaded) into the sandbox.
    pub fn enter() -> Result<Sandbox> {
        let inner = nsnet_sys::sandbox::Sandbox::enter(&[])?;
        std::fs::create_dir_all(STATE_DIR)?;
        Ok(Sandbox { _inner: inner })
    }

    /// The state directory inside the sandbox.
    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(STATE_DIR)
    }
}
