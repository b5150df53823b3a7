//! Rows as typed values.

use std::net::IpAddr;

use ipnet::IpNet;
use nsnet_core::model::{Mac, NetworkSpec};
use nsnet_core::names::{IfName, NetName};

/// Lifecycle of a row: `creating` while kernel objects are being made, `ready` after,
/// `removing` once a removal has started (its pid and boot id are then the remover's), so a
/// process killed half-way through either leaves a row `gc` can finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowState {
    Creating,
    Ready,
    Removing,
}

impl RowState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RowState::Creating => "creating",
            RowState::Ready => "ready",
            RowState::Removing => "removing",
        }
    }

    pub(crate) fn parse(s: &str) -> RowState {
        match s {
            "ready" => RowState::Ready,
            "removing" => RowState::Removing,
            _ => RowState::Creating,
        }
    }
}

/// A network as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRow {
    pub spec: NetworkSpec,
    /// Created by a CNI ADD: removed with its last attachment, replaced when its
    /// configuration changes while nothing is attached.
    pub cni_owned: bool,
    pub state: RowState,
    pub pid: u32,
    pub boot_id: String,
    pub created_at: i64,
}

/// An endpoint to record (state `creating`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    pub network: NetName,
    pub netns: String,
    pub ifname: IfName,
    pub host_ifname: IfName,
    pub mac: Option<Mac>,
    pub addrs: Vec<IpNet>,
    pub container_id: Option<String>,
    /// Attached without default routes (netavark's `no_default_route`): never its
    /// namespace's primary endpoint, so never handed the default routes.
    pub no_default_route: bool,
    pub pid: u32,
    pub boot_id: String,
}

/// An endpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRow {
    pub id: i64,
    pub network: NetName,
    pub netns: String,
    pub ifname: IfName,
    pub host_ifname: IfName,
    pub mac: Option<Mac>,
    pub addrs: Vec<IpNet>,
    pub container_id: Option<String>,
    /// See [`NewEndpoint::no_default_route`].
    pub no_default_route: bool,
    pub state: RowState,
    pub pid: u32,
    pub boot_id: String,
    pub created_at: i64,
}

impl EndpointRow {
    /// The endpoint's addresses without prefixes.
    pub fn ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.addrs.iter().map(IpNet::addr)
    }
}

/// One end of a point-to-point link as stored (`netns` is `host` for the machine's own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEndRow {
    pub netns: String,
    pub ifname: IfName,
    pub addr: Option<IpNet>,
}

/// A link to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    pub a: LinkEndRow,
    pub b: LinkEndRow,
    pub pid: u32,
    pub boot_id: String,
}

/// A link as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRow {
    pub id: i64,
    pub a: LinkEndRow,
    pub b: LinkEndRow,
    pub state: RowState,
    pub pid: u32,
    pub boot_id: String,
    pub created_at: i64,
}

/// An extra route inside a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRow {
    pub netns: String,
    pub dest: IpNet,
    pub via: IpAddr,
}
