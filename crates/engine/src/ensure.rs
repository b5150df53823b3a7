//! Networks a configuration defines rather than a command creates: the caller brings the
//! definition with every request, the network is made on first use, must match afterwards,
//! takes a changed definition once nothing is attached, and goes with its last attachment.
//! A network created by a command (`network_create`) is never replaced or released by them.

use std::time::{Duration, Instant};

use nsnet_core::model::{NetworkSpec, overlaps};
use nsnet_core::names::NetName;
use nsnet_store::RowState;
use nsnet_sys::kernel::Kernel;

use crate::conflict::Conflict;
use crate::{Engine, EngineError};

/// How long an operation waits for another process that is creating or removing the network.
pub(crate) const NETWORK_WAIT: Duration = Duration::from_secs(30);
/// Pause between looks at a network another process is creating.
const NETWORK_POLL: Duration = Duration::from_millis(2);

/// A property of a network's definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Property {
    Bridge,
    Subnets,
    Mtu,
    Internal,
    Masquerade,
    Icc,
    Routed,
    Driver,
}

impl Property {
    /// The property's name in nsnet's model.
    pub fn name(self) -> &'static str {
        match self {
            Property::Bridge => "bridge",
            Property::Subnets => "subnets",
            Property::Mtu => "mtu",
            Property::Internal => "internal",
            Property::Masquerade => "masquerade",
            Property::Icc => "icc",
            Property::Routed => "routed",
            Property::Driver => "driver",
        }
    }
}

/// One way a requested definition differs from the stored network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub property: Property,
    /// The stored value, in words ("default" for an unset MTU).
    pub stored: String,
    /// The requested value, in words.
    pub requested: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} (configuration: {})",
            self.property.name(),
            self.stored,
            self.requested
        )
    }
}

/// A network that exists with another definition than the one requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub network: NetName,
    pub differences: Vec<Difference>,
    /// The stored network belongs to a configuration: it takes the requested definition once
    /// nothing is attached to it. Else a command created it, and only removing it by hand (or
    /// matching its definition) resolves the mismatch.
    pub replaceable: bool,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "network {} already exists with ", self.network)?;
        for (i, d) in self.differences.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        if self.replaceable {
            f.write_str("; it takes the new definition once nothing is attached to it")?;
        }
        Ok(())
    }
}

/// What `ensure_network` found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    /// The network did not exist (or had another definition and nothing attached): made now.
    Created,
    /// The network exists as requested.
    Matches,
    /// The network exists with another definition and stays so (it has attachments, or a
    /// command created it).
    Differs(Mismatch),
}

/// How `wanted` differs from `stored`, one entry per property; empty when they agree.
fn differences(stored: &NetworkSpec, wanted: &NetworkSpec) -> Vec<Difference> {
    let subnets = |s: &NetworkSpec| {
        let mut v: Vec<String> = s
            .subnets()
            .iter()
            .map(|s| format!("{} (gateway {})", s.cidr, s.gateway))
            .collect();
        v.sort();
        v.join(", ")
    };
    let mtu = |m: Option<u32>| m.map_or("default".to_string(), |m| m.to_string());
    let pairs = [
        (
            Property::Bridge,
            stored.bridge().to_string(),
            wanted.bridge().to_string(),
        ),
        (Property::Subnets, subnets(stored), subnets(wanted)),
        (Property::Mtu, mtu(stored.mtu()), mtu(wanted.mtu())),
        (
            Property::Internal,
            stored.internal().to_string(),
            wanted.internal().to_string(),
        ),
        (
            Property::Masquerade,
            stored.masquerade().to_string(),
            wanted.masquerade().to_string(),
        ),
        (
            Property::Icc,
            stored.icc().to_string(),
            wanted.icc().to_string(),
        ),
        (
            Property::Routed,
            stored.routed().to_string(),
            wanted.routed().to_string(),
        ),
        (
            Property::Driver,
            stored.driver().to_string(),
            wanted.driver().to_string(),
        ),
    ];
    pairs
        .into_iter()
        .filter(|(_, have, want)| have != want)
        .map(|(property, stored, requested)| Difference {
            property,
            stored,
            requested,
        })
        .collect()
}

/// Whether two networks could not exist side by side (same bridge, or overlapping subnets).
fn clashes(a: &NetworkSpec, b: &NetworkSpec) -> bool {
    a.bridge() == b.bridge()
        || a.subnets()
            .iter()
            .any(|x| b.subnets().iter().any(|y| overlaps(&x.cidr, &y.cidr)))
}

