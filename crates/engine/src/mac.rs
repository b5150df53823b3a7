//! The MAC of a new endpoint: unique on its network, because a switch cannot deliver to two
//! ports with one address (the two containers would not reach each other).

use std::net::IpAddr;

use ipnet::IpNet;
use nsnet_core::model::Mac;
use nsnet_core::names::{NetName, stable_hash};
use nsnet_store::Tx;

use crate::EngineError;
use crate::conflict::Conflict;

/// The requested MAC, refused when another endpoint of `network` has it; else the one derived
/// from the endpoint's IPv4 address, or (when someone asked for that one before) another
/// stable locally administered one; None without IPv4 (the kernel picks).
pub(crate) fn endpoint_mac(
    tx: &Tx<'_>,
    network: &NetName,
    requested: Option<Mac>,
    addrs: &[IpNet],
) -> Result<Option<Mac>, EngineError> {
    if let Some(mac) = requested {
        if let Some(netns) = tx.netns_with_mac(network, mac)? {
            return Err(Conflict::MacTaken {
                mac,
                netns,
                network: network.clone(),
            }
            .into());
        }
        return Ok(Some(mac));
    }
    let Some(v4) = addrs.iter().find_map(|a| match a.addr() {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }) else {
        return Ok(None);
    };
    let derived = Mac::from_ipv4(v4);
    if tx.netns_with_mac(network, derived)?.is_none() {
        return Ok(Some(derived));
    }
    let ip = v4.to_string();
    let mut attempt = 0u32;
    loop {
        let h = stable_hash(&[network.as_str(), &ip, &attempt.to_string()]).to_be_bytes();
        let mac = Mac([0x02, h[0], h[1], h[2], h[3], h[4]]);
        if tx.netns_with_mac(network, mac)?.is_none() {
            return Ok(Some(mac));
        }
        attempt += 1;
    }
}
