//! Endpoints attached without default routes (netavark's `no_default_route` option): never
//! their namespace's primary endpoint, so never handed the default routes.

use rusqlite::OptionalExtension;

use crate::error::StoreError;
use crate::tx::Tx;

impl Tx<'_> {
    /// Records that endpoint `id` takes no default routes.
    pub fn set_no_default_route(&self, id: i64) -> Result<(), StoreError> {
        self.0.execute(
            "UPDATE endpoints SET no_default_route = 1 WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    /// Whether endpoint `id` was attached without default routes (false when it is gone).
    pub fn no_default_route(&self, id: i64) -> Result<bool, StoreError> {
        Ok(self
            .0
            .prepare_cached("SELECT no_default_route FROM endpoints WHERE id = ?1")?
            .query_row([id], |r| r.get::<_, i64>(0))
            .optional()?
            .is_some_and(|v| v != 0))
    }
}
