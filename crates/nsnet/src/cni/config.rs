//! The network configuration on stdin. The reference `bridge` plugin's keys (and host-local's
//! `ipam`) keep their meaning, so `"type": "bridge"` can become `"type": "nsnet"` in an
//! existing conflist; nsnet's own keys are `internal`, `icc`, `routed`, `driver`, `isolation` and
//! `stateDir`, and for a vxlan network spanning nodes `vni`, `clusterCIDR` and `etcd`.
//! `hairpinMode` is always on (a container reaches its own published ports) and needs no key.
//! Everything is validated here into model values before the engine is opened.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::{IpNet, Ipv4Net};
use nsnet_core::endpoint::StaticRoute;
use nsnet_core::ipam::Range;
use nsnet_core::model::{Driver, Mac, NetworkSpec, first_host, parse_cidr, parse_ip};
use nsnet_core::names::{IfName, NetName};
use nsnet_core::overlay::{self, EtcdMember, Host};
use nsnet_core::plan::default_dest;
use nsnet_core::port::{PortSpec, Proto};
use serde::Deserialize;
use serde_json::Value;

use super::bandwidth::{Bandwidth, bandwidth};
use super::env::{CniArgs, parse_addr};
use super::error::{CniError, code};
use super::gokeys;
use super::result::Dns;
use super::version::{Version, negotiate};

/// A host-local range: a subnet, optionally bounded, with its gateway.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RangeConf {
    pub subnet: String,
    pub range_start: Option<String>,
    pub range_end: Option<String>,
    pub gateway: Option<String>,
}

impl RangeConf {
    /// The range with empty strings read as absent: go-cni sends every field of its
    /// `IPRanges`, `"RangeStart": ""` included.
    fn without_empty(&self) -> RangeConf {
        let some = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        RangeConf {
            subnet: self.subnet.clone(),
            range_start: some(&self.range_start),
            range_end: some(&self.range_end),
            gateway: some(&self.gateway),
        }
    }
}

/// A route of `ipam.routes`.
#[derive(Debug, Clone, Deserialize)]
pub struct RouteConf {
    pub dst: String,
    pub gw: Option<String>,
}

/// `ipam`, host-local style; nsnet's store does the allocation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ipam {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub ranges: Option<Vec<Vec<RangeConf>>>,
    pub subnet: Option<String>,
    pub range_start: Option<String>,
    pub range_end: Option<String>,
    pub gateway: Option<String>,
    pub routes: Option<Vec<RouteConf>>,
}

/// One entry of the `portMappings` capability.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapConf {
    pub host_port: i64,
    pub container_port: i64,
    pub protocol: Option<String>,
    #[serde(rename = "hostIP")]
    pub host_ip: Option<String>,
}

/// The `bandwidth` capability, as the reference bandwidth plugin reads it: rates in bits per
/// second, bursts in bits; ingress is traffic to the container, egress from it.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BandwidthConf {
    pub ingress_rate: Option<u64>,
    pub ingress_burst: Option<u64>,
    pub egress_rate: Option<u64>,
    pub egress_burst: Option<u64>,
}

/// The `dns` capability (the cluster's DNS for the pod). The runtime writes the pod's
/// resolv.conf itself from it; nsnet configures no resolver, so it is only validated.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RuntimeDns {
    #[serde(default)]
    pub servers: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    pub searches: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    pub options: Vec<String>,
}

/// `runtimeConfig`: what the runtime passes for the capabilities the plugin declares. Its keys
/// are matched ignoring case first (see `gokeys`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeConfig {
    pub port_mappings: Option<Vec<PortMapConf>>,
    pub ips: Option<Vec<String>>,
    pub mac: Option<String>,
    /// Names per network (podman's convention): this network's become the attachment's DNS
    /// aliases.
    pub aliases: Option<BTreeMap<String, Vec<String>>>,
    /// host-local's capability: these range sets replace `ipam.ranges`.
    #[serde(default, deserialize_with = "range_sets")]
    pub ip_ranges: Option<Vec<Vec<RangeConf>>>,
    pub bandwidth: Option<BandwidthConf>,
    pub dns: Option<RuntimeDns>,
}

/// `ipRanges` as a list of range sets (CNI's convention), or as the flat list of ranges
/// go-cni's `WithCapabilityIPRanges` sends, each range then its own set.
fn range_sets<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<Vec<RangeConf>>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Sets(Vec<Vec<RangeConf>>),
        Flat(Vec<RangeConf>),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => None,
        Some(Either::Sets(sets)) => Some(sets),
        Some(Either::Flat(ranges)) => Some(ranges.into_iter().map(|r| vec![r]).collect()),
    })
}

/// `etcd`: this node's registration in the overlay's membership, as the topology file's
/// `etcd:` section without `slice` (the node's slice is its podCIDR, `ipam.ranges`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdConf {
    /// The etcd client endpoint, `HOST:PORT`.
    pub endpoint: String,
    /// This node's name in the membership (its Kubernetes node name).
    pub host: String,
    /// This node's underlay (VTEP) address: where the other nodes send its pods' traffic.
    pub underlay: String,
    /// Seconds the node stays listed after its lease stops being renewed.
    pub ttl: Option<u32>,
}

/// `args.cni`: the convention for per-attachment arguments in the configuration.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CniConfArgs {
    pub ips: Option<Vec<String>>,
    pub mac: Option<String>,
}

/// `args`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfArgs {
    pub cni: Option<CniConfArgs>,
}

/// One attachment of GC's `cni.dev/valid-attachments`.
#[derive(Debug, Clone, Deserialize)]
pub struct GcAttachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

/// The keys every command reads; DEL reads nothing else, so a configuration that went bad
/// since ADD can still be cleaned up.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Basics {
    pub cni_version: Option<String>,
    pub cni_versions: Option<Vec<String>>,
    pub name: Option<String>,
    /// nsnet: the state directory (default /var/lib/nsnet).
    pub state_dir: Option<PathBuf>,
}

