//! The remote hosts each overlay network's device was last converged to, kept so that
//! `repair` restores their entries from the store. Rows go with their network (ON DELETE
//! CASCADE), so no removal path deletes them.

use std::net::IpAddr;

use ipnet::IpNet;
use nsnet_core::names::NetName;
use rusqlite::params;

use crate::error::StoreError;
use crate::tx::Tx;

/// A remote host of an overlay network: the slice it owns and its underlay address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OverlayPeerRow {
    pub slice: IpNet,
    pub underlay: IpAddr,
}

fn parsed<T: std::str::FromStr>(what: &'static str, value: String) -> Result<T, StoreError> {
    value
        .parse()
        .map_err(|_| StoreError::Corrupt { what, value })
}

impl Tx<'_> {
    /// The recorded peers of `network`, by slice.
    pub fn overlay_peers(&self, network: &NetName) -> Result<Vec<OverlayPeerRow>, StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT slice, underlay FROM overlay_peers WHERE network = ?1 ORDER BY slice",
        )?;
        let raw = stmt
            .query_map([network.as_str()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut rows = raw
            .into_iter()
            .map(|(slice, underlay)| {
                Ok(OverlayPeerRow {
                    slice: parsed("overlay peer slice", slice)?,
                    underlay: parsed("overlay peer underlay", underlay)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        rows.sort();
        Ok(rows)
    }

    /// Records `peers` as the whole set of `network`'s peers; writes nothing when they are
    /// the recorded ones already (a watcher converges every few seconds). Returns whether it
    /// wrote.
    pub fn set_overlay_peers(
        &self,
        network: &NetName,
        peers: &[OverlayPeerRow],
    ) -> Result<bool, StoreError> {
        let mut wanted = peers.to_vec();
        wanted.sort();
        wanted.dedup();
        if self.overlay_peers(network)? == wanted {
            return Ok(false);
        }
        self.0.execute(
            "DELETE FROM overlay_peers WHERE network = ?1",
            [network.as_str()],
        )?;
        let mut insert = self.0.prepare_cached(
            "INSERT INTO overlay_peers (network, slice, underlay) VALUES (?1, ?2, ?3)",
        )?;
        for p in &wanted {
            insert.execute(params![
                network.as_str(),
                p.slice.to_string(),
                p.underlay.to_string()
            ])?;
        }
        Ok(true)
    }
}
