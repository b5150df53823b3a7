//! Validating a file's shape into the core's `Desired`, one section at a time. Every error
//! points at the value it is about.

use std::net::IpAddr;

use nsnet_core::CoreError;
use nsnet_core::container::{NetworkArg, parse_env};
use nsnet_core::model::{Driver, Mac, NetworkSpec, parse_cidr, parse_ip};
use nsnet_core::names::{HOST, IfName, NetName, NsName, link_end};
use nsnet_core::port::{PortMapping, PortSpec};
use nsnet_core::shaping::{Shaping, parse_duration, parse_loss, parse_rate};
use nsnet_core::topology::{
    Desired, DesiredContainer, DesiredEndpoint, DesiredLink, DesiredNetwork, LinkEndDef, RouteDef,
};

use super::Ctx;
use super::FileError;
use super::read::{At, Spot};
use super::shape::{self, ContainerDef, EndDef, EtcdDef, File, HostDef, LinkDef, NetworkDef};
use nsnet_core::overlay::{DEFAULT_LEASE_TTL, EtcdMember, Host, Membership, default_slice};

pub fn validate(ctx: &Ctx<'_>, f: File) -> Result<(Desired, Membership), FileError> {
    ctx.at(&f.name.at, NetName::new(&f.name))?;
    let namespaces = namespaces(ctx, &f.namespaces)?;
    let mut ifnames = Claims::default();
    let networks = networks(ctx, &namespaces, &f.networks, &mut ifnames)?;
    let links = links(ctx, &namespaces, &f.links, &mut ifnames)?;
    let routes = routes(ctx, &namespaces, &f.routes)?;
    let containers = containers(ctx, &namespaces, &networks, &f.containers)?;
    let membership = match &f.etcd {
        None => Membership::Static(hosts(ctx, &f.hosts)?),
        Some((at, _)) if !f.hosts.is_empty() => {
            return Err(ctx.err(
                at,
                "give the overlay's hosts either under `hosts` (static) or through `etcd`, not both",
            ));
        }
        Some((_, e)) => Membership::Etcd(etcd(ctx, e)?),
    };
    Ok((
        Desired {
            name: f.name.v,
            namespaces,
            networks,
            links,
            routes,
            containers,
        },
        membership,
    ))
}

/// This host's etcd registration.
fn etcd(ctx: &Ctx<'_>, e: &EtcdDef) -> Result<EtcdMember, FileError> {
    let underlay = ipv4(ctx, &e.underlay)?;
    let ttl = e.ttl.as_ref().map_or(DEFAULT_LEASE_TTL, |t| t.v);
    if let Some(t) = e.ttl.as_ref().filter(|t| t.v < 2) {
        return Err(ctx.err(
            &t.at,
            format!("ttl {} is too short; allowed: 2 seconds or more", t.v),
        ));
    }
    Ok(EtcdMember {
        endpoint: e.endpoint.v.clone(),
        ttl,
        host: Host {
            name: e.host.v.clone(),
            underlay,
            slice: e.slice.as_ref().map_or(default_slice(underlay), |s| s.v),
        },
    })
}

fn ipv4(ctx: &Ctx<'_>, text: &At<String>) -> Result<std::net::Ipv4Addr, FileError> {
    match ctx.at(&text.at, parse_ip("underlay address", text))? {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(a) => Err(ctx.err(
            &text.at,
            format!("underlay address {a} is IPv6; allowed: an IPv4 address"),
        )),
    }
}

/// The hosts of the overlay networks: distinct underlay (IPv4) addresses and slices. A
/// host's slice defaults to the last byte of its underlay address, which stays put when other
/// hosts come and go.
fn hosts(ctx: &Ctx<'_>, defs: &[(At<String>, HostDef)]) -> Result<Vec<Host>, FileError> {
    let mut out: Vec<Host> = Vec::new();
    for (name, def) in defs {
        let underlay = ipv4(ctx, &def.underlay)?;
        let slice = def
            .slice
            .as_ref()
            .map_or(u32::from(underlay.octets()[3]), |s| s.v);
        if let Some(other) = out.iter().find(|h| h.underlay == underlay) {
            return Err(ctx.err(
                &def.underlay.at,
                format!("underlay address {underlay} is also host {}'s", other.name),
            ));
        }
        if let Some(other) = out.iter().find(|h| h.slice == slice) {
            let at = def.slice.as_ref().map_or(&name.at, |s| &s.at);
            return Err(ctx.err(
                at,
                format!(
                    "slice {slice} is also host {}'s; give each host its own `slice`",
                    other.name
                ),
            ));
        }
        out.push(Host {
            name: name.v.clone(),
            underlay,
            slice,
        });
    }
    Ok(out)
}