/// The whole network configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    #[serde(flatten)]
    pub basics: Basics,
    pub bridge: Option<String>,
    pub is_gateway: Option<bool>,
    pub is_default_gateway: Option<bool>,
    pub ip_masq: Option<bool>,
    pub mtu: Option<u32>,
    pub vlan: Option<u32>,
    pub vlan_trunk: Option<Value>,
    pub ipam: Option<Ipam>,
    pub dns: Option<Dns>,
    pub runtime_config: Option<RuntimeConfig>,
    pub args: Option<ConfArgs>,
    pub prev_result: Option<Value>,
    /// nsnet: no default route and no traffic beyond the network.
    pub internal: Option<bool>,
    /// nsnet: inter-container communication on the bridge (default true).
    pub icc: Option<bool>,
    /// nsnet: accept traffic routed from outside straight to the containers (default false:
    /// only published ports, the same network and the host reach them).
    pub routed: Option<bool>,
    /// nsnet: the switch driver (default "bridge").
    pub driver: Option<String>,
    /// nsnet, vxlan: the VXLAN network identifier (default: derived from the name).
    pub vni: Option<u32>,
    /// nsnet, vxlan: the whole overlay's subnet (Kubernetes' cluster CIDR); the node's slice
    /// of it is `ipam.ranges` (its podCIDR).
    #[serde(rename = "clusterCIDR")]
    pub cluster_cidr: Option<String>,
    /// nsnet, vxlan: the other nodes come from etcd, where this node registers itself.
    pub etcd: Option<EtcdConf>,
    /// nsnet: answer container names over DNS on the gateways (default false: a CNI
    /// runtime usually brings its own name service).
    pub dns_responder: Option<bool>,
    /// nsnet: networks are always isolated from each other; only `true` is accepted.
    pub isolation: Option<bool>,
    #[serde(rename = "cni.dev/valid-attachments")]
    pub valid_attachments: Option<Vec<GcAttachment>>,
    #[serde(rename = "cni.dev/attachments")]
    pub attachments: Option<Vec<GcAttachment>>,
}

/// A network as the configuration defines it, with its allocation ranges and routes.
#[derive(Debug, Clone)]
pub struct Network {
    pub spec: NetworkSpec,
    pub ranges: Vec<Range>,
    pub routes: Vec<StaticRoute>,
    /// A vxlan network spanning nodes: the whole subnet (this node's slice is the spec's).
    pub overlay: Option<Overlay>,
}

/// The part of a multi-node vxlan network beyond this node.
#[derive(Debug, Clone)]
pub struct Overlay {
    /// `clusterCIDR`.
    pub subnet: Ipv4Net,
    /// `etcd`, with this node's slice; `None`: no other node is known.
    pub member: Option<EtcdMember>,
}

/// What one ADD asks for beyond the network.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub ips: Vec<IpAddr>,
    pub mac: Option<Mac>,
    pub publish: Vec<PortSpec>,
    /// DNS aliases of the attachment.
    pub aliases: Vec<String>,
    /// Rate limits of the traffic to and from the container (empty: none).
    pub bandwidth: Bandwidth,
}

fn invalid(msg: impl Into<String>) -> CniError {
    CniError::new(code::INVALID_CONFIG, msg)
}

fn unsupported(key: &str, msg: &str) -> CniError {
    CniError::new(
        code::UNSUPPORTED_FIELD,
        format!("network configuration key {key}: {msg}"),
    )
}

fn decode<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, CniError> {
    serde_json::from_value(v).map_err(|e| {
        CniError::new(
            code::DECODE_FAILURE,
            format!("cannot decode the network configuration: {e}"),
        )
    })
}

/// Parses stdin as JSON (an object); syntax errors are decode failures.
pub fn parse_json(bytes: &[u8]) -> Result<Value, CniError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| {
        CniError::new(
            code::DECODE_FAILURE,
            format!("the network configuration on stdin is not valid JSON: {e}"),
        )
    })?;
    if !v.is_object() {
        return Err(CniError::new(
            code::DECODE_FAILURE,
            "the network configuration on stdin must be a JSON object",
        ));
    }
    Ok(v)
}

/// The last address endpoints may use: the IPv4 broadcast is not one.
fn last_host(net: &IpNet) -> IpAddr {
    match net {
        IpNet::V4(v4) if v4.prefix_len() < 31 => {
            IpAddr::V4(std::net::Ipv4Addr::from(u32::from(v4.broadcast()) - 1))
        }
        _ => net.broadcast(),
    }
}

impl Basics {
    /// Reads the basic keys of a parsed configuration.
    pub fn from_json(v: &Value) -> Result<Basics, CniError> {
        decode(v.clone())
    }

    /// The version the configuration asks for.
    pub fn version(&self) -> Result<Version, CniError> {
        negotiate(self.cni_version.as_deref(), self.cni_versions.as_deref())
    }

    /// The network's name.
    pub fn name(&self) -> Result<NetName, CniError> {
        let name = self
            .name
            .as_deref()
            .ok_or_else(|| invalid("the network configuration has no \"name\""))?;
        Ok(NetName::new(name)?)
    }

    /// The state directory: `stateDir`, else the default; never the environment. Runtimes
    /// cache the configuration for DEL but not their environment, and some run DEL from
    /// another process (podman's `container cleanup`, started by conmon with only PATH): a
    /// directory taken from the environment would send that DEL to another store, where it
    /// finds nothing, and the attachment would outlive it.
    pub fn state_dir(&self) -> Result<PathBuf, CniError> {
        match &self.state_dir {
            Some(d) if !d.is_absolute() => Err(invalid(format!(
                "stateDir {}: give an absolute path (a relative one depends on the runtime's working directory)",
                d.display()
            ))),
            Some(d) => Ok(d.clone()),
            None => Ok(PathBuf::from(nsnet_store::DEFAULT_STATE_DIR)),
        }
    }

