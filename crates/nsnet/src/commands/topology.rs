//! `nsnet plan|apply|destroy -f FILE`.

use std::path::Path;
use std::time::Instant;

use std::net::IpAddr;

use anyhow::{Context, Result};
use nsnet_core::overlay::{LocalOverlay, PeerChange, localize};
use nsnet_core::topology::{Change, Desired};

use nsnet_sys::kernel::Net;

use crate::cli::Format;
use crate::context;
use crate::hint::topology_error;
use crate::output::print;
use crate::topology::{load, load_with_hosts};

fn peer_lines(changes: &[PeerChange]) -> Vec<String> {
    changes.iter().map(ToString::to_string).collect()
}

fn lines(changes: &[Change]) -> Vec<String> {
    changes.iter().map(ToString::to_string).collect()
}

/// Long applies show progress on stderr (stdout stays the result).
fn progress(i: usize, n: usize, c: &Change) {
    if n > 20 {
        eprintln!("[{i}/{n}] {c}");
    }
}

/// The file's desired state as this machine runs it, with its overlay networks' peers: this
/// machine is the host named by `--host`, else the one whose underlay address it holds.
fn localized(
    engine: &mut context::LiveEngine,
    file: &Path,
    host: Option<&str>,
) -> Result<(Desired, Vec<LocalOverlay>)> {
    let (mut desired, hosts) = load_with_hosts(file)?;
    let this = match host {
        Some(h) => Some(h.to_string()),
        None => hosts
            .iter()
            .find(|h| engine.kernel().host_holds(IpAddr::V4(h.underlay)))
            .map(|h| h.name.clone()),
    };
    let overlays = localize(&mut desired, &hosts, this.as_deref())
        .with_context(|| format!("{}", file.display()))?;
    Ok((desired, overlays))
}

pub fn plan(state_dir: &Path, format: Format, file: &Path, host: Option<&str>) -> Result<()> {
    let mut engine = context::open(state_dir)?;
    let (desired, overlays) = localized(&mut engine, file, host)?;
    let changes = engine.topology_plan(&desired).map_err(topology_error)?;
    let mut l = lines(&changes);
    l.extend(peer_lines(&engine.overlay_plan(&overlays)?));
    print(format, &l, |l| {
        if l.is_empty() {
            format!("no changes: the machine matches {}\n", file.display())
        } else {
            format!("{}\n{} change(s)\n", l.join("\n"), l.len())
        }
    })
}

pub fn apply(state_dir: &Path, format: Format, file: &Path, host: Option<&str>) -> Result<()> {
    let mut engine = context::open(state_dir)?;
    let (desired, overlays) = localized(&mut engine, file, host)?;
    let start = Instant::now();
    let changes = engine
        .topology_apply(&desired, progress)
        .map_err(topology_error)?;
    // After the networks: a peer's entries go on the device the apply made.
    let mut l = lines(&changes);
    l.extend(peer_lines(&engine.overlay_apply(&overlays)?));
    let took = start.elapsed();
    print(format, &l, |l| {
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