impl<K: Kernel> Engine<K> {
    /// Makes sure the network exists as `spec` defines it: creates it on first use (waiting
    /// while another process creates or removes it; `owned_by_config` records that a
    /// configuration owns it), replaces a network a configuration owns whose definition
    /// changed while nothing is attached, and removes unused networks configurations own
    /// that are in the way (same bridge, overlapping subnets). Leaves a different definition
    /// of a network with attachments, or created by a command, as it is (`Differs`).
    pub fn ensure_network(
        &mut self,
        spec: &NetworkSpec,
        owned_by_config: bool,
    ) -> Result<Ensured, EngineError> {
        let deadline = Instant::now() + NETWORK_WAIT;
        let mut collected = false;
        loop {
            match self.store.read(|tx| tx.network(spec.name()))? {
                None => {
                    self.clear_way_for(spec)?;
                    match self.create_network(spec.clone(), owned_by_config) {
                        Ok(_) => return Ok(Ensured::Created),
                        // Another process created it first: look again.
                        Err(EngineError::Exists { .. }) => {}
                        Err(err) => return Err(err),
                    }
                }
                Some(n) if n.state == RowState::Ready => {
                    let differences = differences(&n.spec, spec);
                    if differences.is_empty() {
                        return Ok(Ensured::Matches);
                    }
                    // The definition changed: the new one wins while nothing is attached
                    // (the old network goes, the next round creates the new one).
                    if !(n.cni_owned && self.release_if_unused(spec.name())?) {
                        return Ok(Ensured::Differs(Mismatch {
                            network: spec.name().clone(),
                            differences,
                            replaceable: n.cni_owned,
                        }));
                    }
                }
                Some(n) => {
                    let orphaned = n.boot_id != self.boot_id || !self.kernel.process_alive(n.pid);
                    if orphaned && !collected {
                        // Its creator (or remover) died half-way: undo that, then go on.
                        self.gc()?;
                        collected = true;
                        continue;
                    }
                    std::thread::sleep(NETWORK_POLL);
                }
            }
            if Instant::now() > deadline {
                return Err(Conflict::NetworkUnsettled {
                    network: spec.name().clone(),
                    secs: NETWORK_WAIT.as_secs(),
                }
                .into());
            }
        }
    }

    /// How `spec` differs from the stored network of its name (None: they agree). Errors
    /// when there is no such network.
    pub fn compare_network(&mut self, spec: &NetworkSpec) -> Result<Option<Mismatch>, EngineError> {
        let net = self
            .store
            .read(|tx| tx.network(spec.name()))?
            .ok_or_else(|| EngineError::not_found("network", spec.name()))?;
        let differences = differences(&net.spec, spec);
        Ok((!differences.is_empty()).then(|| Mismatch {
            network: spec.name().clone(),
            differences,
            replaceable: net.cni_owned,
        }))
    }

    /// Removes the networks configurations own that stand in the way of `spec` and have
    /// nothing attached: a runtime that deleted network A and defined B with A's subnet
    /// never sends A another request.
    fn clear_way_for(&mut self, spec: &NetworkSpec) -> Result<(), EngineError> {
        let in_way: Vec<NetName> = self.store.read(|tx| {
            Ok::<_, EngineError>(
                tx.networks()?
                    .into_iter()
                    .filter(|n| {
                        n.cni_owned && n.spec.name() != spec.name() && clashes(&n.spec, spec)
                    })
                    .map(|n| n.spec.name().clone())
                    .collect(),
            )
        })?;
        for name in in_way {
            // One with attachments stays, and creation names the clash.
            self.release_if_unused(&name)?;
        }
        Ok(())
    }

    /// Removes a network a configuration owns once nothing is attached to it: bridge,
    /// firewall elements, row. Ok(false) when it stays (attachments, created by a command,
    /// or another live process is creating or removing it). The decision is taken under the
    /// store's write lock and marks the row in flux first, so an attach racing with the
    /// removal either attached before (and the network stays) or waits and creates it anew;
    /// if this process dies half-way, `gc` (or the next `ensure_network`) finishes the removal.
    pub fn release_if_unused(&mut self, name: &NetName) -> Result<bool, EngineError> {
        let (pid, boot) = (self.pid, self.boot_id.clone());
        // A read first: after most detaches the network is still in use (or a command's),
        // and the look needs no write lock. Whatever might go is decided under it below.
        let candidate = self.store.read(|tx| {
            Ok::<_, EngineError>(match tx.network(name)? {
                None => false,
                Some(n) => {
                    n.cni_owned
                        && (n.state != RowState::Ready
                            || n.boot_id != boot
                            || !tx.network_in_use(name)?)
                }
            })
        })?;
        if !candidate {
            return Ok(false);
        }
        let kernel = &mut self.kernel;
        let claimed = self.store.write(|tx| {
            let Some(n) = tx.network(name)? else {
                return Ok::<_, EngineError>(None);
            };
            let busy = n.state != RowState::Ready
                && n.boot_id == boot
                && n.pid != pid
                && kernel.process_alive(n.pid);
            if !n.cni_owned || busy {
                return Ok(None);
            }
            if n.state == RowState::Ready && n.boot_id != boot {
                // Not used since a reboot: its endpoints died with the old kernel (the first
                // connect would drop their rows too), so they do not keep it.
                for e in tx.endpoints_of_network(name)? {
                    tx.delete_endpoint(e.id)?;
                }
            }
            if tx.network_in_use(name)? {
                return Ok(None);
            }
            tx.mark_network_removing(name, pid, &boot)?;
            Ok(Some(n.spec))
        })?;
        let Some(spec) = claimed else {
            return Ok(false);
        };
        // The tables stay when the last network goes (unlike `network_rm`): removing and
        // reinstalling them would run `nft` on every attach and detach.
        let errors = self.teardown_overlapped(&nsnet_core::plan::remove_network(&spec));
        if !errors.is_empty() {
            return Err(EngineError::Teardown {
                op: format!("remove network {name} after its last attachment"),
                errors,
            });
        }
        self.store.write(|tx| tx.delete_network(name))?;
        Ok(true)
    }
}
