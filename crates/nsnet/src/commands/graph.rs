//! `nsnet graph [-f FILE] [--svg]`: the live topology as Graphviz DOT (or SVG).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use nsnet_core::ops::NsRef;

use crate::context;
use crate::topology::load;

fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// DOT text of nsnet's live objects (only those a file declares, when given one).
pub fn dot(state_dir: &Path, file: Option<&Path>) -> Result<String> {
    let only = file.map(load).transpose()?;
    let mut engine = context::open(state_dir)?;
    let wanted_ns: Option<BTreeSet<String>> = only.as_ref().map(|d| {
        let mut s: BTreeSet<String> = d.namespaces.iter().map(ToString::to_string).collect();
        s.insert("host".into());
        s
    });
    let wanted_net: Option<BTreeSet<String>> = only.as_ref().map(|d| {
        d.networks
            .iter()
            .map(|n| n.spec.name().to_string())
            .collect()
    });
    let ns_ok = |n: &str| wanted_ns.as_ref().is_none_or(|w| w.contains(n));
    let net_ok = |n: &str| wanted_net.as_ref().is_none_or(|w| w.contains(n));

    let mut out = String::from(
        "graph nsnet {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n  \"host\" [shape=box3d, label=\"host\"];\n",
    );
    let mut drawn_ns = BTreeSet::new();
    let mut node = |out: &mut String, name: &str, extra: &str| {
        if name != "host" && drawn_ns.insert(name.to_string()) {
            out.push_str(&format!(
                "  {} [shape=box, label={}];\n",
                q(&format!("ns:{name}")),
                q(&format!("{name}{extra}"))
            ));
        }
    };
    let ns_id = |name: &str| {
        if name == "host" {
            q("host")
        } else {
            q(&format!("ns:{name}"))
        }
    };
    let ports = engine.port_ls(None)?;
    for s in engine.netns_ls()? {
        if ns_ok(&s.name) {
            let published: Vec<String> = ports
                .iter()
                .filter(|p| p.netns == s.name)
                .map(|p| format!("\\n{}", p.mapping))
                .collect();
            node(&mut out, &s.name, &published.concat());
        }
    }
    for n in engine.network_ls()? {
        if !net_ok(&n.name) {
            continue;
        }
        let d = engine.network_inspect(&nsnet_core::names::NetName::new(&n.name)?)?;
        let subnets: Vec<String> = d.subnets.iter().map(|s| s.cidr.to_string()).collect();
        out.push_str(&format!(
            "  {} [shape=ellipse, style=filled, fillcolor=\"#e8eefc\", label={}];\n",
            q(&format!("net:{}", d.name)),
            q(&format!(
                "{}\\nbridge {}\\n{}{}",
                d.name,
                d.bridge,
                subnets.join("\\n"),
                if d.internal { "\\ninternal" } else { "" }
            ))
        ));
        let gws: Vec<String> = d.subnets.iter().map(|s| s.gateway.to_string()).collect();
        out.push_str(&format!(
            "  \"host\" -- {} [style=dashed, label={}];\n",
            q(&format!("net:{}", d.name)),
            q(&format!("gw {}", gws.join(", ")))
        ));
        for e in &d.endpoints {
            if !ns_ok(&e.netns) {
                continue;
            }
            node(&mut out, &e.netns, "");
            let addrs: Vec<String> = e.addrs.iter().map(|a| a.addr().to_string()).collect();
            out.push_str(&format!(
                "  {} -- {} [label={}];\n",
                ns_id(&e.netns),
                q(&format!("net:{}", d.name)),
                q(&format!("{} {}", e.ifname, addrs.join(" ")))
            ));
        }
    }
    for l in engine.link_ls()? {
        if !ns_ok(&l.netns_a) || !ns_ok(&l.netns_b) {
            continue;
        }
        node(&mut out, &l.netns_a, "");
        node(&mut out, &l.netns_b, "");
        let shaping = |ns: &str, ifname: &str, engine: &mut context::LiveEngine| -> String {
            let r = if ns == "host" {
                NsRef::Host
            } else {
                NsRef::Named(ns.to_string())
            };
            engine
                .inspect_netns(&r)
                .ok()
                .and_then(|d| d.interfaces.into_iter().find(|i| i.name == ifname))
                .and_then(|i| i.shaping)
                .map(|s| format!("\\n{ifname}: {s}"))
                .unwrap_or_default()
        };
        let sa = shaping(&l.netns_a, &l.ifname_a, &mut engine);
        let sb = shaping(&l.netns_b, &l.ifname_b, &mut engine);
        let addr = |a: &Option<ipnet::IpNet>| a.map(|a| format!(" {a}")).unwrap_or_default();
        out.push_str(&format!(
            "  {} -- {} [label={}];\n",
            ns_id(&l.netns_a),
            ns_id(&l.netns_b),
            q(&format!(
                "{}{} — {}{}{sa}{sb}",
                l.ifname_a,
                addr(&l.addr_a),
                l.ifname_b,
                addr(&l.addr_b)
            ))
        ));
    }
    out.push_str("}\n");
    Ok(out)
}

pub fn run(state_dir: &Path, file: Option<&Path>, svg: bool) -> Result<()> {
    let text = dot(state_dir, file)?;
    if !svg {
        print!("{text}");
        return Ok(());
    }
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .spawn()
        .context("run Graphviz `dot` for --svg (Debian: apt-get install graphviz)")?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(text.as_bytes())?;
    let status = child.wait()?;
    anyhow::ensure!(status.success(), "dot -Tsvg failed: {status}");
    Ok(())
}
