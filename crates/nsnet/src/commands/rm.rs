//! `nsnet rm [-f] NAME...`.

use std::path::Path;

use anyhow::Result;

use super::run::container_name;
use crate::context;

pub fn run(state_dir: &Path, names: &[String], force: bool) -> Result<()> {
    let names = names
        .iter()
        .map(|n| container_name(n))
        .collect::<Result<Vec<_>>>()?;
    let mut engine = context::open(state_dir)?;
    for name in names {
        engine.container_rm(name.as_str(), force)?;
        crate::output::note(name.as_str());
    }
    Ok(())
}
