//! The JSON netavark's plugin API exchanges (its `plugin-API.md`): a network definition, what
//! `setup`/`teardown` receive, and the status block `setup` answers with. Only the fields nsnet
//! reads are typed; `create` edits the definition as JSON so fields it does not know (`created`,
//! `labels`, future ones) go back to podman untouched.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The version of the plugin API nsnet speaks.
pub const API_VERSION: &str = "1.0.0";

/// A subnet's lease range (bounds of allocation).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LeaseRange {
    pub start_ip: Option<String>,
    pub end_ip: Option<String>,
}

/// One subnet of a network.
#[derive(Debug, Clone, Deserialize)]
pub struct Subnet {
    pub subnet: String,
    pub gateway: Option<String>,
    pub lease_range: Option<LeaseRange>,
}

/// A network as podman stores it (`podman network inspect`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub driver: String,
    pub network_interface: Option<String>,
    pub subnets: Option<Vec<Subnet>>,
    pub ipv6_enabled: bool,
    pub internal: bool,
    pub dns_enabled: bool,
    pub ipam_options: Option<BTreeMap<String, String>>,
    pub options: Option<BTreeMap<String, String>>,
    pub routes: Option<Vec<serde_json::Value>>,
    pub network_dns_servers: Option<Vec<IpAddr>>,
}

/// One published port; `protocol` may list several (`"tcp,udp"`), `range` counts
/// consecutive ports (0 means 1).
#[derive(Debug, Clone, Deserialize)]
pub struct PortMapping {
    pub container_port: u16,
    #[serde(default)]
    pub host_ip: String,
    pub host_port: u16,
    #[serde(default)]
    pub protocol: String,
    #[serde(default)]
    pub range: u16,
}

/// The container's options for this network.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NetworkOptions {
    /// Names for DNS; nsnet has no responder for podman yet, so they are only decoded.
    #[allow(dead_code)]
    pub aliases: Option<Vec<String>>,
    pub interface_name: String,
    pub static_ips: Option<Vec<IpAddr>>,
    pub static_mac: Option<String>,
    pub options: Option<BTreeMap<String, String>>,
}

/// What `setup` and `teardown` read on stdin.
#[derive(Debug, Clone, Deserialize)]
pub struct PluginExec {
    pub container_id: String,
    pub container_name: String,
    pub port_mappings: Option<Vec<PortMapping>>,
    pub network: Network,
    pub network_options: NetworkOptions,
}

/// An address of an interface, with its subnet's gateway.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NetAddress {
    pub gateway: Option<IpAddr>,
    pub ipnet: IpNet,
}

/// One interface the plugin made in the container.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NetInterface {
    pub mac_address: String,
    pub subnets: Vec<NetAddress>,
}

/// What `setup` answers (podman shows it in `podman inspect`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StatusBlock {
    pub dns_search_domains: Vec<String>,
    pub dns_server_ips: Vec<IpAddr>,
    pub interfaces: BTreeMap<String, NetInterface>,
}
