//! `nsnet network create|ls|inspect|rm|connect|disconnect`.

use std::path::Path;

use anyhow::Result;
use nsnet_core::model::{NetworkSpec, parse_cidr, parse_ip};
use nsnet_core::names::{IfName, NetName};
use nsnet_engine::views::{EndpointView, NetworkDetail};
use nsnet_engine::{ConnectRequest, NetworkRequest};

use super::ns_arg;
use crate::cli::{Format, NetworkCmd};
use crate::context::{self, LiveEngine};
use crate::output::{Table, list, print};

fn detail_table(d: &NetworkDetail) -> String {
    let mut out = format!(
        "Name:        {}\nDriver:      {}\nBridge:      {}\nMTU:         {}\nInternal:    {}\nMasquerade:  {}\nICC:         {}\nRouted:      {}\nDNS:         {}\nState:       {}\n",
        d.name,
        d.driver,
        d.bridge,
        d.mtu.map_or("default".to_string(), |m| m.to_string()),
        d.internal,
        d.masquerade,
        d.icc,
        d.routed,
        d.dns,
        d.state
    );
    let mut t = Table::new(&["SUBNET", "GATEWAY", "USED", "FREE"]);
    for (s, u) in d.subnets.iter().zip(&d.usage) {
        t.row(vec![
            s.cidr.to_string(),
            s.gateway.to_string(),
            u.used.to_string(),
            u.free.to_string(),
        ]);
    }
    out.push('\n');
    out.push_str(&t.render());
    out.push('\n');
    out.push_str(&endpoints_table(&d.endpoints));
    out
}

pub(crate) fn endpoints_table(eps: &[EndpointView]) -> String {
    let mut t = Table::new(&[
        "NETNS",
        "NETWORK",
        "IFNAME",
        "HOST IFNAME",
        "MAC",
        "ADDRESSES",
        "PRIMARY",
        "PORTS",
        "CONTAINER",
        "DNS NAMES",
    ]);
    for e in eps {
        t.row(vec![
            e.netns.clone(),
            e.network.clone(),
            e.ifname.clone(),
            e.host_ifname.clone(),
            e.mac.clone().unwrap_or_else(|| "-".into()),
            list(&e.addrs),
            if e.primary { "yes".into() } else { "no".into() },
            list(&e.ports),
            e.container_id.clone().unwrap_or_else(|| "-".into()),
            if e.names.is_empty() {
                "-".into()
            } else {
                e.names.join(",")
            },
        ]);
    }
    t.render()
}

/// Runs a `network` subcommand; returns the engine of a create or connect, whose open store
/// the DNS responder's sync then reads instead of opening the store again.
pub fn run(state_dir: &Path, format: Format, cmd: NetworkCmd) -> Result<Option<LiveEngine>> {
    match cmd {
        NetworkCmd::Create(c) => {
            let name = NetName::new(&c.name)?;
            let subnets = c
                .subnets
                .iter()
                .map(|s| parse_cidr("subnet", s))
                .collect::<Result<Vec<_>, _>>()?;
            let gateways = c
                .gateways
                .iter()
                .map(|g| parse_ip("gateway", g))
                .collect::<Result<Vec<_>, _>>()?;
            let bridge = c.bridge.as_deref().map(IfName::new).transpose()?;
            let spec = NetworkSpec::builder(name)
                .subnets(subnets)
                .gateways(gateways)
                .bridge(bridge)
                .mtu(c.mtu)
                .internal(c.internal)
                .masquerade(!c.no_masquerade)
                .icc(c.icc)
                .routed(c.routed)
                .driver(c.driver.parse()?)
                .dns(!c.no_dns)
                .vni(c.vni)
                .build()?;
            let mut engine = context::open(state_dir)?;
            let detail = engine.network_create(NetworkRequest { spec })?;
            print(format, &detail, detail_table)?;
            return Ok(Some(engine));
        }
        NetworkCmd::Ls => {
            let nets = context::open(state_dir)?.network_ls()?;
            print(format, &nets, |nets| {
                let mut t = Table::new(&[
                    "NAME",
                    "DRIVER",
                    "BRIDGE",
                    "SUBNETS",
                    "ENDPOINTS",
                    "INTERNAL",
                ]);
                for n in nets {
                    t.row(vec![
                        n.name.clone(),
                        n.driver.clone(),
                        n.bridge.clone(),
                        list(&n.subnets),
                        n.endpoints.to_string(),
                        n.internal.to_string(),
                    ]);
                }
                t.render()
            })?;
        }
        NetworkCmd::Inspect { name } => {
            let detail = context::open(state_dir)?.network_inspect(&NetName::new(&name)?)?;
            print(format, &detail, detail_table)?;
        }
        NetworkCmd::Rm { name, force } => {
            let name = NetName::new(&name)?;
            context::open(state_dir)?.network_rm(&name, force)?;
            crate::output::note(name.as_str());
        }
        NetworkCmd::Connect(c) => {
            let req = ConnectRequest {
                network: NetName::new(&c.network)?,
                netns: ns_arg(&c.netns, false)?,
                ips: c
                    .ips
                    .iter()
                    .map(|s| parse_ip("address", s))
                    .collect::<Result<Vec<_>, _>>()?,
                mac: c.mac.as_deref().map(str::parse).transpose()?,
                ifname: c.ifname.as_deref().map(IfName::new).transpose()?,
                container_id: None,
                publish: super::port_specs(&c.publish)?,
                aliases: c.aliases,
            };
            let mut engine = context::open(state_dir)?;
            let ep = engine.connect(req)?;
            print(format, &ep, |e| endpoints_table(std::slice::from_ref(e)))?;
            return Ok(Some(engine));
        }
        NetworkCmd::Disconnect { network, netns } => {
            let network = NetName::new(&network)?;
            let ns = ns_arg(&netns, false)?;
            context::open(state_dir)?.disconnect(&network, &ns)?;
        }
    }
    Ok(None)
}
