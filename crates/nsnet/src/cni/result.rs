//! The ADD result, one model for every version: rendered as the version asked for, and read
//! back from any supported version (a `prevResult`).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::error::{CniError, code};
use super::version::Version;

/// DNS settings as the spec (and the bridge plugin's `dns` key) spell them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    fn is_empty(&self) -> bool {
        *self == Dns::default()
    }
}

/// An interface of the result; `sandbox` is set for interfaces inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    pub sandbox: Option<String>,
}

/// An address of the result; `interface` indexes `interfaces`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    pub address: IpNet,
    pub gateway: Option<IpAddr>,
    pub interface: Option<usize>,
}

/// A route of the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
}

/// What ADD returns (and what later plugins and CHECK get as `prevResult`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniResult {
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub dns: Dns,
}

fn bad(what: &str, detail: impl std::fmt::Display) -> CniError {
    CniError::new(
        code::DECODE_FAILURE,
        format!("prevResult: {what}: {detail}"),
    )
}

fn text<'a>(v: &'a Value, key: &str, what: &str) -> Result<Option<&'a str>, CniError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(bad(what, format!("{key} must be a string, not {other}"))),
    }
}

fn parsed<T: std::str::FromStr>(s: Option<&str>, what: &str) -> Result<Option<T>, CniError> {
    s.map(|s| {
        s.parse::<T>()
            .map_err(|_| bad(what, format!("{s:?} is invalid")))
    })
    .transpose()
}

fn list<'a>(v: &'a Value, key: &str) -> Result<&'a [Value], CniError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(bad(key, format!("must be a list, not {other}"))),
    }
}

impl CniResult {
    /// Appends `other` (a later plugin's part), shifting its interface indices.
    pub fn append(&mut self, other: CniResult) {
        let base = self.interfaces.len();
        self.interfaces.extend(other.interfaces);
        self.ips.extend(other.ips.into_iter().map(|mut ip| {
            ip.interface = ip.interface.map(|i| i + base);
            ip
        }));
        self.routes.extend(other.routes);
        if self.dns.is_empty() {
            self.dns = other.dns;
        }
    }

    /// The result as the spec's JSON for `version`.
    pub fn to_json(&self, version: Version) -> Value {
        let mut out = Map::new();
        out.insert("cniVersion".into(), json!(version.as_str()));
        if !self.interfaces.is_empty() {
            let ifaces: Vec<Value> = self
                .interfaces
                .iter()
                .map(|i| {
                    let mut o = Map::new();
                    o.insert("name".into(), json!(i.name));
                    if let Some(m) = &i.mac {
                        o.insert("mac".into(), json!(m));
                    }
                    if let Some(mtu) = i.mtu.filter(|_| version.interface_has_mtu()) {
                        o.insert("mtu".into(), json!(mtu));
                    }
                    if let Some(s) = &i.sandbox {
                        o.insert("sandbox".into(), json!(s));
                    }
                    Value::Object(o)
                })
                .collect();
            out.insert("interfaces".into(), Value::Array(ifaces));
        }
        if !self.ips.is_empty() {
            let ips: Vec<Value> = self
                .ips
                .iter()
                .map(|ip| {
                    let mut o = Map::new();
                    if version.ip_has_version_field() {
                        let v = if ip.address.addr().is_ipv4() {
                            "4"
                        } else {
                            "6"
                        };
                        o.insert("version".into(), json!(v));
                    }
                    o.insert("address".into(), json!(ip.address.to_string()));
                    if let Some(g) = ip.gateway {
                        o.insert("gateway".into(), json!(g.to_string()));
                    }
                    if let Some(i) = ip.interface {
                        o.insert("interface".into(), json!(i));
                    }
                    Value::Object(o)
                })
                .collect();
            out.insert("ips".into(), Value::Array(ips));
        }
        if !self.routes.is_empty() {
            let routes: Vec<Value> = self
                .routes
                .iter()
                .map(|r| {
                    let mut o = Map::new();
                    o.insert("dst".into(), json!(r.dst.to_string()));
                    if let Some(g) = r.gw {
                        o.insert("gw".into(), json!(g.to_string()));
                    }
                    Value::Object(o)
                })
                .collect();
            out.insert("routes".into(), Value::Array(routes));
        }
        out.insert(
            "dns".into(),
            serde_json::to_value(&self.dns).expect("plain data"),
        );
        Value::Object(out)
    }

