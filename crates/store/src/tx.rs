//! Typed queries inside one transaction.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use nsnet_core::model::{Driver, Mac, NetworkSpec};
use nsnet_core::names::{IfName, NetName};
use rusqlite::{OptionalExtension, Row, Transaction, params};

use crate::StoreError;
use crate::rows::{
    EndpointRow, LinkEndRow, LinkRow, NetworkRow, NewEndpoint, NewLink, RouteRow, RowState,
};

/// A transaction on the store; see `Store::write` and `Store::read`.
pub struct Tx<'c>(pub(crate) Transaction<'c>);

fn parse<T: FromStr>(what: &'static str, s: &str) -> Result<T, StoreError> {
    s.parse().map_err(|_| StoreError::Corrupt {
        what,
        value: s.to_string(),
    })
}

fn parse_name<T>(
    what: &'static str,
    s: String,
    f: fn(&str) -> Result<T, nsnet_core::CoreError>,
) -> Result<T, StoreError> {
    f(&s).map_err(|_| StoreError::Corrupt { what, value: s })
}

const ENDPOINT_COLS: &str = "id, network, netns, ifname, host_ifname, mac, container_id, state, pid, boot_id, created_at, no_default_route";
const LINK_COLS: &str =
    "id, ns_a, if_a, addr_a, ns_b, if_b, addr_b, state, pid, boot_id, created_at";

impl<'c> Tx<'c> {
    pub(crate) fn new(tx: Transaction<'c>) -> Self {
        Tx(tx)
    }

    pub(crate) fn commit(self) -> Result<(), StoreError> {
        Ok(self.0.commit()?)
    }

    // ---- networks ----

    /// Records a network in state `creating`.
    pub fn insert_network(
        &self,
        spec: &NetworkSpec,
        pid: u32,
        boot_id: &str,
    ) -> Result<(), StoreError> {
        self.0.execute(
            "INSERT INTO networks (name, bridge, mtu, internal, masquerade, icc, routed, driver, state, pid, boot_id, dns, vni)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'creating', ?9, ?10, ?11, ?12)",
            params![spec.name().as_str(), spec.bridge().as_str(), spec.mtu(), spec.internal(), spec.masquerade(), spec.icc(), spec.routed(), spec.driver().as_str(), pid, boot_id, spec.dns(), spec.vni()],
        )?;
        for s in spec.subnets() {
            self.0.execute(
                "INSERT INTO subnets (network, cidr, gateway) VALUES (?1, ?2, ?3)",
                params![
                    spec.name().as_str(),
                    s.cidr.to_string(),
                    s.gateway.to_string()
                ],
            )?;
            crate::ipam::insert_extents(&self.0, spec.name().as_str(), s, &BTreeSet::new())?;
        }
        Ok(())
    }

    /// Records that a network's kernel objects exist in boot `boot_id` (after a reboot they
    /// are recreated on first use).
    pub fn set_network_boot(&self, name: &NetName, boot_id: &str) -> Result<(), StoreError> {
        self.0.execute(
            "UPDATE networks SET boot_id = ?2 WHERE name = ?1",
            params![name.as_str(), boot_id],
        )?;
        Ok(())
    }

    /// Marks a network `ready`.
    pub fn set_network_ready(&self, name: &NetName) -> Result<(), StoreError> {
        self.0.execute(
            "UPDATE networks SET state = 'ready' WHERE name = ?1",
            [name.as_str()],
        )?;
        Ok(())
    }

    /// Records that `pid` (of boot `boot_id`) started removing a network; Ok(false) when it
    /// was not there.
    pub fn mark_network_removing(
        &self,
        name: &NetName,
        pid: u32,
        boot_id: &str,
    ) -> Result<bool, StoreError> {
        Ok(self.0.execute(
            "UPDATE networks SET state = 'removing', pid = ?2, boot_id = ?3 WHERE name = ?1",
            params![name.as_str(), pid, boot_id],
        )? > 0)
    }

    /// Deletes a network and its subnets; Ok(false) when it was not there.
    pub fn delete_network(&self, name: &NetName) -> Result<bool, StoreError> {
        Ok(self
            .0
            .execute("DELETE FROM networks WHERE name = ?1", [name.as_str()])?
            > 0)
    }