    /// Refuses `NSNET_STATE_DIR` (`env`, the variable's value) when it names another
    /// directory than the configuration: the CLI honours it, a CNI plugin cannot (see
    /// `state_dir`), and following it silently would split attachments across stores.
    pub fn env_agrees(&self, env: Option<&std::ffi::OsStr>) -> Result<(), CniError> {
        let dir = self.state_dir()?;
        match env.filter(|v| !v.is_empty()).map(PathBuf::from) {
            Some(e) if e != dir => Err(CniError::new(
                code::INVALID_ENV,
                format!(
                    "NSNET_STATE_DIR={} differs from the state directory of the network configuration ({}{}): runtimes do not pass their environment to every call (podman runs DEL from its cleanup process without it), so give the directory as \"stateDir\" in the configuration",
                    e.display(),
                    dir.display(),
                    if self.state_dir.is_none() {
                        ", the default"
                    } else {
                        ""
                    }
                ),
            )),
            _ => Ok(()),
        }
    }
}

impl NetConf {
    /// Reads the whole configuration; wrong JSON types are decode failures.
    /// `runtimeConfig`'s keys are matched as Go matches them (any case).
    pub fn from_json(v: &Value) -> Result<NetConf, CniError> {
        let mut v = v.clone();
        if let Some(rc) = v.get_mut("runtimeConfig") {
            gokeys::fold(rc, &gokeys::RUNTIME_CONFIG);
        }
        decode(v)
    }

    /// The network, its ranges and routes, validated.
    pub fn network(&self) -> Result<Network, CniError> {
        let name = self.basics.name()?;
        if self.vlan.is_some_and(|v| v != 0) || self.vlan_trunk.is_some() {
            return Err(unsupported(
                "vlan",
                "nsnet's bridges are not VLAN-aware; remove vlan and vlanTrunk",
            ));
        }
        if self.is_gateway == Some(false) {
            return Err(unsupported(
                "isGateway",
                "false is not supported: nsnet's bridge always holds each subnet's gateway; remove isGateway or set it to true (for a network with no way out, use \"internal\": true)",
            ));
        }
        if self.isolation == Some(false) {
            return Err(unsupported(
                "isolation",
                "false is not supported: nsnet always isolates its networks from each other; remove isolation or set it to true",
            ));
        }
        let bridge = self.bridge.as_deref().map(IfName::new).transpose()?;
        let ipam = self.ipam.as_ref().ok_or_else(|| {
            invalid(
                "the network configuration has no \"ipam\": give ipam.ranges, e.g. [[{\"subnet\": \"10.88.0.0/16\"}]]",
            )
        })?;
        if let Some(t) = ipam.kind.as_deref()
            && t != "host-local"
            && t != "nsnet"
        {
            return Err(unsupported(
                "ipam.type",
                &format!(
                    "{t:?} is not supported: nsnet allocates addresses from its own store; use \"host-local\" (or leave type out) with ranges"
                ),
            ));
        }
        let runtime_ranges = self
            .runtime_config
            .as_ref()
            .and_then(|rc| rc.ip_ranges.clone())
            .filter(|sets| !sets.is_empty());
        let ranges: Vec<RangeConf> = match (
            runtime_ranges.as_ref().or(ipam.ranges.as_ref()),
            &ipam.subnet,
        ) {
            (Some(sets), _) => {
                let mut out = Vec::with_capacity(sets.len());
                for (i, set) in sets.iter().enumerate() {
                    match set.as_slice() {
                        [] => return Err(invalid(format!("ipam.ranges[{i}] is empty"))),
                        [one] => out.push(one.without_empty()),
                        more => {
                            return Err(unsupported(
                                &format!("ipam.ranges[{i}]"),
                                &format!(
                                    "has {} ranges; nsnet takes one range per range set (one subnet per address family)",
                                    more.len()
                                ),
                            ));
                        }
                    }
                }
                out
            }
            (None, Some(subnet)) => vec![RangeConf {
                subnet: subnet.clone(),
                range_start: ipam.range_start.clone(),
                range_end: ipam.range_end.clone(),
                gateway: ipam.gateway.clone(),
            }],
            (None, None) => {
                return Err(invalid(
                    "ipam has neither \"ranges\" nor \"subnet\": give ipam.ranges, e.g. [[{\"subnet\": \"10.88.0.0/16\"}]]",
                ));
            }
        };
        if ranges.is_empty() {
            return Err(invalid("ipam.ranges is empty: give at least one range set"));
        }
        let subnets = ranges
            .iter()
            .map(|r| parse_cidr("subnet", &r.subnet))
            .collect::<Result<Vec<_>, _>>()?;
        let gateways = ranges
            .iter()
            .filter_map(|r| r.gateway.as_deref())
            .map(|g| parse_ip("gateway", g))
            .collect::<Result<Vec<_>, _>>()?;
        let driver: Driver = self.driver.as_deref().unwrap_or("bridge").parse()?;
        let overlay = self.overlay(driver, &subnets)?;
        // 0 is how CNI configurations say "the default"; an overlay's leaves room for VXLAN.
        let mtu = self
            .mtu
            .filter(|m| *m != 0)
            .or((driver == Driver::Vxlan).then_some(overlay::DEFAULT_MTU));
        let spec = NetworkSpec::builder(name)
            .subnets(subnets)
            .gateways(gateways)
            .bridge(bridge)
            .mtu(mtu)
            .internal(self.internal.unwrap_or(false))
            // Off unless asked, as in the reference bridge plugin.
            .masquerade(self.ip_masq.unwrap_or(false))
            .icc(self.icc.unwrap_or(true))
            .routed(self.routed.unwrap_or(false))
            .driver(driver)
            .vni(self.vni)
            .dns(self.dns_responder.unwrap_or(false))
            .build()?;
        let mut bounds = Vec::new();
        for (r, s) in ranges.iter().zip(spec.subnets()) {
            if r.range_start.is_none() && r.range_end.is_none() {
                continue;
            }
            let start = match &r.range_start {
                Some(a) => parse_ip("rangeStart", a)?,
                None => first_host(&s.cidr),
            };
            let end = match &r.range_end {
                Some(a) => parse_ip("rangeEnd", a)?,
                None => last_host(&s.cidr),
            };
            bounds.push(Range::new(spec.name(), s, start, end)?);
        }
        let routes = self.routes(&spec, ipam)?;
        Ok(Network {
            spec,
            ranges: bounds,
            routes,
            overlay,
        })
    }

