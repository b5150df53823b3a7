//! netavark (Debian's `netavark` package, podman's network backend): `netavark setup NETNS` and
//! `netavark teardown NETNS` with podman's JSON network options on stdin: one bridge network
//! with masquerade, one TCP port mapping, DNS off (so no aardvark-dns). Podman allocates the
//! address (its IPAM lives in podman, not netavark) and passes it as a static IP; so do we.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;
use serde_json::{Value, json};

use super::{CONTAINER_PORT, Container, Net, Subject};
use crate::run;

/// Where Debian installs netavark (podman's helper directory), besides $PATH.
pub const DIRS: &[&str] = &["/usr/lib/podman", "/usr/libexec/podman"];

/// netavark.
pub struct Netavark {
    pub binary: PathBuf,
    pub config_dir: PathBuf,
    pub net: Net,
}

/// Finds the netavark binary.
pub fn find() -> Option<PathBuf> {
    run::which("netavark", DIRS)
}

/// Podman's network options for container `c` on network `net` (bridge `nvbr0`).
pub fn options(c: &Container, net: Net) -> Value {
    json!({
        "container_id": c.id(),
        "container_name": c.netns,
        "port_mappings": [{
            "host_ip": "",
            "container_port": CONTAINER_PORT,
            "host_port": c.host_port,
            "range": 1,
            "protocol": "tcp",
        }],
        "networks": {"bench": {
            "static_ips": [c.static_ip(net.base).to_string()],
            "interface_name": "eth0",
        }},
        "network_info": {"bench": {
            "name": "bench",
            "id": "be0c".repeat(16),
            "driver": "bridge",
            "network_interface": "nvbr0",
            "subnets": [{"subnet": net.cidr(), "gateway": net.gateway().to_string()}],
            "ipv6_enabled": false,
            "internal": false,
            "dns_enabled": false,
            "ipam_options": {"driver": "host-local"},
        }},
    })
}

impl Netavark {
    fn run(&self, verb: &str, c: &Container) -> Result<()> {
        let stdin = serde_json::to_vec(&options(c, self.net))?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--config")
            .arg(&self.config_dir)
            .arg(verb)
            .arg(c.netns_path());
        run::output(&mut cmd, Some(&stdin))?;
        Ok(())
    }

    /// netavark's version line, for the notes.
    pub fn version(binary: &Path) -> String {
        run::ok(&binary.display().to_string(), &["--version"], None)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "netavark (version unknown)".into())
    }
}

impl Subject for Netavark {
    fn name(&self) -> String {
        super::NETAVARK.into()
    }

    fn prepare(&mut self) -> Result<()> {
        std::fs::create_dir_all(&self.config_dir)?;
        Ok(())
    }

    fn setup(&self, c: &Container) -> Result<Option<IpAddr>> {
        self.run("setup", c)?;
        Ok(Some(IpAddr::V4(c.static_ip(self.net.base))))
    }

    fn teardown(&self, c: &Container) -> Result<()> {
        self.run("teardown", c)
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn options_follow_podmans_format() {
        let net = Net {
            base: Ipv4Addr::new(10, 93, 0, 0),
        };
        let o = options(&Container::new("nc", 4, 20004), net);
        assert_eq!(o["networks"]["bench"]["static_ips"][0], "10.93.0.6");
        assert_eq!(o["port_mappings"][0]["host_port"], 20004);
        assert_eq!(o["port_mappings"][0]["container_port"], 80);
        assert_eq!(o["network_info"]["bench"]["dns_enabled"], false);
        assert_eq!(o["network_info"]["bench"]["id"].as_str().unwrap().len(), 64);
        assert_eq!(
            o["network_info"]["bench"]["subnets"][0]["gateway"],
            "10.93.0.1"
        );
    }
}
