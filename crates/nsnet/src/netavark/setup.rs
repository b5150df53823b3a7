//! `setup NETNS` and `teardown NETNS`: one container on one network, as an attachment keyed by
//! the container id and its interface name (the CNI face's key), so teardown finds it in the
//! store whatever became of the namespace, and a second teardown finds nothing and succeeds.
//! The network is made with its first container and goes with its last, since the plugin API
//! never says when podman removes a network.

use std::net::IpAddr;

use anyhow::{Context, Result, bail};
use nsnet_core::endpoint::RoutePolicy;
use nsnet_core::model::Mac;
use nsnet_core::names::{IfName, NetName, stable_hash};
use nsnet_core::ops::NsRef;
use nsnet_core::port::{PortSpec, Proto};
use nsnet_engine::views::EndpointView;
use nsnet_engine::{AttachRequest, OwnerKey};

use super::network::{Definition, state_dir};
use super::types::{NetAddress, NetInterface, PluginExec, PortMapping, StatusBlock};

/// A stable MAC for an interface on a network without IPv4 (where nsnet derives none):
/// locally administered, from the container id and interface name.
fn derived_mac(container_id: &str, ifname: &str) -> Mac {
    let h = stable_hash(&[container_id, ifname]).to_be_bytes();
    Mac([0x02, h[0], h[1], h[2], h[3], h[4]])
}

/// The published ports of one mapping: one per protocol it lists.
pub fn port_specs(p: &PortMapping) -> Result<Vec<PortSpec>> {
    let what = format!(
        "port mapping {}:{} -> {}",
        if p.host_ip.is_empty() {
            "*"
        } else {
            &p.host_ip
        },
        p.host_port,
        p.container_port
    );
    if p.host_port == 0 || p.container_port == 0 {
        bail!("{what}: ports must be 1-65535");
    }
    let count = p.range.max(1);
    for (first, kind) in [(p.host_port, "host"), (p.container_port, "container")] {
        if u32::from(first) + u32::from(count) - 1 > u32::from(u16::MAX) {
            bail!("{what}: the {kind} ports of range {count} go past 65535");
        }
    }
    let host_ip = match p.host_ip.as_str() {
        "" => None,
        s => Some(
            s.parse::<IpAddr>()
                .map_err(|_| anyhow::anyhow!("{what}: host_ip {s} is not an IP address"))?,
        )
        .filter(|ip| !ip.is_unspecified()),
    };
    let protocols = if p.protocol.is_empty() {
        "tcp"
    } else {
        p.protocol.as_str()
    };
    protocols
        .split(',')
        .map(|proto| {
            let proto = proto
                .trim()
                .to_ascii_lowercase()
                .parse::<Proto>()
                .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
            Ok(PortSpec {
                host_ip,
                host_port: p.host_port,
                container_port: p.container_port,
                count,
                proto,
            })
        })
        .collect()
}

/// What one attachment is keyed by.
fn key(exec: &PluginExec) -> Result<OwnerKey> {
    if exec.container_id.is_empty() {
        bail!("the setup/teardown input has an empty container_id");
    }
    Ok(OwnerKey {
        owner_id: exec.container_id.clone(),
        ifname: IfName::new(&exec.network_options.interface_name)
            .context("network_options.interface_name")?,
    })
}

/// The attachment setup asks for, validated; nothing is touched yet.
pub fn request(netns: &str, exec: &PluginExec) -> Result<(Definition, AttachRequest)> {
    let def = Definition::read(&exec.network)?;
    let key = key(exec)?;
    let opts = &exec.network_options;
    if let Some(k) = opts.options.iter().flatten().map(|(k, _)| k).next() {
        bail!(
            "container {} network {} option {k}: nsnet takes no per-container network options",
            exec.container_name,
            def.spec.name()
        );
    }
    let has_v4 = def.spec.subnets().iter().any(|s| s.cidr.addr().is_ipv4());
    let mac = match opts.static_mac.as_deref().filter(|m| !m.is_empty()) {
        Some(m) => Some(m.parse::<Mac>()?),
        None => (!has_v4).then(|| derived_mac(&key.owner_id, key.ifname.as_str())),
    };
    let mut publish = Vec::new();
    for p in exec.port_mappings.iter().flatten() {
        publish.extend(port_specs(p)?);
    }
    let req = AttachRequest {
        key,
        network: def.spec.clone(),
        netns: NsRef::Named(netns.to_string()),
        ips: opts.static_ips.clone().unwrap_or_default(),
        mac,
        publish,
        ranges: def.ranges.clone(),
        routes: RoutePolicy::Explicit(def.routes.clone()),
        no_default_route: def.no_default_route,
        // Podman's aliases (the container's name and short id among them) become DNS names
        // wherever the network has nsnet's responder.
        aliases: opts.aliases.clone().unwrap_or_default(),
    };
    Ok((def, req))
}

