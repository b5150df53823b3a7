//! Which objects each topology file created, so `destroy` removes exactly those.

use nsnet_core::topology::{Kind, Owned};
use rusqlite::params;

use crate::StoreError;
use crate::tx::Tx;

impl Tx<'_> {
    /// Objects topology `name` created and still owns.
    pub fn owned(&self, name: &str) -> Result<Vec<Owned>, StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT kind, key FROM topology_objects WHERE topology = ?1 ORDER BY rowid",
        )?;
        let rows = stmt
            .query_map([name], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(kind, key)| {
                let kind = Kind::parse(&kind).ok_or(StoreError::Corrupt {
                    what: "object kind",
                    value: kind,
                })?;
                Ok(Owned { kind, key })
            })
            .collect()
    }

    /// Records that topology `name` created `obj`.
    pub fn own(&self, name: &str, obj: &Owned) -> Result<(), StoreError> {
        self.0.execute(
            "INSERT OR IGNORE INTO topology_objects (topology, kind, key) VALUES (?1, ?2, ?3)",
            params![name, obj.kind.as_str(), obj.key],
        )?;
        Ok(())
    }

    /// Forgets that topology `name` owns `obj`.
    pub fn disown(&self, name: &str, obj: &Owned) -> Result<(), StoreError> {
        self.0.execute(
            "DELETE FROM topology_objects WHERE topology = ?1 AND kind = ?2 AND key = ?3",
            params![name, obj.kind.as_str(), obj.key],
        )?;
        Ok(())
    }
}
