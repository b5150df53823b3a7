//! `nsnet inspect NETNS [--check]`.

use std::path::Path;

use anyhow::Result;
use nsnet_core::endpoint::RoutePolicy;
use nsnet_core::names::NetName;
use nsnet_core::ops::NsRef;
use nsnet_engine::views::NetnsDetail;
use nsnet_engine::{VerifyRequest, Which};
use serde::Serialize;

use super::ns_arg;
use crate::cli::Format;
use crate::context::{self, LiveEngine};
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

/// What `--check` found on one endpoint.
#[derive(Debug, Serialize)]
struct Finding {
    network: String,
    ifname: String,
    problems: Vec<String>,
}

fn findings_table(findings: &Vec<Finding>) -> String {
    let mut t = Table::new(&["NETWORK", "INTERFACE", "PROBLEM"]);
    for f in findings {
        for p in &f.problems {
            t.row(vec![f.network.clone(), f.ifname.clone(), p.clone()]);
        }
    }
    if findings.iter().all(|f| f.problems.is_empty()) {
        return format!("{} endpoint(s), no problems\n", findings.len());
    }
    t.render()
}

/// Verifies every endpoint of the namespace; an error (exit 1) when any has a problem.
fn check(engine: &mut LiveEngine, format: Format, ns: &NsRef) -> Result<()> {
    let endpoints = engine.inspect_netns(ns)?.networks;
    let mut findings = Vec::with_capacity(endpoints.len());
    for ep in endpoints {
        let verified = engine.verify_endpoint(&VerifyRequest {
            network: NetName::new(&ep.network)?,
            endpoint: Which::Netns(ns.clone()),
            routes: RoutePolicy::Primary,
        })?;
        findings.push(Finding {
            network: ep.network,
            ifname: ep.ifname,
            problems: verified.problems.iter().map(ToString::to_string).collect(),
        });
    }
    print(format, &findings, findings_table)?;
    let n: usize = findings.iter().map(|f| f.problems.len()).sum();
    if n > 0 {
        anyhow::bail!(
            "{n} problem(s) in netns {ns}: `nsnet repair` restores firewall elements; disconnecting and connecting again rebuilds an endpoint"
        );
    }
    Ok(())
}

pub fn run(state_dir: &Path, format: Format, netns: &str, check: bool) -> Result<()> {
    let ns = ns_arg(netns, true)?;
    let mut engine = context::open(state_dir)?;
    if check {
        return self::check(&mut engine, format, &ns);
    }
    let detail = engine.inspect_netns(&ns)?;
    print(format, &detail, table)
}
