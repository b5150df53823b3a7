//! `nsnet graph [-f FILE] [--svg|--html]`: the live topology as Graphviz DOT, SVG or a page.
//!
//! Each network is a cluster (its border shows isolation: dashed for internal, green for routed)
//! holding its bridge; namespaces and containers are nodes outside the clusters, because one
//! namespace may sit on several networks. Everything is sorted, so the same state always draws
//! the same picture.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use nsnet_core::ops::NsRef;

mod html;

use crate::context;
use crate::topology::load;

/// A DOT string literal. Labels are built with real newlines; DOT wants the two-character
/// escape `\n` for a line break, so only quotes and other backslashes are escaped.
fn q(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

fn ns_ref(name: &str) -> NsRef {
    if name == "host" {
        NsRef::Host
    } else {
        NsRef::Named(name.to_string())
    }
}

fn ns_id(name: &str) -> String {
    if name == "host" {
        q("host")
    } else {
        q(&format!("ns:{name}"))
    }
}

/// What a namespace node shows: published ports, routes, whether a container owns it.
#[derive(Default)]
struct NsFacts {
    container: bool,
    ports: Vec<String>,
    routes: Vec<String>,
    details: Vec<String>,
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

    let mut networks = Vec::new();
    let mut net_names: Vec<String> = engine.network_ls()?.into_iter().map(|n| n.name).collect();
    net_names.sort();
    for name in net_names.iter().filter(|n| net_ok(n)) {
        networks.push(engine.network_inspect(&nsnet_core::names::NetName::new(name)?)?);
    }
    let mut links = engine.link_ls()?;
    links.retain(|l| ns_ok(&l.netns_a) && ns_ok(&l.netns_b));
    links.sort_by(|a, b| (&a.netns_a, &a.ifname_a).cmp(&(&b.netns_a, &b.ifname_a)));

    // Every namespace drawn: the listed ones plus any an endpoint or a link names.
    let mut facts: BTreeMap<String, NsFacts> = BTreeMap::new();
    for s in engine.netns_ls()? {
        if ns_ok(&s.name) {
            facts.entry(s.name).or_default();
        }
    }
    for d in &networks {
        for e in d.endpoints.iter().filter(|e| ns_ok(&e.netns)) {
            let f = facts.entry(e.netns.clone()).or_default();
            f.container |= e.container_id.is_some();
            f.details.push(format!(
                "{} on {}: host side {}, mac {}",
                e.ifname,
                d.name,
                e.host_ifname,
                e.mac.as_deref().unwrap_or("-")
            ));
        }
    }
    for l in &links {
        facts.entry(l.netns_a.clone()).or_default();
        facts.entry(l.netns_b.clone()).or_default();
    }
    for p in engine.port_ls(None)? {
        if let Some(f) = facts.get_mut(&p.netns) {
            f.ports.push(format!("publish {}", p.mapping));
        }
    }
    for f in facts.values_mut() {
        f.ports.sort();
        f.details.sort();
    }
    let mut host_routes = Vec::new();
    for (name, f) in facts
        .iter_mut()
        .map(|(n, f)| (n.as_str(), Some(f)))
        .chain([("host", None)])
    {
        // Only routes nsnet made: the kernel's connected routes repeat the addresses shown.
        let mut routes: Vec<String> = engine
            .route_ls(&ns_ref(name))
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.managed_by.is_some())
            .map(|r| {
                let dest = if r.route.dest.prefix_len() == 0 {
                    "default".to_string()
                } else {
                    r.route.dest.to_string()
                };
                match r.route.via {
                    Some(via) => format!("route {dest} via {via}"),
                    None => format!("route {dest}"),
                }
            })
            .collect();
        routes.sort();
        match f {
            Some(f) => f.routes = routes,
            None => host_routes = routes,
        }
    }

    let mut out = String::from(
        "graph nsnet {\n  rankdir=LR;\n  newrank=true;\n  node [fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n",
    );
    let host_label = std::iter::once("host".to_string())
        .chain(host_routes.iter().cloned())
        .collect::<Vec<_>>()
        .join("\n");
    out.push_str(&format!(
        "  \"host\" [shape=box3d, style=filled, fillcolor=\"#f4f4f4\", label={}, tooltip={}];\n",
        q(&host_label),
        q("the machine's own namespace")
    ));
    for (name, f) in &facts {
        if name == "host" {
            continue;
        }
        let lines: Vec<String> = std::iter::once(name.clone())
            .chain(f.container.then(|| "container".to_string()))
            .chain(f.ports.iter().cloned())
            .chain(f.routes.iter().cloned())
            .collect();
        let (shape, fill) = if f.container {
            ("component", "#fff4e0")
        } else {
            ("box", "#ffffff")
        };
        out.push_str(&format!(
            "  {} [shape={shape}, style=filled, fillcolor=\"{fill}\", label={}, tooltip={}];\n",
            ns_id(name),
            q(&lines.join("\n")),
            q(&[lines.clone(), f.details.clone()].concat().join("\n"))
        ));
    }
    for d in &networks {
        let (style, color) = if d.internal {
            ("rounded,dashed", "#c0392b")
        } else if d.routed {
            ("rounded,bold", "#2e7d32")
        } else {
            ("rounded", "#4a6fa5")
        };
        let mut lines = vec![format!("driver {}, {}", d.driver, d.bridge)];
        lines.extend(
            d.subnets
                .iter()
                .map(|s| format!("{} gw {}", s.cidr, s.gateway)),
        );
        let flags = [
            (d.internal, "internal"),
            (d.routed, "routed"),
            (!d.masquerade && !d.internal, "no masquerade"),
            (!d.icc, "icc off"),
        ];
        lines.extend(flags.iter().filter(|f| f.0).map(|f| f.1.to_string()));
        if let Some(mtu) = d.mtu {
            lines.push(format!("mtu {mtu}"));
        }
        let details = q(&format!(
            "network {}, state {}\n{}\nmasquerade {}, icc {}, {} endpoint(s)",
            d.name,
            d.state,
            lines.join("\n"),
            d.masquerade,
            d.icc,
            d.endpoints.len()
        ));
        out.push_str(&format!(
            "  subgraph {} {{\n    label={}; tooltip={details}; style=\"{style}\"; color=\"{color}\"; fontname=\"Helvetica\";\n    {} [shape=box, style=\"rounded,filled\", fillcolor=\"#e8eefc\", label={}, tooltip={details}];\n  }}\n",
            q(&format!("cluster_net_{}", d.name)),
            q(&d.name),
            q(&format!("net:{}", d.name)),
            q(&lines.join("\n")),
        ));
        // The gateway lives on the host's bridge; an internal network's edge is dashed since
        // nothing beyond the network is reached through it.
        let gws: Vec<String> = d.subnets.iter().map(|s| s.gateway.to_string()).collect();
        out.push_str(&format!(
            "  \"host\" -- {} [style={}, color=\"{color}\", label={}];\n",
            q(&format!("net:{}", d.name)),
            if d.internal { "dashed" } else { "solid" },
            q(&format!("gw {}", gws.join(", ")))
        ));
        let mut eps: Vec<_> = d.endpoints.iter().filter(|e| ns_ok(&e.netns)).collect();
        eps.sort_by(|a, b| (&a.netns, &a.ifname).cmp(&(&b.netns, &b.ifname)));
        for e in eps {
            let addrs: Vec<String> = e.addrs.iter().map(|a| a.addr().to_string()).collect();
            let label = format!("{} {}", e.ifname, addrs.join(" "));
            // Bridge first, so Graphviz ranks host -> networks -> namespaces left to right.
            out.push_str(&format!(
                "  {} -- {} [label={}, tooltip={}{}];\n",
                q(&format!("net:{}", d.name)),
                ns_id(&e.netns),
                q(&label),
                q(&format!(
                    "{} in {} on {}{}",
                    label,
                    e.netns,
                    d.name,
                    if e.primary {
                        " (primary: default route)"
                    } else {
                        ""
                    }
                )),
                if e.primary { ", penwidth=2" } else { "" }
            ));
        }
    }
    for l in &links {
        let shaping = |ns: &str, ifname: &str, engine: &mut context::LiveEngine| -> String {
            engine
                .inspect_netns(&ns_ref(ns))
                .ok()
                .and_then(|d| d.interfaces.into_iter().find(|i| i.name == ifname))
                .and_then(|i| i.shaping)
                .map(|s| format!("\n{ifname}: {s}"))
                .unwrap_or_default()
        };
        let sa = shaping(&l.netns_a, &l.ifname_a, &mut engine);
        let sb = shaping(&l.netns_b, &l.ifname_b, &mut engine);
        let addr = |a: &Option<ipnet::IpNet>| a.map(|a| format!(" {a}")).unwrap_or_default();
        let label = format!(
            "{}{} — {}{}{sa}{sb}",
            l.ifname_a,
            addr(&l.addr_a),
            l.ifname_b,
            addr(&l.addr_b)
        );
        // A link between two namespaces must not push one of them a rank further right; a link
        // to the host should, so the namespace sits beside the host rather than off the page.
        let to_host = l.netns_a == "host" || l.netns_b == "host";
        out.push_str(&format!(
            "  {} -- {} [color=\"#7d3c98\", constraint={to_host}, label={}, tooltip={}];\n",
            ns_id(&l.netns_a),
            ns_id(&l.netns_b),
            q(&label),
            q(&format!(
                "link {} — {}, state {}\n{label}",
                l.netns_a, l.netns_b, l.state
            ))
        ));
    }
    out.push_str("}\n");
    Ok(out)
}

/// What `nsnet graph` prints.
pub enum Output {
    Dot,
    Svg,
    Html,
}

pub fn run(state_dir: &Path, file: Option<&Path>, output: Output) -> Result<()> {
    let text = dot(state_dir, file)?;
    match output {
        Output::Dot => print!("{text}"),
        Output::Svg => print!("{}", svg(&text)?),
        Output::Html => print!("{}", html::page(&svg(&text)?)),
    }
    Ok(())
}

/// The DOT text rendered by Graphviz.
fn svg(dot: &str) -> Result<String> {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("run Graphviz `dot` to render SVG (Debian: apt-get install graphviz)")?;
    // Graphviz reads all input before writing, so writing first cannot deadlock on the pipe.
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(dot.as_bytes())?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(out.status.success(), "dot -Tsvg failed: {}", out.status);
    String::from_utf8(out.stdout).context("dot -Tsvg wrote invalid UTF-8")
}
