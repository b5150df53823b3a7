//! The topology file face: a YAML file (containerlab users write YAML) turned into the core's
//! `Desired` value. Every error names the file, the line and the field, and nothing is applied
//! from an invalid file.

mod locate;
mod unique;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path as FsPath;

use nsnet_core::CoreError;
use nsnet_core::model::{Mac, NetworkSpec, overlaps, parse_cidr, parse_ip};
use nsnet_core::names::{HOST, IfName, NetName, NsName, link_end};
use nsnet_core::port::{PortMapping, PortSpec};
use nsnet_core::shaping::{Shaping, parse_duration, parse_loss, parse_rate};
use nsnet_core::topology::{
    Desired, DesiredEndpoint, DesiredLink, DesiredNetwork, LinkEndDef, RouteDef,
};
use serde::Deserialize;

pub use locate::{Path, locate};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default)]
    networks: BTreeMap<String, NetworkDef>,
    #[serde(default)]
    links: Vec<LinkDef>,
    #[serde(default)]
    routes: Vec<RouteDefRaw>,
    #[serde(default)]
    containers: BTreeMap<String, ContainerDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContainerDef {
    command: Vec<String>,
    #[serde(default)]
    networks: Vec<String>,
    #[serde(default)]
    publish: Vec<String>,
    hostname: Option<String>,
    #[serde(default)]
    env: Vec<String>,
    rootfs: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkDef {
    subnets: Vec<String>,
    #[serde(default)]
    gateways: Vec<String>,
    bridge: Option<String>,
    mtu: Option<u32>,
    #[serde(default)]
    internal: bool,
    #[serde(default = "yes")]
    masquerade: bool,
    #[serde(default = "yes")]
    icc: bool,
    #[serde(default)]
    routed: bool,
    #[serde(default)]
    endpoints: BTreeMap<String, Option<EndpointDef>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointDef {
    #[serde(default)]
    ip: Vec<String>,
    mac: Option<String>,
    ifname: Option<String>,
    #[serde(default)]
    publish: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkDef {
    a: EndDef,
    b: EndDef,
    mtu: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndDef {
    netns: String,
    ifname: Option<String>,
    addr: Option<String>,
    delay: Option<String>,
    jitter: Option<String>,
    loss: Option<String>,
    rate: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteDefRaw {
    netns: String,
    dest: String,
    via: String,
}

/// A topology file that cannot be used: where and why.
#[derive(Debug)]
pub struct FileError {
    pub file: String,
    pub line: Option<usize>,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: ", self.file)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for FileError {}

struct Ctx<'a> {
    file: String,
    src: &'a str,
}

impl Ctx<'_> {
    fn err(&self, path: &Path, message: impl std::fmt::Display) -> FileError {
        FileError {
            file: self.file.clone(),
            line: locate(self.src, path),
            field: path.to_string(),
            message: message.to_string(),
        }
    }

    fn at<T>(&self, path: &Path, r: Result<T, CoreError>) -> Result<T, FileError> {
        r.map_err(|e| self.err(path, e))
    }
}

/// Reads and validates a topology file.
pub fn load(path: &FsPath) -> Result<Desired, FileError> {
    let file = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|e| FileError {
        file: file.clone(),
        line: None,
        field: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    parse(&file, &src)
}

/// Parses and validates topology text (`file` names it in errors).
pub fn parse(file: &str, src: &str) -> Result<Desired, FileError> {
    let yaml_error = |e: serde_norway::Error| FileError {
        file: file.to_string(),
        line: e.location().map(|l| l.line()),
        field: String::new(),
        message: e
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    // First pass: a repeated key anywhere is an error (not last-wins), at the key's line.
    serde_norway::from_str::<unique::NoDuplicates>(src).map_err(yaml_error)?;
    let raw: File = serde_norway::from_str(src).map_err(yaml_error)?;
    let ctx = Ctx {
        file: file.to_string(),
        src,
    };
    validate(&ctx, raw)
}

fn ns_ref(
    ctx: &Ctx<'_>,
    declared: &[NsName],
    path: &Path,
    name: &str,
    allow_host: bool,
) -> Result<String, FileError> {
    if allow_host && name == HOST {
        return Ok(HOST.to_string());
    }
    if !declared.iter().any(|d| d.as_str() == name) {
        return Err(ctx.err(
            path,
            format!(
                "namespace {name:?} is not declared under `namespaces`{}",
                if allow_host { " (or use \"host\")" } else { "" }
            ),
        ));
    }
    Ok(name.to_string())
}

/// The key of a network definition that a refusal of the whole definition points at.
fn spec_field(e: &CoreError, no_subnets: bool) -> &'static str {
    match e {
        CoreError::GatewayOutside { .. } => "gateways",
        CoreError::InvalidValue { what: "mtu", .. } => "mtu",
        // Refused as a whole: for want of subnets, or for being internal and routed.
        CoreError::InvalidValue {
            what: "network", ..
        } if !no_subnets => "routed",
        _ => "subnets",
    }
}

fn validate(ctx: &Ctx<'_>, raw: File) -> Result<Desired, FileError> {
    let root = Path::default();
    ctx.at(&root.key("name"), NetName::new(&raw.name))?;
    let mut namespaces: Vec<NsName> = Vec::new();
    for (i, n) in raw.namespaces.iter().enumerate() {
        let p = root.key("namespaces").index(i);
        let name = ctx.at(&p, NsName::new(n))?;
        if namespaces.contains(&name) {
            return Err(ctx.err(&p, format!("namespace {n:?} is listed twice")));
        }
        namespaces.push(name);
    }
    // Interfaces per namespace, to refuse two objects wanting one name.
    let mut ifnames: Vec<(String, String, Path)> = Vec::new();
    let mut claim = |ns: &str, ifname: &str, p: &Path| -> Result<(), FileError> {
        if let Some((_, _, first)) = ifnames.iter().find(|(n, i, _)| n == ns && i == ifname) {
            return Err(ctx.err(
                p,
                format!("interface {ifname} in namespace {ns} is also used at {first}"),
            ));
        }
        ifnames.push((ns.to_string(), ifname.to_string(), p.clone()));
        Ok(())
    };
    let mut networks: Vec<DesiredNetwork> = Vec::new();
    for (name, def) in &raw.networks {
        let p = root.key("networks").key(name);
        let net_name = ctx.at(&p, NetName::new(name))?;
        let mut subnets = Vec::new();
        for (i, s) in def.subnets.iter().enumerate() {
            subnets.push(ctx.at(&p.key("subnets").index(i), parse_cidr("subnet", s))?);
        }
        let mut gateways = Vec::new();
        for (i, g) in def.gateways.iter().enumerate() {
            gateways.push(ctx.at(&p.key("gateways").index(i), parse_ip("gateway", g))?);
        }
        let bridge = match &def.bridge {
            Some(b) => Some(ctx.at(&p.key("bridge"), IfName::new(b))?),
            None => None,
        };
        let spec = NetworkSpec::builder(net_name.clone())
            .subnets(subnets)
            .gateways(gateways)
            .bridge(bridge)
            .mtu(def.mtu)
            .internal(def.internal)
            .masquerade(def.masquerade)
            .icc(def.icc)
            .routed(def.routed)
            .build();
        let spec = spec.map_err(|e| ctx.err(&p.key(spec_field(&e, def.subnets.is_empty())), e))?;
        for other in &networks {
            for s in &spec.subnets {
                if let Some(o) = other
                    .spec
                    .subnets
                    .iter()
                    .find(|o| overlaps(&o.cidr, &s.cidr))
                {
                    return Err(ctx.err(
                        &p.key("subnets"),
                        format!(
                            "subnet {} overlaps {} of network {}",
                            s.cidr, o.cidr, other.spec.name
                        ),
                    ));
                }
            }
            if other.spec.bridge == spec.bridge {
                return Err(ctx.err(
                    &p,
                    format!(
                        "bridge {} is also used by network {}",
                        spec.bridge, other.spec.name
                    ),
                ));
            }
        }
        let mut endpoints = Vec::new();
        let mut n_in_ns: BTreeMap<String, usize> = BTreeMap::new();
        for (ns, ep) in &def.endpoints {
            let ep_path = p.key("endpoints").key(ns);
            let netns = NsName::new(&ns_ref(ctx, &namespaces, &ep_path, ns, false)?)
                .map_err(|e| ctx.err(&ep_path, e))?;
            let ep = ep
                .as_ref()
                .map_or_else(EndpointDef::default, |e| EndpointDef {
                    ip: e.ip.clone(),
                    mac: e.mac.clone(),
                    ifname: e.ifname.clone(),
                    publish: e.publish.clone(),
                });
            let mut ips: Vec<IpAddr> = Vec::new();
            for (i, ip) in ep.ip.iter().enumerate() {
                let ipp = ep_path.key("ip").index(i);
                let ip = ctx.at(&ipp, parse_ip("address", ip))?;
                match spec.subnet_of(ip) {
                    Some(s) => ctx.at(&ipp, s.check_host(&spec.name, ip))?,
                    None => {
                        return Err(ctx.err(
                            &ipp,
                            format!("address {ip} is outside the subnets of network {name}"),
                        ));
                    }
                }
                ips.push(ip);
            }
            let mac = match &ep.mac {
                Some(m) => Some(ctx.at(&ep_path.key("mac"), m.parse::<Mac>())?),
                None => None,
            };
            let ifname = match &ep.ifname {
                Some(i) => Some(ctx.at(&ep_path.key("ifname"), IfName::new(i))?),
                None => None,
            };
            let mut publish: Vec<PortMapping> = Vec::new();
            for (i, spec_text) in ep.publish.iter().enumerate() {
                let pp = ep_path.key("publish").index(i);
                publish.extend(ctx.at(&pp, spec_text.parse::<PortSpec>())?.mappings());
            }
            let _ = &mut n_in_ns;
            endpoints.push(DesiredEndpoint {
                network: net_name.clone(),
                netns,
                ips,
                mac,
                ifname,
                publish,
            });
        }
        networks.push(DesiredNetwork { spec, endpoints });
    }
    // Explicit endpoint interface names must not collide; defaults (eth0, eth1...) are
    // chosen at connect time.
    for n in &networks {
        for e in &n.endpoints {
            if let Some(i) = &e.ifname {
                let p = root
                    .key("networks")
                    .key(n.spec.name.as_str())
                    .key("endpoints")
                    .key(e.netns.as_str())
                    .key("ifname");
                claim(e.netns.as_str(), i.as_str(), &p)?;
            }
        }
    }
    let mut links = Vec::new();
    for (i, l) in raw.links.iter().enumerate() {
        let p = root.key("links").index(i);
        let a_ns = ns_ref(ctx, &namespaces, &p.key("a").key("netns"), &l.a.netns, true)?;
        let b_ns = ns_ref(ctx, &namespaces, &p.key("b").key("netns"), &l.b.netns, true)?;
        if a_ns == b_ns {
            return Err(ctx.err(
                &p,
                "both ends are in the same namespace; a link joins two different namespaces",
            ));
        }
        let end = |e: &EndDef, ns: &str, peer: &str, ep: &Path| -> Result<LinkEndDef, FileError> {
            let ifname = match &e.ifname {
                Some(i) => ctx.at(&ep.key("ifname"), IfName::new(i))?,
                None => link_end(peer),
            };
            let addr = match &e.addr {
                Some(a) => Some(ctx.at(&ep.key("addr"), parse_cidr("link address", a))?),
                None => None,
            };
            let shaping = Shaping {
                delay_us: e
                    .delay
                    .as_deref()
                    .map(|d| ctx.at(&ep.key("delay"), parse_duration("delay", d)))
                    .transpose()?,
                jitter_us: e
                    .jitter
                    .as_deref()
                    .map(|d| ctx.at(&ep.key("jitter"), parse_duration("jitter", d)))
                    .transpose()?,
                loss_ppm: e
                    .loss
                    .as_deref()
                    .map(|d| ctx.at(&ep.key("loss"), parse_loss(d)))
                    .transpose()?,
                // The kernel counts bytes: keep the rate a whole number of bytes per second,
                // so what is read back equals what was asked.
                rate_bps: e
                    .rate
                    .as_deref()
                    .map(|d| ctx.at(&ep.key("rate"), parse_rate(d)).map(|r| r / 8 * 8))
                    .transpose()?,
            };
            ctx.at(ep, shaping.validate())?;
            Ok(LinkEndDef {
                netns: ns.to_string(),
                ifname,
                addr,
                shaping,
            })
        };
        let a = end(&l.a, &a_ns, &b_ns, &p.key("a"))?;
        let b = end(&l.b, &b_ns, &a_ns, &p.key("b"))?;
        claim(&a.netns, a.ifname.as_str(), &p.key("a"))?;
        claim(&b.netns, b.ifname.as_str(), &p.key("b"))?;
        links.push(DesiredLink { a, b, mtu: l.mtu });
    }
    let mut routes: Vec<RouteDef> = Vec::new();
    for (i, r) in raw.routes.iter().enumerate() {
        let p = root.key("routes").index(i);
        let netns = ns_ref(ctx, &namespaces, &p.key("netns"), &r.netns, false)?;
        let via = ctx.at(&p.key("via"), parse_ip("gateway", &r.via))?;
        let dest = ctx.at(&p.key("dest"), nsnet_engine::route_dest(&r.dest, via))?;
        if dest.addr().is_ipv4() != via.is_ipv4() {
            return Err(ctx.err(
                &p,
                format!(
                    "route {dest} via {via}: destination and gateway must be the same IP version"
                ),
            ));
        }
        if routes.iter().any(|o| o.netns == netns && o.dest == dest) {
            return Err(ctx.err(
                &p,
                format!("route {dest} in namespace {netns} is given twice"),
            ));
        }
        routes.push(RouteDef { netns, dest, via });
    }
    let mut containers = Vec::new();
    for (name, c) in &raw.containers {
        let p = root.key("containers").key(name);
        let cname = ctx.at(&p, NsName::new(name))?;
        if namespaces.contains(&cname) {
            return Err(ctx.err(&p, format!("{name:?} is both a namespace and a container; a container has its own namespace")));
        }
        if c.command.is_empty() {
            return Err(ctx.err(
                &p.key("command"),
                "a container needs a command, e.g. [sleep, infinity]",
            ));
        }
        let mut nets = Vec::new();
        for (i, n) in c.networks.iter().enumerate() {
            let np = p.key("networks").index(i);
            let arg = ctx.at(&np, n.parse::<nsnet_core::container::NetworkArg>())?;
            let Some(net) = networks.iter().find(|d| d.spec.name == arg.network) else {
                return Err(ctx.err(
                    &np,
                    format!("network {} is not declared under `networks`", arg.network),
                ));
            };
            if let Some(ip) = arg.ip {
                match net.spec.subnet_of(ip) {
                    Some(s) => ctx.at(&np, s.check_host(&net.spec.name, ip))?,
                    None => {
                        return Err(ctx.err(
                            &np,
                            format!(
                                "address {ip} is outside the subnets of network {}",
                                arg.network
                            ),
                        ));
                    }
                }
            }
            nets.push((arg.network, arg.ip));
        }
        let mut publish = Vec::new();
        for (i, spec_text) in c.publish.iter().enumerate() {
            publish.extend(
                ctx.at(&p.key("publish").index(i), spec_text.parse::<PortSpec>())?
                    .mappings(),
            );
        }
        if !publish.is_empty() && nets.is_empty() {
            return Err(ctx.err(
                &p.key("publish"),
                "publishing ports needs at least one network",
            ));
        }
        let mut env = Vec::new();
        for (i, kv) in c.env.iter().enumerate() {
            let ep = p.key("env").index(i);
            if !kv.contains('=') {
                return Err(ctx.err(
                    &ep,
                    "write KEY=VALUE (a file does not copy the caller's environment)",
                ));
            }
            env.extend(ctx.at(&ep, nsnet_core::container::parse_env(kv, |_| None))?);
        }
        if let Some(r) = &c.rootfs
            && !r.starts_with('/')
        {
            return Err(ctx.err(&p.key("rootfs"), "rootfs must be an absolute path"));
        }
        containers.push(nsnet_core::topology::DesiredContainer {
            name: cname,
            command: c.command.clone(),
            hostname: c.hostname.clone(),
            env,
            rootfs: c.rootfs.clone(),
            networks: nets,
            publish,
        });
    }
    Ok(Desired {
        name: raw.name,
        namespaces,
        networks,
        links,
        routes,
        containers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        parse("t.yaml", src).unwrap_err().to_string()
    }

    #[test]
    fn the_seed_example_parses() {
        let d = load(FsPath::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/seed.yaml"
        )))
        .unwrap();
        assert_eq!(d.name, "seed");
        assert_eq!(
            d.networks[0].spec.subnets[0].gateway.to_string(),
            "192.168.15.5"
        );
        assert!(
            d.routes
                .iter()
                .any(|r| r.dest.to_string() == "192.168.1.0/24")
        );
        let d = load(FsPath::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/three-tier.yaml"
        )))
        .unwrap();
        assert_eq!(d.networks.len(), 2);
    }

    #[test]
    fn a_repeated_key_is_refused_with_its_line_at_every_level() {
        let cases = [
            (
                "name: t\nnamespaces: [red]\nname: u\n",
                "t.yaml:3: ",
                "\"name\"",
            ),
            (
                "name: t\nnetworks:\n  lan: { subnets: [10.0.0.0/24] }\n  lan: { subnets: [10.1.0.0/24] }\n",
                "t.yaml:4: networks: ",
                "\"lan\"",
            ),
            (
                "name: t\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    internal: true\n    internal: false\n",
                "t.yaml:6: networks.lan: ",
                "\"internal\"",
            ),
            (
                "name: t\nnamespaces: [red]\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    endpoints:\n      red: { ip: [10.0.0.4] }\n      red: { ip: [10.0.0.5] }\n",
                "t.yaml:8: networks.lan.endpoints: ",
                "\"red\"",
            ),
            (
                "name: t\nnamespaces: [red]\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    endpoints:\n      red:\n        ip: [10.0.0.4]\n        ip: [10.0.0.5]\n",
                "t.yaml:9: networks.lan.endpoints.red: ",
                "\"ip\"",
            ),
            (
                "name: t\nnamespaces: [a, b]\nlinks:\n  - a: { netns: a, delay: 5ms, delay: 9ms }\n    b: { netns: b }\n",
                "t.yaml:4: links[0].a: ",
                "\"delay\"",
            ),
            (
                "name: t\nnamespaces: [a]\nroutes:\n  - netns: a\n    dest: 10.0.0.0/8\n    via: 10.0.0.1\n    dest: 10.9.0.0/16\n",
                "t.yaml:7: routes[0]: ",
                "\"dest\"",
            ),
            (
                "name: t\ncontainers:\n  api: { command: [sleep, infinity] }\n  api: { command: [sleep, '1'] }\n",
                "t.yaml:4: containers: ",
                "\"api\"",
            ),
            (
                "name: t\nnetworks:\n  lan: { subnets: [10.0.0.0/24] }\ncontainers:\n  api:\n    command: [sleep, infinity]\n    env: [A=1]\n    env: [A=2]\n",
                "t.yaml:8: containers.api: ",
                "\"env\"",
            ),
        ];
        for (src, prefix, key) in cases {
            let e = err(src);
            assert!(
                e.starts_with(prefix) && e.contains(&format!("key {key} is given twice")),
                "{e}"
            );
        }
    }

    #[test]
    fn errors_point_at_line_and_field() {
        let e = err(
            "name: t\nnamespaces: [red]\nnetworks:\n  lan:\n    subnets:\n      - 10.0.0.0/33\n",
        );
        assert!(
            e.starts_with("t.yaml:6: networks.lan.subnets[0]: invalid subnet"),
            "{e}"
        );
        let e = err(
            "name: t\nnamespaces: [red]\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    endpoints:\n      ghost: {}\n",
        );
        assert!(
            e.starts_with(
                "t.yaml:7: networks.lan.endpoints.ghost: namespace \"ghost\" is not declared"
            ),
            "{e}"
        );
        let e = err("name: t\nnamespaces: [red]\nbogus: 1\n");
        assert!(
            e.starts_with("t.yaml:3:") && e.contains("unknown field `bogus`"),
            "{e}"
        );
        let e = err(
            "name: t\nnamespaces: [a, b]\nlinks:\n  - a: { netns: a }\n    b: { netns: b, delay: soon }\n",
        );
        assert!(
            e.starts_with("t.yaml:5: links[0].b.delay: invalid delay"),
            "{e}"
        );
        let e = err(
            "name: t\nnamespaces: [a]\nroutes:\n  - { netns: a, dest: 10.0.0.0/8, via: fd00::1 }\n",
        );
        assert!(
            e.contains("routes[0]") && e.contains("same IP version"),
            "{e}"
        );
        let e = err(
            "name: t\nnetworks:\n  one: { subnets: [10.0.0.0/16] }\n  two: { subnets: [10.0.1.0/24] }\n",
        );
        assert!(
            e.contains("networks.two.subnets") && e.contains("overlaps 10.0.0.0/16 of network one"),
            "{e}"
        );
    }
}
