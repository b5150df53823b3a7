//! Containers, the pure parts: argument parsing (`--network NET[:IP]`, `--env K=V`,
//! `--hostname`), the `/etc/hosts` a container sees, the `resolv.conf` it gets, and exit codes.

use std::net::IpAddr;

use crate::CoreError;
use crate::names::NetName;

/// `PATH` of a container's command unless `--env PATH=...` says otherwise (docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Longest hostname the kernel accepts (`__NEW_UTS_LEN`).
pub const HOSTNAME_MAX: usize = 64;

/// A `--network NET[:IP]` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkArg {
    pub network: NetName,
    pub ip: Option<IpAddr>,
}

impl std::str::FromStr for NetworkArg {
    type Err = CoreError;

    /// Network names cannot contain ':', so the first one separates the address (IPv6 too).
    fn from_str(s: &str) -> Result<Self, CoreError> {
        let (net, ip) = match s.split_once(':') {
            Some((net, ip)) => (net, Some(crate::model::parse_ip("container address", ip)?)),
            None => (s, None),
        };
        Ok(NetworkArg {
            network: NetName::new(net)?,
            ip,
        })
    }
}

/// Validates a `--hostname`: 1-64 characters from A-Z a-z 0-9 . - _.
pub fn check_hostname(h: &str) -> Result<(), CoreError> {
    let ok = !h.is_empty()
        && h.len() <= HOSTNAME_MAX
        && h.starts_with(|c: char| c.is_ascii_alphanumeric())
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if ok {
        Ok(())
    } else {
        Err(CoreError::InvalidName {
            kind: "host",
            name: h.to_string(),
            allowed: format!(
                "use 1-{HOSTNAME_MAX} characters from A-Z a-z 0-9 . - _, starting with a letter or digit"
            ),
        })
    }
}

/// Parses one `--env` value: `K=V`, or `K` to copy `K` from `lookup` (skipped when unset).
pub fn parse_env(
    arg: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, CoreError> {
    let (key, value) = match arg.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (arg, None),
    };
    let bad_key = key.is_empty() || key.contains(char::is_whitespace);
    if bad_key || arg.contains('\0') {
        return Err(CoreError::InvalidValue {
            what: "environment variable",
            value: arg.to_string(),
            reason: "give KEY=VALUE (or KEY to copy it from nsnet's environment); the key cannot be empty or contain spaces".into(),
        });
    }
    Ok(value.or_else(|| lookup(key)).map(|v| format!("{key}={v}")))
}

/// The environment a container's command starts with: PATH, HOSTNAME, then `--env` values
/// (later ones win, and they may replace PATH).
pub fn environment(hostname: &str, env: &[String]) -> Vec<String> {
    let mut out = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    for kv in env {
        let key = kv.split('=').next().unwrap_or_default();
        out.retain(|e| e.split('=').next() != Some(key));
        out.push(kv.clone());
    }
    out
}

/// The `PATH` value of an environment.
pub fn path_of(env: &[String]) -> &str {
    env.iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
}

/// A container that shares a network with the one whose hosts file is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsPeer {
    pub name: String,
    pub addrs: Vec<IpAddr>,
}

/// The `/etc/hosts` of container `name` (hostname `hostname`, addresses `own`): localhost,
/// itself, then every container on its networks, by name.
pub fn hosts_file(name: &str, hostname: &str, own: &[IpAddr], peers: &[HostsPeer]) -> String {
    let mut out = format!(
        "# nsnet: hosts of container {name}; rewritten when containers join or leave its networks\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n"
    );
    let me = if hostname == name {
        name.to_string()
    } else {
        format!("{hostname} {name}")
    };
    if own.is_empty() {
        out.push_str(&format!("127.0.1.1\t{me}\n"));
    }
    for ip in own {
        out.push_str(&format!("{ip}\t{me}\n"));
    }
    let mut lines: Vec<(IpAddr, &str)> = peers
        .iter()
        .filter(|p| p.name != name)
        .flat_map(|p| p.addrs.iter().map(move |ip| (*ip, p.name.as_str())))
        .collect();
    lines.sort();
    lines.dedup();
    for (ip, peer) in lines {
        out.push_str(&format!("{ip}\t{peer}\n"));
    }
    out
}

