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

fn io_err(
    op: impl Into<String>,
    path: impl Into<PathBuf>,
    source: impl Into<io::Error>,
) -> NsError {
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
    std::thread::scope(|s| {
        // A throwaway thread: the new netns dies with the thread unless mounted.
        let handle = std::thread::Builder::new()
            .name("nsnet-netns-add".into())
            .spawn_scoped(s, || create_here(name))
            .map_err(|e| sys_err(format!("spawn thread to create netns {name}"), e))?;
        match handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// `create` on the calling thread, which is left inside the new namespace: for a helper
/// thread that goes on working there (opening a socket, making the next namespace), never
/// for a thread that must stay where it is.
pub fn create_here(name: &str) -> Result<(), NsError> {
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
    let result = unshare(CloneFlags::CLONE_NEWNET)
        .map_err(|e| sys_err(format!("unshare(CLONE_NEWNET) for netns {name}"), e))
        .and_then(|()| {
            // thread-self, not self: /proc/self/ns/net is the thread-group leader's netns.
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                Some("none"),
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| io_err("bind-mount /proc/thread-self/ns/net onto", &target, e))
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
    let fd = nix::fcntl::open(&target, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(
        |e| match e {
            Errno::ENOENT => NsError::NotFound(name.to_owned()),
            e => io_err("open", &target, e),
        },
    )?;
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
    let st =
        fstat(fd).map_err(|e| io_err("fstat", format!("/proc/self/fd/{}", fd.as_raw_fd()), e))?;
    #[allow(clippy::unnecessary_cast)] // dev_t/ino_t widths differ across targets
    Ok((st.st_dev as u64, st.st_ino as u64))
}

/// Runs `f` on the calling thread switched into the netns `fd`, and switches it back before
/// returning: for short work whose result stays bound to that namespace (a socket, an open
/// `/proc/sys/net` file), without the helper thread of [`run_in`], whose creation, stack and
/// malloc arena cost a command more than the work itself. The way back is this thread's own
/// namespace file, opened first; a thread that cannot return aborts the process rather than
/// carry on in the wrong namespace (a `setns` to a namespace we already held does not fail in
/// practice).
pub fn briefly_in<T>(fd: BorrowedFd<'_>, f: impl FnOnce() -> T) -> Result<T, NsError> {
    let home = fs::File::open("/proc/thread-self/ns/net")
        .map_err(|e| io_err("open", "/proc/thread-self/ns/net", e))?;
    setns(fd, CloneFlags::CLONE_NEWNET).map_err(|e| sys_err("setns(CLONE_NEWNET)", e))?;
    /// Returns the thread home even when `f` unwinds.
    struct Back(fs::File);
    impl Drop for Back {
        fn drop(&mut self) {
            if let Err(e) = setns(&self.0, CloneFlags::CLONE_NEWNET) {
                eprintln!("nsnet: cannot return to this thread's network namespace: {e}");
                std::process::abort();
            }
        }
    }
    let _back = Back(home);
    Ok(f())
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
    setns(&fd, CloneFlags::CLONE_NEWNET)
        .map_err(|e| sys_err(format!("setns into netns {name}"), e))?;
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
        if let Ok(st) = nix::sys::statvfs::statvfs("/sys")
            && st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY)
        {
            sys_flags = MsFlags::MS_RDONLY;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{in_sandbox, scratch_dir, thread_ns_id};
    use nix::sys::statfs::{TMPFS_MAGIC, statfs};
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};
    use std::os::fd::AsFd;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    fn ip_netns_list() -> Vec<String> {
        let out = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("run ip");
        assert!(out.status.success(), "ip netns list: {out:?}");
        // Lines look like "red" or "red (id: 0)".
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect()
    }

    fn ip(args: &[&str]) {
        let out = Command::new("ip").args(args).output().expect("run ip");
        assert!(out.status.success(), "ip {args:?}: {out:?}");
    }

    #[test]
    fn names_are_validated_like_iproute2() {
        for bad in ["", ".", "..", "a/b", "../x", "a\0b", &"x".repeat(255)] {
            assert!(!validate_component(bad), "{bad:?} accepted");
            assert!(matches!(validate(bad), Err(NsError::InvalidName(_))));
            assert!(!exists(bad));
        }
        for good in ["red", "ns-1", "a.b", "x_y", &"x".repeat(254)] {
            assert!(validate_component(good), "{good:?} rejected");
        }
        assert!(matches!(create("a/b"), Err(NsError::InvalidName(_))));
        assert!(matches!(delete(".."), Err(NsError::InvalidName(_))));
        assert!(matches!(open(""), Err(NsError::InvalidName(_))));
    }

    #[test]
    fn path_is_under_run_netns() {
        assert_eq!(path("red"), Path::new("/run/netns/red"));
    }

    #[test]
    fn error_messages_name_the_namespace() {
        assert_eq!(
            NsError::Exists("red".into()).to_string(),
            "netns red already exists"
        );
        assert_eq!(
            NsError::NotFound("red".into()).to_string(),
            "netns red not found (no /run/netns/red)"
        );
        assert_eq!(
            NsError::NotMounted("red".into()).to_string(),
            "netns red is not a network namespace (not mounted)"
        );
    }

    #[test]
    fn exec_rejects_bad_argv_before_switching() {
        assert!(matches!(exec("red", &[]), NsError::InvalidArg(_)));
        assert!(matches!(
            exec("red", &["a\0b".to_string()]),
            NsError::InvalidArg(_)
        ));
    }

    #[test]
    fn sandbox_is_inherited_by_spawned_threads() {
        crate::require_root!();
        in_sandbox(|| {
            let mine = (thread_ns_id("mnt"), thread_ns_id("net"));
            let theirs = std::thread::spawn(|| {
                let tmpfs = statfs(RUN_NETNS_DIR).unwrap().filesystem_type() == TMPFS_MAGIC;
                (thread_ns_id("mnt"), thread_ns_id("net"), tmpfs)
            })
            .join()
            .unwrap();
            assert_eq!((theirs.0, theirs.1), mine);
            assert!(theirs.2, "child thread does not see the sandbox tmpfs");
        });
    }

    #[test]
    fn create_is_visible_to_ip_and_listed_sorted() {
        crate::require_root!();
        in_sandbox(|| {
            assert_eq!(list().unwrap(), Vec::<String>::new());
            for n in ["red", "blue", "green"] {
                create(n).unwrap();
            }
            assert_eq!(list().unwrap(), ["blue", "green", "red"]);
            let mut seen = ip_netns_list();
            seen.sort();
            assert_eq!(seen, ["blue", "green", "red"]);
            assert!(exists("red"));
            assert!(!exists("yellow"));
            let meta = fs::metadata(path("red")).unwrap();
            assert_eq!(
                statfs(&path("red")).unwrap().filesystem_type(),
                NSFS_MAGIC,
                "not an nsfs mount: {meta:?}"
            );
            let a = open("red").unwrap();
            let b = open("blue").unwrap();
            assert_ne!(id_of(a.as_fd()).unwrap(), id_of(b.as_fd()).unwrap());
            assert_ne!(id_of(a.as_fd()).unwrap(), thread_ns_id("net"));
            // `ip netns exec` works on our namespace and runs inside it.
            let out = Command::new("ip")
                .args(["netns", "exec", "red", "readlink", "/proc/self/ns/net"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let link = String::from_utf8(out.stdout).unwrap();
            assert_eq!(
                link.trim(),
                format!("net:[{}]", id_of(a.as_fd()).unwrap().1)
            );
        });
    }

    #[test]
    fn create_twice_is_exists_and_keeps_the_original() {
        crate::require_root!();
        in_sandbox(|| {
            create("red").unwrap();
            let before = id_of(open("red").unwrap().as_fd()).unwrap();
            let err = create("red").unwrap_err();
            assert!(
                matches!(err, NsError::Exists(ref n) if n == "red"),
                "{err:?}"
            );
            assert_eq!(err.to_string(), "netns red already exists");
            assert_eq!(id_of(open("red").unwrap().as_fd()).unwrap(), before);
        });
    }

    #[test]
    fn delete_is_idempotent_and_removes_etc_dir() {
        crate::require_root!();
        in_sandbox(|| {
            create("red").unwrap();
            write_etc_file("red", "hosts", "127.0.0.1 localhost\n").unwrap();
            let fd = open("red").unwrap();
            assert!(delete("red").unwrap());
            assert!(!exists("red"));
            assert!(!etc_dir("red").exists());
            assert!(!ip_netns_list().contains(&"red".to_string()));
            assert!(!delete("red").unwrap());
            // The namespace lives on while someone holds an fd; the name is gone.
            assert!(run_in(fd.as_fd(), || ()).is_ok());
            // A name can be reused after deletion.
            create("red").unwrap();
            assert!(delete("red").unwrap());
        });
    }

    #[test]
    fn open_missing_and_stale_files() {
        crate::require_root!();
        in_sandbox(|| {
            let err = open("nope").unwrap_err();
            assert!(
                matches!(err, NsError::NotFound(ref n) if n == "nope"),
                "{err:?}"
            );
            assert_eq!(err.to_string(), "netns nope not found (no /run/netns/nope)");
            // A leftover file with nothing mounted on it (crash between create and mount).
            fs::write(path("stale"), "").unwrap();
            assert!(exists("stale"));
            let err = open("stale").unwrap_err();
            assert!(matches!(err, NsError::NotMounted(_)), "{err:?}");
            assert!(
                err.to_string()
                    .contains("is not a network namespace (not mounted)")
            );
            assert!(delete("stale").unwrap());
            // Another namespace type bind-mounted there is rejected too.
            fs::write(path("uts"), "").unwrap();
            mount(
                Some("/proc/thread-self/ns/uts"),
                &path("uts"),
                Some("none"),
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .unwrap();
            assert!(matches!(open("uts"), Err(NsError::NotMounted(_))));
            assert!(delete("uts").unwrap());
        });
    }

    #[test]
    fn namespaces_from_ip_netns_add_are_usable() {
        crate::require_root!();
        in_sandbox(|| {
            ip(&["netns", "add", "fromip"]);
            assert_eq!(list().unwrap(), ["fromip"]);
            let fd = open("fromip").unwrap();
            let inside = run_in(fd.as_fd(), || thread_ns_id("net")).unwrap();
            assert_eq!(inside, id_of(fd.as_fd()).unwrap());
            assert!(delete("fromip").unwrap());
            assert!(ip_netns_list().is_empty());
        });
    }

    #[test]
    fn run_in_switches_only_the_helper_thread() {
        crate::require_root!();
        in_sandbox(|| {
            create("red").unwrap();
            let fd = open("red").unwrap();
            let caller = thread_ns_id("net");
            let target = id_of(fd.as_fd()).unwrap();
            assert_ne!(caller, target);
            let mut borrowed = 0;
            let inside = run_in(fd.as_fd(), || {
                borrowed += 1; // scoped: non-'static borrows are fine
                thread_ns_id("net")
            })
            .unwrap();
            assert_eq!(borrowed, 1);
            assert_eq!(inside, target);
            assert_eq!(thread_ns_id("net"), caller);
            // A panic inside propagates to the caller instead of being swallowed.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _ = run_in(fd.as_fd(), || panic!("boom"));
            }));
            assert!(r.is_err());
            assert_eq!(thread_ns_id("net"), caller);
        });
    }

    #[test]
    fn briefly_in_switches_the_thread_and_back() {
        crate::require_root!();
        in_sandbox(|| {
            create("red").unwrap();
            let fd = open("red").unwrap();
            let caller = thread_ns_id("net");
            let target = id_of(fd.as_fd()).unwrap();
            assert_ne!(caller, target);
            let inside = briefly_in(fd.as_fd(), || thread_ns_id("net")).unwrap();
            assert_eq!(inside, target);
            assert_eq!(thread_ns_id("net"), caller);
            // Back home even when the work panics.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _ = briefly_in(fd.as_fd(), || panic!("boom"));
            }));
            assert!(r.is_err());
            assert_eq!(thread_ns_id("net"), caller);
            let f = fs::File::open("/proc/thread-self/ns/uts").unwrap();
            let err = briefly_in(f.as_fd(), || ()).unwrap_err();
            assert!(matches!(err, NsError::Sys { .. }), "{err:?}");
            assert_eq!(thread_ns_id("net"), caller);
        });
    }

    #[test]
    fn run_in_rejects_non_netns_fd() {
        crate::require_root!();
        in_sandbox(|| {
            let f = fs::File::open("/proc/thread-self/ns/uts").unwrap();
            let err = run_in(f.as_fd(), || ()).unwrap_err();
            assert!(matches!(err, NsError::Sys { .. }), "{err:?}");
        });
    }

    #[test]
    fn write_etc_file_is_atomic_and_validated() {
        crate::require_root!();
        in_sandbox(|| {
            write_etc_file("red", "resolv.conf", "nameserver 192.0.2.1\n").unwrap();
            write_etc_file("red", "resolv.conf", "nameserver 192.0.2.2\n").unwrap();
            let dir = etc_dir("red");
            assert_eq!(
                fs::read_to_string(dir.join("resolv.conf")).unwrap(),
                "nameserver 192.0.2.2\n"
            );
            assert_eq!(
                fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
                0o755
            );
            let names: Vec<_> = fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, ["resolv.conf"], "temp file left behind");
            for bad in ["", ".", "..", "a/b", "../passwd", ".nsnet-tmp.x"] {
                assert!(
                    matches!(write_etc_file("red", bad, "x"), Err(NsError::InvalidArg(_))),
                    "{bad:?} accepted"
                );
            }
            assert!(matches!(
                write_etc_file("../etc", "hosts", "x"),
                Err(NsError::InvalidName(_))
            ));
        });
    }

    #[test]
    fn exec_enters_netns_and_binds_etc_files() {
        crate::require_root!();
        in_sandbox(|| {
            let scratch = scratch_dir("exec");
            create("red").unwrap();
            let want_ino = id_of(open("red").unwrap().as_fd()).unwrap().1;
            let resolv = "nameserver 192.0.2.53\nsearch nsnet.test\n";
            write_etc_file("red", "resolv.conf", resolv).unwrap();
            // No /etc/nsnet-no-such-file on the host: must be skipped, not fatal.
            write_etc_file("red", "nsnet-no-such-file", "x").unwrap();
            let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap();
            let (f_net, f_resolv, f_sys, f_err) = (
                scratch.join("net"),
                scratch.join("resolv"),
                scratch.join("sys"),
                scratch.join("err"),
            );
            let script = format!(
                "readlink /proc/self/ns/net > {}; cat /etc/resolv.conf > {}; ls /sys/class/net > {}",
                f_net.display(),
                f_resolv.display(),
                f_sys.display()
            );
            let argv = ["sh".to_string(), "-c".to_string(), script];
            // SAFETY: the child only calls exec (setns/unshare/mount/execvp) and exits; it never
            // returns into the test harness.
            match unsafe { fork() }.unwrap() {
                ForkResult::Child => {
                    let err = exec("red", &argv);
                    let _ = fs::write(&f_err, err.to_string());
                    // SAFETY: _exit skips atexit handlers that belong to the parent's harness.
                    unsafe { libc::_exit(111) };
                }
                ForkResult::Parent { child } => {
                    let status = waitpid(child, None).unwrap();
                    let err = fs::read_to_string(&f_err).unwrap_or_default();
                    assert_eq!(status, WaitStatus::Exited(child, 0), "child failed: {err}");
                }
            }
            assert_eq!(
                fs::read_to_string(&f_net).unwrap().trim(),
                format!("net:[{want_ino}]")
            );
            assert_eq!(fs::read_to_string(&f_resolv).unwrap(), resolv);
            // Fresh netns: remounted /sys shows only its loopback.
            assert_eq!(fs::read_to_string(&f_sys).unwrap().trim(), "lo");
            // The child's mounts stayed in its own mount namespace.
            assert_eq!(fs::read_to_string("/etc/resolv.conf").unwrap(), host_resolv);
            let _ = fs::remove_dir_all(&scratch);
        });
    }

    #[test]
    fn exec_missing_namespace_fails_without_switching() {
        crate::require_root!();
        in_sandbox(|| {
            let net = thread_ns_id("net");
            let mnt = thread_ns_id("mnt");
            let err = exec("nope", &["true".to_string()]);
            assert!(matches!(err, NsError::NotFound(_)), "{err:?}");
            assert_eq!((thread_ns_id("net"), thread_ns_id("mnt")), (net, mnt));
        });
    }
}