    /// `clusterCIDR` and `etcd`: a vxlan network whose one range (`subnets`, the node's
    /// podCIDR) is this node's /24 slice of the cluster CIDR.
    fn overlay(&self, driver: Driver, subnets: &[IpNet]) -> Result<Option<Overlay>, CniError> {
        let Some(cidr) = self.cluster_cidr.as_deref() else {
            if self.etcd.is_some() {
                return Err(invalid(
                    "etcd: the nodes of an overlay share clusterCIDR; give \"clusterCIDR\" (e.g. \"10.244.0.0/16\") with \"driver\": \"vxlan\"",
                ));
            }
            return Ok(None);
        };
        if driver != Driver::Vxlan {
            return Err(unsupported(
                "clusterCIDR",
                "only a vxlan network spans nodes; add \"driver\": \"vxlan\" or remove clusterCIDR",
            ));
        }
        let cluster = match parse_cidr("clusterCIDR", cidr)? {
            IpNet::V4(n) if n.prefix_len() < overlay::SLICE_PREFIX && n.trunc() == n => n,
            _ => {
                return Err(invalid(format!(
                    "clusterCIDR {cidr}: allowed: an IPv4 network shorter than /{}, e.g. 10.244.0.0/16",
                    overlay::SLICE_PREFIX
                )));
            }
        };
        let slice = match subnets {
            [IpNet::V4(s)] => overlay::slice_index(cluster, *s).map(|i| (*s, i)),
            _ => None,
        };
        let Some((_, index)) = slice else {
            return Err(invalid(format!(
                "ipam.ranges {}: give one range, this node's podCIDR: a /{} network inside clusterCIDR {cluster}",
                subnets
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                overlay::SLICE_PREFIX
            )));
        };
        let member = match &self.etcd {
            None => None,
            Some(e) => {
                let underlay = match parse_ip("etcd.underlay", &e.underlay)? {
                    IpAddr::V4(a) => a,
                    IpAddr::V6(a) => {
                        return Err(invalid(format!(
                            "etcd.underlay {a}: allowed: an IPv4 address"
                        )));
                    }
                };
                let ttl = e.ttl.unwrap_or(overlay::DEFAULT_LEASE_TTL);
                if ttl < 2 {
                    return Err(invalid(format!(
                        "etcd.ttl {ttl} is too short; allowed: 2 seconds or more"
                    )));
                }
                if e.host.is_empty() || e.endpoint.is_empty() {
                    return Err(invalid(
                        "etcd: give \"endpoint\" (HOST:PORT) and \"host\" (this node's name)",
                    ));
                }
                Some(EtcdMember {
                    endpoint: e.endpoint.clone(),
                    ttl,
                    host: Host {
                        name: e.host.clone(),
                        underlay,
                        slice: index,
                    },
                })
            }
        };
        Ok(Some(Overlay {
            subnet: cluster,
            member,
        }))
    }

