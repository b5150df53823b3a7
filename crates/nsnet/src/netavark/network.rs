//! A podman network definition read as an nsnet network: the bridge, subnets with gateways and
//! lease ranges, the options nsnet understands, and the routes its endpoints get. `create` and
//! `setup` read a definition the same way, so what `create` completes is what `setup` builds.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use ipnet::IpNet;
use nsnet_core::endpoint::StaticRoute;
use nsnet_core::ipam::Range;
use nsnet_core::model::{NetworkSpec, parse_cidr, parse_ip};
use nsnet_core::names::{IfName, NetName};
use nsnet_core::plan::default_dest;

use super::types::Network;

/// The `options` keys nsnet reads (`podman network create -o KEY=VALUE`).
pub const OPTION_KEYS: &[&str] = &["mtu", "isolate", "no_default_route", "icc", "state_dir"];

/// IPAM drivers under which nsnet's store allocates (podman's own host-local allocation, when
/// it made one, arrives as static IPs).
const IPAM_DRIVERS: &[&str] = &["host-local", "nsnet"];

/// A network definition, validated.
#[derive(Debug, Clone)]
pub struct Definition {
    pub spec: NetworkSpec,
    pub ranges: Vec<Range>,
    /// The routes each endpoint gets: a default route per address family, through that
    /// family's first gateway, unless the network is internal or `no_default_route` is set.
    pub routes: Vec<StaticRoute>,
    /// The `no_default_route` option: this network's attachments never carry default
    /// routes, not even when the container's network that carried them goes.
    pub no_default_route: bool,
    pub state_dir: PathBuf,
}

fn flag(network: &str, key: &str, value: &str) -> Result<bool> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        other => bail!("network {network} option {key}={other}: allowed values are true or false"),
    }
}

/// The subnets of `net`, parsed; empty when it has none.
pub fn subnets(net: &Network) -> Result<Vec<IpNet>> {
    net.subnets
        .iter()
        .flatten()
        .map(|s| parse_cidr("subnet", &s.subnet).with_context(|| format!("network {}", net.name)))
        .collect()
}

/// The state directory a definition names: option `state_dir`, else nsnet's default. Taken
/// from the definition rather than the environment because podman runs teardown from its
/// cleanup process, which does not carry the environment setup had.
pub fn state_dir(net: &Network) -> Result<PathBuf> {
    match net.options.as_ref().and_then(|o| o.get("state_dir")) {
        Some(d) if !d.starts_with('/') => bail!(
            "network {} option state_dir={d}: give an absolute path",
            net.name
        ),
        Some(d) => Ok(PathBuf::from(d)),
        None => Ok(PathBuf::from(nsnet_store::DEFAULT_STATE_DIR)),
    }
}

