//! ADD: create the network on first use, attach the container, and answer with the result
//! (appended to `prevResult` when nsnet is not the first plugin of the chain).

use std::net::IpAddr;

use nsnet_core::endpoint::RoutePolicy;
use nsnet_core::model::Mac;
use nsnet_core::names::stable_hash;
use nsnet_core::ops::NsRef;
use nsnet_engine::views::EndpointView;
use nsnet_engine::{AttachRequest, OwnerKey};
use serde_json::Value;

use super::config::{NetConf, Network};
use super::env::CniEnv;
use super::error::CniError;
use super::result::{CniResult, Dns, Interface, IpConfig, Route};
use super::version::Version;
use super::words;

/// A stable MAC for an interface on a network without IPv4 (where nsnet derives none):
/// locally administered, from the container id and interface name.
fn derived_mac(container_id: &str, ifname: &str) -> Mac {
    let h = stable_hash(&[container_id, ifname]).to_be_bytes();
    Mac([0x02, h[0], h[1], h[2], h[3], h[4]])
}

/// Runs ADD; returns the result JSON.
pub fn run(env: &CniEnv, conf: &NetConf, version: Version) -> Result<Value, CniError> {
    let network = conf.network()?;
    let req = conf.request(&env.args)?;
    let netns = env.netns.clone().expect("ADD has CNI_NETNS");
    let ifname = env.ifname.clone().expect("ADD has CNI_IFNAME");
    let prev = conf
        .prev_result
        .as_ref()
        .map(CniResult::from_json)
        .transpose()?;
    let has_v4 = network
        .spec
        .subnets()
        .iter()
        .any(|s| s.cidr.addr().is_ipv4());
    let mac = req
        .mac
        .or_else(|| (!has_v4).then(|| derived_mac(&env.container_id, ifname.as_str())));
    let add = AttachRequest {
        key: OwnerKey {
            owner_id: env.container_id.clone(),
            ifname,
        },
        network: network.spec.clone(),
        netns: NsRef::Named(netns.clone()),
        ips: req.ips,
        mac,
        publish: req.publish,
        ranges: network.ranges.clone(),
        routes: RoutePolicy::Explicit(network.routes.clone()),
        // CNI attachments are independent: none is ever handed another's routes.
        no_default_route: false,
        aliases: req.aliases,
    };
    let mut engine = super::open(&conf.basics)?;
    // The node claims its slice before anything is made: a podCIDR another node holds in
    // etcd fails the ADD with nothing changed.
    let membership = super::overlay::join(&network, &conf.basics.state_dir()?)?;
    let what = format!(
        "attach {} (netns {netns})",
        words::attachment(add.network.name(), &add.key)
    );
    let ep = engine.attach(&add).map_err(|e| e.during(what.clone()))?;
    if !req.bandwidth.is_empty() {
        let name = add.network.name();
        let shaped =
            engine.attachment_shape(name, &add.key, req.bandwidth.ingress, req.bandwidth.egress);
        if let Err(e) = shaped {
            // A failed ADD leaves nothing: the runtime will not DEL what it never got.
            let undone = engine
                .detach(name, &add.key)
                .and_then(|_| engine.release_if_unused(name));
            if let Err(u) = undone {
                tracing::warn!(attachment = %what, error = %u, "undo of a failed ADD");
            }
            return Err(e.during(format!("limit the bandwidth of {what}")).into());
        }
    }
    if let Some(etcd) = &membership
        && let Err(e) = super::overlay::converge(&mut engine, &network, etcd)
    {
        let name = add.network.name();
        let undone = engine
            .detach(name, &add.key)
            .and_then(|_| engine.release_if_unused(name));
        if let Err(u) = undone {
            tracing::warn!(attachment = %what, error = %u, "undo of a failed ADD");
        }
        return Err(e);
    }
    if network.spec.dns() {
        let dir = conf.basics.state_dir()?;
        crate::dns::sync(&dir, Some(engine.store())).map_err(|e| {
            CniError::new(
                super::error::code::IO_FAILURE,
                format!("DNS responder: {e:#}"),
            )
        })?;
    }
    drop(engine);
    let ours = result(&network, &ep, &netns, conf);
    let out = match prev {
        Some(mut p) => {
            p.append(ours);
            p
        }
        None => ours,
    };
    Ok(out.to_json(version))
}

/// The result of one attachment: interfaces bridge, host veth, container interface (as the
/// bridge plugin lists them), one IP per subnet on the container interface, the routes.
fn result(network: &Network, ep: &EndpointView, netns: &str, conf: &NetConf) -> CniResult {
    let mtu = network.spec.mtu();
    let gateway = |ip: IpAddr| network.spec.subnet_of(ip).map(|s| s.gateway);
    CniResult {
        interfaces: vec![
            Interface {
                name: network.spec.bridge().to_string(),
                mac: None,
                mtu,
                sandbox: None,
            },
            Interface {
                name: ep.host_ifname.clone(),
                mac: None,
                mtu,
                sandbox: None,
            },
            Interface {
                name: ep.ifname.clone(),
                mac: ep.mac.clone(),
                mtu,
                sandbox: Some(netns.to_string()),
            },
        ],
        ips: ep
            .addrs
            .iter()
            .map(|a| IpConfig {
                address: *a,
                gateway: gateway(a.addr()),
                interface: Some(2),
            })
            .collect(),
        routes: network
            .routes
            .iter()
            .map(|r| Route {
                dst: r.dest,
                gw: Some(r.via),
            })
            .collect(),
        dns: dns(network, conf),
    }
}

/// The result's DNS: the configuration's, with the gateways and the search domain first
/// when the network has nsnet's responder.
fn dns(network: &Network, conf: &NetConf) -> Dns {
    let mut out = conf.dns.clone().unwrap_or_default();
    if network.spec.dns() {
        let mut servers: Vec<String> = network
            .spec
            .subnets()
            .iter()
            .map(|s| s.gateway.to_string())
            .collect();
        for n in out.nameservers.drain(..) {
            if !servers.contains(&n) {
                servers.push(n);
            }
        }
        out.nameservers = servers;
        let domain = nsnet_core::dnsname::SEARCH_DOMAIN.to_string();
        out.search.retain(|d| *d != domain);
        out.search.insert(0, domain);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_macs_are_stable_unicast_and_local() {
        let a = derived_mac("abc", "eth0");
        assert_eq!(a, derived_mac("abc", "eth0"));
        assert_ne!(a, derived_mac("abc", "eth1"));
        assert_eq!(a.0[0], 0x02);
        assert!(a.to_string().parse::<Mac>().is_ok());
    }
}
