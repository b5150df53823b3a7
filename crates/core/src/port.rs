//! Published ports in docker syntax: `[HOST_IP:]HOST_PORT[-END]:CONTAINER_PORT[-END][/PROTO]`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// Transport protocols that can be published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    /// IANA protocol number (what `meta l4proto` matches).
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Proto {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        match s {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "sctp" => Ok(Proto::Sctp),
            _ => Err(CoreError::InvalidValue {
                what: "protocol",
                value: s.to_string(),
                reason: "allowed: tcp, udp, sctp".to_string(),
            }),
        }
    }
}

/// A validated `--publish` specification (possibly a range).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// Host address to bind to; None means every host address.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    /// Number of consecutive ports (1 for a single port).
    pub count: u16,
    pub proto: Proto,
}

/// One published port: what the firewall maps hold, and what the store records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => {}
        }
        write!(
            f,
            "{}:{}/{}",
            self.host_port, self.container_port, self.proto
        )
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => {}
        }
        let range = |start: u16| {
            if self.count > 1 {
                format!("{start}-{}", start + (self.count - 1))
            } else {
                start.to_string()
            }
        };
        write!(
            f,
            "{}:{}/{}",
            range(self.host_port),
            range(self.container_port),
            self.proto
        )
    }
}

fn invalid(s: &str, reason: &str) -> CoreError {
    CoreError::InvalidValue {
        what: "port specification",
        value: s.to_string(),
        reason: format!(
            "{reason}; expected [HOST_IP:]HOST_PORT[-END]:CONTAINER_PORT[-END][/tcp|udp|sctp], e.g. 8080:80 or 127.0.0.1:8000-8010:80-90/udp"
        ),
    }
}

fn parse_range(s: &str, whole: &str) -> Result<(u16, u16), CoreError> {
    let port = |p: &str| -> Result<u16, CoreError> {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(invalid(whole, &format!("{p:?} is not a port (1-65535)"))),
        }
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if b < a {
                return Err(invalid(whole, &format!("range {s} ends before it starts")));
            }
            Ok((a, b - a + 1))
        }
        None => Ok((port(s)?, 1)),
    }
}

impl FromStr for PortSpec {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        let (rest, proto) = match s.rsplit_once('/') {
            Some((r, p)) => (
                r,
                p.parse::<Proto>()
                    .map_err(|_| invalid(s, &format!("unknown protocol {p:?} (tcp, udp, sctp)")))?,
            ),
            None => (s, Proto::Tcp),
        };
        // An IPv6 host address is written in brackets: [::1]:8080:80.
        let (host_ip, ports) = if let Some(r) = rest.strip_prefix('[') {
            let (ip, after) = r
                .split_once("]:")
                .ok_or_else(|| invalid(s, "unclosed [ in host address"))?;
            let ip = ip
                .parse::<IpAddr>()
                .map_err(|_| invalid(s, &format!("{ip:?} is not an IP address")))?;
            (Some(ip), after)
        } else {
            let parts: Vec<&str> = rest.split(':').collect();
            match parts.as_slice() {
                [_, _] => (None, rest),
                [ip, _, _] => {
                    let ip = ip
                        .parse::<IpAddr>()
                        .map_err(|_| invalid(s, &format!("{ip:?} is not an IP address")))?;
                    (Some(ip), rest.split_once(':').expect("three parts").1)
                }
                _ => return Err(invalid(s, "wrong number of ':'-separated parts")),
            }
        };
        let (host, container) = ports
            .split_once(':')
            .ok_or_else(|| invalid(s, "missing CONTAINER_PORT"))?;
        let (host_port, host_count) = parse_range(host, s)?;
        let (container_port, container_count) = parse_range(container, s)?;
        let count = if container_count == 1 && host_count > 1 {
            return Err(invalid(
                s,
                "a host port range needs a container range of the same length",
            ));
        } else if host_count != container_count {
            return Err(invalid(
                s,
                "host and container ranges must have the same length",
            ));
        } else {
            host_count
        };
        if let Some(ip) = host_ip
            && ip.is_unspecified()
        {
            return Ok(PortSpec {
                host_ip: None,
                host_port,
                container_port,
                count,
                proto,
            });
        }
        Ok(PortSpec {
            host_ip,
            host_port,
            container_port,
            count,
            proto,
        })
    }
}

impl PortSpec {
    /// One mapping per port of the range.
    pub fn mappings(&self) -> Vec<PortMapping> {
        (0..self.count)
            .map(|i| PortMapping {
                host_ip: self.host_ip,
                host_port: self.host_port + i,
                container_port: self.container_port + i,
                proto: self.proto,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PortSpec {
        s.parse().unwrap()
    }

    #[test]
    fn docker_forms() {
        assert_eq!(
            p("8080:80"),
            PortSpec {
                host_ip: None,
                host_port: 8080,
                container_port: 80,
                count: 1,
                proto: Proto::Tcp
            }
        );
        let s = p("127.0.0.1:8000-8002:80-82/udp");
        assert_eq!(s.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!((s.count, s.proto), (3, Proto::Udp));
        assert_eq!(s.mappings()[2].to_string(), "127.0.0.1:8002:82/udp");
        assert_eq!(p("[fd00::1]:53:53/udp").to_string(), "[fd00::1]:53:53/udp");
        assert_eq!(p("0.0.0.0:80:80").host_ip, None);
        assert_eq!(p("9000:9000/sctp").proto, Proto::Sctp);
        assert_eq!(p("8000-8001:80-81").to_string(), "8000-8001:80-81/tcp");
    }

    #[test]
    fn bad_forms() {
        for bad in [
            "80",
            "0:80",
            "70000:80",
            "a:80",
            "8080:80/icmp",
            "8000-8010:80",
            "8000-8010:80-81",
            "9-1:9-1",
            "1.2.3:80:80",
            "[::1:80:80",
            "1:2:3:4",
        ] {
            let e = bad.parse::<PortSpec>().unwrap_err().to_string();
            assert!(e.contains("HOST_PORT"), "{bad}: {e}");
        }
    }
}