impl Definition {
    /// Validates `net` whole; the first problem found is the error, naming the network and
    /// the field.
    pub fn read(net: &Network) -> Result<Definition> {
        let name = NetName::new(&net.name).context("podman network name")?;
        let empty = BTreeMap::new();
        let options = net.options.as_ref().unwrap_or(&empty);
        if let Some(k) = options.keys().find(|k| !OPTION_KEYS.contains(&k.as_str())) {
            bail!(
                "network {name} option {k}: not an nsnet option; allowed: {}",
                OPTION_KEYS.join(", ")
            );
        }
        let mtu = match options.get("mtu").map(String::as_str) {
            None | Some("") | Some("0") => None,
            Some(m) => Some(m.parse::<u32>().map_err(|_| {
                anyhow::anyhow!("network {name} option mtu={m}: give a number of bytes")
            })?),
        };
        if let Some(v) = options.get("isolate")
            && v != "strict"
            && !flag(name.as_str(), "isolate", v)?
        {
            bail!(
                "network {name} option isolate={v}: nsnet always isolates its networks from each other; allowed: true or strict"
            );
        }
        let no_default_route = options
            .get("no_default_route")
            .map(|v| flag(name.as_str(), "no_default_route", v))
            .transpose()?
            .unwrap_or(false);
        let icc = options
            .get("icc")
            .map(|v| flag(name.as_str(), "icc", v))
            .transpose()?
            .unwrap_or(true);
        let state_dir = state_dir(net)?;
        if let Some(d) = net.ipam_options.as_ref().and_then(|o| o.get("driver"))
            && !IPAM_DRIVERS.contains(&d.as_str())
        {
            bail!(
                "network {name} ipam driver {d}: nsnet allocates addresses itself; allowed: {}",
                IPAM_DRIVERS.join(", ")
            );
        }
        if net.routes.as_ref().is_some_and(|r| !r.is_empty()) {
            bail!("network {name}: routes are not supported by nsnet; remove --route");
        }
        if net
            .network_dns_servers
            .as_ref()
            .is_some_and(|d| !d.is_empty())
        {
            bail!(
                "network {name}: network DNS servers are not supported by nsnet (its responder forwards to the host's nameservers); remove --dns"
            );
        }
        let cidrs = subnets(net)?;
        if net.ipv6_enabled && !cidrs.iter().any(|s| s.addr().is_ipv6()) {
            bail!(
                "network {name}: IPv6 is enabled but no IPv6 subnet is given; add one, e.g. --subnet fd00:10:89::/64"
            );
        }
        let gateways = net
            .subnets
            .iter()
            .flatten()
            .filter_map(|s| s.gateway.as_deref().filter(|g| !g.is_empty()))
            .map(|g| parse_ip("gateway", g))
            .collect::<Result<Vec<_>, _>>()?;
        let bridge = net
            .network_interface
            .as_deref()
            .filter(|b| !b.is_empty())
            .map(IfName::new)
            .transpose()?;
        let spec = NetworkSpec::builder(name)
            .subnets(cidrs)
            .gateways(gateways)
            .bridge(bridge)
            .mtu(mtu)
            .internal(net.internal)
            .icc(icc)
            .dns(net.dns_enabled)
            .build()?;
        let mut ranges = Vec::new();
        for (conf, subnet) in net.subnets.iter().flatten().zip(spec.subnets()) {
            let Some(lease) = &conf.lease_range else {
                continue;
            };
            if bound(&lease.start_ip).is_none() && bound(&lease.end_ip).is_none() {
                continue;
            }
            let start = match bound(&lease.start_ip) {
                Some(a) => parse_ip("lease_range start_ip", a)?,
                None => nsnet_core::model::first_host(&subnet.cidr),
            };
            let end = match bound(&lease.end_ip) {
                Some(a) => parse_ip("lease_range end_ip", a)?,
                None => last_host(&subnet.cidr),
            };
            ranges.push(Range::new(spec.name(), subnet, start, end)?);
        }
        let mut routes: Vec<StaticRoute> = Vec::new();
        if !spec.internal() && !no_default_route {
            for s in spec.subnets() {
                let dest = default_dest(s.gateway);
                if !routes.iter().any(|r| r.dest == dest) {
                    routes.push(StaticRoute {
                        dest,
                        via: s.gateway,
                    });
                }
            }
        }
        Ok(Definition {
            spec,
            ranges,
            routes,
            no_default_route,
            state_dir,
        })
    }
}

/// A lease range bound, when one is given.
fn bound(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|a| !a.is_empty())
}

