//! Named network namespaces, laid out exactly like iproute2 (`ip netns`).
//!
//! A named namespace is an nsfs bind mount at `/run/netns/NAME`; per-namespace
//! config overrides live in `/etc/netns/NAME/`. Sticking to those fixed paths
//! is what makes `ip netns exec NAME` work on namespaces made here and lets us
//! see namespaces made by `ip netns add`.
//!
//! Namespace switches happen only on short-lived helper threads (or in a
//! process that is about to exec): `setns(CLONE_NEWNET)` is per thread, so the
//! calling thread — and any thread pool it belongs to — never changes netns.

use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::stat::{Mode, fstat};
use nix::sys::statfs::{NSFS_MAGIC, fstatfs};

/// Directory holding the nsfs bind mounts of named namespaces (iproute2's `NETNS_RUN_DIR`).
pub const RUN_NETNS_DIR: &str = "/run/netns";
/// Directory holding per-namespace `/etc` overrides (iproute2's `NETNS_ETC_DIR`).
pub const ETC_NETNS_DIR: &str = "/etc/netns";

/// Prefix of temporary files in `/etc/netns/NAME/`; `exec` must never bind these over `/etc`.
const TMP_PREFIX: &str = ".nsnet-tmp.";

/// Errors from namespace operations; every message names the namespace or path involved.
#[derive(Debug, thiserror::Error)]
pub enum NsError {
    /// The name cannot be used as a single path component.
    #[error("invalid netns name {0:?}")]
    InvalidName(String),
    /// `create` found `/run/netns/NAME` already present.
    #[error("netns {0} already exists")]
    Exists(String),
    /// `/run/netns/NAME` does not exist.
    #[error("netns {0} not found (no /run/netns/{0})")]
    NotFound(String),
    /// `/run/netns/NAME` exists but no namespace is mounted on it (stale file).
    #[error("netns {0} is not a network namespace (not mounted)")]
    NotMounted(String),
    /// Bad argument that is not a namespace name (file name, argv).
    #[error("invalid argument: {0}")]
    InvalidArg(String),
    /// A filesystem or mount operation on a path failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "bind-mount netns onto".
        op: String,
        /// The path operated on.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A path-less system call (setns, unshare, exec, thread spawn) failed.
    #[error("{op}: {source}")]
    Sys {
        /// What was being done, e.g. "setns into netns red".
        op: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn io_err(op: impl Into<String>, path: impl Into<PathBuf>, source: impl Into<io::Error>) -> NsError {
    NsError::Io {
        op: op.into(),
        path: path.into(),
        source: source.into(),
    }
}

fn sys_err(op: impl Into<String>, source: impl Into<io::Error>) -> NsError {
    NsError::Sys {
        op: op.into(),
        source: source.into(),
    }
}

/// Same rules as iproute2's `is_valid_netns_name`, so names round-trip between the tools.
fn validate_component(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 255
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0')
}

fn validate(name: &str) -> Result<(), NsError> {
    if validate_component(name) {
        Ok(())
    } else {
        Err(NsError::InvalidName(name.to_owned()))
    }
}

/// Path of the namespace's bind-mount file, `/run/netns/NAME`.
pub fn path(name: &str) -> PathBuf {
    Path::new(RUN_NETNS_DIR).join(name)
}

fn etc_dir(name: &str) -> PathBuf {
    Path::new(ETC_NETNS_DIR).join(name)
}

/// Serialises first-time setup of the /run/netns mount point so concurrent creates don't stack bind mounts.
static RUN_DIR_SETUP: Mutex<()> = Mutex::new(());

/// Make /run/netns a shared mount point, as `ip netns add` does, so namespace mounts propagate to
/// mount namespaces copied from ours (e.g. a later `ip netns exec`).
fn prepare_run_dir() -> Result<(), NsError> {
    let _guard = RUN_DIR_SETUP.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(RUN_NETNS_DIR);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| io_err("create directory", dir, e))?;
    let mut bound = false;
    loop {
        match mount(
            Some("none"),
            dir,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        ) {
            Ok(()) => return Ok(()),
            // EINVAL: not a mount point yet; bind it onto itself once and retry.
            Err(Errno::EINVAL) if !bound => {
                mount(
                    Some(dir),
                    dir,
                    Some("none"),
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(|e| io_err("bind-mount onto itself", dir, e))?;
                bound = true;
            }
            Err(e) => return Err(io_err("make shared mount", dir, e)),
        }
    }
}

/// Create a named network namespace like `ip netns add` (loopback is left down).
pub fn create(name: &str) -> Result<(), NsError> {
    validate(name)?;
    prepare_run_dir()?;
    let target = path(name);
    // Mode 0 like iproute2: the file is only a mount point and should not be usable before the mount.
    let file = nix::fcntl::open(
        &target,
        OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::EEXIST => NsError::Exists(name.to_owned()),
        e => io_err("create", &target, e),
    })?;
    drop(file);

    let result = std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("nsnet-netns-add".into())
            .spawn_scoped(s, || -> Result<(), NsError> {
                // unshare on a throwaway thread: the new netns dies with the thread unless mounted.
                unshare(CloneFlags::CLONE_NEWNET)
                    .map_err(|e| sys_err(format!("unshare(CLONE_NEWNET) for netns {name}"), e))?;
                // thread-self, not self: /proc/self/ns/net is the thread-group leader's netns.
                mount(
                    Some("/proc/thread-self/ns/net"),
                    &target,
                    Some("none"),
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|e| io_err("bind-mount /proc/thread-self/ns/net onto", &target, e))
            })
            .map_err(|e| sys_err(format!("spawn thread to create netns {name}"), e))?;
        match handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    if let Err(e) = result {
        let _ = fs::remove_file(&target);
        return Err(e);
    }
    tracing::debug!(netns = name, "created network namespace");
    Ok(())
}

/// Delete a named namespace like `ip netns del`; `Ok(false)` if it did not exist.
pub fn delete(name: &str) -> Result<bool, NsError> {
    validate(name)?;
    let target = path(name);
    // NOFOLLOW: a planted symlink must never make us detach some other mount.
    match umount2(&target, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(io_err("unmount", &target, e)),
    }
    let existed = match fs::remove_file(&target) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(io_err("remove", &target, e)),
    };
    let etc = etc_dir(name);
    match fs::remove_dir_all(&etc) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("remove directory", &etc, e)),
    }
    if existed {
        tracing::debug!(netns = name, "deleted network namespace");
    }
    Ok(existed)
}