/// The status block of one attachment.
pub fn status(def: &Definition, ep: &EndpointView, mac: Option<Mac>) -> StatusBlock {
    let mac_address = ep
        .mac
        .clone()
        .or_else(|| mac.map(|m| m.to_string()))
        .unwrap_or_default();
    let subnets = ep
        .addrs
        .iter()
        .map(|a| NetAddress {
            gateway: def.spec.subnet_of(a.addr()).map(|s| s.gateway),
            ipnet: *a,
        })
        .collect();
    // With nsnet's responder, podman writes the gateways and the search domain into the
    // container's resolv.conf.
    let (dns_server_ips, dns_search_domains) = if def.spec.dns() {
        (
            def.spec.subnets().iter().map(|s| s.gateway).collect(),
            vec![nsnet_core::dnsname::SEARCH_DOMAIN.to_string()],
        )
    } else {
        (Vec::new(), Vec::new())
    };
    StatusBlock {
        dns_search_domains,
        dns_server_ips,
        interfaces: [(
            ep.ifname.clone(),
            NetInterface {
                mac_address,
                subnets,
            },
        )]
        .into(),
    }
}

/// Runs `setup NETNS`.
pub fn setup(netns: &str, exec: &PluginExec) -> Result<StatusBlock> {
    if !netns.starts_with('/') {
        bail!("setup {netns}: give the container's network namespace as an absolute path");
    }
    let (def, mut req) = request(netns, exec)?;
    let mut engine = super::open(&def.state_dir)?;
    // A container on several networks: netavark hands its published ports to each of them,
    // and each network would give it a default route. Ports are published once, through the
    // first network (a host port maps to one address); a family's default route comes from
    // the first non-internal network with an address of that family.
    let others: Vec<EndpointView> = engine
        .owner_attachments(&req.key.owner_id)?
        .into_iter()
        .filter(|a| a.netns == netns && a.network != def.spec.name().as_str())
        .collect();
    if others.iter().any(|a| !a.ports.is_empty()) {
        req.publish.clear();
    }
    let mut covered = Vec::new();
    for a in &others {
        let name = NetName::new(&a.network)?;
        // A network attached with `no_default_route` covers no family.
        if !a.no_default_route && !engine.network_inspect(&name)?.internal {
            covered.extend(a.addrs.iter().map(|n| n.addr().is_ipv4()));
        }
    }
    req.routes = RoutePolicy::Explicit(
        def.routes
            .iter()
            .filter(|r| !covered.contains(&r.via.is_ipv4()))
            .cloned()
            .collect(),
    );
    let what = format!(
        "attach container {} ({}) interface {} to network {} (netns {netns})",
        exec.container_name,
        req.key.owner_id,
        req.key.ifname,
        def.spec.name()
    );
    // A second setup of the same container on the same network means the first one's
    // container is gone without a teardown (podman after a reboot or a crash): that attachment
    // is stale, and it is removed first rather than refused.
    if engine.attachment(def.spec.name(), &req.key)?.is_some() {
        tracing::info!(key = %req.key, network = %def.spec.name(), "setup replaces a stale attachment");
        engine.detach(def.spec.name(), &req.key).map_err(|e| {
            e.during(format!(
                "remove the stale attachment of container {} interface {} to network {}",
                req.key.owner_id,
                req.key.ifname,
                def.spec.name()
            ))
        })?;
    }
    let ep = engine.attach(&req).map_err(|e| e.during(what))?;
    if def.spec.dns() {
        crate::dns::sync(&def.state_dir, Some(engine.store())).context("DNS responder")?;
    }
    drop(engine);
    Ok(status(&def, &ep, req.mac))
}

