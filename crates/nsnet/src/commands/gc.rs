//! `nsnet gc`.

use std::path::Path;

use anyhow::Result;

use crate::cli::Format;
use crate::context;
use crate::output::print;
use crate::progress::Progress;

pub fn run(state_dir: &Path, format: Format) -> Result<()> {
    let mut progress = Progress::new("gc");
    let report = context::open(state_dir)?.gc_observed(|i, n, what| progress.step(i, n, &what))?;
    drop(progress);
    print(format, &report, |r| {
        let mut out = String::new();
        for c in &r.containers {
            out.push_str(&format!("removed container {c}\n"));
        }
        for n in &r.networks {
            out.push_str(&format!("removed network {n}\n"));
        }
        for e in &r.endpoints {
            out.push_str(&format!("removed endpoint {e}\n"));
        }
        for l in &r.links {
            out.push_str(&format!("removed link {l}\n"));
        }
        for e in &r.errors {
            out.push_str(&format!("error: {e}\n"));
        }
        if out.is_empty() {
            out.push_str("nothing to collect\n");
        }
        out
    })?;
    if !report.errors.is_empty() {
        anyhow::bail!("gc left {} error(s)", report.errors.len());
    }
    Ok(())
}
