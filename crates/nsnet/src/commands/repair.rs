//! `nsnet repair`.

use std::path::Path;

use anyhow::Result;

use crate::cli::Format;
use crate::context;
use crate::output::print;
use crate::progress::Progress;

pub fn run(state_dir: &Path, format: Format) -> Result<()> {
    let mut progress = Progress::new("repair");
    let report =
        context::open(state_dir)?.repair_observed(|i, n, what| progress.step(i, n, &what))?;
    drop(progress);
    print(format, &report, |r| {
        format!(
            "firewall rebuilt: {} network(s), {} endpoint(s), {} published port(s), {} element(s); \
             {} shaped interface(s); {} overlay peer(s) restored; {} veth pair(s) made again\n",
            r.networks, r.endpoints, r.ports, r.elements, r.shapings, r.overlay_peers, r.veths
        )
    })?;
    // The rest is repaired; these were left as they were.
    if !report.veths_left.is_empty() {
        anyhow::bail!(
            "{} veth pair(s) could not be made again: {}",
            report.veths_left.len(),
            report.veths_left.join("; ")
        );
    }
    Ok(())
}
