//! Kernel parameters under /proc/sys.
//!
//! /proc/sys/net is resolved against the network namespace of the task that looks the path up,
//! per thread, so `write_in`/`read_in` simply do the plain file I/O on a `netns::run_in` helper thread.

use std::fs;
use std::io::{self, Write};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

use crate::netns::{self, NsError};

/// Root of the sysctl tree.
const PROC_SYS: &str = "/proc/sys";

/// Errors from sysctl access; every message names the key.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    /// Empty key, absolute path, or a `.`/`..`/empty component.
    #[error("invalid sysctl key {0:?}")]
    InvalidKey(String),
    /// No such file under /proc/sys (unknown key, or interface missing in this netns).
    #[error("sysctl {key} not found ({})", path.display())]
    NotFound {
        /// The key as given.
        key: String,
        /// The resolved /proc/sys path.
        path: PathBuf,
    },
    /// Reading the value failed.
    #[error("read sysctl {key} ({}): {source}", path.display())]
    Read {
        /// The key as given.
        key: String,
        /// The resolved /proc/sys path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Writing the value failed (EINVAL usually means the kernel rejected the value).
    #[error("write sysctl {key}={value:?} ({}): {source}", path.display())]
    Write {
        /// The key as given.
        key: String,
        /// The value that was being written.
        value: String,
        /// The resolved /proc/sys path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Entering the target network namespace failed.
    #[error("sysctl {key} in netns: {source}")]
    Netns {
        /// The key as given.
        key: String,
        /// The namespace error.
        #[source]
        source: NsError,
    },
}

/// Map a key to its /proc/sys path: slash form is taken as-is, dotted form only when it has no '/'.
pub fn key_path(key: &str) -> Result<PathBuf, SysctlError> {
    let invalid = || SysctlError::InvalidKey(key.to_owned());
    if key.is_empty() || key.starts_with('/') || key.contains('\0') {
        return Err(invalid());
    }
    // Interface names may contain dots (eth0.100), so once the caller uses slashes we must not touch dots.
    let rel = if key.contains('/') {
        key.to_owned()
    } else {
        key.replace('.', "/")
    };
    if rel
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(invalid());
    }
    Ok(Path::new(PROC_SYS).join(rel))
}

/// Read a sysctl value with the trailing newline removed.
pub fn read(key: &str) -> Result<String, SysctlError> {
    let path = key_path(key)?;
    read_path(key, path)
}

fn read_path(key: &str, path: PathBuf) -> Result<String, SysctlError> {
    match fs::read_to_string(&path) {
        Ok(s) => Ok(s.trim_end_matches('\n').to_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(SysctlError::NotFound {
            key: key.to_owned(),
            path,
        }),
        Err(source) => Err(SysctlError::Read {
            key: key.to_owned(),
            path,
            source,
        }),
    }
}

/// Multi-value sysctls (e.g. tcp_rmem) read back tab-separated, so compare on whitespace-split words.
fn same_value(current: &str, wanted: &str) -> bool {
    current.split_whitespace().eq(wanted.split_whitespace())
}

/// Write a sysctl value, skipping the write when it already reads back equal.
pub fn write(key: &str, value: &str) -> Result<(), SysctlError> {
    let path = key_path(key)?;
    // Write-only keys (e.g. route/flush) fail to read; that just means "write unconditionally".
    match read_path(key, path.clone()) {
        Ok(current) if same_value(&current, value) => return Ok(()),
        Ok(_) | Err(SysctlError::Read { .. }) => {}
        Err(e) => return Err(e),
    }
    let werr = |source: io::Error| SysctlError::Write {
        key: key.to_owned(),
        value: value.to_owned(),
        path: path.clone(),
        source,
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                SysctlError::NotFound {
                    key: key.to_owned(),
                    path: path.clone(),
                }
            } else {
                werr(e)
            }
        })?;
    // One write(2): proc handlers parse each write separately, so a split value would be misparsed.
    let n = f.write(value.as_bytes()).map_err(werr)?;
    if n != value.len() {
        return Err(werr(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write ({n} of {} bytes)", value.len()),
        )));
    }
    tracing::debug!(key, value, "sysctl written");
    Ok(())
}

/// `read` inside the network namespace `fd`.
pub fn read_in(fd: BorrowedFd<'_>, key: &str) -> Result<String, SysctlError> {
    netns::briefly_in(fd, || read(key)).map_err(|source| SysctlError::Netns {
        key: key.to_owned(),
        source,
    })?
}

