//! What is measured: one way to give a container its network (veth on a bridge, one address,
//! default route, masquerade, one published TCP port) and to take it away again.

pub mod cni;
pub mod floor;
pub mod netavark;
pub mod nsnet_cli;

use std::net::{IpAddr, Ipv4Addr};

use anyhow::Result;

/// Subject names, as the tables show them.
pub const NSNET_CLI: &str = "nsnet CLI";
pub const NSNET_CNI: &str = "nsnet CNI";
pub const FLOOR: &str = "floor (ip -batch, nft -f)";
pub const NETAVARK: &str = "netavark";
pub const CNI_REF: &str = "CNI bridge+host-local+portmap";

/// The container port every published port maps to.
pub const CONTAINER_PORT: u16 = 80;
/// First host port of the containers that fill the network (container i gets BASE + i).
pub const FILL_PORT_BASE: u16 = 20000;
/// Host port of the probe container measured at each N.
pub const PROBE_PORT: u16 = 30000;
/// Index of the probe container (far from the fill's, so addresses never collide).
pub const PROBE_INDEX: u32 = 60000;

/// One container: its namespace (already created, like a runtime's), a stable index, the host
/// port it publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub index: u32,
    pub netns: String,
    pub host_port: u16,
}

impl Container {
    /// Container `index` with namespace `{prefix}{index}` publishing `host_port`.
    pub fn new(prefix: &str, index: u32, host_port: u16) -> Container {
        Container {
            index,
            netns: format!("{prefix}{index}"),
            host_port,
        }
    }

    /// /run/netns/NAME, for tools that take a path.
    pub fn netns_path(&self) -> String {
        format!("/run/netns/{}", self.netns)
    }

    /// A 64-hex-digit container id, as engines hand to CNI plugins and netavark.
    pub fn id(&self) -> String {
        format!("{:064x}", u64::from(self.index) + 0xbe0c_0000)
    }

    /// The address a caller-side IPAM gives this container in a /16 whose gateway is `.0.1`
    /// (for subjects that take addresses from their caller: the floor and netavark, whose IPAM
    /// lives in podman).
    pub fn static_ip(&self, subnet_base: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(subnet_base) + 2 + self.index)
    }
}

/// A network a subject sets up containers on: a /16 with the gateway at .0.1.
#[derive(Debug, Clone, Copy)]
pub struct Net {
    pub base: Ipv4Addr,
}

impl Net {
    /// The subnet in CIDR notation.
    pub fn cidr(&self) -> String {
        format!("{}/16", self.base)
    }

    /// The gateway (the bridge's address).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + 1)
    }
}

/// One way of setting up containers. Setup and teardown are timed by the caller; both may run
/// concurrently from several threads.
pub trait Subject: Send + Sync {
    /// Name in the tables.
    fn name(&self) -> String;
    /// Work done once per network, untimed (create the network, install a ruleset).
    fn prepare(&mut self) -> Result<()>;
    /// Untimed preparation of one container's setup (e.g. writing the files a script would
    /// already have).
    fn stage(&self, _c: &Container) -> Result<()> {
        Ok(())
    }
    /// Gives the container its network; returns its address when the subject reports one.
    fn setup(&self, c: &Container) -> Result<Option<IpAddr>>;
    /// Takes it away again.
    fn teardown(&self, c: &Container) -> Result<()>;
    /// Removes what `prepare` made, untimed.
    fn finish(&mut self) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_ids_and_addresses() {
        let c = Container::new("bc", 7, 20007);
        assert_eq!(c.netns, "bc7");
        assert_eq!(c.netns_path(), "/run/netns/bc7");
        assert_eq!(c.id().len(), 64);
        assert_ne!(c.id(), Container::new("bc", 8, 1).id());
        let net = Net {
            base: Ipv4Addr::new(10, 92, 0, 0),
        };
        assert_eq!(net.cidr(), "10.92.0.0/16");
        assert_eq!(net.gateway(), Ipv4Addr::new(10, 92, 0, 1));
        assert_eq!(c.static_ip(net.base), Ipv4Addr::new(10, 92, 0, 9));
        let far = Container::new("bc", 1000, 1);
        assert_eq!(far.static_ip(net.base), Ipv4Addr::new(10, 92, 3, 234));
        let probe = Container::new("bc", PROBE_INDEX, PROBE_PORT);
        assert_eq!(probe.static_ip(net.base), Ipv4Addr::new(10, 92, 234, 98));
    }
}
