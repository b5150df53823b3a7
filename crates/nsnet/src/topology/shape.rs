//! The shape of a topology file, as written (text, not yet validated), each value with where it
//! was written. Unknown keys are refused at the key.

use super::read::{At, Flaw, Map, Spot};

type Text = At<String>;
type Texts = At<Vec<Text>>;

pub struct File {
    pub name: Text,
    pub namespaces: Texts,
    pub networks: Vec<(Text, NetworkDef)>,
    pub links: Vec<LinkDef>,
    pub routes: Vec<RouteDef>,
    pub containers: Vec<(Text, ContainerDef)>,
    pub hosts: Vec<(Text, HostDef)>,
    pub etcd: Option<(Spot, EtcdDef)>,
}

/// Overlay membership from etcd: the endpoint, and this host's registration.
pub struct EtcdDef {
    pub endpoint: Text,
    pub ttl: Option<At<u32>>,
    pub host: Text,
    pub underlay: Text,
    pub slice: Option<At<u32>>,
}

impl EtcdDef {
    fn read(m: &Map<'_>) -> Result<EtcdDef, Flaw> {
        m.only(&["endpoint", "ttl", "host", "underlay", "slice"])?;
        for key in ["endpoint", "host", "underlay"] {
            m.require(key)?;
        }
        Ok(EtcdDef {
            endpoint: m.text("endpoint")?,
            ttl: m.number("ttl")?,
            host: m.text("host")?,
            underlay: m.text("underlay")?,
            slice: m.number("slice")?,
        })
    }
}

/// A host of the file's overlay networks.
pub struct HostDef {
    pub underlay: Text,
    pub slice: Option<At<u32>>,
}

impl HostDef {
    fn read(m: &Map<'_>) -> Result<HostDef, Flaw> {
        m.only(&["underlay", "slice"])?;
        m.require("underlay")?;
        Ok(HostDef {
            underlay: m.text("underlay")?,
            slice: m.number("slice")?,
        })
    }
}

pub struct NetworkDef {
    pub subnets: Texts,
    pub gateways: Texts,
    pub bridge: Option<Text>,
    pub mtu: Option<At<u32>>,
    pub internal: At<bool>,
    pub masquerade: bool,
    pub icc: bool,
    pub routed: At<bool>,
    pub driver: Option<Text>,
    /// Container names over DNS (default false: networks a file made before keep theirs).
    pub dns: bool,
    pub vni: Option<At<u32>>,
    pub endpoints: Vec<(Text, EndpointDef)>,
}

pub struct EndpointDef {
    pub ip: Texts,
    pub mac: Option<Text>,
    pub ifname: Option<Text>,
    pub publish: Texts,
}

pub struct LinkDef {
    pub at: Spot,
    pub a: EndDef,
    pub b: EndDef,
    pub mtu: Option<At<u32>>,
}

pub struct EndDef {
    pub at: Spot,
    pub netns: Text,
    pub ifname: Option<Text>,
    pub addr: Option<Text>,
    pub delay: Option<Text>,
    pub jitter: Option<Text>,
    pub loss: Option<Text>,
    pub rate: Option<Text>,
}

pub struct RouteDef {
    pub at: Spot,
    pub netns: Text,
    pub dest: Text,
    pub via: Text,
}

pub struct ContainerDef {
    pub command: Texts,
    pub networks: Texts,
    pub publish: Texts,
    pub hostname: Option<Text>,
    pub env: Texts,
    pub rootfs: Option<Text>,
}

impl File {
    pub fn read(m: &Map<'_>) -> Result<File, Flaw> {
        m.only(&[
            "name",
            "namespaces",
            "networks",
            "links",
            "routes",
            "containers",
            "hosts",
            "etcd",
        ])?;
        Ok(File {
            name: m.text("name")?,
            namespaces: m.texts("namespaces")?,
            networks: named(m, "networks", NetworkDef::read)?,
            links: m
                .maps("links")?
                .iter()
                .map(LinkDef::read)
                .collect::<Result<_, _>>()?,
            routes: m
                .maps("routes")?
                .iter()
                .map(RouteDef::read)
                .collect::<Result<_, _>>()?,
            containers: named(m, "containers", ContainerDef::read)?,
            hosts: named(m, "hosts", HostDef::read)?,
            etcd: m
                .opt_map("etcd")?
                .map(|(at, e)| Ok::<_, Flaw>((at, EtcdDef::read(&e)?)))
                .transpose()?,
        })
    }
}

