//! Published ports: one row per port, tied to an endpoint (deleted with it).

use std::net::IpAddr;

use nsnet_core::port::{PortMapping, Proto};
use rusqlite::params;

use crate::StoreError;
use crate::tx::Tx;

/// A published port and the endpoint it forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRow {
    pub endpoint: i64,
    pub mapping: PortMapping,
}

fn host_ip_text(ip: Option<IpAddr>) -> String {
    ip.map(|i| i.to_string()).unwrap_or_default()
}

fn row(
    endpoint: i64,
    proto: &str,
    host_ip: &str,
    host_port: u16,
    container_port: u16,
) -> Result<PortRow, StoreError> {
    let corrupt = |what: &'static str, v: &str| StoreError::Corrupt {
        what,
        value: v.to_string(),
    };
    Ok(PortRow {
        endpoint,
        mapping: PortMapping {
            host_ip: if host_ip.is_empty() {
                None
            } else {
                Some(
                    host_ip
                        .parse()
                        .map_err(|_| corrupt("host address", host_ip))?,
                )
            },
            host_port,
            container_port,
            proto: proto
                .parse::<Proto>()
                .map_err(|_| corrupt("protocol", proto))?,
        },
    })
}

impl Tx<'_> {
    /// The published port that `m` would clash with: the same protocol and host port on the
    /// same host address, or on any address when either side binds every address.
    pub fn port_conflict(&self, m: &PortMapping) -> Result<Option<PortRow>, StoreError> {
        let ip = host_ip_text(m.host_ip);
        let mut stmt = self.0.prepare_cached(
            "SELECT endpoint, proto, host_ip, host_port, container_port FROM ports
             WHERE proto = ?1 AND host_port = ?2 AND (host_ip = '' OR ?3 = '' OR host_ip = ?3) LIMIT 1",
        )?;
        let mut rows = stmt.query(params![m.proto.name(), m.host_port, ip])?;
        match rows.next()? {
            Some(r) => Ok(Some(row(
                r.get(0)?,
                &r.get::<_, String>(1)?,
                &r.get::<_, String>(2)?,
                r.get(3)?,
                r.get(4)?,
            )?)),
            None => Ok(None),
        }
    }

    /// Records published ports of an endpoint.
    pub fn insert_ports(&self, endpoint: i64, ports: &[PortMapping]) -> Result<(), StoreError> {
        if ports.is_empty() {
            return Ok(()); // a connect without published ports: no statement to compile
        }
        let mut stmt = self.0.prepare_cached(
            "INSERT INTO ports (endpoint, proto, host_ip, host_port, container_port) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for m in ports {
            stmt.execute(params![
                endpoint,
                m.proto.name(),
                host_ip_text(m.host_ip),
                m.host_port,
                m.container_port
            ])?;
        }
        Ok(())
    }

    /// Forgets published ports of an endpoint.
    pub fn delete_ports(&self, endpoint: i64, ports: &[PortMapping]) -> Result<(), StoreError> {
        let mut stmt = self.0.prepare_cached(
            "DELETE FROM ports WHERE endpoint = ?1 AND proto = ?2 AND host_ip = ?3 AND host_port = ?4",
        )?;
        for m in ports {
            stmt.execute(params![
                endpoint,
                m.proto.name(),
                host_ip_text(m.host_ip),
                m.host_port
            ])?;
        }
        Ok(())
    }

    /// Published ports, of one endpoint or of all.
    pub fn ports(&self, endpoint: Option<i64>) -> Result<Vec<PortRow>, StoreError> {
        // Two statements: one with `?1 IS NULL OR endpoint = ?1` scans every port even for
        // one endpoint (an OR with a parameter test cannot use the index).
        let mut stmt = self.0.prepare_cached(match endpoint {
            Some(_) => {
                "SELECT endpoint, proto, host_ip, host_port, container_port FROM ports
                 WHERE endpoint = ?1 ORDER BY proto, host_port, host_ip"
            }
            None => {
                "SELECT endpoint, proto, host_ip, host_port, container_port FROM ports
                 WHERE ?1 IS NULL ORDER BY proto, host_port, host_ip"
            }
        })?;
        let raws = stmt
            .query_map([endpoint], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, u16>(3)?,
                    r.get::<_, u16>(4)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter()
            .map(|(e, p, ip, hp, cp)| row(e, &p, &ip, hp, cp))
            .collect()
    }
}
