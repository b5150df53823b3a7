//! `nsnet plan|apply|destroy -f FILE`.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use nsnet_core::topology::Change;

use crate::cli::Format;
use crate::context;
use crate::hint::topology_error;
use crate::output::print;
use crate::topology::load;

fn lines(changes: &[Change]) -> Vec<String> {
    changes.iter().map(ToString::to_string).collect()
}

/// Long applies show progress on stderr (stdout stays the result).
fn progress(i: usize, n: usize, c: &Change) {
    if n > 20 {
        eprintln!("[{i}/{n}] {c}");
    }
}

pub fn plan(state_dir: &Path, format: Format, file: &Path) -> Result<()> {
    let desired = load(file)?;
    let changes = context::open(state_dir)?
        .topology_plan(&desired)
        .map_err(topology_error)?;
    print(format, &lines(&changes), |l| {
        if l.is_empty() {
            format!("no changes: the machine matches {}\n", file.display())
        } else {
            format!("{}\n{} change(s)\n", l.join("\n"), l.len())
        }
    })
}

pub fn apply(state_dir: &Path, format: Format, file: &Path) -> Result<()> {
    let desired = load(file)?;
    let start = Instant::now();
    let changes = context::open(state_dir)?
        .topology_apply(&desired, progress)
        .map_err(topology_error)?;
    let took = start.elapsed();
    print(format, &lines(&changes), |l| {
        if l.is_empty() {
            format!("no changes: the machine matches {}\n", file.display())
        } else {
            format!(
                "{}\napplied {} change(s) in {:.2}s\n",
                l.join("\n"),
                l.len(),
                took.as_secs_f64()
            )
        }
    })
}

pub fn destroy(state_dir: &Path, format: Format, file: &Path) -> Result<()> {
    let desired = load(file)?;
    let changes = context::open(state_dir)?
        .topology_destroy(&desired.name, progress)
        .map_err(topology_error)?;
    print(format, &lines(&changes), |l| {
        if l.is_empty() {
            format!("nothing to destroy for topology {}\n", desired.name)
        } else {
            format!(
                "{}\nremoved {} object(s) of topology {}\n",
                l.join("\n"),
                l.len(),
                desired.name
            )
        }
    })
}
