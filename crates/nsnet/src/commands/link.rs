//! `nsnet link add|ls|rm`.

use std::path::Path;

use anyhow::Result;
use nsnet_core::model::parse_cidr;
use nsnet_core::names::IfName;
use nsnet_engine::LinkRequest;
use nsnet_engine::views::LinkView;

use super::ns_arg;
use crate::cli::{Format, LinkCmd, LinkSet};
use crate::context;
use crate::output::{Table, print};
use nsnet_core::shaping::Shaping;

fn end(ns: &str, ifname: &str, addr: &Option<ipnet::IpNet>) -> String {
    match addr {
        Some(a) => format!("{ns}:{ifname} {a}"),
        None => format!("{ns}:{ifname}"),
    }
}

fn table(links: &[LinkView]) -> String {
    let mut t = Table::new(&["END A", "END B", "STATE"]);
    for l in links {
        t.row(vec![
            end(&l.netns_a, &l.ifname_a, &l.addr_a),
            end(&l.netns_b, &l.ifname_b, &l.addr_b),
            l.state.clone(),
        ]);
    }
    t.render()
}

/// Shaping from `link set` flags; no flag at all is a usage mistake, not "clear".
fn shaping_args(a: &LinkSet) -> Result<Shaping> {
    use nsnet_core::shaping::{parse_duration, parse_loss, parse_rate};
    let s = Shaping {
        delay_us: a
            .delay
            .as_deref()
            .map(|d| parse_duration("delay", d))
            .transpose()?,
        jitter_us: a
            .jitter
            .as_deref()
            .map(|d| parse_duration("jitter", d))
            .transpose()?,
        loss_ppm: a.loss.as_deref().map(parse_loss).transpose()?,
        rate_bps: a.rate.as_deref().map(parse_rate).transpose()?,
        burst_bits: None,
    };
    if s.is_empty() && !a.clear {
        anyhow::bail!(
            "link set needs at least one of --delay, --jitter, --loss, --rate, or --clear"
        );
    }
    Ok(s)
}

pub fn run(state_dir: &Path, format: Format, cmd: LinkCmd) -> Result<()> {
    match cmd {
        LinkCmd::Add(a) => {
            if a.addrs.len() > 2 {
                anyhow::bail!(
                    "link add takes at most two --addr (end A's, then end B's), got {}",
                    a.addrs.len()
                );
            }
            let addrs = a
                .addrs
                .iter()
                .map(|s| parse_cidr("link address", s))
                .collect::<Result<Vec<_>, _>>()?;
            let req = LinkRequest {
                a: ns_arg(&a.netns_a, true)?,
                b: ns_arg(&a.netns_b, true)?,
                ifname_a: a.ifname_a.as_deref().map(IfName::new).transpose()?,
                ifname_b: a.ifname_b.as_deref().map(IfName::new).transpose()?,
                addr_a: addrs.first().copied(),
                addr_b: addrs.get(1).copied(),
                mtu: a.mtu,
            };
            let view = context::open(state_dir)?.link_add(req)?;
            print(format, &view, |v| table(std::slice::from_ref(v)))?;
        }
        LinkCmd::Set(a) => {
            let ns = ns_arg(&a.netns, true)?;
            let ifname = IfName::new(&a.ifname)?;
            let shaping = shaping_args(&a)?;
            context::open(state_dir)?.link_shape(&ns, &ifname, shaping)?;
            crate::output::note(&format!("{} in netns {}: {shaping}", a.ifname, a.netns));
        }
        LinkCmd::Ls => {
            let links = context::open(state_dir)?.link_ls()?;
            print(format, &links, |l| table(l))?;
        }
        LinkCmd::Rm {
            netns_a,
            netns_b,
            ifname,
        } => {
            let a = ns_arg(&netns_a, true)?;
            let b = ns_arg(&netns_b, true)?;
            let ifname = ifname.as_deref().map(IfName::new).transpose()?;
            context::open(state_dir)?.link_rm(&a, &b, ifname.as_ref())?;
        }
    }
    Ok(())
}
