//! `nsnet inspect NETNS`.

use std::path::Path;

use anyhow::Result;
use nsnet_engine::views::NetnsDetail;

use super::ns_arg;
use crate::cli::Format;
use crate::context;
use crate::output::{Table, list, print};

fn table(d: &NetnsDetail) -> String {
    let mut out = format!("Namespace: {}\n\n", d.name);
    let mut t = Table::new(&[
        "INTERFACE",
        "STATE",
        "MAC",
        "MTU",
        "MASTER",
        "ADDRESSES",
        "SHAPING",
    ]);
    for i in &d.interfaces {
        t.row(vec![
            i.name.clone(),
            if i.up { "up".into() } else { "down".into() },
            i.mac.clone().unwrap_or_else(|| "-".into()),
            i.mtu.map_or("-".into(), |m| m.to_string()),
            i.master.clone().unwrap_or_else(|| "-".into()),
            list(&i.addrs),
            i.shaping.map_or("-".into(), |s| s.to_string()),
        ]);
    }
    out.push_str(&t.render());
    out.push('\n');
    out.push_str(&super::route::routes_table(&d.routes));
    if !d.networks.is_empty() {
        out.push('\n');
        out.push_str(&super::network::endpoints_table(&d.networks));
    }
    if !d.links.is_empty() {
        out.push('\n');
        let mut t = Table::new(&["LINK", "PEER NETNS", "PEER IFNAME"]);
        for l in &d.links {
            let (mine, peer_ns, peer_if) = if l.netns_a == d.name {
                (&l.ifname_a, &l.netns_b, &l.ifname_b)
            } else {
                (&l.ifname_b, &l.netns_a, &l.ifname_a)
            };
            t.row(vec![mine.clone(), peer_ns.clone(), peer_if.clone()]);
        }
        out.push_str(&t.render());
    }
    out
}

pub fn run(state_dir: &Path, format: Format, netns: &str) -> Result<()> {
    let ns = ns_arg(netns, true)?;
    let detail = context::open(state_dir)?.inspect_netns(&ns)?;
    print(format, &detail, table)
}
