//! Support for tests that need root, shared by every crate's tests (feature `testkit`).
//!
//! Two rules hold for every such test:
//! - It either runs, or says loudly that it did not: [`require_root!`] skips with a message on
//!   a developer's machine and FAILS when the environment variable `CI` is set, so a CI run
//!   without privileges can never report root tests as passed.
//! - It never touches the machine's own network: the work happens on a thread that moved into
//!   fresh namespaces ([`in_fresh_netns`], [`in_sandbox`]), checked before the test body runs.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::OFlag;
use nix::sched::{CloneFlags, unshare};
use nix::sys::stat::Mode;

/// Skips the calling test (returns from it) unless it can make namespaces; under `CI` the
/// test fails instead of skipping. See [`require_root`].
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::testkit::require_root(module_path!()) {
            return;
        }
    };
}

/// What a root-only test does in this environment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Run,
    Skip,
    Fail,
}

/// `CI` set to anything but the empty string means a skipped root test is a failure.
fn verdict(privileged: bool, ci: Option<&OsStr>) -> Verdict {
    match (privileged, ci.is_some_and(|v| !v.is_empty())) {
        (true, _) => Verdict::Run,
        (false, true) => Verdict::Fail,
        (false, false) => Verdict::Skip,
    }
}

/// Root that may also make namespaces (a root without CAP_SYS_ADMIN, e.g. in an unprivileged
/// container, cannot run these tests either). Probed once per test process.
fn privileged() -> bool {
    static PRIVILEGED: OnceLock<bool> = OnceLock::new();
    *PRIVILEGED.get_or_init(|| {
        nix::unistd::geteuid().is_root()
            && std::thread::spawn(|| unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS))
                .join()
                .is_ok_and(|r| r.is_ok())
    })
}

/// True when the test may run. Otherwise prints that `test` is skipped and returns false, or,
/// when `CI` is set, panics: a root test must never pass without having run.
pub fn require_root(test: &str) -> bool {
    let thread = std::thread::current();
    // libtest names each test's thread after the test; the module path is the fallback.
    let test = thread.name().filter(|n| *n != "main").unwrap_or(test);
    match verdict(privileged(), std::env::var_os("CI").as_deref()) {
        Verdict::Run => true,
        Verdict::Skip => {
            // Straight to stderr, not eprintln!: the test harness captures (and, for a test
            // that passes, never shows) what the print macros write.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: needs root (to make network namespaces); run the tests as root, \
                 or set CI=1 to make this a failure"
            );
            false
        }
        Verdict::Fail => panic!(
            "{test} needs root (to make network namespaces) and CI is set: a root test must not \
             pass without running; run the tests as root"
        ),
    }
}

/// `(st_dev, st_ino)` of one of the calling thread's namespaces (`net`, `mnt`, ...).
pub fn thread_ns_id(kind: &str) -> (u64, u64) {
    let path = format!("/proc/thread-self/ns/{kind}");
    let fd = nix::fcntl::open(
        path.as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .unwrap_or_else(|e| panic!("open {path}: {e}"));
    crate::netns::id_of(fd.as_fd()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `(st_dev, st_ino)` of a namespace of the process's main thread (the machine's, for tests).
fn process_ns_id(kind: &str) -> (u64, u64) {
    let path = format!("/proc/self/ns/{kind}");
    let meta = fs::metadata(&path).unwrap_or_else(|e| panic!("stat {path}: {e}"));
    (
        std::os::unix::fs::MetadataExt::dev(&meta),
        std::os::unix::fs::MetadataExt::ino(&meta),
    )
}

/// Panics unless the calling thread left the process's namespaces of each kind in `kinds`
/// (the ids before its unshare are `before`), and a child process it spawns lands in its
/// network namespace too (tests run `ip` and `nft`).
fn assert_isolated(kinds: &[&str], before: &[(u64, u64)]) {
    for (kind, before) in kinds.iter().zip(before) {
        let now = thread_ns_id(kind);
        assert_ne!(now, *before, "{kind} namespace not unshared");
        assert_ne!(
            now,
            process_ns_id(kind),
            "still in the process's (the machine's) {kind} namespace"
        );
    }
    let ours = fs::read_link("/proc/thread-self/ns/net").expect("read own netns link");
    let child = Command::new("readlink")
        .arg("/proc/self/ns/net")
        .output()
        .expect("run readlink");
    assert_eq!(
        String::from_utf8_lossy(&child.stdout).trim(),
        ours.to_string_lossy(),
        "a child process is not in the test thread's network namespace"
    );
}

/// Runs `f` on a new thread that first moved into a fresh, empty network namespace (only `lo`,
/// down); it dies with the thread. Panics rather than running `f` if that did not happen, so
/// a test can never touch the machine's network. Call [`require_root!`] first.
pub fn in_fresh_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let before = thread_ns_id("net");
            unshare(CloneFlags::CLONE_NEWNET)
                .expect("unshare(CLONE_NEWNET) (did the test call require_root!()?)");
            assert_isolated(&["net"], &[before]);
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Runs `f` on a new thread inside [`crate::sandbox::Sandbox`]: fresh network and mount
/// namespaces, `/` private, tmpfs on /run (so /run/netns is private) and /etc/netns, so the
/// fixed iproute2 paths are safe to use. Threads and processes `f` starts inherit all of it;
/// it vanishes when the thread exits. Call [`require_root!`] first.
pub fn in_sandbox<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let before = [thread_ns_id("net"), thread_ns_id("mnt")];
            let sandbox = crate::sandbox::Sandbox::enter(&[])
                .unwrap_or_else(|e| panic!("{e} (did the test call require_root!()?)"));
            assert_isolated(&["net", "mnt"], &before);
            let out = f();
            drop(sandbox);
            out
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// A further fresh network namespace (made on a helper thread), as an fd.
pub fn new_netns_fd() -> OwnedFd {
    std::thread::spawn(|| {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        OwnedFd::from(fs::File::open("/proc/thread-self/ns/net").expect("open netns fd"))
    })
    .join()
    .expect("netns helper thread")
}

/// A fresh scratch directory for a test's files, under the temp dir.
pub fn scratch_dir(test: &str) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "nsnet-test-{test}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_only_outside_ci_and_fails_under_ci() {
        assert_eq!(verdict(true, None), Verdict::Run);
        assert_eq!(verdict(true, Some(OsStr::new("1"))), Verdict::Run);
        assert_eq!(verdict(false, None), Verdict::Skip);
        assert_eq!(verdict(false, Some(OsStr::new(""))), Verdict::Skip);
        assert_eq!(verdict(false, Some(OsStr::new("1"))), Verdict::Fail);
        assert_eq!(verdict(false, Some(OsStr::new("true"))), Verdict::Fail);
    }

    #[test]
    fn fresh_netns_is_not_the_machines() {
        crate::require_root!();
        let outside = thread_ns_id("net");
        let inside = in_fresh_netns(|| thread_ns_id("net"));
        assert_ne!(inside, outside);
        let (net, mnt) = in_sandbox(|| (thread_ns_id("net"), thread_ns_id("mnt")));
        assert_ne!(net, outside);
        assert_ne!(mnt, thread_ns_id("mnt"));
    }
}
