//! `nsnet dns ls`: what the responder serves, from the store (as it will after its next
//! reload), and whether it runs.

use std::path::Path;

use anyhow::{Context, Result};
use nsnet_store::Store;
use serde::Serialize;

use crate::cli::Format;
use crate::output::{Table, list, print};

#[derive(Serialize)]
struct Served {
    /// The running responder's pid (None: not running).
    responder: Option<i32>,
    networks: Vec<Net>,
    names: Vec<Name>,
}

#[derive(Serialize)]
struct Net {
    name: String,
    listen: Vec<std::net::IpAddr>,
    internal: bool,
}

#[derive(Serialize)]
struct Name {
    network: String,
    netns: String,
    names: Vec<String>,
    addrs: Vec<std::net::IpAddr>,
}

pub fn ls(state_dir: &Path, format: Format) -> Result<()> {
    let mut store = Store::open(state_dir)
        .with_context(|| format!("open nsnet state in {}", state_dir.display()))?;
    let table = crate::dns::table(&mut store)?;
    let responder = crate::dns::responder_pid(state_dir)
        .filter(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), None).is_ok());
    let served = Served {
        responder,
        networks: table
            .networks()
            .iter()
            .map(|n| Net {
                name: n.name.clone(),
                listen: n.gateways.clone(),
                internal: n.internal,
            })
            .collect(),
        names: table
            .entries()
            .iter()
            .map(|e| Name {
                network: e.network.clone(),
                netns: e.netns.clone(),
                names: e.names.clone(),
                addrs: e.addrs.clone(),
            })
            .collect(),
    };
    print(format, &served, |s| {
        let mut out = match s.responder {
            Some(pid) => format!("Responder:   running (pid {pid})\n\n"),
            None => "Responder:   not running\n\n".to_string(),
        };
        let mut t = Table::new(&["NETWORK", "NAMES", "ADDRESSES", "NETNS"]);
        for n in &s.names {
            t.row(vec![
                n.network.clone(),
                n.names.join(","),
                list(&n.addrs),
                n.netns.clone(),
            ]);
        }
        out.push_str(&t.render());
        out
    })
}
