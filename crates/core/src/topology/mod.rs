//! Topology files, as data: what a file asks for (`Desired`), what exists (`Observed`), and
//! the fewest changes that turn one into the other (`diff`). Parsing the file is the face's
//! job; observing and applying are the engine's. Everything here is pure.

mod diff;
mod preflight;
mod undo;

pub use diff::{Change, diff};
pub use preflight::{Prepared, ports_added, preflight};
pub use undo::undo;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::model::{Mac, NetworkSpec};
use crate::names::{IfName, NetName, NsName};
use crate::port::PortMapping;
use crate::shaping::Shaping;

/// An endpoint the file asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredEndpoint {
    pub network: NetName,
    pub netns: NsName,
    pub ips: Vec<IpAddr>,
    pub mac: Option<Mac>,
    pub ifname: Option<IfName>,
    pub publish: Vec<PortMapping>,
}

/// A network and its endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredNetwork {
    pub spec: NetworkSpec,
    pub endpoints: Vec<DesiredEndpoint>,
}

/// One end of a point-to-point link (`netns` may be `host`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkEndDef {
    pub netns: String,
    pub ifname: IfName,
    pub addr: Option<IpNet>,
    pub shaping: Shaping,
}

/// A point-to-point link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredLink {
    pub a: LinkEndDef,
    pub b: LinkEndDef,
    pub mtu: Option<u32>,
}

/// An extra route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteDef {
    pub netns: String,
    pub dest: IpNet,
    pub via: IpAddr,
}

/// A container the file asks for (`nsnet run -d` with these arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredContainer {
    pub name: NsName,
    pub command: Vec<String>,
    pub hostname: Option<String>,
    pub env: Vec<String>,
    pub rootfs: Option<String>,
    /// Networks in order (the first publishes the ports), each with an optional address.
    pub networks: Vec<(NetName, Option<IpAddr>)>,
    pub publish: Vec<PortMapping>,
}

/// Everything a topology file asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub name: String,
    pub namespaces: Vec<NsName>,
    pub networks: Vec<DesiredNetwork>,
    pub links: Vec<DesiredLink>,
    pub routes: Vec<RouteDef>,
    pub containers: Vec<DesiredContainer>,
}

impl Desired {
    /// A topology that asks for nothing (what `destroy` converges to).
    pub fn empty(name: &str) -> Desired {
        Desired {
            name: name.to_string(),
            namespaces: Vec::new(),
            networks: Vec::new(),
            links: Vec::new(),
            routes: Vec::new(),
            containers: Vec::new(),
        }
    }
}

/// A container as it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedContainer {
    pub name: String,
    pub running: bool,
    pub command: Vec<String>,
    pub hostname: String,
    /// The environment the command started with (None when it cannot be read).
    pub env: Option<Vec<String>>,
    pub rootfs: Option<String>,
    /// Networks in order with the addresses the container got.
    pub networks: Vec<(NetName, Vec<IpAddr>)>,
    pub ports: Vec<PortMapping>,
}

/// An endpoint as it exists, and whether its kernel objects are all there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedEndpoint {
    pub network: NetName,
    pub netns: String,
    pub ifname: IfName,
    pub ips: Vec<IpAddr>,
    pub mac: Option<Mac>,
    pub ports: Vec<PortMapping>,
    /// The container or CNI attachment the endpoint belongs to, if any.
    pub container: Option<String>,
    /// Why the endpoint is broken (its veth was deleted by hand...), if it is.
    pub drift: Option<String>,
}

/// A link as it exists, with live shaping of each end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedLink {
    pub a: LinkEndDef,
    pub b: LinkEndDef,
    /// The MTU of the A end, as the kernel reports it.
    pub mtu: Option<u32>,
    pub drift: Option<String>,
}

/// A recorded route and whether the kernel still has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedRoute {
    pub route: RouteDef,
    pub present: bool,
}

/// A network as it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedNetwork {
    pub spec: NetworkSpec,
    pub drift: Option<String>,
}

/// What exists now (from the store, checked against the kernel for drift), and which of it
/// this topology created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub namespaces: BTreeSet<String>,
    pub networks: Vec<ObservedNetwork>,
    pub endpoints: Vec<ObservedEndpoint>,
    pub links: Vec<ObservedLink>,
    pub routes: Vec<ObservedRoute>,
    pub containers: Vec<ObservedContainer>,
    pub owned: BTreeSet<Owned>,
    /// Live interfaces and routes of the host (`host`) and of every namespace that exists,
    /// nsnet's and anyone else's: what the kernel will refuse to create twice.
    pub live: BTreeMap<String, LiveNs>,
}

/// What the kernel shows in one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveNs {
    pub interfaces: BTreeSet<String>,
    /// Addresses, with the interface holding each.
    pub addrs: BTreeSet<(String, IpAddr)>,
    pub routes: Vec<LiveRoute>,
}

/// A live route: its destination and output interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRoute {
    pub dest: IpNet,
    pub dev: Option<String>,
}

/// Kinds of objects a topology owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Netns,
    Network,
    Endpoint,
    Link,
    Route,
    Container,
}

impl Kind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Netns => "netns",
            Kind::Network => "network",
            Kind::Endpoint => "endpoint",
            Kind::Link => "link",
            Kind::Route => "route",
            Kind::Container => "container",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "netns" => Kind::Netns,
            "network" => Kind::Network,
            "endpoint" => Kind::Endpoint,
            "link" => Kind::Link,
            "route" => Kind::Route,
            "container" => Kind::Container,
            _ => return None,
        })
    }
}

/// An object a topology created: its kind and key (see the `*_key` functions).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Owned {
    pub kind: Kind,
    pub key: String,
}

impl Owned {
    /// An owned object.
    pub fn new(kind: Kind, key: impl Into<String>) -> Self {
        Owned {
            kind,
            key: key.into(),
        }
    }
}

impl fmt::Display for Owned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.key)
    }
}

/// Key of an endpoint: `NETWORK/NETNS`.
pub fn endpoint_key(network: &str, netns: &str) -> String {
    format!("{network}/{netns}")
}

/// Key of a link: its A end, `NETNS:IFNAME`.
pub fn link_key(a: &LinkEndDef) -> String {
    format!("{}:{}", a.netns, a.ifname)
}

/// Key of a route: `NETNS DEST`.
pub fn route_key(r: &RouteDef) -> String {
    format!("{} {}", r.netns, r.dest)
}
