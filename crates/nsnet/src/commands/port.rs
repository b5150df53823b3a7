//! `nsnet port add|ls|rm`.

use std::path::Path;

use anyhow::Result;
use nsnet_engine::PortView;

use super::{ns_arg, port_specs};
use crate::cli::{Format, PortCmd};
use crate::context;
use crate::output::{Table, list, print};

fn table(ports: &[PortView]) -> String {
    let mut t = Table::new(&["NETNS", "NETWORK", "HOST", "CONTAINER", "PROTO"]);
    for p in ports {
        let host = match p.mapping.host_ip {
            Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]:{}", p.mapping.host_port),
            Some(ip) => format!("{ip}:{}", p.mapping.host_port),
            None => format!("*:{}", p.mapping.host_port),
        };
        let container = p
            .container_ip
            .iter()
            .map(|ip| match ip {
                std::net::IpAddr::V6(v6) => format!("[{v6}]:{}", p.mapping.container_port),
                v4 => format!("{v4}:{}", p.mapping.container_port),
            })
            .collect::<Vec<_>>();
        t.row(vec![
            p.netns.clone(),
            p.network.clone(),
            host,
            list(container),
            p.mapping.proto.to_string(),
        ]);
    }
    t.render()
}

pub fn run(state_dir: &Path, format: Format, cmd: PortCmd) -> Result<()> {
    match cmd {
        PortCmd::Add { netns, specs } => {
            let ns = ns_arg(&netns, false)?;
            let specs = port_specs(&specs)?;
            let added = context::open(state_dir)?.port_add(&ns, &specs)?;
            print(format, &added, |p| table(p))?;
        }
        PortCmd::Ls { netns } => {
            let ns = netns.as_deref().map(|n| ns_arg(n, false)).transpose()?;
            let ports = context::open(state_dir)?.port_ls(ns.as_ref())?;
            print(format, &ports, |p| table(p))?;
        }
        PortCmd::Rm { netns, specs } => {
            let ns = ns_arg(&netns, false)?;
            let specs = port_specs(&specs)?;
            context::open(state_dir)?.port_rm(&ns, &specs)?;
        }
    }
    Ok(())
}
