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
             {} shaped interface(s); {} overlay peer(s) restored\n",
            r.networks, r.endpoints, r.ports, r.elements, r.shapings, r.overlay_peers
        )
    })
}
