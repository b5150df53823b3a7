//! Read-only probes of what this machine supports, for `nsnet doctor`: nf_tables (tables and
//! chains of the whole ruleset, over netlink), kernel modules, sysctls, and whether the qdiscs
//! nsnet shapes with can be created. Nothing here changes the machine: the qdisc probe works on
//! a veth inside an anonymous network namespace that vanishes with its thread.

use std::io;
use std::path::Path;

use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST};

use crate::netlink::{Netem, Rtnl, Shaper, VethSpec};
use crate::nl::wire::{NLMSG_HDRLEN, align4};
use crate::nl::{Answer, Netfilter, NlSocket};

/// `NFNL_SUBSYS_NFTABLES` and the GET commands from linux/netfilter/nf_tables.h.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_GETCHAIN: u16 = 4;
/// `NFTA_TABLE_NAME`, `NFTA_CHAIN_TABLE`, `NFTA_CHAIN_NAME`.
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
/// AF_UNSPEC: a dump of every family.
const FAMILY_ANY: u8 = 0;

/// A table or chain of the live ruleset.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NftObject {
    /// `ip`, `ip6`, `inet`, `bridge`, ...
    pub family: String,
    pub table: String,
    /// The chain's name; `None` for a table.
    pub chain: Option<String>,
}

/// The tables and chains of the ruleset in the calling thread's network namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Ruleset {
    pub tables: Vec<NftObject>,
    pub chains: Vec<NftObject>,
}

/// Lists every table and chain (what `nft list tables` / `nft list chains` show), over an
/// nf_tables netlink socket: proves nf_tables is usable without the `nft` binary.
pub fn ruleset() -> io::Result<Ruleset> {
    let mut sock = NlSocket::<Netfilter>::open()?;
    let tables = dump(&mut sock, NFT_MSG_GETTABLE)?
        .into_iter()
        .filter_map(|(family, attrs)| {
            Some(NftObject {
                family: crate::nft::family_name(family),
                table: attr_str(&attrs, NFTA_TABLE_NAME)?,
                chain: None,
            })
        })
        .collect();
    let chains = dump(&mut sock, NFT_MSG_GETCHAIN)?
        .into_iter()
        .filter_map(|(family, attrs)| {
            Some(NftObject {
                family: crate::nft::family_name(family),
                table: attr_str(&attrs, NFTA_CHAIN_TABLE)?,
                chain: Some(attr_str(&attrs, NFTA_CHAIN_NAME)?),
            })
        })
        .collect();
    Ok(Ruleset { tables, chains })
}

/// Attributes of one nf_tables message as (kind, value).
type Attrs = Vec<(u16, Vec<u8>)>;
/// One nf_tables GET dump: each answer as (family, its attributes).
type Dumped = Vec<(u8, Attrs)>;

fn dump(sock: &mut NlSocket<Netfilter>, cmd: u16) -> io::Result<Dumped> {
    let mut req = dump_request(cmd);
    let answers = sock.exchange(&mut req).map_err(|e| match e {
        crate::nl::Failure::Io(e) => e,
        crate::nl::Failure::Decode(msg) => io::Error::new(io::ErrorKind::InvalidData, msg),
    })?;
    match answers.into_iter().next() {
        Some(Answer::Done(replies)) => Ok(replies
            .msgs
            .iter()
            .filter_map(|r| parse_nfgen(&r.payload))
            .collect()),
        Some(Answer::Refused(ack)) => Err(io::Error::from_raw_os_error(ack.errno())),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the kernel did not answer the nf_tables dump",
        )),
    }
}

/// A dump request of every family: netlink header then `struct nfgenmsg`.
fn dump_request(cmd: u16) -> Vec<u8> {
    let len = NLMSG_HDRLEN + 4;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | cmd).to_ne_bytes());
    out.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    out.extend_from_slice(&[0; 8]); // sequence (the socket numbers it) and port id
    out.extend_from_slice(&[FAMILY_ANY, 0, 0, 0]); // family, version 0, res_id 0
    out
}

/// Splits an nf_tables message payload (after the netlink header) into its family and
/// attributes; `None` when it is too short to be one.
fn parse_nfgen(payload: &[u8]) -> Option<(u8, Attrs)> {
    let family = *payload.first()?;
    let mut tlvs = payload.get(4..)?;
    let mut attrs = Vec::new();
    while tlvs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([tlvs[0], tlvs[1]]));
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
        if len < 4 || len > tlvs.len() {
            break;
        }
        attrs.push((kind, tlvs[4..len].to_vec()));
        tlvs = tlvs.get(align4(len)..).unwrap_or_default();
    }
    Some((family, attrs))
}

