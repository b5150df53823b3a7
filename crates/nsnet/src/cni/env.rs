//! The CNI_* environment: which command, which container, namespace and interface, and the
//! `CNI_ARGS` key/value list.

use std::net::IpAddr;

use nsnet_core::model::Mac;
use nsnet_core::names::IfName;

use super::error::{CniError, code};

/// A CNI command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Status,
    Gc,
}

impl Command {
    fn parse(s: &str) -> Result<Command, CniError> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            _ => {
                return Err(CniError::new(
                    code::INVALID_ENV,
                    format!(
                        "unknown CNI_COMMAND {s:?}: allowed ADD, DEL, CHECK, VERSION, STATUS, GC"
                    ),
                ));
            }
        })
    }
}

/// `CNI_ARGS` that nsnet understands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    /// `IP=`: requested addresses (comma-separated, prefixes allowed and ignored).
    pub ips: Vec<IpAddr>,
    /// `MAC=`: the container interface's MAC.
    pub mac: Option<Mac>,
    /// `K8S_POD_NAME=` (an unknown key to nsnet otherwise): the pod's DNS name.
    pub pod_name: Option<String>,
}

/// The environment of one invocation, validated for its command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniEnv {
    pub command: Command,
    pub container_id: String,
    /// CNI_NETNS; may be empty on DEL (containerd sends none once the namespace is gone).
    pub netns: Option<String>,
    pub ifname: Option<IfName>,
    pub args: CniArgs,
}

fn container_id_ok(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn missing(var: &str, command: &str) -> CniError {
    CniError::new(
        code::INVALID_ENV,
        format!("{var} is required for {command} but is not set"),
    )
}

/// Parses an address that may carry a prefix (`10.0.0.5` or `10.0.0.5/24`).
pub fn parse_addr(what: &str, s: &str) -> Result<IpAddr, String> {
    let bare = s.split_once('/').map_or(s, |(a, _)| a);
    bare.trim()
        .parse()
        .map_err(|_| format!("{what} {s:?} is not an IPv4 or IPv6 address"))
}

/// Parses `CNI_ARGS` (`K=V;K=V`). Unknown keys are refused unless `IgnoreUnknown` is true.
pub fn parse_args(s: &str) -> Result<CniArgs, CniError> {
    let err = |msg: String| CniError::new(code::INVALID_ENV, format!("CNI_ARGS: {msg}"));
    let mut pairs = Vec::new();
    for part in s.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| err(format!("{part:?} is not KEY=VALUE")))?;
        pairs.push((k, v));
    }
    let ignore_unknown = match pairs.iter().find(|(k, _)| *k == "IgnoreUnknown") {
        None => false,
        Some((_, v)) => match *v {
            "1" | "true" | "True" => true,
            "0" | "false" | "False" => false,
            other => {
                return Err(err(format!(
                    "IgnoreUnknown={other:?}: allowed 1, true, True, 0, false, False"
                )));
            }
        },
    };
    let mut out = CniArgs::default();
    let mut unknown = Vec::new();
    for (k, v) in pairs {
        match k {
            "IgnoreUnknown" => {}
            "IP" => {
                for ip in v.split(',').filter(|s| !s.is_empty()) {
                    out.ips.push(parse_addr("IP", ip).map_err(err)?);
                }
            }
            "MAC" => out.mac = Some(v.parse().map_err(|e| err(format!("MAC: {e}")))?),
            other => {
                if other == "K8S_POD_NAME" && nsnet_core::dnsname::check_alias(v).is_ok() {
                    out.pod_name = Some(v.to_string());
                }
                unknown.push(other)
            }
        }
    }
    if !unknown.is_empty() && !ignore_unknown {
        return Err(err(format!(
            "unknown keys {}: nsnet knows IP, MAC and IgnoreUnknown (add IgnoreUnknown=1 to tolerate others)",
            unknown.join(", ")
        )));
    }
    Ok(out)
}

