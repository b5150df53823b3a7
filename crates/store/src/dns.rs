//! What the DNS responder serves: networks with DNS on, their endpoints' names and addresses.

use std::collections::BTreeMap;
use std::net::IpAddr;

use rusqlite::{OptionalExtension, params};

use crate::error::StoreError;
use crate::tx::Tx;

/// A network with DNS on, as the responder needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsNetworkRow {
    pub name: String,
    pub gateways: Vec<IpAddr>,
    pub internal: bool,
}

/// A ready endpoint of a DNS network: its namespace, aliases and addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsEndpointRow {
    pub id: i64,
    pub network: String,
    pub netns: String,
    pub aliases: Vec<String>,
    pub addrs: Vec<IpAddr>,
}

impl Tx<'_> {
    /// Records the aliases of an endpoint (each once).
    pub fn insert_aliases(&self, endpoint: i64, names: &[String]) -> Result<(), StoreError> {
        if names.is_empty() {
            return Ok(()); // most connects: no statement to compile
        }
        let mut stmt = self
            .0
            .prepare_cached("INSERT OR IGNORE INTO aliases (endpoint, name) VALUES (?1, ?2)")?;
        for n in names {
            stmt.execute(params![endpoint, n])?;
        }
        Ok(())
    }

    /// The aliases of an endpoint, sorted.
    pub fn aliases(&self, endpoint: i64) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT name FROM aliases WHERE endpoint = ?1 ORDER BY name")?;
        let rows = stmt.query_map([endpoint], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether any network that is not being removed has DNS on (a responder is needed).
    pub fn dns_needed(&self) -> Result<bool, StoreError> {
        Ok(self.0.query_row(
            "SELECT EXISTS (SELECT 1 FROM networks WHERE dns = 1 AND state != 'removing')",
            [],
            |r| r.get(0),
        )?)
    }

    /// Every ready network with DNS on.
    pub fn dns_networks(&self) -> Result<Vec<DnsNetworkRow>, StoreError> {
        let mut nets: BTreeMap<String, DnsNetworkRow> = BTreeMap::new();
        let mut stmt = self.0.prepare_cached(
            "SELECT n.name, n.internal, s.gateway FROM networks n
               JOIN subnets s ON s.network = n.name
              WHERE n.dns = 1 AND n.state = 'ready' ORDER BY n.name, s.rowid",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (name, internal, gateway) = row?;
            let gateway = gateway.parse().map_err(|_| StoreError::Corrupt {
                what: "gateway",
                value: gateway.clone(),
            })?;
            nets.entry(name.clone())
                .or_insert_with(|| DnsNetworkRow {
                    name,
                    gateways: Vec::new(),
                    internal,
                })
                .gateways
                .push(gateway);
        }
        Ok(nets.into_values().collect())
    }

    /// Every ready network with DNS on, and the ready endpoints attached to them.
    pub fn dns_rows(&self) -> Result<(Vec<DnsNetworkRow>, Vec<DnsEndpointRow>), StoreError> {
        let nets = self.dns_networks()?;
        let mut eps: BTreeMap<i64, DnsEndpointRow> = BTreeMap::new();
        let mut stmt = self.0.prepare_cached(
            "SELECT e.id, e.network, e.netns, a.ip FROM endpoints e
               JOIN networks n ON n.name = e.network
               JOIN addresses a ON a.endpoint = e.id
              WHERE n.dns = 1 AND n.state = 'ready' AND e.state = 'ready'
              ORDER BY e.id, a.rowid",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        for row in rows {
            let (id, network, netns, ip) = row?;
            let ip = ip.parse().map_err(|_| StoreError::Corrupt {
                what: "endpoint address",
                value: ip.clone(),
            })?;
            eps.entry(id)
                .or_insert_with(|| DnsEndpointRow {
                    id,
                    network,
                    netns,
                    aliases: Vec::new(),
                    addrs: Vec::new(),
                })
                .addrs
                .push(ip);
        }
        let mut stmt = self
            .0
            .prepare_cached("SELECT endpoint, name FROM aliases ORDER BY endpoint, name")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (id, name) = row?;
            if let Some(e) = eps.get_mut(&id) {
                e.aliases.push(name);
            }
        }
        Ok((nets, eps.into_values().collect()))
    }

    /// Every endpoint with an id above `after`, ascending: its id, whether it is ready, and
    /// whether its network is a ready DNS network. What a responder compares with what it
    /// serves to find the endpoints that came, went or changed state (an endpoint's network,
    /// namespace, addresses and aliases never change while its row exists, and the ids of
    /// committed endpoints only grow).
    pub fn endpoint_states(&self, after: i64) -> Result<Vec<(i64, bool, bool)>, StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT e.id, e.state = 'ready', n.dns = 1 AND n.state = 'ready'
               FROM endpoints e JOIN networks n ON n.name = e.network
              WHERE e.id > ?1 ORDER BY e.id",
        )?;
        let rows = stmt.query_map([after], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// [`Tx::endpoint_states`] of one endpoint; None when it is gone.
    pub fn endpoint_state(&self, id: i64) -> Result<Option<(bool, bool)>, StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT e.state = 'ready', n.dns = 1 AND n.state = 'ready'
               FROM endpoints e JOIN networks n ON n.name = e.network WHERE e.id = ?1",
        )?;
        Ok(stmt
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// How many times a ready endpoint left the ready state (its removal started), ever: a
    /// responder that saw the same number before has seen every such change.
    pub fn endpoint_removals_started(&self) -> Result<i64, StoreError> {
        Ok(self
            .0
            .prepare_cached("SELECT started FROM endpoint_removals")?
            .query_row([], |r| r.get(0))?)
    }

    /// How many endpoints there are, in any state (SQLite counts the entries of the table's
    /// smallest index page by page, without reading the rows).
    pub fn endpoint_count(&self) -> Result<i64, StoreError> {
        Ok(self
            .0
            .query_row("SELECT count(*) FROM endpoints", [], |r| r.get(0))?)
    }

    /// The rows of the endpoints `ids` (as [`Tx::dns_rows`] gives them; ids that are not
    /// ready endpoints of a ready DNS network, or have no address, are left out).
    pub fn dns_endpoints(&self, ids: &[i64]) -> Result<Vec<DnsEndpointRow>, StoreError> {
        let mut endpoint = self.0.prepare_cached(
            "SELECT e.network, e.netns FROM endpoints e JOIN networks n ON n.name = e.network
              WHERE e.id = ?1 AND n.dns = 1 AND n.state = 'ready' AND e.state = 'ready'",
        )?;
        let mut addrs = self
            .0
            .prepare_cached("SELECT ip FROM addresses WHERE endpoint = ?1 ORDER BY rowid")?;
        let mut found = Vec::with_capacity(ids.len());
        for &id in ids {
            let Some((network, netns)) = endpoint
                .query_row([id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .optional()?
            else {
                continue;
            };
            let addrs = addrs
                .query_map([id], |r| r.get::<_, String>(0))?
                .map(|ip| {
                    let ip = ip?;
                    ip.parse().map_err(|_| StoreError::Corrupt {
                        what: "endpoint address",
                        value: ip,
                    })
                })
                .collect::<Result<Vec<IpAddr>, StoreError>>()?;
            // As in `dns_rows`, whose join leaves them out: a name without an address is
            // not served (NXDOMAIN, not an empty answer).
            if addrs.is_empty() {
                continue;
            }
            found.push(DnsEndpointRow {
                id,
                network,
                netns,
                aliases: self.aliases(id)?,
                addrs,
            });
        }
        Ok(found)
    }
}
