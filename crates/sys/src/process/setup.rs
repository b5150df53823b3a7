//! What a container's first process does to its namespaces before it becomes the init, as
//! data: built (and every C string allocated) in the parent, executed step by step in the
//! child with plain system calls, and unit-tested here without root.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use super::ProcessError;

/// One system-call-level step of the child's setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// `setns` into the container's network namespace (its fd is opened by the parent).
    JoinNetns,
    /// `mount(2)`.
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
    },
    /// `umount2(target, MNT_DETACH)`.
    Detach(CString),
    /// `mkdir(path, 0755)`; an existing directory is fine.
    Mkdir(CString),
    /// Creates an empty file to mount over, unless something is there (never follows a symlink).
    Touch(CString),
    /// Makes `dir` the root: `chdir(dir)`, `pivot_root(".", ".")`, detach the old root.
    PivotRoot(CString),
    /// `chdir`: the command starts in `/`, as it does after a pivot and in `exec`.
    Chdir(CString),
    /// `sethostname`.
    Hostname(CString),
    /// `setsid`: a detached container leaves the caller's session and terminal.
    Setsid,
}

/// A step, whether its failure is tolerated, and what it does (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Planned {
    pub step: Step,
    pub optional: bool,
    pub what: String,
}

/// What the setup depends on.
pub(crate) struct SetupSpec<'a> {
    pub netns: &'a str,
    pub hostname: &'a str,
    pub rootfs: Option<&'a Path>,
    /// Files bind-mounted over the same names in the container's `/etc`.
    pub etc_files: &'a [(&'a str, PathBuf)],
    pub detach: bool,
}

/// Device nodes a `--rootfs` container gets from the host (bind-mounted on a fresh tmpfs).
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

fn c(what: &str, s: impl AsRef<[u8]>) -> Result<CString, ProcessError> {
    CString::new(s.as_ref())
        .map_err(|_| ProcessError::Invalid(format!("{what} contains a NUL byte")))
}

fn cpath(p: &Path) -> Result<CString, ProcessError> {
    c(
        &format!("path {}", p.display()),
        p.as_os_str().as_encoded_bytes(),
    )
}

/// Arguments of one `mount(2)`.
struct Mount<'a> {
    source: Option<&'a str>,
    target: &'a Path,
    fstype: Option<&'a str>,
    flags: libc::c_ulong,
    data: Option<&'a str>,
}

struct Builder(Vec<Planned>);

impl Builder {
    fn push(&mut self, step: Step, optional: bool, what: String) {
        self.0.push(Planned {
            step,
            optional,
            what,
        });
    }

    fn mount(&mut self, m: Mount<'_>, optional: bool, what: String) -> Result<(), ProcessError> {
        let step = Step::Mount {
            source: m.source.map(|s| c("mount source", s)).transpose()?,
            target: cpath(m.target)?,
            fstype: m.fstype.map(|s| c("filesystem type", s)).transpose()?,
            flags: m.flags,
            data: m.data.map(|s| c("mount options", s)).transpose()?,
        };
        self.push(step, optional, what);
        Ok(())
    }

    fn bind(&mut self, from: &Path, to: &Path, optional: bool) -> Result<(), ProcessError> {
        let source = from.to_str().ok_or_else(|| {
            ProcessError::Invalid(format!("path {} is not UTF-8", from.display()))
        })?;
        self.mount(
            Mount {
                source: Some(source),
                target: to,
                fstype: None,
                flags: libc::MS_BIND,
                data: None,
            },
            optional,
            format!("bind-mount {} on {}", from.display(), to.display()),
        )
    }
}