/// The `resolv.conf` of a container from the host's: nameservers on loopback (a local stub
/// such as systemd-resolved's 127.0.0.53) cannot be reached from another network namespace,
/// so they are dropped; nothing is added in their place.
pub fn resolv_conf(host: &str) -> String {
    let mut out = String::from("# nsnet: the host's resolv.conf without loopback nameservers\n");
    let mut dropped = Vec::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver")
            && let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok())
            && ip.is_loopback()
        {
            dropped.push(ip);
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    for ip in dropped {
        out.push_str(&format!(
            "# dropped nameserver {ip}: loopback, unreachable from the container\n"
        ));
    }
    out
}

/// Exit code of a finished command as a shell reports it: its status, or 128 + signal.
pub fn exit_code(status: Option<i32>, signal: Option<i32>) -> i32 {
    match (status, signal) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 255,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_args() {
        let a: NetworkArg = "lan".parse().unwrap();
        assert_eq!(a.network.as_str(), "lan");
        assert_eq!(a.ip, None);
        let a: NetworkArg = "lan:10.0.0.5".parse().unwrap();
        assert_eq!(a.ip, Some("10.0.0.5".parse().unwrap()));
        let a: NetworkArg = "v6:fd00::5".parse().unwrap();
        assert_eq!(a.ip, Some("fd00::5".parse().unwrap()));
        assert!("lan:10.0.0".parse::<NetworkArg>().is_err());
        assert!("bad/net".parse::<NetworkArg>().is_err());
    }

    #[test]
    fn hostnames() {
        assert!(check_hostname("web-1.example").is_ok());
        for bad in ["", "-x", "a b", "a/b", &"x".repeat(65)] {
            assert!(check_hostname(bad).is_err(), "{bad:?} accepted");
        }
        let err = check_hostname("a b").unwrap_err().to_string();
        assert!(err.contains("invalid host name"), "{err}");
    }

    #[test]
    fn env_values() {
        let none = |_: &str| None;
        assert_eq!(parse_env("A=1", none).unwrap().as_deref(), Some("A=1"));
        assert_eq!(parse_env("A=", none).unwrap().as_deref(), Some("A="));
        assert_eq!(parse_env("A=b=c", none).unwrap().as_deref(), Some("A=b=c"));
        assert_eq!(parse_env("HOME", none).unwrap(), None);
        let home = |k: &str| (k == "HOME").then(|| "/root".to_string());
        assert_eq!(
            parse_env("HOME", home).unwrap().as_deref(),
            Some("HOME=/root")
        );
        assert!(parse_env("=x", none).is_err());
        assert!(parse_env("A B=x", none).is_err());
        let env = environment("box", &["A=1".into(), "PATH=/bin".into(), "A=2".into()]);
        assert_eq!(env, ["HOSTNAME=box", "PATH=/bin", "A=2"]);
        assert_eq!(path_of(&env), "/bin");
        assert_eq!(path_of(&[]), DEFAULT_PATH);
    }

    #[test]
    fn hosts_lists_peers_by_name() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let peers = [
            HostsPeer {
                name: "db".into(),
                addrs: vec![ip("10.0.0.3"), ip("fd00::3")],
            },
            HostsPeer {
                name: "web".into(),
                addrs: vec![ip("10.0.0.2")],
            },
            HostsPeer {
                name: "cache".into(),
                addrs: vec![ip("10.0.0.4")],
            },
        ];
        let text = hosts_file("web", "www", &[ip("10.0.0.2")], &peers);
        assert_eq!(
            text.lines().skip(1).collect::<Vec<_>>(),
            [
                "127.0.0.1\tlocalhost",
                "::1\tlocalhost ip6-localhost ip6-loopback",
                "10.0.0.2\twww web",
                "10.0.0.3\tdb",
                "10.0.0.4\tcache",
                "fd00::3\tdb",
            ]
        );
        let alone = hosts_file("solo", "solo", &[], &[]);
        assert!(alone.ends_with("127.0.1.1\tsolo\n"), "{alone}");
    }

    #[test]
    fn resolv_conf_drops_loopback_nameservers() {
        let host = "nameserver 127.0.0.53\noptions edns0\nsearch example.com\nnameserver 192.0.2.1\nnameserver ::1\n";
        let got = resolv_conf(host);
        assert!(got.contains("nameserver 192.0.2.1\n"));
        assert!(got.contains("search example.com\n"));
        assert!(!got.lines().any(|l| l == "nameserver 127.0.0.53"));
        assert!(got.contains("# dropped nameserver 127.0.0.53"));
        assert!(got.contains("# dropped nameserver ::1"));
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(Some(7), None), 7);
        assert_eq!(exit_code(None, Some(9)), 137);
        assert_eq!(exit_code(None, None), 255);
    }
}
