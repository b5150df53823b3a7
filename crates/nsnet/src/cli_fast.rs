//! The command lines a container runtime repeats per container, parsed without building clap's
//! command tree: `network connect NET NS` with `--publish`/`-p`, `--ip` and `--alias`, and
//! `network disconnect NET NS`. Building the tree, propagating the global options into it
//! and matching cost ~0.2 ms of every such command (BENCHMARKS.md, "Speed, fifth round").
//! Anything else (another option, `--`, `--help`, a value that looks like an option or is
//! not UTF-8, the environment's `NSNET_QUIET`) goes to clap, so every usage error, hint and
//! help stays clap's; what this returns is what clap would (`same_as_clap` checks it).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::cli::{Cli, Command, Format, NetworkCmd, NetworkConnect};

/// The environment the global options read (`NSNET_STATE_DIR`, `NSNET_QUIET`).
pub struct Env {
    pub state_dir: Option<OsString>,
    pub quiet: Option<OsString>,
}

impl Env {
    pub fn current() -> Env {
        Env {
            state_dir: std::env::var_os("NSNET_STATE_DIR"),
            quiet: std::env::var_os("NSNET_QUIET"),
        }
    }
}

/// `args` (the program name first) as clap would parse them, or None to ask clap.
pub fn parse(args: &[OsString], env: &Env) -> Option<Cli> {
    if env.quiet.is_some() {
        return None;
    }
    let state_dir = match &env.state_dir {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        Some(_) => return None,
        None => PathBuf::from(nsnet_store::DEFAULT_STATE_DIR),
    };
    let words: Vec<&str> = args
        .get(1..)?
        .iter()
        .map(|a| a.to_str())
        .collect::<Option<_>>()?;
    let cmd = match words.as_slice() {
        ["network", "disconnect", network, netns] => NetworkCmd::Disconnect {
            network: value(network)?,
            netns: value(netns)?,
        },
        ["network", "connect", network, netns, rest @ ..] => {
            NetworkCmd::Connect(connect(value(network)?, value(netns)?, rest)?)
        }
        _ => return None,
    };
    Some(Cli {
        state_dir,
        format: Format::Table,
        quiet: false,
        command: Command::Network(cmd),
    })
}

/// A positional value clap would take as such.
fn value(word: &str) -> Option<String> {
    (!word.starts_with('-')).then(|| word.to_string())
}

fn connect(network: String, netns: String, mut rest: &[&str]) -> Option<NetworkConnect> {
    let mut c = NetworkConnect {
        network,
        netns,
        ips: Vec::new(),
        mac: None,
        ifname: None,
        publish: Vec::new(),
        aliases: Vec::new(),
    };
    while let [flag, tail @ ..] = rest {
        let (name, inline) = match flag.split_once('=') {
            Some((name, v)) if name.starts_with("--") => (name, Some(v)),
            _ => (*flag, None),
        };
        let list = match name {
            "--publish" | "-p" => &mut c.publish,
            "--ip" => &mut c.ips,
            "--alias" => &mut c.aliases,
            _ => return None,
        };
        match (inline, tail) {
            (Some(v), _) => {
                list.push(v.to_string());
                rest = tail;
            }
            (None, [v, tail @ ..]) => {
                list.push(value(v)?);
                rest = tail;
            }
            (None, []) => return None,
        }
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn os(args: &[&str]) -> Vec<OsString> {
        std::iter::once("nsnet")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// Every line the fast path takes parses to what clap makes of it (given the same state
    /// directory), and the lines it leaves to clap are the ones it must.
    #[test]
    fn same_as_clap() {
        let env = Env {
            state_dir: Some("/tmp/st".into()),
            quiet: None,
        };
        let taken: &[&[&str]] = &[
            &["network", "connect", "lan", "c1"],
            &["network", "connect", "lan", "c1", "--publish", "8080:80"],
            &[
                "network",
                "connect",
                "lan",
                "c1",
                "-p",
                "8080:80",
                "-p",
                "53:53/udp",
            ],
            &["network", "connect", "lan", "c1", "--publish=8080:80"],
            &[
                "network", "connect", "lan", "c1", "--ip", "10.1.0.9", "--alias", "web",
            ],
            &[
                "network",
                "connect",
                "lan",
                "c1",
                "--ip=10.1.0.9",
                "--alias=db",
            ],
            &[
                "network",
                "connect",
                "lan",
                "c1",
                "--publish",
                "127.0.0.1:80:80/tcp",
            ],
            &["network", "connect", "lan", "c1", "--publish="],
            &["network", "disconnect", "lan", "c1"],
        ];
        for line in taken {
            let fast = parse(&os(line), &env).unwrap_or_else(|| panic!("not taken: {line:?}"));
            // clap: the environment's state directory is the explicit option here.
            let mut explicit = os(&["--state-dir", "/tmp/st"]);
            explicit.extend(os(line).into_iter().skip(1));
            let clap = Cli::try_parse_from(explicit).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "{line:?}");
        }
        let default_dir = parse(
            &os(taken[0]),
            &Env {
                state_dir: None,
                quiet: None,
            },
        )
        .unwrap();
        assert_eq!(
            default_dir.state_dir,
            PathBuf::from(nsnet_store::DEFAULT_STATE_DIR)
        );
        let left: &[&[&str]] = &[
            &["network", "connect", "lan"],
            &["network", "connect", "lan", "c1", "--publish"],
            &["network", "connect", "lan", "c1", "-p8080:80"],
            &["network", "connect", "lan", "c1", "-p=8080:80"],
            &["network", "connect", "lan", "c1", "--publish", "-1"],
            &[
                "network",
                "connect",
                "lan",
                "c1",
                "--mac",
                "02:00:00:00:00:01",
            ],
            &["network", "connect", "lan", "c1", "--ifname", "eth1"],
            &["network", "connect", "lan", "c1", "--help"],
            &["network", "connect", "lan", "c1", "-q"],
            &["network", "connect", "lan", "c1", "--format", "json"],
            &["network", "connect", "lan", "c1", "--state-dir", "/x"],
            &["network", "connect", "lan", "c1", "--", "x"],
            &["network", "connect", "lan", "c1", "extra"],
            &["network", "connect", "-lan", "c1"],
            &["network", "connect", "lan", "--", "c1"],
            &["network", "disconnect", "lan", "c1", "c2"],
            &["network", "disconnect", "lan"],
            &["--quiet", "network", "disconnect", "lan", "c1"],
            &["network", "ls"],
            &["network", "conect", "lan", "c1"],
            &[],
        ];
        for line in left {
            assert!(parse(&os(line), &env).is_none(), "taken: {line:?}");
        }
        let quiet = Env {
            state_dir: None,
            quiet: Some("0".into()),
        };
        assert!(parse(&os(taken[0]), &quiet).is_none());
        let empty_dir = Env {
            state_dir: Some("".into()),
            quiet: None,
        };
        assert!(parse(&os(taken[0]), &empty_dir).is_none());
        let not_utf8 = vec![
            OsString::from("nsnet"),
            "network".into(),
            "disconnect".into(),
            "lan".into(),
            std::os::unix::ffi::OsStringExt::from_vec(vec![0xff]),
        ];
        assert!(parse(&not_utf8, &env).is_none());
    }
}