    /// Reads a result of any supported version (0.3.0 and later share one shape, apart from
    /// the `version` field of IPs before 1.0.0).
    pub fn from_json(v: &Value) -> Result<CniResult, CniError> {
        if !v.is_object() {
            return Err(bad("result", "must be a JSON object"));
        }
        let mut out = CniResult::default();
        for i in list(v, "interfaces")? {
            out.interfaces.push(Interface {
                name: text(i, "name", "interface")?
                    .ok_or_else(|| bad("interface", "has no name"))?
                    .to_string(),
                mac: text(i, "mac", "interface")?.map(str::to_string),
                mtu: i
                    .get("mtu")
                    .and_then(Value::as_u64)
                    .and_then(|m| u32::try_from(m).ok()),
                sandbox: text(i, "sandbox", "interface")?
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            });
        }
        for ip in list(v, "ips")? {
            let address = parsed(text(ip, "address", "ip")?, "ip address")?
                .ok_or_else(|| bad("ip", "has no address"))?;
            let interface = match ip.get("interface") {
                None | Some(Value::Null) => None,
                Some(n) => Some(
                    n.as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| bad("ip", format!("interface {n} is not an index")))?,
                ),
            };
            out.ips.push(IpConfig {
                address,
                gateway: parsed(text(ip, "gateway", "ip")?, "ip gateway")?,
                interface,
            });
        }
        for r in list(v, "routes")? {
            out.routes.push(Route {
                dst: parsed(text(r, "dst", "route")?, "route dst")?
                    .ok_or_else(|| bad("route", "has no dst"))?,
                gw: parsed(text(r, "gw", "route")?, "route gw")?,
            });
        }
        if let Some(d) = v.get("dns").filter(|d| !d.is_null()) {
            out.dns = serde_json::from_value(d.clone()).map_err(|e| bad("dns", e))?;
        }
        Ok(out)
    }

    /// Index of the container interface `ifname` (the one with a sandbox), if listed.
    pub fn sandbox_interface(&self, ifname: &str) -> Option<usize> {
        self.interfaces
            .iter()
            .position(|i| i.name == ifname && i.sandbox.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CniResult {
        CniResult {
            interfaces: vec![
                Interface {
                    name: "nsbr-lan".into(),
                    mac: None,
                    mtu: Some(1400),
                    sandbox: None,
                },
                Interface {
                    name: "eth0".into(),
                    mac: Some("0a:58:0a:00:00:02".into()),
                    mtu: Some(1400),
                    sandbox: Some("/run/netns/c1".into()),
                },
            ],
            ips: vec![
                IpConfig {
                    address: "10.0.0.2/24".parse().unwrap(),
                    gateway: Some("10.0.0.1".parse().unwrap()),
                    interface: Some(1),
                },
                IpConfig {
                    address: "fd00::2/64".parse().unwrap(),
                    gateway: Some("fd00::1".parse().unwrap()),
                    interface: Some(1),
                },
            ],
            routes: vec![Route {
                dst: "0.0.0.0/0".parse().unwrap(),
                gw: Some("10.0.0.1".parse().unwrap()),
            }],
            dns: Dns {
                nameservers: vec!["10.0.0.1".into()],
                ..Dns::default()
            },
        }
    }

    #[test]
    fn renders_each_version() {
        let r = sample();
        let v03 = r.to_json(Version::V0_3_1);
        assert_eq!(v03["cniVersion"], "0.3.1");
        assert_eq!(v03["ips"][0]["version"], "4");
        assert_eq!(v03["ips"][1]["version"], "6");
        assert!(v03["interfaces"][1].get("mtu").is_none());
        let v10 = r.to_json(Version::V1_0_0);
        assert!(v10["ips"][0].get("version").is_none());
        assert_eq!(v10["ips"][0]["interface"], 1);
        assert!(v10["interfaces"][1].get("mtu").is_none());
        let v11 = r.to_json(Version::V1_1_0);
        assert_eq!(v11["interfaces"][1]["mtu"], 1400);
        assert_eq!(v11["interfaces"][1]["sandbox"], "/run/netns/c1");
        assert_eq!(
            v11["routes"][0],
            json!({"dst": "0.0.0.0/0", "gw": "10.0.0.1"})
        );
        assert_eq!(v11["dns"], json!({"nameservers": ["10.0.0.1"]}));
    }

    #[test]
    fn round_trips_through_every_version() {
        for v in Version::ALL {
            let mut back = CniResult::from_json(&sample().to_json(v)).unwrap();
            let mut want = sample();
            if !v.interface_has_mtu() {
                for i in want.interfaces.iter_mut().chain(back.interfaces.iter_mut()) {
                    i.mtu = None;
                }
            }
            assert_eq!(back, want, "{}", v.as_str());
        }
    }

    #[test]
    fn append_shifts_interface_indices() {
        let mut first = sample();
        first.dns = Dns::default();
        first.append(sample());
        assert_eq!(first.interfaces.len(), 4);
        assert_eq!(first.ips[2].interface, Some(3));
        assert_eq!(first.dns.nameservers, ["10.0.0.1"]);
        assert_eq!(first.sandbox_interface("eth0"), Some(1));
    }

    #[test]
    fn bad_prev_results_are_decode_errors() {
        for bad in [
            json!("x"),
            json!({"ips": [{"address": "nope"}]}),
            json!({"ips": "x"}),
            json!({"interfaces": [{"mac": "x"}]}),
            json!({"ips": [{"address": "10.0.0.2/24", "interface": -1}]}),
        ] {
            assert_eq!(
                CniResult::from_json(&bad).unwrap_err().code,
                code::DECODE_FAILURE,
                "{bad}"
            );
        }
        let empty = CniResult::from_json(&json!({"cniVersion": "0.4.0"})).unwrap();
        assert_eq!(empty, CniResult::default());
    }
}