fn attr_str(attrs: &[(u16, Vec<u8>)], kind: u16) -> Option<String> {
    let (_, value) = attrs.iter().find(|(k, _)| *k == kind)?;
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    Some(String::from_utf8_lossy(&value[..end]).into_owned())
}

/// The `nft` binary nsnet runs once to install its skeleton, if one is installed.
pub fn nft_binary() -> Option<String> {
    let path = crate::nft::nft_binary();
    Path::new(&path).is_absolute().then_some(path)
}

/// Whether kernel module `name` is loaded or built in (it has a /sys/module entry).
pub fn module_present(name: &str) -> bool {
    Path::new("/sys/module").join(name).exists()
}

/// A sysctl's value, or `None` when the key does not exist (e.g. br_netfilter not loaded).
pub fn sysctl(key: &str) -> Option<String> {
    crate::sysctl::read(key).ok()
}

/// Whether each qdisc nsnet shapes with can be created: `Ok(())` or the kernel's refusal.
#[derive(Debug)]
pub struct Qdiscs {
    /// Token bucket: rate limits.
    pub tbf: Result<(), String>,
    /// netem: delay, jitter and loss.
    pub netem: Result<(), String>,
}

/// Creates a tbf and a netem qdisc on a veth inside a new anonymous network namespace,
/// entered by a helper thread only: the namespace (and the veth) is freed when that thread
/// exits, and the host's interfaces are never touched.
pub fn qdiscs() -> io::Result<Qdiscs> {
    std::thread::spawn(|| -> io::Result<Qdiscs> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| io::Error::other(format!("unshare a network namespace: {e}")))?;
        let mut rtnl = Rtnl::open().map_err(io::Error::other)?;
        let index = rtnl
            .add_veth(&VethSpec {
                name: "nsnetprobe0".into(),
                alias: None,
                mtu: None,
                master: None,
                up: true,
                ipv6: false,
                peer_name: "nsnetprobe1".into(),
                peer_netns: None,
                peer_mac: None,
            })
            .map_err(io::Error::other)?;
        let mut try_shaper = |shaper: Shaper| {
            rtnl.set_shaper(index, &shaper)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    rtnl.del_root_qdisc(index)
                        .map(drop)
                        .map_err(|e| e.to_string())
                })
        };
        let tbf = try_shaper(Shaper::Tbf {
            rate_bytes: 125_000,
            burst_bytes: 0,
        });
        let netem = try_shaper(Shaper::Netem(Netem {
            latency_ns: 1_000_000,
            ..Netem::default()
        }));
        Ok(Qdiscs { tbf, netem })
    })
    .join()
    .map_err(|_| io::Error::other("qdisc probe thread panicked"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_request_is_a_getchain_dump_of_every_family() {
        let req = dump_request(NFT_MSG_GETCHAIN);
        assert_eq!(req.len(), 20);
        assert_eq!(u32::from_ne_bytes(req[0..4].try_into().unwrap()), 20);
        assert_eq!(u16::from_ne_bytes(req[4..6].try_into().unwrap()), 0x0a04);
        let flags = u16::from_ne_bytes(req[6..8].try_into().unwrap());
        assert_eq!(flags, NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(req[16], FAMILY_ANY);
    }

    #[test]
    fn parses_a_chain_message() {
        // nfgenmsg (ip, v0), NFTA_CHAIN_TABLE "nat", NFTA_CHAIN_NAME "DOCKER".
        let mut p = vec![2, 0, 0, 0];
        p.extend_from_slice(&8u16.to_ne_bytes());
        p.extend_from_slice(&NFTA_CHAIN_TABLE.to_ne_bytes());
        p.extend_from_slice(b"nat\0");
        p.extend_from_slice(&11u16.to_ne_bytes());
        p.extend_from_slice(&NFTA_CHAIN_NAME.to_ne_bytes());
        p.extend_from_slice(b"DOCKER\0\0");
        let (family, attrs) = parse_nfgen(&p).unwrap();
        assert_eq!(family, 2);
        assert_eq!(attr_str(&attrs, NFTA_CHAIN_TABLE).as_deref(), Some("nat"));
        assert_eq!(attr_str(&attrs, NFTA_CHAIN_NAME).as_deref(), Some("DOCKER"));
        assert!(parse_nfgen(&[]).is_none());
    }
}
