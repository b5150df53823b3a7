//! `nsnet plan|apply|destroy -f FILE`.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use nsnet_core::topology::Change;

use crate::cli::Format;
use crate::context;
use crate::hint::topology_error;
use crate::output::print;
use crate::progress::Progress;
use crate::topology::load;

fn lines(changes: &[Change]) -> Vec<String> {
    changes.iter().map(ToString::to_string).collect()
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
    let mut progress = Progress::new("apply");
    let changes = context::open(state_dir)?
        .topology_apply(&desired, |i, n, c| progress.step(i, n, c))
        .map_err(topology_error)?;
    drop(progress);
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
    let mut progress = Progress::new("destroy");
    let changes = context::open(state_dir)?
        .topology_destroy(&desired.name, |i, n, c| progress.step(i, n, c))
        .map_err(topology_error)?;
    drop(progress);
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
