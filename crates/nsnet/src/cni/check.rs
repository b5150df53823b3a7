//! CHECK: the kernel against the store (bridge, veth, addresses, MAC, routes, firewall
//! elements) and the store against `prevResult`; any difference fails with code 100 and a
//! message naming each one.

use std::collections::BTreeSet;

use ipnet::IpNet;
use nsnet_core::endpoint::RoutePolicy;
use nsnet_core::ops::NsRef;
use nsnet_engine::{OwnerKey, VerifyRequest, Which};

use super::config::NetConf;
use super::env::CniEnv;
use super::error::{CniError, code};
use super::result::CniResult;
use super::version::Version;
use super::words;

/// Runs CHECK.
pub fn run(env: &CniEnv, conf: &NetConf, version: Version) -> Result<(), CniError> {
    if !version.has_check() {
        return Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!(
                "CHECK is not part of CNI {}: use cniVersion 0.4.0 or later",
                version.as_str()
            ),
        ));
    }
    let network = conf.network()?;
    let prev = conf.prev_result.as_ref().ok_or_else(|| {
        CniError::new(
            code::INVALID_CONFIG,
            "CHECK needs prevResult (the cached result of ADD) in the network configuration",
        )
    })?;
    let prev = CniResult::from_json(prev)?;
    let ifname = env.ifname.clone().expect("CHECK has CNI_IFNAME");
    let netns = env.netns.clone().expect("CHECK has CNI_NETNS");
    let name = network.spec.name();
    let key = OwnerKey {
        owner_id: env.container_id.clone(),
        ifname: ifname.clone(),
    };
    let what = words::attachment(name, &key);
    let mut engine = super::open(&conf.basics)?;
    if let Some(m) = engine.compare_network(&network.spec)? {
        return Err(CniError::new(code::INVALID_CONFIG, words::mismatch(&m)));
    }
    if engine.attachment(name, &key)?.is_none() {
        return Err(CniError::new(
            code::UNKNOWN_CONTAINER,
            format!("attachment of {what} not found"),
        ));
    }
    let report = engine.verify_endpoint(&VerifyRequest {
        network: name.clone(),
        endpoint: Which::Owner {
            key,
            netns: NsRef::Named(netns),
        },
        routes: RoutePolicy::Explicit(network.routes.clone()),
    })?;
    let mut problems: Vec<String> = report.problems.iter().map(words::problem).collect();
    let stored: BTreeSet<IpNet> = report.endpoint.addrs.iter().copied().collect();
    let iface = prev.sandbox_interface(ifname.as_str());
    // The addresses prevResult gives our interface (or, without interface indices, those
    // inside this network's subnets).
    let listed: BTreeSet<IpNet> = prev
        .ips
        .iter()
        .filter(|ip| match (ip.interface, iface) {
            (Some(i), Some(ours)) => i == ours,
            _ => network.spec.subnet_of(ip.address.addr()).is_some(),
        })
        .map(|ip| ip.address)
        .collect();
    for a in listed.difference(&stored) {
        problems.push(format!(
            "prevResult lists address {a}, which nsnet did not assign to {ifname}"
        ));
    }
    for a in stored.difference(&listed) {
        problems.push(format!(
            "address {a} of {ifname} is missing from prevResult"
        ));
    }
    if iface.is_none() {
        problems.push(format!(
            "prevResult lists no interface {ifname} inside a sandbox"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CniError::new(
            code::CHECK_FAILED,
            format!("CHECK of {what}: {}", problems.join("; ")),
        )
        .details("`nsnet repair` restores firewall elements; DEL then ADD rebuilds the attachment"))
    }
}