/// Sorted names of the entries in /run/netns (empty if the directory is missing).
pub fn list() -> Result<Vec<String>, NsError> {
    let dir = Path::new(RUN_NETNS_DIR);
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read directory", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_err("read directory", dir, e))?;
        match entry.file_name().into_string() {
            Ok(name) => names.push(name),
            // A non-UTF-8 name could not be passed back to open/delete anyway.
            Err(raw) => tracing::debug!(name = ?raw, "skipping non-UTF-8 entry in /run/netns"),
        }
    }
    names.sort();
    Ok(names)
}

/// Whether `/run/netns/NAME` exists (mounted or not).
pub fn exists(name: &str) -> bool {
    validate_component(name) && fs::symlink_metadata(path(name)).is_ok()
}

/// Open a named namespace (O_RDONLY|O_CLOEXEC), checking that a network namespace is mounted there.
pub fn open(name: &str) -> Result<OwnedFd, NsError> {
    validate(name)?;
    let target = path(name);
    let fd = nix::fcntl::open(&target, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| match e {
            Errno::ENOENT => NsError::NotFound(name.to_owned()),
            e => io_err("open", &target, e),
        })?;
    // An unmounted leftover file (e.g. after a crash between create and mount) is a plain tmpfs file.
    let fs_type = fstatfs(&fd)
        .map_err(|e| io_err("statfs", &target, e))?
        .filesystem_type();
    if fs_type != NSFS_MAGIC {
        return Err(NsError::NotMounted(name.to_owned()));
    }
    // Someone could bind another namespace type here; ENOTTY means a pre-4.11 kernel, so trust nsfs.
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd.
    let ty = unsafe { libc::ioctl(fd.as_raw_fd(), libc::NS_GET_NSTYPE) };
    if ty >= 0 && ty != libc::CLONE_NEWNET {
        return Err(NsError::NotMounted(name.to_owned()));
    }
    Ok(fd)
}

/// Identity `(st_dev, st_ino)` of a namespace fd; equal pairs mean the same namespace.
pub fn id_of(fd: BorrowedFd<'_>) -> Result<(u64, u64), NsError> {
    let st = fstat(fd).map_err(|e| {
        io_err(
            "fstat",
            format!("/proc/self/fd/{}", fd.as_raw_fd()),
            e,
        )
    })?;
    #[allow(clippy::unnecessary_cast)] // dev_t/ino_t widths differ across targets
    Ok((st.st_dev as u64, st.st_ino as u64))
}

