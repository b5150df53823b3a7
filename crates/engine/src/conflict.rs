//! Why an operation refused to act: a conflict with what exists, or a request that is wrong
//! whatever exists. Typed, so that each face words it in its own vocabulary: a flag or a file
//! key for what gets past it (`hint`), an error code for the kind (`is_invalid_request`).
//! Messages here name objects, never a face's words.

use std::net::IpAddr;

use ipnet::IpNet;
use nsnet_core::endpoint::ConnectConflict;
use nsnet_core::model::Mac;
use nsnet_core::names::{IfName, NetName};
use nsnet_core::port::{PortMapping, Proto};

use crate::attachment::OwnerKey;
use crate::ensure::Mismatch;

/// What would get past a refusal, for a face to say in its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// Doing it anyway removes what is in the way (the endpoints of a network, a running
    /// container).
    Force,
    /// Another bridge name for the network.
    OtherBridge,
    /// Another interface name for the endpoint.
    OtherInterface,
    /// Naming one interface picks one of several links.
    NameInterface,
    /// Another name for the container.
    OtherName,
    /// A network for the container.
    GiveNetwork,
    /// A command for the container.
    GiveCommand,
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why an operation cannot be done; nothing has changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("bridge {bridge} is already used by network {network}")]
    BridgeUsed { bridge: IfName, network: NetName },
    #[error("bridge {bridge} already exists on the host")]
    BridgeOnHost { bridge: IfName },
    #[error(
        "network {network} still has {} endpoint(s) ({}); disconnect them",
        .netns.len(),
        .netns.join(", ")
    )]
    NetworkInUse {
        network: NetName,
        netns: Vec<String>,
    },
    #[error("network {network} is being {}", if *.removing { "removed" } else { "created" })]
    NetworkInFlux { network: NetName, removing: bool },
    #[error("network {network} was revived by another boot meanwhile")]
    NetworkRevived { network: NetName },
    #[error(
        "network {network} is still being created or removed by another process after {secs}s; run `nsnet gc` if that process is stuck"
    )]
    NetworkUnsettled { network: NetName, secs: u64 },
    /// The network exists with another definition than the one asked for.
    #[error("{0}")]
    DefinitionDiffers(Mismatch),
    #[error(
        "{what} is still held by process {pid} after {secs}s; run `nsnet gc` if that process is stuck"
    )]
    Held { what: String, pid: u32, secs: u64 },
    #[error(
        "interface {ifname} already exists in netns {netns}, or host interface {host_ifname} exists (run `nsnet gc`)"
    )]
    InterfaceExists {
        ifname: IfName,
        netns: String,
        host_ifname: IfName,
    },
    #[error("another endpoint took interface {ifname} or an address concurrently: {cause}")]
    TakenConcurrently { ifname: IfName, cause: String },
    #[error("more than one address requested in subnet {subnet} of network {network}")]
    AddressesInOneSubnet { subnet: IpNet, network: NetName },
    #[error(
        "MAC {mac} is already used by netns {netns} on network {network} (a switch cannot deliver to two interfaces with one MAC); choose another, or let nsnet derive one"
    )]
    MacTaken {
        mac: Mac,
        netns: String,
        network: NetName,
    },
    #[error(
        "{key} is already attached to network {network} (in netns {netns}, addresses {})",
        join(.addrs)
    )]
    AlreadyAttached {
        key: OwnerKey,
        network: NetName,
        netns: String,
        addrs: Vec<IpNet>,
    },
    #[error(
        "host port {}/{} is already published ({other}, endpoint {endpoint})",
        .mapping.host_port,
        .mapping.proto
    )]
    PortPublished {
        mapping: PortMapping,
        other: PortMapping,
        endpoint: i64,
    },
    #[error("host port {port}/{proto} is already in use on the host (a server listens on it)")]
    PortListened { port: u16, proto: Proto },
    #[error("a host port of {} is already published: {cause}", join(.mappings))]
    PortsPublished {
        mappings: Vec<PortMapping>,
        cause: String,
    },
    #[error(
        "cannot publish {mapping}: the host holds no address {ip} ({holds}); assign it to a host interface first, or publish on every address"
    )]
    AddressNotHeld {
        mapping: PortMapping,
        ip: IpAddr,
        /// What the host holds instead, in words.
        holds: String,
    },
    #[error("netns {netns} is not connected to any network: connect it before publishing ports")]
    NotConnected { netns: String },
    #[error("both ends are in the same namespace; a link joins two different namespaces")]
    LinkToItself,
    #[error("interface {ifname} in netns {netns} is already used by nsnet")]
    InterfaceUsed { ifname: IfName, netns: String },
    #[error(
        "interface {ifname_a} in netns {netns_a} or {ifname_b} in netns {netns_b} already exists"
    )]
    LinkInterfaceExists {
        ifname_a: IfName,
        netns_a: String,
        ifname_b: IfName,
        netns_b: String,
    },
    #[error("{} links join netns {a} and netns {b} ({})", .ifnames.len(), .ifnames.join(", "))]
    SeveralLinks {
        a: String,
        b: String,
        ifnames: Vec<String>,
    },
    #[error("route {dest} via {via}: destination and gateway must be the same IP version")]
    RouteFamilies { dest: IpNet, via: IpAddr },
    #[error("route {dest} already exists in netns {netns}")]
    RouteRecorded { dest: IpNet, netns: String },
    /// A route nsnet did not record is in the way.
    #[error("route {dest} already exists in netns {netns} (remove it first)")]
    RouteInKernel { dest: IpNet, netns: String },
    #[error("run needs a command")]
    NoCommand,
    #[error("published ports need a network to publish on")]
    PublishWithoutNetwork,
    #[error("network {network} is given twice")]
    NetworkTwice { network: NetName },
    #[error("netns {name} already exists: a container's network namespace takes its name")]
    NetnsTaken { name: String },
    #[error("container {name} is running: stop it first")]
    ContainerRunning { name: String },
    #[error("container {name} is not running")]
    ContainerNotRunning { name: String },
    /// Another nsnet process is still starting it; asking again later may succeed.
    #[error("container {name} is still being created (by nsnet process {pid})")]
    ContainerBeingCreated { name: String, pid: u32 },
    #[error(
        "container {name} ran in the foreground: its output went to the terminal, not to a log"
    )]
    ContainerHasNoLog { name: String },
    /// The container's command does not resolve in its root.
    #[error("command {program:?} not found in {root} (searched PATH {path})")]
    CommandNotFound {
        program: String,
        root: String,
        path: String,
    },
}