/// `write` inside the network namespace `fd`.
pub fn write_in(fd: BorrowedFd<'_>, key: &str, value: &str) -> Result<(), SysctlError> {
    netns::briefly_in(fd, || write(key, value)).map_err(|source| SysctlError::Netns {
        key: key.to_owned(),
        source,
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_key_maps_to_slashes() {
        assert_eq!(
            key_path("net.ipv4.ip_forward").unwrap(),
            Path::new("/proc/sys/net/ipv4/ip_forward")
        );
    }

    #[test]
    fn slash_key_keeps_dots_in_interface_names() {
        assert_eq!(
            key_path("net/ipv4/conf/eth0.100/route_localnet").unwrap(),
            Path::new("/proc/sys/net/ipv4/conf/eth0.100/route_localnet")
        );
        assert_eq!(
            key_path("net/ipv4/conf/nsbr0/route_localnet").unwrap(),
            Path::new("/proc/sys/net/ipv4/conf/nsbr0/route_localnet")
        );
    }

    #[test]
    fn bad_keys_are_rejected() {
        for key in [
            "",
            "/proc/sys/net/ipv4/ip_forward",
            "net/../../etc/passwd",
            "net..ipv4",
            "net.ipv4.",
            "net/ipv4//ip_forward",
            "net/./ipv4",
            "net\0x",
        ] {
            assert!(
                matches!(key_path(key), Err(SysctlError::InvalidKey(_))),
                "{key:?} accepted"
            );
        }
    }

    #[test]
    fn errors_name_the_key() {
        let e = read("net.ipv4.nsnet_no_such_key").unwrap_err();
        assert!(matches!(e, SysctlError::NotFound { .. }));
        assert!(e.to_string().contains("net.ipv4.nsnet_no_such_key"), "{e}");
    }

    #[test]
    fn ip_forward_changes_only_inside_the_target_netns() {
        use std::os::fd::AsFd;
        const KEY: &str = "net.ipv4.ip_forward";
        crate::require_root!();
        // Only ever read on the host; every write below targets a namespace made in the sandbox.
        let host_before = read(KEY).unwrap();
        crate::testkit::in_sandbox(|| {
            let outer = read(KEY).unwrap();
            netns::create("a").unwrap();
            netns::create("b").unwrap();
            let a = netns::open("a").unwrap();
            let b = netns::open("b").unwrap();
            let a0 = read_in(a.as_fd(), KEY).unwrap();
            let b0 = read_in(b.as_fd(), KEY).unwrap();
            let flipped = if a0 == "1" { "0" } else { "1" };
            write_in(a.as_fd(), KEY, flipped).unwrap();
            assert_eq!(read_in(a.as_fd(), KEY).unwrap(), flipped);
            assert_eq!(read_in(b.as_fd(), KEY).unwrap(), b0);
            assert_eq!(read(KEY).unwrap(), outer);
            // Equal value: the write is skipped and still succeeds.
            write_in(a.as_fd(), KEY, flipped).unwrap();

            // Slash form addressing a per-interface key.
            const LOCALNET: &str = "net/ipv4/conf/lo/route_localnet";
            let b_localnet = read_in(b.as_fd(), LOCALNET).unwrap();
            write_in(a.as_fd(), LOCALNET, "1").unwrap();
            assert_eq!(read_in(a.as_fd(), LOCALNET).unwrap(), "1");
            assert_eq!(read_in(b.as_fd(), LOCALNET).unwrap(), b_localnet);

            let e = read_in(a.as_fd(), "net/ipv4/conf/nsnet-nope0/forwarding").unwrap_err();
            assert!(matches!(e, SysctlError::NotFound { .. }), "{e:?}");
            let e = write_in(a.as_fd(), KEY, "banana").unwrap_err();
            assert!(matches!(e, SysctlError::Write { .. }), "{e:?}");
            assert!(e.to_string().contains(KEY), "{e}");
        });
        assert_eq!(read(KEY).unwrap(), host_before);
    }

    #[test]
    fn multi_value_comparison_ignores_whitespace_kind() {
        assert!(same_value("4096\t131072\t6291456", "4096 131072 6291456"));
        assert!(same_value("1", "1\n"));
        assert!(!same_value("1", "0"));
    }
}