/// Run `f` on a scoped helper thread that first joins the netns `fd`; the caller never switches.
pub fn run_in<T: Send>(fd: BorrowedFd<'_>, f: impl FnOnce() -> T + Send) -> Result<T, NsError> {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("nsnet-netns-run".into())
            .spawn_scoped(s, move || -> Result<T, NsError> {
                setns(fd, CloneFlags::CLONE_NEWNET)
                    .map_err(|e| sys_err("setns(CLONE_NEWNET) on helper thread", e))?;
                Ok(f())
            })
            .map_err(|e| sys_err("spawn netns helper thread", e))?;
        match handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Do what `ip netns exec NAME argv...` does in this (single-threaded) process; returns only on error.
pub fn exec(name: &str, argv: &[String]) -> NsError {
    match exec_inner(name, argv) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn exec_inner(name: &str, argv: &[String]) -> Result<std::convert::Infallible, NsError> {
    // Validate everything before touching namespaces so argument errors leave the process unchanged.
    if argv.is_empty() {
        return Err(NsError::InvalidArg("exec needs a command".into()));
    }
    let cargs = argv
        .iter()
        .map(|a| {
            CString::new(a.as_bytes())
                .map_err(|_| NsError::InvalidArg(format!("argument {a:?} contains a NUL byte")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let fd = open(name)?;
    setns(&fd, CloneFlags::CLONE_NEWNET).map_err(|e| sys_err(format!("setns into netns {name}"), e))?;
    drop(fd);

    // Private mount namespace so the /sys and /etc mounts below never reach the host's.
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| sys_err("unshare(CLONE_NEWNS)", e))?;
    // Slave, not private: host mount events (e.g. new /run/netns entries) still propagate in.
    mount(
        Some(""),
        "/",
        Some("none"),
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| io_err("make slave mount", "/", e))?;

    // sysfs shows the devices of the netns that mounts it, so a fresh mount reflects the new netns.
    let mut sys_flags = MsFlags::empty();
    if umount2("/sys", MntFlags::MNT_DETACH).is_err() {
        // Couldn't unmount: we will shadow it instead, and a read-only /sys can't be shadowed read-write.
        if let Ok(st) = nix::sys::statvfs::statvfs("/sys") {
            if st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
                sys_flags = MsFlags::MS_RDONLY;
            }
        }
    }
    mount(Some(name), "/sys", Some("sysfs"), sys_flags, None::<&str>)
        .map_err(|e| io_err("mount sysfs on", "/sys", e))?;

    bind_etc(name);

    nix::unistd::execvp(&cargs[0], &cargs).map_err(|e| sys_err(format!("exec {:?}", argv[0]), e))
}

/// Bind each /etc/netns/NAME/<file> over /etc/<file>; like iproute2, failures only warn.
fn bind_etc(name: &str) {
    let dir = etc_dir(name);
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        if file.as_encoded_bytes().starts_with(TMP_PREFIX.as_bytes()) {
            continue;
        }
        let source = entry.path();
        let target = Path::new("/etc").join(&file);
        match mount(
            Some(&source),
            &target,
            Some("none"),
            MsFlags::MS_BIND,
            None::<&str>,
        ) {
            Ok(()) => {}
            Err(Errno::ENOENT) => tracing::debug!(
                source = %source.display(),
                target = %target.display(),
                "skipping /etc/netns bind: target missing"
            ),
            Err(e) => tracing::warn!(
                source = %source.display(),
                target = %target.display(),
                error = %e,
                "bind of /etc/netns file failed"
            ),
        }
    }
}

/// Atomically write /etc/netns/NAME/FILE (temp file + rename), creating the directory 0755.
pub fn write_etc_file(name: &str, file: &str, contents: &str) -> Result<(), NsError> {
    validate(name)?;
    if !validate_component(file) || file.starts_with(TMP_PREFIX) {
        return Err(NsError::InvalidArg(format!(
            "invalid /etc/netns file name {file:?}"
        )));
    }
    let dir = etc_dir(name);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&dir)
        .map_err(|e| io_err("create directory", &dir, e))?;
    let dest = dir.join(file);
    // pid + counter keeps concurrent writers (threads or processes) off each other's temp file.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!("{TMP_PREFIX}{file}.{}.{seq}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(contents.as_bytes())?;
        // Without fsync a crash after rename can leave an empty resolv.conf.
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(io_err("write", &tmp, e));
    }
    fs::rename(&tmp, &dest).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err("rename into place", &dest, e)
    })
}
