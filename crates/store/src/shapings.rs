//! Shaping nsnet put on interfaces (rate limits of CNI attachments, `nsnet link shape`), kept
//! so that `repair` can restore a qdisc someone deleted. Rows go with the endpoint or link
//! whose interface they shape (triggers in the schema), so no removal path deletes them.

use nsnet_core::shaping::Shaping;
use rusqlite::{OptionalExtension, params};

use crate::error::StoreError;
use crate::tx::Tx;

/// The shaping of interface `ifname` in namespace `netns` (`host` for the host's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapingRow {
    pub netns: String,
    pub ifname: String,
    pub shaping: Shaping,
}

fn to_sql(what: &'static str, v: Option<u64>) -> Result<Option<i64>, StoreError> {
    v.map(|v| {
        i64::try_from(v).map_err(|_| StoreError::Corrupt {
            what,
            value: v.to_string(),
        })
    })
    .transpose()
}

fn from_sql(what: &'static str, v: Option<i64>) -> Result<Option<u64>, StoreError> {
    v.map(|v| {
        u64::try_from(v).map_err(|_| StoreError::Corrupt {
            what,
            value: v.to_string(),
        })
    })
    .transpose()
}

impl Tx<'_> {
    /// Records the shaping of an interface; an empty shaping deletes the record.
    pub fn set_shaping(&self, netns: &str, ifname: &str, s: &Shaping) -> Result<(), StoreError> {
        if s.is_empty() {
            self.0.execute(
                "DELETE FROM shapings WHERE netns = ?1 AND ifname = ?2",
                params![netns, ifname],
            )?;
            return Ok(());
        }
        self.0.execute(
            "INSERT OR REPLACE INTO shapings
                 (netns, ifname, delay_us, jitter_us, loss_ppm, rate_bps, burst_bits)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                netns,
                ifname,
                to_sql("delay", s.delay_us)?,
                to_sql("jitter", s.jitter_us)?,
                s.loss_ppm,
                to_sql("rate", s.rate_bps)?,
                to_sql("burst", s.burst_bits)?,
            ],
        )?;
        Ok(())
    }

    /// The recorded shaping of one interface.
    pub fn shaping(&self, netns: &str, ifname: &str) -> Result<Option<Shaping>, StoreError> {
        let raw = self
            .0
            .prepare_cached(
                "SELECT delay_us, jitter_us, loss_ppm, rate_bps, burst_bits FROM shapings
                  WHERE netns = ?1 AND ifname = ?2",
            )?
            .query_row(params![netns, ifname], raw_shaping)
            .optional()?;
        raw.map(shaping_of).transpose()
    }

    /// Every recorded shaping.
    pub fn shapings(&self) -> Result<Vec<ShapingRow>, StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT delay_us, jitter_us, loss_ppm, rate_bps, burst_bits, netns, ifname
               FROM shapings ORDER BY netns, ifname",
        )?;
        let raws = stmt
            .query_map([], |r| Ok((raw_shaping(r)?, r.get(5)?, r.get(6)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter()
            .map(|(raw, netns, ifname)| {
                Ok(ShapingRow {
                    netns,
                    ifname,
                    shaping: shaping_of(raw)?,
                })
            })
            .collect()
    }
}

type RawShaping = (
    Option<i64>,
    Option<i64>,
    Option<u32>,
    Option<i64>,
    Option<i64>,
);

fn raw_shaping(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawShaping> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn shaping_of((delay, jitter, loss, rate, burst): RawShaping) -> Result<Shaping, StoreError> {
    Ok(Shaping {
        delay_us: from_sql("delay", delay)?,
        jitter_us: from_sql("jitter", jitter)?,
        loss_ppm: loss,
        rate_bps: from_sql("rate", rate)?,
        burst_bits: from_sql("burst", burst)?,
    })
}
