//! `nsnet plan|apply|destroy -f FILE`.

use std::net::IpAddr;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use nsnet_core::overlay::{LocalOverlay, Membership, PeerChange, localize};
use nsnet_core::topology::{Change, Desired};
use nsnet_engine::membership::EtcdMembership;
use nsnet_sys::kernel::Net;

use crate::cli::Format;
use crate::context;
use crate::hint::topology_error;
use crate::output::print;
use crate::progress::Progress;
use crate::topology::load_with_hosts;

pub(crate) fn peer_lines(changes: &[PeerChange]) -> Vec<String> {
    changes.iter().map(ToString::to_string).collect()
}

fn lines(changes: &[Change]) -> Vec<String> {
    changes.iter().map(ToString::to_string).collect()
}

/// What a command does to this host's registration in etcd.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Register {
    /// Nothing: only read the hosts (plan).
    No,
    /// Claim the slice and publish the address under a live lease (apply).
    Join,
    /// Renew the lease; register again only when it had expired (watch).
    Keep,
}

/// The file's desired state as this machine runs it, with its overlay networks' peers: the
/// hosts are the file's (`hosts`; this machine is the one `--host` names, else the one whose
/// underlay address it holds) or etcd's (`etcd`; this machine is the one it registers).
pub(crate) fn localized(
    engine: &mut context::LiveEngine,
    state_dir: &Path,
    file: &Path,
    host: Option<&str>,
    register: Register,
) -> Result<(Desired, Vec<LocalOverlay>)> {
    let (mut desired, membership) = load_with_hosts(file)?;
    let (hosts, this) = match membership {
        Membership::Static(hosts) => {
            let this = match host {
                Some(h) => Some(h.to_string()),
                None => hosts
                    .iter()
                    .find(|h| engine.kernel().host_holds(IpAddr::V4(h.underlay)))
                    .map(|h| h.name.clone()),
            };
            (hosts, this)
        }
        Membership::Etcd(member) => {
            let etcd = EtcdMembership::new(&member, &desired.name, state_dir)?;
            match register {
                Register::No => {}
                Register::Join => etcd.join(&member.host)?,
                Register::Keep => etcd.keep(&member.host)?,
            }
            let mut hosts = etcd.hosts()?;
            // Before its first apply, a host plans as if it had joined.
            if !hosts.iter().any(|h| h.name == member.host.name) {
                hosts.push(member.host.clone());
            }
            (hosts, Some(member.host.name))
        }
    };
    let overlays = localize(&mut desired, &hosts, this.as_deref())
        .with_context(|| format!("{}", file.display()))?;
    Ok((desired, overlays))
}

pub fn plan(state_dir: &Path, format: Format, file: &Path, host: Option<&str>) -> Result<()> {
    let mut engine = context::open(state_dir)?;
    let (desired, overlays) = localized(&mut engine, state_dir, file, host, Register::No)?;
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
    let (desired, overlays) = localized(&mut engine, state_dir, file, host, Register::Join)?;
    let start = Instant::now();
    let mut progress = Progress::new("apply");
    let changes = engine
        .topology_apply(&desired, |i, n, c| progress.step(i, n, c))
        .map_err(topology_error)?;
    drop(progress);
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
    let (desired, membership) = load_with_hosts(file)?;
    let mut progress = Progress::new("destroy");
    let changes = context::open(state_dir)?
        .topology_destroy(&desired.name, |i, n, c| progress.step(i, n, c))
        .map_err(topology_error)?;
    drop(progress);
    // Gone from this host, gone from the overlay: the others need not wait for the lease.
    if let Membership::Etcd(member) = membership {
        EtcdMembership::new(&member, &desired.name, state_dir)?.leave()?;
    }
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
