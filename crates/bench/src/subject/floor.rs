//! The floor: the same kernel work as an nsnet connect, issued by iproute2 and nft from files
//! written beforehand (untimed). The ruleset is nsnet's own skeleton with the network's
//! elements, installed once; per container:
//!
//! - `ip -batch HOST_FILE`: the veth with its peer made in the container's namespace (MAC set),
//!   host end on the bridge, no IPv6 address on it, up, hairpin on;
//! - `ip -n NETNS -batch NS_FILE`: lo up, no IPv6 address on eth0 (an IPv4-only network), eth0
//!   up, the address, the default route (iproute2 addresses one namespace per process, so the
//!   container's half is a second batch);
//! - `nft -f NFT_FILE`: the published port's DNAT map element.
//!
//! Teardown: `nft -f` deleting the element, then `ip -batch` deleting the host end (which takes
//! the peer, its address and route with it). Addresses come from the caller (no IPAM).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Result;
use nsnet_core::firewall::{self, FwElem};
use nsnet_core::model::Mac;

use super::{CONTAINER_PORT, Container, Net, Subject};
use crate::run;

/// The floor's bridge.
pub const BRIDGE: &str = "flbr0";

/// The floor.
pub struct Floor {
    pub dir: PathBuf,
    pub net: Net,
}

/// `add element` / `delete element` lines for `elems` in nft syntax.
pub fn element_script(verb: &str, elems: &[FwElem], with_data: bool) -> String {
    let mut s = String::new();
    for e in elems {
        let family = if e.family == firewall::FAMILY_BRIDGE {
            "bridge"
        } else {
            "inet"
        };
        let data = match (&e.data, with_data) {
            (Some(t), true) => format!(" : {} . {}", t.addr, t.port),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "{verb} element {family} {} {} {{ {}{data} }}",
            firewall::TABLE,
            e.set,
            e.key
        );
    }
    s
}

/// The published port's element for container `c` at `ip`.
fn port_elem(c: &Container, ip: IpAddr) -> FwElem {
    let spec: nsnet_core::port::PortSpec = format!("{}:{CONTAINER_PORT}", c.host_port)
        .parse()
        .expect("valid port spec");
    let m = spec.mappings().into_iter().next().expect("one mapping");
    firewall::port_element(&m, ip)
}

impl Floor {
    fn host_veth(c: &Container) -> String {
        format!("nsvf{}", c.index)
    }

    fn file(&self, c: &Container, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", c.netns))
    }

    /// The four files of one container: host batch, namespace batch, nft add, teardown pair.
    pub fn scripts(&self, c: &Container) -> [(String, String); 5] {
        let ip = c.static_ip(self.net.base);
        let mac = Mac::from_ipv4(ip);
        let veth = Self::host_veth(c);
        let host = format!(
            "link add {veth} master {BRIDGE} type veth peer name eth0 address {mac} netns {ns}\n\
             link set dev {veth} addrgenmode none\n\
             link set dev {veth} up\n\
             link set dev {veth} type bridge_slave hairpin on\n",
            ns = c.netns
        );
        let ns = format!(
            "link set lo up\nlink set eth0 addrgenmode none\nlink set eth0 up\n\
             addr add {ip}/16 dev eth0\nroute add default via {}\n",
            self.net.gateway()
        );
        let elem = port_elem(c, IpAddr::V4(ip));
        let add = element_script("add", std::slice::from_ref(&elem), true);
        let del = element_script("delete", std::slice::from_ref(&elem), false);
        let host_del = format!("link del {veth}\n");
        [
            ("host".into(), host),
            ("ns".into(), ns),
            ("nft".into(), add),
            ("nftdel".into(), del),
            ("hostdel".into(), host_del),
        ]
    }

    fn path(&self, c: &Container, ext: &str) -> String {
        self.file(c, ext).display().to_string()
    }
}