    /// `ipam.routes` (a missing `gw` means the gateway of the destination's family), then a
    /// default route per subnet when `isDefaultGateway`; one route per destination.
    fn routes(&self, spec: &NetworkSpec, ipam: &Ipam) -> Result<Vec<StaticRoute>, CniError> {
        let mut out: Vec<StaticRoute> = Vec::new();
        let mut push = |r: StaticRoute| {
            if !out.iter().any(|o| o.dest == r.dest) {
                out.push(r);
            }
        };
        for r in ipam.routes.iter().flatten() {
            let dest = parse_cidr("route dst", &r.dst)?;
            if dest.trunc() != dest {
                return Err(invalid(format!(
                    "route dst {dest}: host bits are set; did you mean {}?",
                    dest.trunc()
                )));
            }
            let via = match &r.gw {
                Some(g) => parse_ip("route gw", g)?,
                None => spec
                    .subnets()
                    .iter()
                    .find(|s| s.cidr.addr().is_ipv4() == dest.addr().is_ipv4())
                    .map(|s| s.gateway)
                    .ok_or_else(|| {
                        invalid(format!(
                            "route dst {dest}: network {} has no {} subnet to route it through",
                            spec.name(),
                            if dest.addr().is_ipv4() {
                                "IPv4"
                            } else {
                                "IPv6"
                            }
                        ))
                    })?,
            };
            if via.is_ipv4() != dest.addr().is_ipv4() || spec.subnet_of(via).is_none() {
                return Err(invalid(format!(
                    "route dst {dest} gw {via}: the gateway must be an address of the same family inside the network's subnets ({})",
                    spec.subnets()
                        .iter()
                        .map(|s| s.cidr.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            push(StaticRoute { dest, via });
        }
        if self.is_default_gateway == Some(true) {
            for s in spec.subnets() {
                push(StaticRoute {
                    dest: default_dest(s.gateway),
                    via: s.gateway,
                });
            }
        }
        if spec.internal()
            && let Some(r) = out.iter().find(|r| r.dest.prefix_len() == 0)
        {
            return Err(invalid(format!(
                "network {} is internal: it cannot have the default route {} (isDefaultGateway or ipam.routes)",
                spec.name(),
                r.dest
            )));
        }
        Ok(out)
    }

    /// Addresses, MAC and published ports the runtime asks for: `runtimeConfig` first, then
    /// `args.cni`, then `CNI_ARGS`.
    pub fn request(&self, env_args: &CniArgs) -> Result<Request, CniError> {
        let rc = self.runtime_config.clone().unwrap_or_default();
        let conf_args = self
            .args
            .as_ref()
            .and_then(|a| a.cni.clone())
            .unwrap_or_default();
        let listed = rc
            .ips
            .filter(|v| !v.is_empty())
            .or(conf_args.ips.filter(|v| !v.is_empty()));
        let ips = match listed {
            Some(list) => list
                .iter()
                .map(|s| parse_addr("requested address", s).map_err(invalid))
                .collect::<Result<Vec<_>, _>>()?,
            None => env_args.ips.clone(),
        };
        let mac = match rc.mac.or(conf_args.mac) {
            Some(m) => Some(m.parse::<Mac>()?),
            None => env_args.mac,
        };
        let publish = rc
            .port_mappings
            .unwrap_or_default()
            .iter()
            .map(port_spec)
            .collect::<Result<Vec<_>, _>>()?;
        // runtimeConfig's aliases of this network, else the pod name kubelet passes.
        let aliases = match rc
            .aliases
            .and_then(|mut m| self.basics.name.as_ref().and_then(|n| m.remove(n)))
        {
            Some(list) => list,
            None => env_args.pod_name.iter().cloned().collect(),
        };
        for a in &aliases {
            nsnet_core::dnsname::check_alias(a).map_err(|e| invalid(e.to_string()))?;
        }
        let bandwidth = match rc.bandwidth {
            Some(b) => bandwidth(&b)?,
            None => Bandwidth::default(),
        };
        for s in rc.dns.iter().flat_map(|d| d.servers.iter()) {
            parse_ip("dns server", s)?;
        }
        Ok(Request {
            ips,
            mac,
            publish,
            aliases,
            bandwidth,
        })
    }

    /// GC's list of attachments to keep: `cni.dev/valid-attachments` and the older
    /// `cni.dev/attachments`.
    pub fn valid_attachments(&self) -> Result<Vec<(String, String)>, CniError> {
        if self.valid_attachments.is_none() && self.attachments.is_none() {
            return Err(invalid(
                "GC needs cni.dev/valid-attachments (the attachments to keep); without it nothing is removed",
            ));
        }
        Ok(self
            .valid_attachments
            .iter()
            .chain(self.attachments.iter())
            .flatten()
            .map(|a| (a.container_id.clone(), a.ifname.clone()))
            .collect())
    }
}

fn port_spec(p: &PortMapConf) -> Result<PortSpec, CniError> {
    let port = |what: &str, n: i64| {
        u16::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
            invalid(format!(
                "portMappings: {what} {n} is not a port (allowed 1-65535)"
            ))
        })
    };
    let proto = match p.protocol.as_deref().filter(|s| !s.is_empty()) {
        None => Proto::Tcp,
        Some(s) => s
            .to_ascii_lowercase()
            .parse::<Proto>()
            .map_err(|e| invalid(format!("portMappings: {e}")))?,
    };
    let host_ip = match p.host_ip.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(parse_ip("portMappings hostIP", s)?).filter(|ip| !ip.is_unspecified()),
    };
    Ok(PortSpec {
        host_ip,
        host_port: port("hostPort", p.host_port)?,
        container_port: port("containerPort", p.container_port)?,
        count: 1,
        proto,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn conf(v: Value) -> NetConf {
        NetConf::from_json(&v).unwrap()
    }

    fn base() -> Value {
        json!({
            "cniVersion": "1.0.0",
            "name": "podman",
            "type": "nsnet",
            "bridge": "cni-podman0",
            "isGateway": true,
            "ipMasq": true,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "routes": [{"dst": "0.0.0.0/0"}],
                "ranges": [[{"subnet": "10.88.0.0/16", "gateway": "10.88.0.1"}]]
            }
        })
    }

    #[test]
    fn the_state_dir_comes_from_the_configuration_only() {
        let b = |v: Value| Basics::from_json(&v).unwrap();
        let none = b(json!({"name": "n"}));
        assert_eq!(none.state_dir().unwrap(), PathBuf::from("/var/lib/nsnet"));
        none.env_agrees(None).unwrap();
        none.env_agrees(Some("".as_ref())).unwrap();
        none.env_agrees(Some("/var/lib/nsnet/".as_ref())).unwrap();
        let e = none.env_agrees(Some("/tmp/s".as_ref())).unwrap_err();
        assert_eq!(e.code, code::INVALID_ENV);
        assert!(
            e.msg.starts_with("NSNET_STATE_DIR=/tmp/s differs from the state directory of the network configuration (/var/lib/nsnet, the default)")
                && e.msg.contains("\"stateDir\""),
            "{}",
            e.msg
        );
        let set = b(json!({"name": "n", "stateDir": "/tmp/s"}));
        assert_eq!(set.state_dir().unwrap(), PathBuf::from("/tmp/s"));
        set.env_agrees(Some("/tmp/s".as_ref())).unwrap();
        set.env_agrees(None).unwrap();
        assert!(set.env_agrees(Some("/tmp/t".as_ref())).is_err());
        let rel = b(json!({"name": "n", "stateDir": "state"}));
        let e = rel.state_dir().unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG);
        assert!(
            e.msg.contains("stateDir state: give an absolute path"),
            "{}",
            e.msg
        );
    }

    #[test]
    fn podman_default_network() {
        let n = conf(base()).network().unwrap();
        assert_eq!(n.spec.name().as_str(), "podman");
        assert_eq!(n.spec.bridge().as_str(), "cni-podman0");
        assert_eq!(n.spec.subnets()[0].cidr.to_string(), "10.88.0.0/16");
        assert!(n.spec.masquerade() && n.spec.icc() && !n.spec.internal());
        assert!(n.ranges.is_empty());
        assert_eq!(
            n.routes,
            [StaticRoute {
                dest: "0.0.0.0/0".parse().unwrap(),
                via: "10.88.0.1".parse().unwrap()
            }]
        );
    }

    #[test]
    fn bridge_defaults_and_nsnet_keys() {
        let n = conf(json!({
            "cniVersion": "0.4.0", "name": "lan", "type": "nsnet",
            "isDefaultGateway": true, "mtu": 1400, "icc": false,
            "ipam": {"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.100", "rangeEnd": "10.1.0.199",
                     "routes": [{"dst": "192.168.0.0/16", "gw": "10.1.0.254"}]}
        }))
        .network()
        .unwrap();
        assert_eq!(n.spec.bridge().as_str(), "nsbr-lan");
        assert!(
            !n.spec.masquerade(),
            "ipMasq defaults to false, as in the bridge plugin"
        );
        assert!(!n.spec.icc());
        assert_eq!(n.spec.mtu(), Some(1400));
        assert_eq!(n.ranges[0].start.to_string(), "10.1.0.100");
        let routes: Vec<String> = n
            .routes
            .iter()
            .map(|r| format!("{} via {}", r.dest, r.via))
            .collect();
        assert_eq!(
            routes,
            ["192.168.0.0/16 via 10.1.0.254", "0.0.0.0/0 via 10.1.0.1"]
        );
    }

    #[test]
    fn dual_stack_ranges() {
        let n = conf(json!({
            "cniVersion": "1.1.0", "name": "dual",
            "ipam": {"ranges": [[{"subnet": "10.2.0.0/24", "rangeStart": "10.2.0.10"}],
                                [{"subnet": "fd00:2::/64"}]],
                     "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}
        }))
        .network()
        .unwrap();
        assert_eq!(n.spec.subnets().len(), 2);
        assert_eq!(n.ranges.len(), 1);
        assert_eq!(n.ranges[0].end.to_string(), "10.2.0.254");
        assert_eq!(n.routes[1].via.to_string(), "fd00:2::1");
    }

    #[test]
    fn refusals_carry_codes() {
        let cases: Vec<(Value, u32, &str)> = vec![
            (json!({"name": "x"}), code::INVALID_CONFIG, "ipam"),
            (
                json!({"ipam": {"subnet": "10.0.0.0/24"}}),
                code::INVALID_CONFIG,
                "name",
            ),
            (
                json!({"name": "bad name", "ipam": {"subnet": "10.0.0.0/24"}}),
                code::INVALID_CONFIG,
                "network",
            ),
            (
                json!({"name": "x", "ipam": {"subnet": "10.0.0.1/24"}}),
                code::INVALID_CONFIG,
                "did you mean 10.0.0.0/24",
            ),
            (
                json!({"name": "x", "ipam": {}}),
                code::INVALID_CONFIG,
                "neither",
            ),
            (
                json!({"name": "x", "ipam": {"type": "dhcp"}}),
                code::UNSUPPORTED_FIELD,
                "ipam.type",
            ),
            (
                json!({"name": "x", "isGateway": false, "ipam": {"subnet": "10.0.0.0/24"}}),
                code::UNSUPPORTED_FIELD,
                "isGateway",
            ),
            (
                json!({"name": "x", "vlan": 5, "ipam": {"subnet": "10.0.0.0/24"}}),
                code::UNSUPPORTED_FIELD,
                "vlan",
            ),
            (
                json!({"name": "x", "isolation": false, "ipam": {"subnet": "10.0.0.0/24"}}),
                code::UNSUPPORTED_FIELD,
                "isolation",
            ),
            (
                json!({"name": "x", "ipam": {"ranges": [[{"subnet": "10.0.0.0/24"}, {"subnet": "10.0.1.0/24"}]]}}),
                code::UNSUPPORTED_FIELD,
                "one range per range set",
            ),
            (
                json!({"name": "x", "ipam": {"subnet": "10.0.0.0/24", "rangeStart": "10.0.1.5"}}),
                code::INVALID_CONFIG,
                "10.0.1.5",
            ),
            (
                json!({"name": "x", "ipam": {"subnet": "10.0.0.0/24", "routes": [{"dst": "::/0"}]}}),
                code::INVALID_CONFIG,
                "no IPv6 subnet",
            ),
            (
                json!({"name": "x", "ipam": {"subnet": "10.0.0.0/24", "routes": [{"dst": "10.9.0.0/16", "gw": "10.8.0.1"}]}}),
                code::INVALID_CONFIG,
                "inside the network's subnets",
            ),
            (
                json!({"name": "x", "internal": true, "isDefaultGateway": true, "ipam": {"subnet": "10.0.0.0/24"}}),
                code::INVALID_CONFIG,
                "internal",
            ),
            (
                json!({"name": "x", "mtu": 60, "ipam": {"subnet": "10.0.0.0/24"}}),
                code::INVALID_CONFIG,
                "mtu",
            ),
        ];
        for (v, want, needle) in cases {
            let e = conf(v.clone()).network().unwrap_err();
            assert_eq!(e.code, want, "{v}: {}", e.msg);
            assert!(e.msg.contains(needle), "{v}: {:?} lacks {needle:?}", e.msg);
        }
    }

    #[test]
    fn type_errors_are_decode_failures() {
        let e = NetConf::from_json(&json!({"name": "x", "mtu": "big"})).unwrap_err();
        assert_eq!(e.code, code::DECODE_FAILURE);
        assert_eq!(parse_json(b"{nope").unwrap_err().code, code::DECODE_FAILURE);
        assert_eq!(parse_json(b"[1]").unwrap_err().code, code::DECODE_FAILURE);
    }

    #[test]
    fn requests_from_capabilities_args_and_env() {
        let mut v = base();
        v["runtimeConfig"] = json!({
            "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "TCP", "hostIP": ""},
                             {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"}],
            "ips": ["10.88.0.9/16"],
            "mac": "02:00:00:00:00:09",
            "aliases": {"podman": ["web", "www"]}
        });
        let env = CniArgs {
            ips: vec!["10.88.0.7".parse().unwrap()],
            mac: None,
            pod_name: Some("pod-a".into()),
        };
        let r = conf(v).request(&env).unwrap();
        assert_eq!(r.aliases, ["web", "www"], "this network's aliases");
        assert_eq!(r.ips, ["10.88.0.9".parse::<IpAddr>().unwrap()]);
        assert_eq!(r.mac.unwrap().to_string(), "02:00:00:00:00:09");
        assert_eq!(r.publish[0].to_string(), "8080:80/tcp");
        assert_eq!(r.publish[1].to_string(), "127.0.0.1:5353:53/udp");
        // Without runtimeConfig: args.cni, then CNI_ARGS.
        let mut v = base();
        v["args"] = json!({"cni": {"ips": ["10.88.0.8"]}});
        assert_eq!(
            conf(v).request(&env).unwrap().ips[0].to_string(),
            "10.88.0.8"
        );
        assert_eq!(
            conf(base()).request(&env).unwrap().ips[0].to_string(),
            "10.88.0.7"
        );
        for bad in [
            json!({"portMappings": [{"hostPort": 0, "containerPort": 80}]}),
            json!({"portMappings": [{"hostPort": 70000, "containerPort": 80}]}),
            json!({"portMappings": [{"hostPort": 80, "containerPort": 80, "protocol": "icmp"}]}),
            json!({"ips": ["10.88.0.300"]}),
            json!({"mac": "zz"}),
        ] {
            let mut v = base();
            v["runtimeConfig"] = bad.clone();
            let e = conf(v).request(&CniArgs::default()).unwrap_err();
            assert_eq!(e.code, code::INVALID_CONFIG, "{bad}: {}", e.msg);
        }
    }

    #[test]
    fn containerd_capabilities_as_go_cni_spells_them() {
        // containerd 1.6.20's stdin, as captured under tests/cri.rs, for a pod with a hostPort,
        // bandwidth annotations and kubelet's DNS config (go-cni's structs have no JSON tags).
        let mut v = base();
        v["runtimeConfig"] = json!({
            "portMappings": [{"HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""},
                             {"HostPort": 5353, "ContainerPort": 53, "Protocol": "udp", "HostIP": "127.0.0.1"}],
            "bandwidth": {"IngressRate": 1000000, "IngressBurst": 4294967295u64,
                          "EgressRate": 2000000, "EgressBurst": 4294967295u64},
            "dns": {"Servers": ["10.96.0.10"],
                    "Searches": ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"],
                    "Options": ["ndots:5"]}
        });
        let c = conf(v);
        let r = c.request(&CniArgs::default()).unwrap();
        assert_eq!(r.publish[0].to_string(), "8080:80/tcp");
        assert_eq!(r.publish[1].to_string(), "127.0.0.1:5353:53/udp");
        assert_eq!(r.bandwidth.ingress.rate_bps, Some(1_000_000));
        assert_eq!(r.bandwidth.ingress.burst_bits, Some(4_294_967_295));
        assert_eq!(r.bandwidth.egress.rate_bps, Some(2_000_000));
        // CRI-O and podman spell them as CNI's conventions do; both decode alike.
        let mut v = base();
        v["runtimeConfig"] = json!({
            "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""}],
            "bandwidth": {"ingressRate": 1000000, "ingressBurst": 4294967295u64}
        });
        let r2 = conf(v).request(&CniArgs::default()).unwrap();
        assert_eq!(r2.publish[0], r.publish[0]);
        assert_eq!(r2.bandwidth.ingress, r.bandwidth.ingress);
        assert!(r2.bandwidth.egress.is_empty());
        // A bad DNS server is refused, naming it.
        let mut v = base();
        v["runtimeConfig"] = json!({"dns": {"Servers": ["kube-dns"]}});
        let e = conf(v).request(&CniArgs::default()).unwrap_err();
        assert!(e.msg.contains("kube-dns"), "{}", e.msg);
    }

    #[test]
    fn ip_ranges_replace_the_ipam_ranges() {
        let mut v = base();
        v["runtimeConfig"] = json!({
            "ipRanges": [[{"Subnet": "10.244.1.0/24", "RangeStart": "", "RangeEnd": "", "Gateway": ""}]]
        });
        let n = conf(v).network().unwrap();
        assert_eq!(n.spec.subnets()[0].cidr.to_string(), "10.244.1.0/24");
        assert_eq!(n.spec.subnets()[0].gateway.to_string(), "10.244.1.1");
        assert!(n.ranges.is_empty());
        let mut v = base();
        v["runtimeConfig"] = json!({
            "ipRanges": [[{"subnet": "10.244.2.0/24", "rangeStart": "10.244.2.10", "gateway": "10.244.2.254"}]]
        });
        let n = conf(v).network().unwrap();
        assert_eq!(n.spec.subnets()[0].gateway.to_string(), "10.244.2.254");
        assert_eq!(n.ranges[0].start.to_string(), "10.244.2.10");
        // go-cni's flat list: one set per range.
        let mut v = base();
        v["runtimeConfig"] = json!({
            "ipRanges": [{"Subnet": "10.244.3.0/24", "RangeStart": "", "RangeEnd": "", "Gateway": ""},
                         {"Subnet": "fd00:244:3::/64", "RangeStart": "", "RangeEnd": "", "Gateway": ""}]
        });
        let mut v6 = v.clone();
        v6["ipam"]["routes"] = json!([]);
        let n = conf(v6).network().unwrap();
        let subnets: Vec<String> = n
            .spec
            .subnets()
            .iter()
            .map(|s| s.cidr.to_string())
            .collect();
        assert_eq!(subnets, ["10.244.3.0/24", "fd00:244:3::/64"]);
        // A range that is not one is a decode failure.
        v["runtimeConfig"] = json!({"ipRanges": [["10.0.0.0/24"]]});
        assert_eq!(
            NetConf::from_json(&v).unwrap_err().code,
            code::DECODE_FAILURE
        );
        // An empty list leaves ipam.ranges in force.
        let mut v = base();
        v["runtimeConfig"] = json!({"ipRanges": []});
        assert_eq!(
            conf(v).network().unwrap().spec.subnets()[0]
                .cidr
                .to_string(),
            "10.88.0.0/16"
        );
    }

    #[test]
    fn gc_lists() {
        let mut v = base();
        assert!(conf(v.clone()).valid_attachments().is_err());
        v["cni.dev/valid-attachments"] = json!([{"containerID": "a", "ifname": "eth0"}]);
        v["cni.dev/attachments"] = json!([{"containerID": "b", "ifname": "eth1"}]);
        assert_eq!(conf(v).valid_attachments().unwrap().len(), 2);
    }

    fn node(range: &str) -> Value {
        json!({
            "cniVersion": "1.0.0",
            "name": "pods",
            "type": "nsnet",
            "driver": "vxlan",
            "vni": 7,
            "clusterCIDR": "10.244.0.0/16",
            "etcd": {"endpoint": "192.0.2.254:2379", "host": "node-a", "underlay": "192.0.2.1"},
            "ipam": {"ranges": [[{"subnet": range}]]}
        })
    }

    fn refusal(v: Value) -> String {
        NetConf::from_json(&v)
            .and_then(|c| c.network())
            .unwrap_err()
            .msg
    }

    #[test]
    fn a_node_takes_its_slice_of_the_cluster_cidr_from_its_pod_cidr() {
        let n = conf(node("10.244.3.0/24")).network().unwrap();
        assert_eq!(n.spec.subnets()[0].cidr.to_string(), "10.244.3.0/24");
        assert_eq!(n.spec.vni(), Some(7));
        assert_eq!(n.spec.mtu(), Some(1450));
        let ov = n.overlay.unwrap();
        assert_eq!(ov.subnet.to_string(), "10.244.0.0/16");
        let m = ov.member.unwrap();
        assert_eq!(
            (m.host.name.as_str(), m.host.slice, m.ttl),
            ("node-a", 3, 30)
        );
        assert_eq!(m.host.underlay.to_string(), "192.0.2.1");

        let e = refusal(node("10.245.3.0/24"));
        assert!(
            e.starts_with("ipam.ranges 10.245.3.0/24:")
                && e.contains("inside clusterCIDR 10.244.0.0/16"),
            "{e}"
        );
        let e = refusal(node("10.244.3.0/25"));
        assert!(
            e.starts_with("ipam.ranges 10.244.3.0/25:") && e.contains("/24"),
            "{e}"
        );
        let mut v = node("10.244.3.0/24");
        v["driver"] = json!("bridge");
        v.as_object_mut().unwrap().remove("vni");
        assert!(refusal(v).contains("clusterCIDR"));
        let mut v = node("10.244.3.0/24");
        v["clusterCIDR"] = json!("10.244.0.0/24");
        assert!(refusal(v).starts_with("clusterCIDR 10.244.0.0/24:"));
        let mut v = node("10.244.3.0/24");
        v.as_object_mut().unwrap().remove("clusterCIDR");
        assert!(refusal(v).starts_with("etcd:"));
        let mut v = node("10.244.3.0/24");
        v["etcd"]["underlay"] = json!("2001:db8::1");
        assert!(refusal(v).starts_with("etcd.underlay 2001:db8::1:"));
        let mut v = node("10.244.3.0/24");
        v["etcd"]["slice"] = json!(4);
        assert!(refusal(v).contains("slice"), "the slice is the podCIDR's");
        let mut v = node("10.244.3.0/24");
        v["etcd"]["ttl"] = json!(1);
        assert!(refusal(v).starts_with("etcd.ttl 1"));
        // Without clusterCIDR a vxlan network stays one node's, its whole range local.
        let mut v = node("10.244.0.0/16");
        v.as_object_mut().unwrap().remove("clusterCIDR");
        v.as_object_mut().unwrap().remove("etcd");
        assert!(conf(v).network().unwrap().overlay.is_none());
    }

    #[test]
    fn driver_key() {
        use nsnet_core::model::Driver;
        assert_eq!(
            conf(base()).network().unwrap().spec.driver(),
            Driver::Bridge
        );
        let mut v = base();
        v["driver"] = json!("bridge");
        assert_eq!(
            conf(v.clone()).network().unwrap().spec.driver(),
            Driver::Bridge
        );
        v["driver"] = json!("ovs");
        assert_eq!(
            conf(v.clone()).network().unwrap().spec.driver(),
            Driver::Ovs
        );
        v["driver"] = json!("hub");
        let e = conf(v).network().unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG, "{}", e.msg);
        assert!(
            e.msg
                .contains("invalid driver \"hub\": allowed: bridge, ovs"),
            "{}",
            e.msg
        );
    }

    #[test]
    fn dns_responder_key_and_aliases() {
        assert!(
            !conf(base()).network().unwrap().spec.dns(),
            "off unless asked"
        );
        let mut v = base();
        v["dnsResponder"] = json!(true);
        assert!(conf(v.clone()).network().unwrap().spec.dns());
        let env = CniArgs {
            pod_name: Some("pod-a".into()),
            ..CniArgs::default()
        };
        assert_eq!(conf(v.clone()).request(&env).unwrap().aliases, ["pod-a"]);
        v["runtimeConfig"] = json!({"aliases": {"other": ["x"]}});
        assert_eq!(conf(v.clone()).request(&env).unwrap().aliases, ["pod-a"]);
        v["runtimeConfig"] = json!({"aliases": {"podman": ["bad name"]}});
        let e = conf(v).request(&env).unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG);
        assert!(e.msg.contains("invalid alias \"bad name\""), "{}", e.msg);
    }

    #[test]
    fn routed_key() {
        assert!(!conf(base()).network().unwrap().spec.routed());
        let mut v = base();
        v["routed"] = json!(true);
        assert!(conf(v.clone()).network().unwrap().spec.routed());
        v["internal"] = json!(true);
        let e = conf(v).network().unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG, "{}", e.msg);
        assert!(
            e.msg.contains("internal and routed exclude each other"),
            "{}",
            e.msg
        );
    }
}