impl CniEnv {
    /// Reads and validates the environment through `get` (the process environment, or a
    /// map in tests). Values a command does not use are not checked.
    pub fn load(get: impl Fn(&str) -> Option<String>) -> Result<CniEnv, CniError> {
        let var = |k: &str| get(k).filter(|v| !v.is_empty());
        let raw_command = var("CNI_COMMAND").unwrap_or_default();
        let command = Command::parse(&raw_command)?;
        let mut env = CniEnv {
            command,
            container_id: String::new(),
            netns: None,
            ifname: None,
            args: CniArgs::default(),
        };
        if matches!(command, Command::Version | Command::Status | Command::Gc) {
            return Ok(env);
        }
        let id = var("CNI_CONTAINERID").ok_or_else(|| missing("CNI_CONTAINERID", &raw_command))?;
        if !container_id_ok(&id) {
            return Err(CniError::new(
                code::INVALID_ENV,
                format!(
                    "invalid CNI_CONTAINERID {id:?}: use A-Z a-z 0-9 _ . -, starting with a letter or digit"
                ),
            ));
        }
        env.container_id = id;
        let ifname = var("CNI_IFNAME").ok_or_else(|| missing("CNI_IFNAME", &raw_command))?;
        env.ifname = Some(
            IfName::new(&ifname)
                .map_err(|e| CniError::new(code::INVALID_ENV, format!("CNI_IFNAME: {e}")))?,
        );
        env.netns = var("CNI_NETNS");
        match (&env.netns, command) {
            (None, Command::Add | Command::Check) => {
                return Err(missing("CNI_NETNS", &raw_command));
            }
            (Some(p), _) if !p.starts_with('/') => {
                return Err(CniError::new(
                    code::INVALID_ENV,
                    format!(
                        "invalid CNI_NETNS {p:?}: give the namespace's absolute path, e.g. /var/run/netns/NAME or /proc/PID/ns/net"
                    ),
                ));
            }
            _ => {}
        }
        if command == Command::Add {
            env.args = parse_args(&var("CNI_ARGS").unwrap_or_default())?;
        }
        Ok(env)
    }
}