/// The last address endpoints may use: the IPv4 broadcast is not one.
fn last_host(net: &IpNet) -> std::net::IpAddr {
    match net {
        IpNet::V4(v4) if v4.prefix_len() < 31 => {
            std::net::IpAddr::V4(std::net::Ipv4Addr::from(u32::from(v4.broadcast()) - 1))
        }
        _ => net.broadcast(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn net(v: serde_json::Value) -> Network {
        serde_json::from_value(v).unwrap()
    }

    fn base() -> serde_json::Value {
        json!({
            "name": "web", "id": "2f25", "driver": "nsnet",
            "subnets": [{"subnet": "10.89.0.0/24", "gateway": "10.89.0.1"}],
            "ipv6_enabled": false, "internal": false, "dns_enabled": false,
            "ipam_options": {"driver": "host-local"}
        })
    }

    fn err(v: serde_json::Value) -> String {
        format!("{:#}", Definition::read(&net(v)).unwrap_err())
    }

    #[test]
    fn a_podman_definition_becomes_a_network_with_default_routes() {
        let d = Definition::read(&net(base())).unwrap();
        assert_eq!(d.spec.name().as_str(), "web");
        assert_eq!(d.spec.subnets()[0].gateway.to_string(), "10.89.0.1");
        assert_eq!(d.spec.bridge().as_str(), "nsbr-web");
        assert!(d.spec.masquerade() && d.spec.icc() && !d.spec.internal());
        assert_eq!(d.routes.len(), 1);
        assert_eq!(d.routes[0].dest.to_string(), "0.0.0.0/0");
        assert_eq!(d.state_dir, PathBuf::from("/var/lib/nsnet"));
        assert!(d.ranges.is_empty());
    }

    #[test]
    fn options_lease_ranges_and_dual_stack_are_read() {
        let mut v = base();
        v["subnets"] = json!([
            {"subnet": "10.89.0.0/24", "lease_range": {"start_ip": "10.89.0.100", "end_ip": "10.89.0.110"}},
            {"subnet": "fd00:89::/64"}
        ]);
        v["ipv6_enabled"] = json!(true);
        v["network_interface"] = json!("podbr1");
        v["options"] = json!({"mtu": "1400", "isolate": "strict", "icc": "false",
            "state_dir": "/tmp/s"});
        let d = Definition::read(&net(v)).unwrap();
        assert_eq!(d.spec.bridge().as_str(), "podbr1");
        assert_eq!(d.spec.mtu(), Some(1400));
        assert!(!d.spec.icc());
        assert_eq!(d.spec.subnets()[0].gateway.to_string(), "10.89.0.1");
        assert_eq!(d.spec.subnets()[1].gateway.to_string(), "fd00:89::1");
        assert_eq!(d.ranges.len(), 1);
        assert_eq!(d.routes.len(), 2);
        assert_eq!(d.state_dir, PathBuf::from("/tmp/s"));
    }

    #[test]
    fn internal_and_no_default_route_networks_get_no_default_route() {
        let mut v = base();
        v["internal"] = json!(true);
        assert!(Definition::read(&net(v)).unwrap().routes.is_empty());
        let mut v = base();
        v["options"] = json!({"no_default_route": "true"});
        assert!(Definition::read(&net(v)).unwrap().routes.is_empty());
    }

    #[test]
    fn bad_definitions_are_refused_naming_the_field() {
        let cases = [
            (
                json!({"options": {"vlan": "5"}}),
                "network web option vlan: not an nsnet option; allowed: mtu, isolate",
            ),
            (
                json!({"options": {"isolate": "false"}}),
                "option isolate=false: nsnet always isolates",
            ),
            (
                json!({"options": {"mtu": "big"}}),
                "option mtu=big: give a number",
            ),
            (
                json!({"options": {"icc": "maybe"}}),
                "option icc=maybe: allowed values are true or false",
            ),
            (
                json!({"options": {"state_dir": "rel"}}),
                "option state_dir=rel: give an absolute path",
            ),
            (
                json!({"ipam_options": {"driver": "dhcp"}}),
                "ipam driver dhcp: nsnet allocates",
            ),
            (
                json!({"ipv6_enabled": true}),
                "IPv6 is enabled but no IPv6 subnet",
            ),
            (
                json!({"subnets": [{"subnet": "10.89.0.1/24"}]}),
                "host bits are set",
            ),
            (json!({"subnets": [{"subnet": "nonsense"}]}), "nonsense"),
            (
                json!({"subnets": [{"subnet": "10.89.0.0/24", "gateway": "10.90.0.1"}]}),
                "10.90.0.1",
            ),
            (
                json!({"network_interface": "a-very-long-bridge-name"}),
                "a-very-long-bridge-name",
            ),
            (json!({"name": "bad name"}), "bad name"),
            (
                json!({"subnets": [{"subnet": "10.89.0.0/24",
                "lease_range": {"start_ip": "10.88.0.5"}}]}),
                "10.88.0.5",
            ),
            (
                json!({"routes": [{"destination": "10.0.0.0/8"}]}),
                "routes are not supported",
            ),
        ];
        for (patch, needle) in cases {
            let mut v = base();
            for (k, val) in patch.as_object().unwrap() {
                v[k] = val.clone();
            }
            let e = err(v);
            assert!(e.contains(needle), "{patch}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