fn named<T>(
    m: &Map<'_>,
    key: &str,
    read: fn(&Map<'_>) -> Result<T, Flaw>,
) -> Result<Vec<(Text, T)>, Flaw> {
    m.entries(key)?
        .into_iter()
        .map(|(name, m)| Ok((name, read(&m)?)))
        .collect()
}

impl NetworkDef {
    fn read(m: &Map<'_>) -> Result<NetworkDef, Flaw> {
        m.only(&[
            "subnets",
            "gateways",
            "bridge",
            "mtu",
            "internal",
            "masquerade",
            "icc",
            "routed",
            "driver",
            "dns",
            "vni",
            "endpoints",
        ])?;
        m.require("subnets")?;
        Ok(NetworkDef {
            subnets: m.texts("subnets")?,
            gateways: m.texts("gateways")?,
            bridge: m.opt_text("bridge")?,
            mtu: m.number("mtu")?,
            internal: m.flag("internal", false)?,
            masquerade: m.flag("masquerade", true)?.v,
            icc: m.flag("icc", true)?.v,
            routed: m.flag("routed", false)?,
            driver: m.opt_text("driver")?,
            dns: m.flag("dns", false)?.v,
            vni: m.number("vni")?,
            endpoints: named(m, "endpoints", EndpointDef::read)?,
        })
    }
}

impl EndpointDef {
    fn read(m: &Map<'_>) -> Result<EndpointDef, Flaw> {
        m.only(&["ip", "mac", "ifname", "publish"])?;
        Ok(EndpointDef {
            ip: m.texts("ip")?,
            mac: m.opt_text("mac")?,
            ifname: m.opt_text("ifname")?,
            publish: m.texts("publish")?,
        })
    }
}

impl LinkDef {
    fn read(m: &Map<'_>) -> Result<LinkDef, Flaw> {
        m.only(&["a", "b", "mtu"])?;
        Ok(LinkDef {
            at: m.at.clone(),
            a: EndDef::read(&m.map("a")?)?,
            b: EndDef::read(&m.map("b")?)?,
            mtu: m.number("mtu")?,
        })
    }
}

impl EndDef {
    fn read(m: &Map<'_>) -> Result<EndDef, Flaw> {
        m.only(&["netns", "ifname", "addr", "delay", "jitter", "loss", "rate"])?;
        Ok(EndDef {
            at: m.at.clone(),
            netns: m.text("netns")?,
            ifname: m.opt_text("ifname")?,
            addr: m.opt_text("addr")?,
            delay: m.opt_text("delay")?,
            jitter: m.opt_text("jitter")?,
            loss: m.opt_text("loss")?,
            rate: m.opt_text("rate")?,
        })
    }
}

impl RouteDef {
    fn read(m: &Map<'_>) -> Result<RouteDef, Flaw> {
        m.only(&["netns", "dest", "via"])?;
        Ok(RouteDef {
            at: m.at.clone(),
            netns: m.text("netns")?,
            dest: m.text("dest")?,
            via: m.text("via")?,
        })
    }
}

impl ContainerDef {
    fn read(m: &Map<'_>) -> Result<ContainerDef, Flaw> {
        m.only(&[
            "command", "networks", "publish", "hostname", "env", "rootfs",
        ])?;
        m.require("command")?;
        Ok(ContainerDef {
            command: m.texts("command")?,
            networks: m.texts("networks")?,
            publish: m.texts("publish")?,
            hostname: m.opt_text("hostname")?,
            env: m.texts("env")?,
            rootfs: m.opt_text("rootfs")?,
        })
    }
}