/// Checks that ADD's and CHECK's CNI_NETNS is a network namespace before anything is done
/// in it: a missing path means the container is gone (code 3); a plain file (an unmounted
/// namespace file), a directory or another kind of namespace is a wrong CNI_NETNS (code 4),
/// which the kernel would only report as "Invalid argument" half-way through.
pub fn check_netns(env: &CniEnv) -> Result<(), CniError> {
    let Some(path) = &env.netns else {
        return Ok(());
    };
    let invalid = |what: String| {
        CniError::new(
            code::INVALID_ENV,
            format!(
                "invalid CNI_NETNS {path}: {what}; give a network namespace such as /var/run/netns/NAME or /proc/PID/ns/net"
            ),
        )
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CniError::new(
                code::UNKNOWN_CONTAINER,
                format!(
                    "netns {path} of container {} does not exist",
                    env.container_id
                ),
            ));
        }
        Err(e) => return Err(invalid(format!("cannot open it ({e})"))),
    };
    let nsfs = nix::sys::statfs::fstatfs(&file)
        .map_err(|e| invalid(format!("cannot stat it ({e})")))?
        .filesystem_type()
        == nix::sys::statfs::NSFS_MAGIC;
    if !nsfs {
        let kind = match file.metadata() {
            Ok(m) if m.is_dir() => "a directory",
            _ => "a plain file, with no namespace mounted on it",
        };
        return Err(invalid(format!("is not a network namespace ({kind})")));
    }
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd. It fails (ENOTTY) only
    // on kernels before 4.11, where nsfs is trusted.
    let ty = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&file), libc::NS_GET_NSTYPE) };
    let other = match ty {
        libc::CLONE_NEWNS => "a mount",
        libc::CLONE_NEWPID => "a PID",
        libc::CLONE_NEWUTS => "a UTS",
        libc::CLONE_NEWIPC => "an IPC",
        libc::CLONE_NEWUSER => "a user",
        libc::CLONE_NEWCGROUP => "a cgroup",
        libc::CLONE_NEWTIME => "a time",
        _ => return Ok(()),
    };
    Err(invalid(format!(
        "is {other} namespace, not a network namespace"
    )))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<CniEnv, CniError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CniEnv::load(|k| m.get(k).cloned())
    }

    const ADD: [(&str, &str); 4] = [
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "abc123"),
        ("CNI_NETNS", "/var/run/netns/c1"),
        ("CNI_IFNAME", "eth0"),
    ];

    #[test]
    fn add_needs_container_netns_and_ifname() {
        let env = load(&ADD).unwrap();
        assert_eq!(env.command, Command::Add);
        assert_eq!(env.ifname.unwrap().as_str(), "eth0");
        for drop in ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"] {
            let vars: Vec<_> = ADD.iter().copied().filter(|(k, _)| *k != drop).collect();
            let e = load(&vars).unwrap_err();
            assert_eq!(e.code, code::INVALID_ENV);
            assert!(e.msg.contains(drop), "{}", e.msg);
        }
    }

    #[test]
    fn del_may_have_no_netns() {
        let env = load(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "abc"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", ""),
        ])
        .unwrap();
        assert_eq!(env.netns, None);
    }

    #[test]
    fn bad_values_are_invalid_env() {
        for (k, v) in [
            ("CNI_COMMAND", "FROB"),
            ("CNI_CONTAINERID", "-x"),
            ("CNI_CONTAINERID", "a/b"),
            ("CNI_IFNAME", "a-very-long-interface"),
            ("CNI_NETNS", "relative/path"),
            ("CNI_ARGS", "IP"),
            ("CNI_ARGS", "FOO=1"),
            ("CNI_ARGS", "IP=10.0.0.300"),
            ("CNI_ARGS", "IgnoreUnknown=maybe"),
        ] {
            let mut vars: Vec<_> = ADD.iter().copied().filter(|(key, _)| *key != k).collect();
            vars.push((k, v));
            let e = load(&vars).unwrap_err();
            assert_eq!(e.code, code::INVALID_ENV, "{k}={v}: {}", e.msg);
        }
        assert_eq!(load(&[]).unwrap_err().code, code::INVALID_ENV);
    }

    #[test]
    fn netns_must_be_a_network_namespace() {
        let with = |path: &str| {
            let mut env = load(&ADD).unwrap();
            env.netns = Some(path.to_string());
            check_netns(&env)
        };
        assert_eq!(with("/proc/self/ns/net"), Ok(()));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, "").unwrap();
        for (path, needle) in [
            (file.to_str().unwrap(), "a plain file"),
            (dir.path().to_str().unwrap(), "a directory"),
            (
                "/proc/self/ns/mnt",
                "is a mount namespace, not a network namespace",
            ),
            ("/proc/self/ns/uts", "is a UTS namespace"),
        ] {
            let e = with(path).unwrap_err();
            assert_eq!(e.code, code::INVALID_ENV, "{path}: {}", e.msg);
            assert!(e.msg.contains(path) && e.msg.contains(needle), "{}", e.msg);
        }
        let gone = dir.path().join("gone");
        let e = with(gone.to_str().unwrap()).unwrap_err();
        assert_eq!(e.code, code::UNKNOWN_CONTAINER, "{}", e.msg);
        assert!(
            e.msg.contains("of container abc123 does not exist"),
            "{}",
            e.msg
        );
    }

    #[test]
    fn args() {
        let a = parse_args(
            "IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.0.0.5,fd00::5/64;MAC=02:00:00:00:00:05",
        )
        .unwrap();
        assert_eq!(a.ips.len(), 2);
        assert_eq!(a.ips[1].to_string(), "fd00::5");
        assert_eq!(a.mac.unwrap().to_string(), "02:00:00:00:00:05");
        let e = parse_args("K8S_POD_NAME=web").unwrap_err();
        assert!(e.msg.contains("K8S_POD_NAME") && e.msg.contains("IgnoreUnknown=1"));
        assert_eq!(parse_args("").unwrap(), CniArgs::default());
    }
}