impl Subject for Floor {
    fn name(&self) -> String {
        super::FLOOR.into()
    }

    fn prepare(&mut self) -> Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let gw = format!("{}/16", self.net.gateway());
        run::ok("ip", &["link", "add", BRIDGE, "type", "bridge"], None)?;
        // As nsnet does for an IPv4-only network: no IPv6 on the bridge.
        let v6 = format!("/proc/sys/net/ipv6/conf/{BRIDGE}/disable_ipv6");
        if std::path::Path::new(&v6).exists() {
            std::fs::write(&v6, "1")?;
        }
        run::ok("ip", &["addr", "add", &gw, "dev", BRIDGE], None)?;
        run::ok("ip", &["link", "set", BRIDGE, "up"], None)?;
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")?;
        std::fs::write(
            format!("/proc/sys/net/ipv4/conf/{BRIDGE}/route_localnet"),
            "1",
        )?;
        // The same ruleset nsnet installs, with this bridge's elements (masquerade etc.).
        let spec =
            nsnet_core::model::NetworkSpec::builder(nsnet_core::names::NetName::new("floor")?)
                .bridge(nsnet_core::names::IfName::new(BRIDGE)?)
                .subnets([self.net.cidr().parse()?])
                .build()?;
        let script = format!(
            "{}{}",
            firewall::skeleton(),
            element_script("add", &firewall::network_elements(&spec), true)
        );
        let path = self.dir.join("ruleset.nft");
        std::fs::write(&path, script)?;
        run::ok("nft", &["-f", &path.display().to_string()], None)?;
        Ok(())
    }

    /// Writes the container's files (untimed: a script would have them ready too).
    fn stage(&self, c: &Container) -> Result<()> {
        for (ext, text) in self.scripts(c) {
            std::fs::write(self.file(c, &ext), text)?;
        }
        Ok(())
    }

    fn setup(&self, c: &Container) -> Result<Option<IpAddr>> {
        run::ok("ip", &["-batch", &self.path(c, "host")], None)?;
        run::ok("ip", &["-n", &c.netns, "-batch", &self.path(c, "ns")], None)?;
        run::ok("nft", &["-f", &self.path(c, "nft")], None)?;
        Ok(Some(IpAddr::V4(c.static_ip(self.net.base))))
    }

    fn teardown(&self, c: &Container) -> Result<()> {
        run::ok("nft", &["-f", &self.path(c, "nftdel")], None)?;
        run::ok("ip", &["-batch", &self.path(c, "hostdel")], None)?;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        run::ok("ip", &["link", "del", BRIDGE], None)?;
        run::ok(
            "nft",
            &["-f", "-"],
            Some(firewall::remove_script().as_bytes()),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn scripts_do_the_work_of_one_connect() {
        let f = Floor {
            dir: "/tmp/x".into(),
            net: Net {
                base: Ipv4Addr::new(10, 92, 0, 0),
            },
        };
        let c = Container::new("fc", 3, 20003);
        let s = f.scripts(&c);
        assert_eq!(
            s[0].1,
            "link add nsvf3 master flbr0 type veth peer name eth0 address 0a:58:0a:5c:00:05 netns fc3\n\
             link set dev nsvf3 addrgenmode none\n\
             link set dev nsvf3 up\n\
             link set dev nsvf3 type bridge_slave hairpin on\n"
        );
        assert_eq!(
            s[1].1,
            "link set lo up\nlink set eth0 addrgenmode none\nlink set eth0 up\n\
             addr add 10.92.0.5/16 dev eth0\nroute add default via 10.92.0.1\n"
        );
        assert_eq!(
            s[2].1,
            "add element inet nsnet pf_any4 { tcp . 20003 : 10.92.0.5 . 80 }\n"
        );
        assert_eq!(
            s[3].1,
            "delete element inet nsnet pf_any4 { tcp . 20003 }\n"
        );
        assert_eq!(s[4].1, "link del nsvf3\n");
    }
}
