//! `nsnet overlay sync -f FILE`: the overlay peers converged once; `nsnet overlay watch -f
//! FILE`: the optional long-running follower of an overlay's hosts.
//! Every interval it renews this host's etcd lease (registering again if it had expired),
//! reads the hosts, and converges the peers of the file's overlay networks: a host that joins
//! becomes reachable, one whose lease expired is removed, drift is repaired. Polling rather
//! than etcd's watch stream keeps the client to plain request/answer HTTP, and a poll also
//! notices drift in the kernel, which no etcd event reports.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::topology::{Register, localized, peer_lines};
use crate::cli::{Format, OverlayCmd, TopologyFile};
use crate::context;
use crate::output::print;

pub fn run(state_dir: &Path, format: Format, cmd: OverlayCmd) -> Result<()> {
    match cmd {
        OverlayCmd::Watch {
            topology,
            interval_ms,
        } => watch(state_dir, &topology, interval_ms),
        OverlayCmd::Sync(topology) => sync(state_dir, format, &topology),
        OverlayCmd::Cni {
            conf,
            interval_ms,
            once,
        } => crate::cni::follow(&conf, Duration::from_millis(interval_ms.max(10)), once),
    }
}

/// One convergence of the peers, without observing anything else the file declares: its
/// cost follows the number of hosts, not of containers.
fn sync(state_dir: &Path, format: Format, topology: &TopologyFile) -> Result<()> {
    let mut engine = context::open(state_dir)?;
    let (_, overlays) = localized(
        &mut engine,
        state_dir,
        &topology.file,
        topology.host.as_deref(),
        Register::Join,
    )?;
    let lines = peer_lines(&engine.overlay_apply(&overlays)?);
    print(format, &lines, |l| {
        if l.is_empty() {
            "no changes: the overlay peers match\n".to_string()
        } else {
            format!("{}\n", l.join("\n"))
        }
    })
}

fn watch(state_dir: &Path, topology: &TopologyFile, interval_ms: u64) -> Result<()> {
    let mut engine = context::open(state_dir)?;
    let interval = Duration::from_millis(interval_ms.max(10));
    loop {
        let round = localized(
            &mut engine,
            state_dir,
            &topology.file,
            topology.host.as_deref(),
            Register::Keep,
        )
        .and_then(|(_, overlays)| Ok(engine.overlay_apply(&overlays)?));
        match round {
            Ok(changes) => {
                let mut out = std::io::stdout().lock();
                for line in peer_lines(&changes) {
                    writeln!(out, "{line}")?;
                }
                out.flush()?;
            }
            // The store or etcd may be away for a moment: say so and look again.
            Err(e) => eprintln!("nsnet overlay watch: {e:#}"),
        }
        std::thread::sleep(interval);
    }
}