impl Conflict {
    /// Whether the request itself is wrong (whatever else exists), rather than in conflict
    /// with something that exists: faces report the two differently.
    pub fn is_invalid_request(&self) -> bool {
        matches!(
            self,
            Conflict::DefinitionDiffers(_)
                | Conflict::AddressesInOneSubnet { .. }
                | Conflict::AddressNotHeld { .. }
                | Conflict::LinkToItself
                | Conflict::RouteFamilies { .. }
                | Conflict::NoCommand
                | Conflict::PublishWithoutNetwork
                | Conflict::NetworkTwice { .. }
                | Conflict::CommandNotFound { .. }
        )
    }

    /// Whether the same request may succeed later without anything else changing (another
    /// live process is in the middle of the object): CNI's "try again later". Not a wait
    /// that already timed out (`Held`, `NetworkUnsettled`): those ask for `gc`.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Conflict::ContainerBeingCreated { .. } | Conflict::NetworkInFlux { .. }
        )
    }

    /// What would get past it, when a face can say how.
    pub fn hint(&self) -> Option<Hint> {
        match self {
            Conflict::BridgeUsed { .. } | Conflict::BridgeOnHost { .. } => Some(Hint::OtherBridge),
            Conflict::NetworkInUse { .. } | Conflict::ContainerRunning { .. } => Some(Hint::Force),
            Conflict::SeveralLinks { .. } => Some(Hint::NameInterface),
            Conflict::NetnsTaken { .. } => Some(Hint::OtherName),
            Conflict::PublishWithoutNetwork => Some(Hint::GiveNetwork),
            Conflict::NoCommand => Some(Hint::GiveCommand),
            _ => None,
        }
    }
}

/// The hint of a connect conflict: an interface name taken in the namespace is avoided by
/// asking for another.
pub(crate) fn connect_hint(c: &ConnectConflict) -> Option<Hint> {
    match c {
        ConnectConflict::InterfaceTaken { .. } => Some(Hint::OtherInterface),
        _ => None,
    }
}
