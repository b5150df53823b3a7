//! What operations return: plain serialisable values the faces render as tables or JSON.

use std::net::IpAddr;

use ipnet::IpNet;
use nsnet_core::ipam::Usage;
use nsnet_core::model::Subnet;
use nsnet_sys::kernel::{IfaceView, RouteView};
use serde::Serialize;

/// One line of `network ls`.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkSummary {
    pub name: String,
    pub driver: String,
    pub bridge: String,
    pub subnets: Vec<IpNet>,
    pub endpoints: usize,
    pub internal: bool,
}

/// `network inspect`.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkDetail {
    pub name: String,
    pub driver: String,
    pub bridge: String,
    pub subnets: Vec<Subnet>,
    pub mtu: Option<u32>,
    pub internal: bool,
    pub masquerade: bool,
    pub icc: bool,
    /// Traffic routed from outside straight to the endpoints is accepted.
    pub routed: bool,
    /// Container names answered over DNS on the gateways.
    pub dns: bool,
    /// The VXLAN network identifier of an overlay network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    pub state: String,
    pub endpoints: Vec<EndpointView>,
    pub usage: Vec<Usage>,
}

/// An endpoint as shown to users.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointView {
    pub network: String,
    pub netns: String,
    pub ifname: String,
    pub host_ifname: String,
    pub mac: Option<String>,
    pub addrs: Vec<IpNet>,
    pub primary: bool,
    /// Attached without default routes (netavark's `no_default_route`); never primary.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_default_route: bool,
    pub state: String,
    pub container_id: Option<String>,
    pub ports: Vec<nsnet_core::port::PortMapping>,
    /// Names answered over DNS on the network (empty when it has DNS off).
    pub names: Vec<String>,
}

/// One line of `netns ls`.
#[derive(Debug, Clone, Serialize)]
pub struct NetnsSummary {
    pub name: String,
    pub endpoints: usize,
    pub links: usize,
}

/// A point-to-point link as shown to users.
#[derive(Debug, Clone, Serialize)]
pub struct LinkView {
    pub netns_a: String,
    pub ifname_a: String,
    pub addr_a: Option<IpNet>,
    pub netns_b: String,
    pub ifname_b: String,
    pub addr_b: Option<IpNet>,
    pub state: String,
}

/// A route inside a namespace, marked when nsnet manages it.
#[derive(Debug, Clone, Serialize)]
pub struct RouteEntry {
    #[serde(flatten)]
    pub route: RouteView,
    pub managed_by: Option<String>,
}

/// `nsnet inspect NS`.
#[derive(Debug, Clone, Serialize)]
pub struct NetnsDetail {
    pub name: String,
    pub interfaces: Vec<IfaceView>,
    pub routes: Vec<RouteEntry>,
    pub networks: Vec<EndpointView>,
    pub links: Vec<LinkView>,
}

/// A route `route add` made.
#[derive(Debug, Clone, Serialize)]
pub struct RouteAdded {
    pub netns: String,
    pub dest: IpNet,
    pub via: IpAddr,
}
