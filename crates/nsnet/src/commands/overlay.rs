//! `nsnet overlay watch -f FILE`: the optional long-running follower of an overlay's hosts.
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
use crate::cli::OverlayCmd;
use crate::context;

pub fn run(state_dir: &Path, cmd: OverlayCmd) -> Result<()> {
    let OverlayCmd::Watch {
        topology,
        interval_ms,
    } = cmd;
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
