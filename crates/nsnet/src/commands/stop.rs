//! `nsnet stop NAME... [--time S]`.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::run::container_name;
use crate::context;

pub fn run(state_dir: &Path, names: &[String], time: u64) -> Result<()> {
    let names = names
        .iter()
        .map(|n| container_name(n))
        .collect::<Result<Vec<_>>>()?;
    let mut engine = context::open(state_dir)?;
    for name in names {
        engine.container_stop(name.as_str(), Duration::from_secs(time))?;
        crate::output::note(name.as_str());
    }
    Ok(())
}