/// The setup steps of a container's first process, in order.
pub(crate) fn plan(spec: &SetupSpec<'_>) -> Result<Vec<Planned>, ProcessError> {
    let mut b = Builder(Vec::new());
    b.push(
        Step::JoinNetns,
        false,
        format!("join network namespace {}", spec.netns),
    );
    // Without a rootfs the container keeps the host's mounts as slaves, so unmounts on the
    // host (a `netns rm` of another namespace) still reach it and never pin a namespace.
    // With one, the old root is detached entirely, so private is enough (pivot_root needs it).
    let (propagation, name) = match spec.rootfs {
        None => (libc::MS_SLAVE, "slave"),
        Some(_) => (libc::MS_PRIVATE, "private"),
    };
    b.mount(
        Mount {
            source: None,
            target: Path::new("/"),
            fstype: None,
            flags: libc::MS_REC | propagation,
            data: None,
        },
        false,
        format!("make mounts {name}"),
    )?;
    let root = spec.rootfs.unwrap_or(Path::new("/"));
    if let Some(dir) = spec.rootfs {
        let what = format!("bind-mount rootfs {} on itself", dir.display());
        let source = dir.to_str().ok_or_else(|| {
            ProcessError::Invalid(format!("rootfs {} is not UTF-8", dir.display()))
        })?;
        b.mount(
            Mount {
                source: Some(source),
                target: dir,
                fstype: None,
                flags: libc::MS_BIND | libc::MS_REC,
                data: None,
            },
            false,
            what,
        )?;
        for d in ["proc", "sys", "dev", "etc"] {
            let p = dir.join(d);
            b.push(
                Step::Mkdir(cpath(&p)?),
                false,
                format!("create {}", p.display()),
            );
        }
    }
    let nodev = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    let proc_dir = root.join("proc");
    b.mount(
        Mount {
            source: Some("proc"),
            target: &proc_dir,
            fstype: Some("proc"),
            flags: nodev,
            data: None,
        },
        false,
        format!("mount a new /proc on {}", proc_dir.display()),
    )?;
    // A fresh sysfs shows the devices of the container's network namespace.
    let sys_dir = root.join("sys");
    if spec.rootfs.is_none() {
        b.push(
            Step::Detach(cpath(&sys_dir)?),
            true,
            "unmount the host's /sys".into(),
        );
    }
    b.mount(
        Mount {
            source: Some("sysfs"),
            target: &sys_dir,
            fstype: Some("sysfs"),
            flags: nodev | libc::MS_RDONLY,
            data: None,
        },
        true,
        format!("mount sysfs on {}", sys_dir.display()),
    )?;
    if spec.rootfs.is_some() {
        let dev = root.join("dev");
        b.mount(
            Mount {
                source: Some("tmpfs"),
                target: &dev,
                fstype: Some("tmpfs"),
                flags: libc::MS_NOSUID | libc::MS_NOEXEC,
                data: Some("mode=755,size=64k"),
            },
            false,
            format!("mount tmpfs on {}", dev.display()),
        )?;
        for d in DEVICES {
            let node = dev.join(d);
            b.push(
                Step::Touch(cpath(&node)?),
                true,
                format!("create {}", node.display()),
            );
            b.bind(&Path::new("/dev").join(d), &node, true)?;
        }
        let shm = dev.join("shm");
        b.push(
            Step::Mkdir(cpath(&shm)?),
            true,
            format!("create {}", shm.display()),
        );
        b.mount(
            Mount {
                source: Some("shm"),
                target: &shm,
                fstype: Some("tmpfs"),
                flags: nodev,
                data: Some("mode=1777"),
            },
            true,
            format!("mount tmpfs on {}", shm.display()),
        )?;
    }
    for (name, source) in spec.etc_files {
        let target = root.join("etc").join(name);
        if spec.rootfs.is_some() {
            b.push(
                Step::Touch(cpath(&target)?),
                true,
                format!("create {}", target.display()),
            );
        }
        // resolv.conf may be a dangling symlink on the host (a stub resolver's file under a
        // /run the container does not see); like `ip netns exec`, go on without it.
        b.bind(source, &target, *name != "hosts")?;
    }
    match spec.rootfs {
        Some(dir) => b.push(
            Step::PivotRoot(cpath(dir)?),
            false,
            format!("pivot_root into {}", dir.display()),
        ),
        None => b.push(
            Step::Chdir(c("path", "/")?),
            false,
            "change directory to /".into(),
        ),
    }
    b.push(
        Step::Hostname(c("hostname", spec.hostname)?),
        false,
        format!("set hostname {}", spec.hostname),
    );
    if spec.detach {
        b.push(Step::Setsid, false, "start a new session".into());
    }
    Ok(b.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whats(plan: &[Planned]) -> Vec<String> {
        plan.iter()
            .map(|p| format!("{}{}", if p.optional { "?" } else { "" }, p.what))
            .collect()
    }

    fn etc() -> Vec<(&'static str, PathBuf)> {
        vec![
            ("hosts", PathBuf::from("/etc/netns/web/hosts")),
            ("resolv.conf", PathBuf::from("/etc/netns/web/resolv.conf")),
        ]
    }

    #[test]
    fn host_files_plan() {
        let etc = etc();
        let plan = plan(&SetupSpec {
            netns: "web",
            hostname: "box",
            rootfs: None,
            etc_files: &etc,
            detach: false,
        })
        .unwrap();
        assert_eq!(
            whats(&plan),
            [
                "join network namespace web",
                "make mounts slave",
                "mount a new /proc on /proc",
                "?unmount the host's /sys",
                "?mount sysfs on /sys",
                "bind-mount /etc/netns/web/hosts on /etc/hosts",
                "?bind-mount /etc/netns/web/resolv.conf on /etc/resolv.conf",
                "change directory to /",
                "set hostname box",
            ]
        );
        assert!(matches!(
            &plan[1].step,
            Step::Mount { flags, .. } if *flags == libc::MS_REC | libc::MS_SLAVE
        ));
    }

    #[test]
    fn rootfs_plan_pivots_last_and_detaches() {
        let etc = etc();
        let plan = plan(&SetupSpec {
            netns: "web",
            hostname: "web",
            rootfs: Some(Path::new("/srv/root")),
            etc_files: &etc,
            detach: true,
        })
        .unwrap();
        let w = whats(&plan);
        assert_eq!(w[1], "make mounts private");
        assert_eq!(w[2], "bind-mount rootfs /srv/root on itself");
        assert!(w.contains(&"mount a new /proc on /srv/root/proc".to_string()));
        assert!(w.contains(&"?bind-mount /dev/null on /srv/root/dev/null".to_string()));
        assert!(w.contains(&"?create /srv/root/etc/hosts".to_string()));
        assert!(w.contains(&"bind-mount /etc/netns/web/hosts on /srv/root/etc/hosts".to_string()));
        let pivot = w.iter().position(|s| s.starts_with("pivot_root")).unwrap();
        assert!(w[..pivot].iter().all(|s| !s.contains("hostname")));
        assert_eq!(w[w.len() - 2], "set hostname web");
        assert_eq!(w[w.len() - 1], "start a new session");
    }

    #[test]
    fn nul_bytes_are_refused() {
        let err = plan(&SetupSpec {
            netns: "web",
            hostname: "a\0b",
            rootfs: None,
            etc_files: &[],
            detach: false,
        })
        .unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
    }
}