fn namespaces(ctx: &Ctx<'_>, list: &[At<String>]) -> Result<Vec<NsName>, FileError> {
    let mut out: Vec<NsName> = Vec::new();
    for n in list {
        let name = ctx.at(&n.at, NsName::new(n))?;
        if out.contains(&name) {
            return Err(ctx.err(&n.at, format!("namespace {:?} is listed twice", n.v)));
        }
        out.push(name);
    }
    Ok(out)
}

/// A namespace named by a file: declared under `namespaces`, or the host where allowed.
fn ns_ref(
    ctx: &Ctx<'_>,
    declared: &[NsName],
    name: &At<String>,
    allow_host: bool,
) -> Result<String, FileError> {
    if allow_host && name.v == HOST {
        return Ok(HOST.to_string());
    }
    if !declared.iter().any(|d| d.as_str() == name.v) {
        return Err(ctx.err(
            &name.at,
            format!(
                "namespace {:?} is not declared under `namespaces`{}",
                name.v,
                if allow_host { " (or use \"host\")" } else { "" }
            ),
        ));
    }
    Ok(name.v.clone())
}

/// Interfaces per namespace, to refuse two objects wanting one name.
#[derive(Default)]
struct Claims(Vec<(String, String, Spot)>);

impl Claims {
    fn claim(&mut self, ctx: &Ctx<'_>, ns: &str, ifname: &str, at: &Spot) -> Result<(), FileError> {
        if let Some((_, _, first)) = self.0.iter().find(|(n, i, _)| n == ns && i == ifname) {
            return Err(ctx.err(
                at,
                format!(
                    "interface {ifname} in namespace {ns} is also used at {} (line {})",
                    first.path, first.pos.line
                ),
            ));
        }
        self.0
            .push((ns.to_string(), ifname.to_string(), at.clone()));
        Ok(())
    }
}

/// The key of a network definition that a refusal of the whole definition points at.
fn spec_field<'d>(e: &CoreError, def: &'d NetworkDef) -> &'d Spot {
    match e {
        CoreError::GatewayOutside { .. } => &def.gateways.at,
        CoreError::InvalidValue { what: "mtu", .. } => {
            def.mtu.as_ref().map_or(&def.subnets.at, |m| &m.at)
        }
        CoreError::InvalidValue { what: "vni", .. } => {
            def.vni.as_ref().map_or(&def.subnets.at, |v| &v.at)
        }
        // Refused as a whole: for want of subnets, or for being internal and routed.
        CoreError::InvalidValue {
            what: "network", ..
        } if !def.subnets.is_empty() => &def.routed.at,
        _ => &def.subnets.at,
    }
}

fn networks(
    ctx: &Ctx<'_>,
    namespaces: &[NsName],
    defs: &[(At<String>, NetworkDef)],
    ifnames: &mut Claims,
) -> Result<Vec<DesiredNetwork>, FileError> {
    let mut networks: Vec<DesiredNetwork> = Vec::new();
    // Explicit endpoint interface names, claimed once every network is read; defaults (eth0,
    // eth1...) are chosen at connect time.
    let mut explicit: Vec<(NsName, IfName, Spot)> = Vec::new();
    for (name, def) in defs {
        let spec = network(ctx, name, def)?;
        for other in &networks {
            if let Some((s, o)) = spec.overlap(&other.spec) {
                return Err(ctx.err(
                    &def.subnets.at,
                    format!(
                        "subnet {} overlaps {} of network {}",
                        s.cidr,
                        o.cidr,
                        other.spec.name()
                    ),
                ));
            }
            if other.spec.bridge() == spec.bridge() {
                return Err(ctx.err(
                    &name.at,
                    format!(
                        "bridge {} is also used by network {}",
                        spec.bridge(),
                        other.spec.name()
                    ),
                ));
            }
        }
        let mut endpoints = Vec::new();
        for (ns, ep) in &def.endpoints {
            let e = endpoint(ctx, namespaces, &spec, ns, ep)?;
            if let (Some(i), Some(def)) = (&e.ifname, &ep.ifname) {
                explicit.push((e.netns.clone(), i.clone(), def.at.clone()));
            }
            endpoints.push(e);
        }
        networks.push(DesiredNetwork { spec, endpoints });
    }
    for (ns, ifname, at) in &explicit {
        ifnames.claim(ctx, ns.as_str(), ifname.as_str(), at)?;
    }
    Ok(networks)
}