/// Runs `teardown NETNS`. Reads only the network's name and state directory, so a definition
/// that no longer validates can still be cleaned up.
pub fn teardown(exec: &PluginExec) -> Result<()> {
    let network = NetName::new(&exec.network.name).context("podman network name")?;
    let key = key(exec)?;
    let dir = state_dir(&exec.network)?;
    if !dir.join(nsnet_store::DB_FILE).exists() {
        tracing::debug!(%network, %key, "teardown: no state store, nothing attached");
        return Ok(());
    }
    let mut engine = super::open(&dir)?;
    // `podman network disconnect` of a container's first network: its default routes go to
    // the next network of the container (setup gave that one none for a covered family),
    // unless that one was attached with `no_default_route` (see `primary_in`).
    let removed = engine.detach_handing_over(&network, &key).map_err(|e| {
        e.during(format!(
            "detach container {} ({}) interface {} from network {network}",
            exec.container_name, key.owner_id, key.ifname
        ))
    })?;
    // Also when this teardown found nothing: an earlier one may have died before the network
    // went.
    let released = engine.release_if_unused(&network)?;
    tracing::debug!(%network, %key, removed, released, "teardown");
    drop(engine);
    // Names went away: a running responder reloads now (it also notices within a second).
    let _ = crate::dns::notify(&dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn exec(v: serde_json::Value) -> PluginExec {
        serde_json::from_value(v).unwrap()
    }

    fn base() -> serde_json::Value {
        json!({
            "container_id": "752947ff91f9", "container_name": "web1",
            "port_mappings": [{"container_port": 80, "host_ip": "", "host_port": 8080,
                "protocol": "tcp,udp", "range": 2}],
            "network": {"name": "web", "id": "x", "driver": "nsnet",
                "subnets": [{"subnet": "10.89.0.0/24", "gateway": "10.89.0.1"}],
                "ipv6_enabled": false, "internal": false, "dns_enabled": false},
            "network_options": {"aliases": ["web1"], "interface_name": "eth0",
                "static_ips": ["10.89.0.50"], "static_mac": "aa:bb:cc:dd:aa:00"}
        })
    }

    #[test]
    fn setup_input_becomes_an_attachment_request() {
        let (def, req) = request("/run/netns/c1", &exec(base())).unwrap();
        assert_eq!(def.spec.name().as_str(), "web");
        assert_eq!(req.key.owner_id, "752947ff91f9");
        assert_eq!(req.key.ifname.as_str(), "eth0");
        assert_eq!(req.netns, NsRef::Named("/run/netns/c1".into()));
        assert_eq!(req.ips, vec!["10.89.0.50".parse::<IpAddr>().unwrap()]);
        assert_eq!(req.mac.unwrap().to_string(), "aa:bb:cc:dd:aa:00");
        assert_eq!(req.publish.len(), 2);
        assert!(
            req.publish
                .iter()
                .all(|p| p.count == 2 && p.host_port == 8080)
        );
        assert_eq!(req.publish[1].proto, Proto::Udp);
        let RoutePolicy::Explicit(routes) = &req.routes else {
            panic!("explicit routes")
        };
        assert_eq!(routes.len(), 1);
    }

    #[test]
    fn bad_setup_input_is_refused_naming_the_field() {
        let cases = [
            (
                json!({"port_mappings": [{"container_port": 80, "host_port": 0}]}),
                "port mapping *:0 -> 80: ports must be 1-65535",
            ),
            (
                json!({"port_mappings": [{"container_port": 80, "host_port": 65535, "range": 2}]}),
                "go past 65535",
            ),
            (
                json!({"port_mappings": [{"container_port": 80, "host_port": 80, "protocol": "icmp"}]}),
                "icmp",
            ),
            (
                json!({"port_mappings": [{"container_port": 80, "host_port": 80, "host_ip": "x"}]}),
                "host_ip x is not an IP address",
            ),
            (
                json!({"network_options": {"interface_name": "bad/name"}}),
                "bad/name",
            ),
            (
                json!({"network_options": {"interface_name": "eth0", "static_mac": "zz"}}),
                "zz",
            ),
            (
                json!({"network_options": {"interface_name": "eth0", "options": {"x": "1"}}}),
                "option x: nsnet takes no per-container",
            ),
            (json!({"container_id": ""}), "empty container_id"),
        ];
        for (patch, needle) in cases {
            let mut v = base();
            for (k, val) in patch.as_object().unwrap() {
                v[k] = val.clone();
            }
            let e = format!("{:#}", request("/run/netns/c1", &exec(v)).unwrap_err());
            assert!(e.contains(needle), "{patch}: {e}");
        }
    }

    #[test]
    fn ipv6_only_networks_get_a_derived_mac_and_the_status_block_lists_the_interface() {
        let mut v = base();
        v["network"]["subnets"] = json!([{"subnet": "fd00:89::/64"}]);
        v["network"]["ipv6_enabled"] = json!(true);
        v["network_options"] = json!({"interface_name": "eth1"});
        let (def, req) = request("/proc/1/ns/net", &exec(v)).unwrap();
        let mac = req.mac.unwrap();
        assert_eq!(mac, derived_mac("752947ff91f9", "eth1"));
        let ep = EndpointView {
            network: "web".into(),
            netns: "/proc/1/ns/net".into(),
            ifname: "eth1".into(),
            host_ifname: "nsv0".into(),
            mac: None,
            addrs: vec!["fd00:89::2/64".parse().unwrap()],
            primary: false,
            no_default_route: false,
            state: "ready".into(),
            container_id: Some("752947ff91f9".into()),
            ports: vec![],
            names: vec![],
        };
        let s = serde_json::to_value(status(&def, &ep, req.mac)).unwrap();
        assert_eq!(
            s,
            json!({"dns_search_domains": [], "dns_server_ips": [], "interfaces": {"eth1": {
                "mac_address": mac.to_string(),
                "subnets": [{"gateway": "fd00:89::1", "ipnet": "fd00:89::2/64"}]}}})
        );
    }
}
