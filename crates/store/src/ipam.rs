//! Address allocation in the store: the lowest free ordinal of a subnet and whether an address
//! is taken, each one or two index lookups on the `ipam_free` extents and the addresses'
//! primary key (schema.rs), however many addresses the network holds.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use nsnet_core::ipam;
use nsnet_core::model::Subnet;
use nsnet_core::names::NetName;
use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;
use crate::tx::Tx;

impl Tx<'_> {
    /// The lowest free ordinal of `subnet` of `network` at or above `from`, if any.
    pub fn lowest_free(
        &self,
        network: &NetName,
        subnet: &IpNet,
        from: u64,
    ) -> Result<Option<u64>, StoreError> {
        let Ok(from) = i64::try_from(from) else {
            return Ok(None);
        };
        let (network, subnet) = (network.as_str(), subnet.to_string());
        // The extent that holds `from`, if one does: it starts at or below it.
        let holding: Option<i64> = self
            .0
            .prepare_cached(
                "SELECT hi FROM ipam_free WHERE network = ?1 AND subnet = ?2 AND lo <= ?3
                 ORDER BY lo DESC LIMIT 1",
            )?
            .query_row(params![network, subnet, from], |r| r.get(0))
            .optional()?;
        if holding.is_some_and(|hi| hi >= from) {
            return Ok(Some(from.unsigned_abs()));
        }
        let above: Option<i64> = self
            .0
            .prepare_cached(
                "SELECT lo FROM ipam_free WHERE network = ?1 AND subnet = ?2 AND lo > ?3
                 ORDER BY lo LIMIT 1",
            )?
            .query_row(params![network, subnet, from], |r| r.get(0))
            .optional()?;
        Ok(above.map(i64::unsigned_abs))
    }

    /// Whether `ip` is allocated to an endpoint of `network`.
    pub fn addr_in_use(&self, network: &NetName, ip: IpAddr) -> Result<bool, StoreError> {
        Ok(self
            .0
            .prepare_cached("SELECT 1 FROM addresses WHERE network = ?1 AND ip = ?2")?
            .query_row(params![network.as_str(), ip.to_string()], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// The free extents of `subnet` of `network`, lowest first (for tests and `doctor`).
    pub fn free_extents(
        &self,
        network: &NetName,
        subnet: &IpNet,
    ) -> Result<Vec<ipam::Extent>, StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT lo, hi FROM ipam_free WHERE network = ?1 AND subnet = ?2 ORDER BY lo",
        )?;
        let rows = stmt
            .query_map(params![network.as_str(), subnet.to_string()], |r| {
                Ok(ipam::Extent {
                    lo: r.get::<_, i64>(0)?.unsigned_abs(),
                    hi: r.get::<_, i64>(1)?.unsigned_abs(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

/// Records the free extents of a subnet whose addresses `used` (ordinals) are taken.
pub(crate) fn insert_extents(
    conn: &Connection,
    network: &str,
    subnet: &Subnet,
    used: &BTreeSet<u64>,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO ipam_free (network, subnet, lo, hi) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let cidr = subnet.cidr.to_string();
    for e in ipam::free_extents(subnet, used) {
        // Ordinals are at most MAX_ORDINAL, i64::MAX.
        stmt.execute(params![network, cidr, e.lo as i64, e.hi as i64])?;
    }
    Ok(())
}

/// The subnet and ordinal stored with an endpoint address (its prefix is its subnet's).
pub(crate) fn placement(addr: &IpNet) -> (String, Option<i64>) {
    let subnet = addr.trunc();
    let ordinal = ipam::ordinal(&subnet, addr.addr()).and_then(|o| i64::try_from(o).ok());
    (subnet.to_string(), ordinal)
}

/// For a store made before allocation used extents: fills in every address's subnet and
/// ordinal and records each subnet's free extents. Rows whose text does not parse keep NULLs
/// (their addresses still clash by text, and allocation cannot hand them out twice: the
/// addresses' primary key refuses it).
pub(crate) fn backfill(conn: &Connection) -> rusqlite::Result<()> {
    let subnets: Vec<(String, Subnet)> = conn
        .prepare("SELECT network, cidr, gateway FROM subnets ORDER BY network, rowid")?
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter_map(|(network, cidr, gateway)| {
            Some((
                network,
                Subnet {
                    cidr: cidr.parse().ok()?,
                    gateway: gateway.parse().ok()?,
                },
            ))
        })
        .collect();
    let addrs: Vec<(String, String)> = conn
        .prepare("SELECT network, ip FROM addresses")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut used: BTreeMap<(String, IpNet), BTreeSet<u64>> = BTreeMap::new();
    let mut update = conn
        .prepare("UPDATE addresses SET subnet = ?3, ordinal = ?4 WHERE network = ?1 AND ip = ?2")?;
    for (network, ip_text) in addrs {
        let Ok(ip) = ip_text.parse::<IpAddr>() else {
            continue;
        };
        let Some((_, s)) = subnets
            .iter()
            .find(|(n, s)| *n == network && s.cidr.contains(&ip))
        else {
            continue;
        };
        let ordinal = ipam::ordinal(&s.cidr, ip);
        update.execute(params![
            network,
            ip_text,
            s.cidr.to_string(),
            ordinal.map(|o| o as i64)
        ])?;
        if let Some(o) = ordinal {
            used.entry((network, s.cidr)).or_default().insert(o);
        }
    }
    for (network, s) in &subnets {
        let taken = used
            .get(&(network.clone(), s.cidr))
            .cloned()
            .unwrap_or_default();
        insert_extents(conn, network, s, &taken)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use crate::schema::{IPAM_EXTENTS, MIGRATIONS};

    /// A store made before the extents gets its addresses' ordinals and its subnets' free
    /// extents when it migrates, and allocates and releases through them afterwards.
    #[test]
    fn stores_from_before_extents_are_backfilled() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join(crate::DB_FILE)).unwrap();
        let before = MIGRATIONS.iter().position(|m| *m == IPAM_EXTENTS).unwrap();
        crate::schema::migrate_to(&mut conn, before).unwrap();
        conn.execute_batch(
            "INSERT INTO networks (name, bridge, internal, state, pid, boot_id)
             VALUES ('n', 'nsbr-n', 0, 'ready', 1, 'b');
             INSERT INTO subnets VALUES ('n', '10.1.0.0/24', '10.1.0.1'), ('n', 'fd00:1::/64', 'fd00:1::1');
             INSERT INTO endpoints (id, network, netns, ifname, host_ifname, state, pid, boot_id)
             VALUES (1, 'n', 'a', 'eth0', 'nsv1', 'ready', 1, 'b'),
                    (2, 'n', 'b', 'eth0', 'nsv2', 'ready', 1, 'b'),
                    (3, 'n', 'c', 'eth0', 'nsv3', 'ready', 1, 'b');
             INSERT INTO addresses VALUES ('n', '10.1.0.2', 24, 1), ('n', 'fd00:1::2', 64, 1),
                                          ('n', '10.1.0.3', 24, 2), ('n', '10.1.0.5', 24, 3);",
        )
        .unwrap();
        drop(conn);
        let mut store = Store::open(dir.path()).unwrap();
        let n = NetName::new("n").unwrap();
        let (v4, v6): (IpNet, IpNet) = (
            "10.1.0.0/24".parse().unwrap(),
            "fd00:1::/64".parse().unwrap(),
        );
        let extents = |store: &mut Store, net: IpNet| {
            store
                .read(|tx| tx.free_extents(&n, &net))
                .unwrap()
                .iter()
                .map(|e| (e.lo, e.hi))
                .collect::<Vec<_>>()
        };
        assert_eq!(extents(&mut store, v4), [(4, 4), (6, 254)]);
        assert_eq!(extents(&mut store, v6), [(3, ipam::MAX_ORDINAL)]);
        assert_eq!(
            store.read(|tx| tx.lowest_free(&n, &v4, 1)).unwrap(),
            Some(4)
        );
        store.write(|tx| tx.delete_endpoint(2)).unwrap();
        assert_eq!(extents(&mut store, v4), [(3, 4), (6, 254)]);
        store.write(|tx| tx.delete_endpoint(1)).unwrap();
        assert_eq!(extents(&mut store, v4), [(2, 4), (6, 254)]);
        assert_eq!(extents(&mut store, v6), [(2, ipam::MAX_ORDINAL)]);
    }
}
