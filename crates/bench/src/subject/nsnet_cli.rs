//! nsnet's CLI, run as a process per operation as users run it:
//! `nsnet network connect NET NS --publish HOST:80` and `nsnet network disconnect NET NS`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use super::{CONTAINER_PORT, Container, Net, Subject};
use crate::run;

/// Name of the benchmark's nsnet network.
pub const NETWORK: &str = "bench";

/// nsnet's CLI face.
pub struct NsnetCli {
    pub nsnet: PathBuf,
    pub state_dir: PathBuf,
    pub net: Net,
}

impl NsnetCli {
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.nsnet);
        c.env("NSNET_STATE_DIR", &self.state_dir)
            .env_remove("NSNET_LOG")
            .env_remove("CNI_COMMAND");
        c
    }

    /// Runs `nsnet ARGS` and returns stdout.
    pub fn nsnet(&self, args: &[&str]) -> Result<String> {
        let out = run::output(self.cmd().args(args), None)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The first address in `nsnet --format json network connect` output.
pub fn parse_connect_addr(json: &str) -> Result<Option<IpAddr>> {
    let v: serde_json::Value = serde_json::from_str(json).context("parse connect output")?;
    Ok(v["addrs"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|a| a.as_str())
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok()))
}

impl Subject for NsnetCli {
    fn name(&self) -> String {
        super::NSNET_CLI.into()
    }

    fn prepare(&mut self) -> Result<()> {
        std::fs::create_dir_all(&self.state_dir)?;
        self.nsnet(&["network", "create", NETWORK, "--subnet", &self.net.cidr()])?;
        Ok(())
    }

    fn setup(&self, c: &Container) -> Result<Option<IpAddr>> {
        let publish = format!("{}:{CONTAINER_PORT}", c.host_port);
        let out = self.nsnet(&[
            "--format",
            "json",
            "network",
            "connect",
            NETWORK,
            &c.netns,
            "--publish",
            &publish,
        ])?;
        parse_connect_addr(&out)
    }

    fn teardown(&self, c: &Container) -> Result<()> {
        self.nsnet(&["network", "disconnect", NETWORK, &c.netns])?;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.nsnet(&["network", "rm", NETWORK, "--force"])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_endpoint_address() {
        let json = r#"{"network":"bench","netns":"c1","addrs":["10.90.0.2/16"],"ports":[]}"#;
        assert_eq!(
            parse_connect_addr(json).unwrap(),
            Some("10.90.0.2".parse().unwrap())
        );
        assert_eq!(parse_connect_addr(r#"{"addrs":[]}"#).unwrap(), None);
        assert!(parse_connect_addr("not json").is_err());
    }
}
