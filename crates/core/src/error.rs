//! Errors of the pure core: every message names the object and says what is allowed.

use std::net::IpAddr;

use ipnet::IpNet;

/// A request that the model refuses, before anything is changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    #[error("invalid {kind} name {name:?}: {allowed}")]
    InvalidName {
        kind: &'static str,
        name: String,
        allowed: String,
    },
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidValue {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("subnet {subnet} of network {network}: {reason}")]
    Subnet {
        network: String,
        subnet: IpNet,
        reason: String,
    },
    #[error("gateway {gateway} of network {network} is not inside any of its subnets ({subnets})")]
    GatewayOutside {
        network: String,
        gateway: IpAddr,
        subnets: String,
    },
    #[error("address {ip} for network {network}: {reason}")]
    Address {
        network: String,
        ip: IpAddr,
        reason: String,
    },
    /// A requested address another endpoint holds: a conflict, not a bad request.
    #[error("address {ip} for network {network}: is already in use")]
    AddressTaken { network: String, ip: IpAddr },
    #[error("network {network} has no free address left in {subnet}")]
    SubnetFull { network: String, subnet: IpNet },
    #[error("network {network} has no free address left in range {start}-{end} of {subnet}")]
    RangeFull {
        network: String,
        subnet: IpNet,
        start: IpAddr,
        end: IpAddr,
    },
}