fn network(ctx: &Ctx<'_>, name: &At<String>, def: &NetworkDef) -> Result<NetworkSpec, FileError> {
    let net_name = ctx.at(&name.at, NetName::new(name))?;
    let mut subnets = Vec::new();
    for s in def.subnets.iter() {
        subnets.push(ctx.at(&s.at, parse_cidr("subnet", s))?);
    }
    let mut gateways = Vec::new();
    for g in def.gateways.iter() {
        gateways.push(ctx.at(&g.at, parse_ip("gateway", g))?);
    }
    let bridge = match &def.bridge {
        Some(b) => Some(ctx.at(&b.at, IfName::new(b))?),
        None => None,
    };
    let driver = match &def.driver {
        Some(d) => ctx.at(&d.at, d.parse::<Driver>())?,
        None => Driver::default(),
    };
    NetworkSpec::builder(net_name)
        .subnets(subnets)
        .gateways(gateways)
        .bridge(bridge)
        .mtu(def.mtu.as_ref().map(|m| m.v))
        .internal(def.internal.v)
        .masquerade(def.masquerade)
        .icc(def.icc)
        .routed(def.routed.v)
        .driver(driver)
        .dns(def.dns)
        .vni(def.vni.as_ref().map(|v| v.v))
        .build()
        .map_err(|e| ctx.err(spec_field(&e, def), e))
}

fn endpoint(
    ctx: &Ctx<'_>,
    namespaces: &[NsName],
    spec: &NetworkSpec,
    ns: &At<String>,
    ep: &shape::EndpointDef,
) -> Result<DesiredEndpoint, FileError> {
    let netns =
        NsName::new(&ns_ref(ctx, namespaces, ns, false)?).map_err(|e| ctx.err(&ns.at, e))?;
    let mut ips: Vec<IpAddr> = Vec::new();
    for text in ep.ip.iter() {
        let ip = ctx.at(&text.at, parse_ip("address", text))?;
        host_in(ctx, &text.at, spec, ip)?;
        ips.push(ip);
    }
    let mac = match &ep.mac {
        Some(m) => Some(ctx.at(&m.at, m.parse::<Mac>())?),
        None => None,
    };
    let ifname = match &ep.ifname {
        Some(i) => Some(ctx.at(&i.at, IfName::new(i))?),
        None => None,
    };
    let mut publish: Vec<PortMapping> = Vec::new();
    for text in ep.publish.iter() {
        publish.extend(ctx.at(&text.at, text.parse::<PortSpec>())?.mappings());
    }
    Ok(DesiredEndpoint {
        network: spec.name().clone(),
        netns,
        ips,
        mac,
        ifname,
        publish,
    })
}

/// Whether `ip` may be given to an endpoint of the network.
fn host_in(ctx: &Ctx<'_>, at: &Spot, spec: &NetworkSpec, ip: IpAddr) -> Result<(), FileError> {
    match spec.subnet_of(ip) {
        Some(s) => ctx.at(at, s.check_host(spec.name(), ip)),
        None => Err(ctx.err(
            at,
            format!(
                "address {ip} is outside the subnets of network {}",
                spec.name()
            ),
        )),
    }
}

fn links(
    ctx: &Ctx<'_>,
    namespaces: &[NsName],
    defs: &[LinkDef],
    ifnames: &mut Claims,
) -> Result<Vec<DesiredLink>, FileError> {
    let mut links = Vec::new();
    for l in defs {
        let a_ns = ns_ref(ctx, namespaces, &l.a.netns, true)?;
        let b_ns = ns_ref(ctx, namespaces, &l.b.netns, true)?;
        if a_ns == b_ns {
            return Err(ctx.err(
                &l.at,
                "both ends are in the same namespace; a link joins two different namespaces",
            ));
        }
        let a = end(ctx, &l.a, &a_ns, &b_ns)?;
        let b = end(ctx, &l.b, &b_ns, &a_ns)?;
        ifnames.claim(ctx, &a.netns, a.ifname.as_str(), &l.a.at)?;
        ifnames.claim(ctx, &b.netns, b.ifname.as_str(), &l.b.at)?;
        links.push(DesiredLink {
            a,
            b,
            mtu: l.mtu.as_ref().map(|m| m.v),
        });
    }
    Ok(links)
}

/// An optional value, parsed where it was given.
fn parsed<T>(
    ctx: &Ctx<'_>,
    text: &Option<At<String>>,
    parse: impl Fn(&str) -> Result<T, CoreError>,
) -> Result<Option<T>, FileError> {
    text.as_ref().map(|t| ctx.at(&t.at, parse(t))).transpose()
}