    /// One network by name.
    pub fn network(&self, name: &NetName) -> Result<Option<NetworkRow>, StoreError> {
        let row = self
            .0
            .query_row(
                "SELECT name, bridge, mtu, internal, state, pid, boot_id, created_at, masquerade, icc, routed, cni_owned, driver, dns, vni FROM networks WHERE name = ?1",
                [name.as_str()],
                raw_network,
            )
            .optional()?;
        row.map(|r| self.finish_network(r)).transpose()
    }

    /// All networks, by name.
    pub fn networks(&self) -> Result<Vec<NetworkRow>, StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT name, bridge, mtu, internal, state, pid, boot_id, created_at, masquerade, icc, routed, cni_owned, driver, dns, vni FROM networks ORDER BY name",
        )?;
        let raws = stmt
            .query_map([], raw_network)?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter().map(|r| self.finish_network(r)).collect()
    }

    fn finish_network(&self, r: RawNetwork) -> Result<NetworkRow, StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT cidr, gateway FROM subnets WHERE network = ?1 ORDER BY rowid",
        )?;
        let subnets = stmt
            .query_map([&r.name], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?
            .map(|x| {
                let (cidr, gw) = x?;
                Ok((
                    parse::<IpNet>("subnet", &cidr)?,
                    parse::<IpAddr>("gateway", &gw)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let name = parse_name("network name", r.name, NetName::new)?;
        let spec = NetworkSpec::builder(name.clone())
            .bridge(parse_name("bridge name", r.bridge, IfName::new)?)
            .subnets(subnets.iter().map(|(cidr, _)| *cidr))
            .gateways(subnets.iter().map(|(_, gateway)| *gateway))
            .mtu(r.mtu)
            .internal(r.internal)
            .masquerade(r.masquerade)
            .icc(r.icc)
            .routed(r.routed)
            .driver(parse::<Driver>("network driver", &r.driver)?)
            .dns(r.dns)
            .vni(r.vni)
            .restore()
            .map_err(|_| StoreError::Corrupt {
                what: "network subnets",
                value: name.to_string(),
            })?;
        Ok(NetworkRow {
            spec,
            cni_owned: r.cni_owned,
            state: RowState::parse(&r.state),
            pid: r.pid,
            boot_id: r.boot_id,
            created_at: r.created_at,
        })
    }

    /// Records that a CNI ADD created the network (its configuration owns it).
    pub fn set_network_cni_owned(&self, name: &NetName) -> Result<(), StoreError> {
        self.0.execute(
            "UPDATE networks SET cni_owned = 1 WHERE name = ?1",
            [name.as_str()],
        )?;
        Ok(())
    }

    /// Whether any endpoint (in any state) is attached to a network.
    pub fn network_in_use(&self, name: &NetName) -> Result<bool, StoreError> {
        Ok(self.0.query_row(
            "SELECT EXISTS (SELECT 1 FROM endpoints WHERE network = ?1)",
            [name.as_str()],
            |r| r.get(0),
        )?)
    }

    // ---- endpoints and addresses ----

    /// Records an endpoint and its addresses in state `creating`; returns its id. A UNIQUE
    /// conflict means the address, interface or host veth name is taken.
    pub fn insert_endpoint(&self, e: &NewEndpoint) -> Result<i64, StoreError> {
        self.0.execute(
            "INSERT INTO endpoints (network, netns, ifname, host_ifname, mac, container_id, state, pid, boot_id, no_default_route)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'creating', ?7, ?8, ?9)",
            params![
                e.network.as_str(),
                e.netns,
                e.ifname.as_str(),
                e.host_ifname.as_str(),
                e.mac.map(|m| m.to_string()),
                e.container_id,
                e.pid,
                e.boot_id,
                e.no_default_route
            ],
        )?;
        let id = self.0.last_insert_rowid();
        // The subnet and ordinal let the `ipam_take` trigger take the address from the free
        // extents.
        let mut stmt = self.0.prepare_cached(
            "INSERT INTO addresses (network, ip, prefix, endpoint, subnet, ordinal)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for a in &e.addrs {
            let (subnet, ordinal) = crate::ipam::placement(a);
            stmt.execute(params![
                e.network.as_str(),
                a.addr().to_string(),
                a.prefix_len(),
                id,
                subnet,
                ordinal
            ])?;
        }
        Ok(id)
    }

    /// Marks an endpoint `ready`.
    pub fn set_endpoint_ready(&self, id: i64) -> Result<(), StoreError> {
        self.0
            .execute("UPDATE endpoints SET state = 'ready' WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Records that `pid` (of boot `boot_id`) started removing an endpoint: its addresses and
    /// ports stay allocated until the row is deleted. Ok(false) when it was not there.
    pub fn mark_endpoint_removing(
        &self,
        id: i64,
        pid: u32,
        boot_id: &str,
    ) -> Result<bool, StoreError> {
        Ok(self.0.execute(
            "UPDATE endpoints SET state = 'removing', pid = ?2, boot_id = ?3 WHERE id = ?1",
            params![id, pid, boot_id],
        )? > 0)
    }

    /// Deletes an endpoint and releases its addresses (to the free extents, by trigger) and
    /// its ports.
    pub fn delete_endpoint(&self, id: i64) -> Result<bool, StoreError> {
        Ok(self
            .0
            .execute("DELETE FROM endpoints WHERE id = ?1", [id])?
            > 0)
    }

    /// Endpoints matching a WHERE clause over the endpoints table.
    fn endpoints_where(
        &self,
        clause: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<EndpointRow>, StoreError> {
        let sql = format!("SELECT {ENDPOINT_COLS} FROM endpoints WHERE {clause} ORDER BY id");
        let mut stmt = self.0.prepare_cached(&sql)?;
        let raws = stmt
            .query_map(params, raw_endpoint)?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter().map(|r| self.finish_endpoint(r)).collect()
    }

    /// The endpoint with row id `id`, if any.
    pub fn endpoint_by_id(&self, id: i64) -> Result<Option<EndpointRow>, StoreError> {
        Ok(self.endpoints_where("id = ?1", [id])?.pop())
    }

    /// Endpoints of a network, oldest first.
    pub fn endpoints_of_network(&self, network: &NetName) -> Result<Vec<EndpointRow>, StoreError> {
        self.endpoints_where("network = ?1", [network.as_str()])
    }

    /// Endpoints in a namespace, oldest first.
    pub fn endpoints_in_netns(&self, netns: &str) -> Result<Vec<EndpointRow>, StoreError> {
        self.endpoints_where("netns = ?1", [netns])
    }

    /// Endpoints made for a container (CNI attachments carry the runtime's container id).
    pub fn endpoints_of_container(
        &self,
        container_id: &str,
    ) -> Result<Vec<EndpointRow>, StoreError> {
        self.endpoints_where("container_id = ?1", [container_id])
    }

    /// All endpoints, oldest first.
    pub fn endpoints(&self) -> Result<Vec<EndpointRow>, StoreError> {
        self.endpoints_where("1 = 1", [])
    }

    /// The endpoint of `network` in `netns`, if connected.
    pub fn endpoint(
        &self,
        network: &NetName,
        netns: &str,
    ) -> Result<Option<EndpointRow>, StoreError> {
        Ok(self
            .endpoints_where("network = ?1 AND netns = ?2", [network.as_str(), netns])?
            .pop())
    }

    /// The namespace whose endpoint on `network` has `mac`, if any (an index lookup).
    pub fn netns_with_mac(
        &self,
        network: &NetName,
        mac: Mac,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .0
            .prepare_cached("SELECT netns FROM endpoints WHERE network = ?1 AND mac = ?2 LIMIT 1")?
            .query_row(params![network.as_str(), mac.to_string()], |r| r.get(0))
            .optional()?)
    }

    fn finish_endpoint(&self, r: RawEndpoint) -> Result<EndpointRow, StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT ip, prefix FROM addresses WHERE endpoint = ?1 ORDER BY rowid",
        )?;
        let addrs = stmt
            .query_map([r.id], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, u8>(1)?))
            })?
            .map(|x| {
                let (ip, prefix) = x?;
                let ip: IpAddr = parse("address", &ip)?;
                IpNet::new(ip, prefix).map_err(|_| StoreError::Corrupt {
                    what: "prefix",
                    value: prefix.to_string(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(EndpointRow {
            id: r.id,
            network: parse_name("network name", r.network, NetName::new)?,
            netns: r.netns,
            ifname: parse_name("interface name", r.ifname, IfName::new)?,
            host_ifname: parse_name("interface name", r.host_ifname, IfName::new)?,
            mac: r.mac.map(|m| parse::<Mac>("mac", &m)).transpose()?,
            addrs,
            container_id: r.container_id,
            no_default_route: r.no_default_route,
            state: RowState::parse(&r.state),
            pid: r.pid,
            boot_id: r.boot_id,
            created_at: r.created_at,
        })
    }

    // ---- links ----

    /// Records a link in state `creating`; returns its id.
    pub fn insert_link(&self, l: &NewLink) -> Result<i64, StoreError> {
        self.0.execute(
            "INSERT INTO links (ns_a, if_a, addr_a, ns_b, if_b, addr_b, state, pid, boot_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'creating', ?7, ?8)",
            params![
                l.a.netns,
                l.a.ifname.as_str(),
                l.a.addr.map(|a| a.to_string()),
                l.b.netns,
                l.b.ifname.as_str(),
                l.b.addr.map(|a| a.to_string()),
                l.pid,
                l.boot_id
            ],
        )?;
        Ok(self.0.last_insert_rowid())
    }

    /// Marks a link `ready`.
    pub fn set_link_ready(&self, id: i64) -> Result<(), StoreError> {
        self.0
            .execute("UPDATE links SET state = 'ready' WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Records that `pid` (of boot `boot_id`) started removing a link; Ok(false) when it was
    /// not there.
    pub fn mark_link_removing(&self, id: i64, pid: u32, boot_id: &str) -> Result<bool, StoreError> {
        Ok(self.0.execute(
            "UPDATE links SET state = 'removing', pid = ?2, boot_id = ?3 WHERE id = ?1",
            params![id, pid, boot_id],
        )? > 0)
    }

    /// Deletes a link row.
    pub fn delete_link(&self, id: i64) -> Result<bool, StoreError> {
        Ok(self.0.execute("DELETE FROM links WHERE id = ?1", [id])? > 0)
    }

    /// The link with row id `id`, if any.
    pub fn link_by_id(&self, id: i64) -> Result<Option<LinkRow>, StoreError> {
        let sql = format!("SELECT {LINK_COLS} FROM links WHERE id = ?1");
        let mut stmt = self.0.prepare_cached(&sql)?;
        let raws = stmt
            .query_map([id], raw_link)?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter().map(finish_link).next().transpose()
    }

    /// All links, oldest first.
    pub fn links(&self) -> Result<Vec<LinkRow>, StoreError> {
        let sql = format!("SELECT {LINK_COLS} FROM links ORDER BY id");
        let mut stmt = self.0.prepare_cached(&sql)?;
        let raws = stmt
            .query_map([], raw_link)?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter().map(finish_link).collect()
    }

    /// Links with an end in `netns` (through the indexes of both ends, not a scan).
    pub fn links_in_netns(&self, netns: &str) -> Result<Vec<LinkRow>, StoreError> {
        let sql = format!("SELECT {LINK_COLS} FROM links WHERE ns_a = ?1 OR ns_b = ?1 ORDER BY id");
        let mut stmt = self.0.prepare_cached(&sql)?;
        let raws = stmt
            .query_map([netns], raw_link)?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter().map(finish_link).collect()
    }

    // ---- routes ----

    /// Records an extra route.
    pub fn insert_route(&self, r: &RouteRow) -> Result<(), StoreError> {
        self.0.execute(
            "INSERT INTO routes (netns, dest, via) VALUES (?1, ?2, ?3)",
            params![r.netns, r.dest.to_string(), r.via.to_string()],
        )?;
        Ok(())
    }

    /// Deletes an extra route; Ok(false) if it was not recorded.
    pub fn delete_route(&self, netns: &str, dest: &IpNet) -> Result<bool, StoreError> {
        Ok(self.0.execute(
            "DELETE FROM routes WHERE netns = ?1 AND dest = ?2",
            params![netns, dest.to_string()],
        )? > 0)
    }

    /// Extra routes of a namespace.
    pub fn routes_in_netns(&self, netns: &str) -> Result<Vec<RouteRow>, StoreError> {
        self.route_rows(
            "SELECT netns, dest, via FROM routes WHERE netns = ?1 ORDER BY rowid",
            [netns],
        )
    }

    /// Extra routes of every namespace, each namespace's in the order `routes_in_netns`
    /// gives them.
    pub fn routes(&self) -> Result<Vec<RouteRow>, StoreError> {
        self.route_rows("SELECT netns, dest, via FROM routes ORDER BY rowid", [])
    }

    /// The rows of a `SELECT netns, dest, via FROM routes ...`.
    fn route_rows(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<RouteRow>, StoreError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let raws = stmt
            .query_map(args, |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter()
            .map(|(netns, dest, via)| {
                Ok(RouteRow {
                    netns,
                    dest: parse("route destination", &dest)?,
                    via: parse("route gateway", &via)?,
                })
            })
            .collect()
    }

    /// Deletes every route recorded for a namespace.
    pub fn delete_routes_in_netns(&self, netns: &str) -> Result<usize, StoreError> {
        Ok(self
            .0
            .execute("DELETE FROM routes WHERE netns = ?1", [netns])?)
    }

    /// Count of rows per table, for tests and `doctor`.
    pub fn row_counts(&self) -> Result<Vec<(&'static str, i64)>, StoreError> {
        let mut out = Vec::new();
        for t in [
            "networks",
            "subnets",
            "endpoints",
            "addresses",
            "links",
            "routes",
            "ports",
            "ipam_free",
            "containers",
            "topology_objects",
            "aliases",
            "shapings",
            "overlay_peers",
        ] {
            let n: i64 = self
                .0
                .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))?;
            out.push((t, n));
        }
        Ok(out)
    }
}

struct RawNetwork {
    name: String,
    bridge: String,
    mtu: Option<u32>,
    internal: bool,
    state: String,
    pid: u32,
    boot_id: String,
    created_at: i64,
    masquerade: bool,
    icc: bool,
    routed: bool,
    cni_owned: bool,
    driver: String,
    dns: bool,
    vni: Option<u32>,
}

fn raw_network(r: &Row<'_>) -> rusqlite::Result<RawNetwork> {
    Ok(RawNetwork {
        name: r.get(0)?,
        bridge: r.get(1)?,
        mtu: r.get(2)?,
        internal: r.get(3)?,
        state: r.get(4)?,
        pid: r.get(5)?,
        boot_id: r.get(6)?,
        created_at: r.get(7)?,
        masquerade: r.get(8)?,
        icc: r.get(9)?,
        routed: r.get(10)?,
        cni_owned: r.get(11)?,
        driver: r.get(12)?,
        dns: r.get(13)?,
        vni: r.get(14)?,
    })
}

struct RawEndpoint {
    id: i64,
    network: String,
    netns: String,
    ifname: String,
    host_ifname: String,
    mac: Option<String>,
    container_id: Option<String>,
    state: String,
    pid: u32,
    boot_id: String,
    created_at: i64,
    no_default_route: bool,
}

fn raw_endpoint(r: &Row<'_>) -> rusqlite::Result<RawEndpoint> {
    Ok(RawEndpoint {
        id: r.get(0)?,
        network: r.get(1)?,
        netns: r.get(2)?,
        ifname: r.get(3)?,
        host_ifname: r.get(4)?,
        mac: r.get(5)?,
        container_id: r.get(6)?,
        state: r.get(7)?,
        pid: r.get(8)?,
        boot_id: r.get(9)?,
        created_at: r.get(10)?,
        no_default_route: r.get(11)?,
    })
}

type RawLinkEnd = (String, String, Option<String>);

struct RawLink {
    id: i64,
    a: RawLinkEnd,
    b: RawLinkEnd,
    state: String,
    pid: u32,
    boot_id: String,
    created_at: i64,
}

fn raw_link(r: &Row<'_>) -> rusqlite::Result<RawLink> {
    Ok(RawLink {
        id: r.get(0)?,
        a: (r.get(1)?, r.get(2)?, r.get(3)?),
        b: (r.get(4)?, r.get(5)?, r.get(6)?),
        state: r.get(7)?,
        pid: r.get(8)?,
        boot_id: r.get(9)?,
        created_at: r.get(10)?,
    })
}

fn finish_end((netns, ifname, addr): RawLinkEnd) -> Result<LinkEndRow, StoreError> {
    Ok(LinkEndRow {
        netns,
        ifname: parse_name("interface name", ifname, IfName::new)?,
        addr: addr.map(|a| parse("link address", &a)).transpose()?,
    })
}

fn finish_link(r: RawLink) -> Result<LinkRow, StoreError> {
    Ok(LinkRow {
        id: r.id,
        a: finish_end(r.a)?,
        b: finish_end(r.b)?,
        state: RowState::parse(&r.state),
        pid: r.pid,
        boot_id: r.boot_id,
        created_at: r.created_at,
    })
}

impl RowState {
    /// Name as stored.
    pub fn name(self) -> &'static str {
        self.as_str()
    }
}
