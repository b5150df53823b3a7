//! `nsnet repair`.

use std::path::Path;

use anyhow::Result;

use crate::cli::Format;
use crate::context;
use crate::output::print;

pub fn run(state_dir: &Path, format: Format) -> Result<()> {
    let report = context::open(state_dir)?.repair()?;
    print(format, &report, |r| {
        format!(
            "firewall rebuilt: {} network(s), {} endpoint(s), {} published port(s), {} element(s)\n",
            r.networks, r.endpoints, r.ports, r.elements
        )
    })
}