fn end(ctx: &Ctx<'_>, e: &EndDef, ns: &str, peer: &str) -> Result<LinkEndDef, FileError> {
    let ifname = match &e.ifname {
        Some(i) => ctx.at(&i.at, IfName::new(i))?,
        None => link_end(peer),
    };
    let addr = match &e.addr {
        Some(a) => Some(ctx.at(&a.at, parse_cidr("link address", a))?),
        None => None,
    };
    let shaping = Shaping {
        delay_us: parsed(ctx, &e.delay, |d| parse_duration("delay", d))?,
        jitter_us: parsed(ctx, &e.jitter, |d| parse_duration("jitter", d))?,
        loss_ppm: parsed(ctx, &e.loss, parse_loss)?,
        // The kernel counts bytes: keep the rate a whole number of bytes per second, so what
        // is read back equals what was asked.
        rate_bps: parsed(ctx, &e.rate, |d| parse_rate(d).map(|r| r / 8 * 8))?,
        burst_bits: None,
    };
    ctx.at(&e.at, shaping.validate())?;
    Ok(LinkEndDef {
        netns: ns.to_string(),
        ifname,
        addr,
        shaping,
    })
}

fn routes(
    ctx: &Ctx<'_>,
    namespaces: &[NsName],
    defs: &[shape::RouteDef],
) -> Result<Vec<RouteDef>, FileError> {
    let mut routes: Vec<RouteDef> = Vec::new();
    for r in defs {
        let netns = ns_ref(ctx, namespaces, &r.netns, false)?;
        let via = ctx.at(&r.via.at, parse_ip("gateway", &r.via))?;
        let dest = ctx.at(&r.dest.at, nsnet_engine::route_dest(&r.dest, via))?;
        if dest.addr().is_ipv4() != via.is_ipv4() {
            return Err(ctx.err(
                &r.at,
                format!(
                    "route {dest} via {via}: destination and gateway must be the same IP version"
                ),
            ));
        }
        if routes.iter().any(|o| o.netns == netns && o.dest == dest) {
            return Err(ctx.err(
                &r.at,
                format!("route {dest} in namespace {netns} is given twice"),
            ));
        }
        routes.push(RouteDef { netns, dest, via });
    }
    Ok(routes)
}

fn containers(
    ctx: &Ctx<'_>,
    namespaces: &[NsName],
    networks: &[DesiredNetwork],
    defs: &[(At<String>, ContainerDef)],
) -> Result<Vec<DesiredContainer>, FileError> {
    defs.iter()
        .map(|(name, c)| container(ctx, namespaces, networks, name, c))
        .collect()
}

fn container(
    ctx: &Ctx<'_>,
    namespaces: &[NsName],
    networks: &[DesiredNetwork],
    name: &At<String>,
    c: &ContainerDef,
) -> Result<DesiredContainer, FileError> {
    let cname = ctx.at(&name.at, NsName::new(name))?;
    if namespaces.contains(&cname) {
        return Err(ctx.err(
            &name.at,
            format!(
                "{:?} is both a namespace and a container; a container has its own namespace",
                name.v
            ),
        ));
    }
    if c.command.is_empty() {
        return Err(ctx.err(
            &c.command.at,
            "a container needs a command, e.g. [sleep, infinity]",
        ));
    }
    let mut nets = Vec::new();
    for n in c.networks.iter() {
        let arg = ctx.at(&n.at, n.parse::<NetworkArg>())?;
        let Some(net) = networks.iter().find(|d| *d.spec.name() == arg.network) else {
            return Err(ctx.err(
                &n.at,
                format!("network {} is not declared under `networks`", arg.network),
            ));
        };
        if let Some(ip) = arg.ip {
            host_in(ctx, &n.at, &net.spec, ip)?;
        }
        nets.push((arg.network, arg.ip));
    }
    let mut publish = Vec::new();
    for p in c.publish.iter() {
        publish.extend(ctx.at(&p.at, p.parse::<PortSpec>())?.mappings());
    }
    if !publish.is_empty() && nets.is_empty() {
        return Err(ctx.err(&c.publish.at, "publishing ports needs at least one network"));
    }
    let mut env = Vec::new();
    for kv in c.env.iter() {
        if !kv.contains('=') {
            return Err(ctx.err(
                &kv.at,
                "write KEY=VALUE (a file does not copy the caller's environment)",
            ));
        }
        env.extend(ctx.at(&kv.at, parse_env(kv, |_| None))?);
    }
    if let Some(r) = &c.rootfs
        && !r.starts_with('/')
    {
        return Err(ctx.err(&r.at, "rootfs must be an absolute path"));
    }
    Ok(DesiredContainer {
        name: cname,
        command: c.command.iter().map(|t| t.v.clone()).collect(),
        hostname: c.hostname.as_ref().map(|h| h.v.clone()),
        env,
        rootfs: c.rootfs.as_ref().map(|r| r.v.clone()),
        networks: nets,
        publish,
    })
}
