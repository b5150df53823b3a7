//! What `gc` and `repair` would do, without doing it: the store's health, rows left by
//! interrupted processes, and firewall elements ready rows own that the kernel lacks.
//! Read-only: one read transaction and `fw_has` lookups.

use nsnet_core::firewall::{self, FwElem};
use nsnet_core::ops::NsRef;
use nsnet_store::{RowState, StoreError};
use nsnet_sys::kernel::{IfaceView, Kernel};
use serde::Serialize;

use crate::container::Live;
use crate::network::{endpoint_firewall, ns_ref};
use crate::verify::{port_problems, switch_problems};
use crate::{Engine, EngineError};

/// The store's health and what `gc`/`repair` would act on.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreHealth {
    /// `PRAGMA integrity_check` findings; empty when sound.
    pub integrity: Vec<String>,
    /// Rows per table of the store (to compare before and after).
    pub rows: Vec<(&'static str, i64)>,
    /// What `gc` would collect, one line per object.
    pub collectable: Vec<String>,
    /// Firewall elements of ready rows missing from the kernel (what `gc`/`repair` restore).
    pub missing_elements: Vec<String>,
    /// Why the firewall could not be checked, if it could not.
    pub firewall_error: Option<String>,
    /// How many interfaces have recorded shaping (rate limits, `link shape`).
    pub shapings: usize,
    /// Recorded shaping the kernel's interfaces lack or differ from (what `repair` restores).
    pub drifted_shapings: Vec<String>,
    /// How many overlay peers (remote hosts) the store records.
    pub overlay_peers: usize,
    /// Recorded overlay peers whose entries are missing or wrong, with their network (what
    /// `repair` restores).
    pub drifted_peers: Vec<String>,
    /// How many ready networks' switches (bridge, gateways, overlay device) were compared.
    pub switches: usize,
    /// What differs in them, with their network: a bridge missing or down, a gateway address
    /// gone, an overlay's device missing (what `repair` restores).
    pub drifted_switches: Vec<String>,
    /// How many ready endpoints' host ends (their switch's ports) were compared: those that
    /// exist (one gone with its namespace is `gc`'s).
    pub ports: usize,
    /// Host ends that are not ports of their bridge, or are down, with their endpoint (what
    /// `repair` restores).
    pub drifted_ports: Vec<String>,
    /// How many ready endpoints' veth pairs were compared.
    pub veths: usize,
    /// Endpoints whose veth pair is gone while their namespace stays, each named (what
    /// `repair` makes again; one whose namespace is gone is `gc`'s).
    pub gone_veths: Vec<String>,
}

impl<K: Kernel> Engine<K> {
    /// Checks the store and compares what it owns with the kernel; changes nothing.
    pub fn doctor_store(&mut self) -> Result<StoreHealth, EngineError> {
        let mut health = StoreHealth {
            integrity: self.store.integrity_check()?,
            ..StoreHealth::default()
        };
        let (networks, endpoints, links, containers, rows) = self.store.read(|tx| {
            Ok::<_, StoreError>((
                tx.networks()?,
                tx.endpoints()?,
                tx.links()?,
                tx.containers()?,
                tx.row_counts()?,
            ))
        })?;
        health.rows = rows;
        // The same questions `gc` asks, in the same order, answered without acting.
        for c in &containers {
            match self.live(c) {
                Live::Creating | Live::Running(..) => {}
                Live::Abandoned => health
                    .collectable
                    .push(format!("container {} (its run was interrupted)", c.name)),
                Live::Exited(_) => health
                    .collectable
                    .push(format!("container {} (exited)", c.name)),
            }
        }
        for n in &networks {
            if n.state != RowState::Ready && self.owner_gone(n.pid, &n.boot_id) {
                health.collectable.push(format!(
                    "network {} ({} interrupted)",
                    n.spec.name(),
                    verb(n.state)
                ));
            }
        }
        for e in &endpoints {
            let what = format!("endpoint {} on network {}", e.netns, e.network);
            if e.state != RowState::Ready && self.owner_gone(e.pid, &e.boot_id) {
                health
                    .collectable
                    .push(format!("{what} ({} interrupted)", verb(e.state)));
            } else if e.state == RowState::Ready && !self.kernel.netns_exists(&ns_ref(&e.netns)) {
                health
                    .collectable
                    .push(format!("{what} (namespace deleted)"));
            }
        }
        for l in &links {
            let what = format!(
                "link {}:{} - {}:{}",
                l.a.netns, l.a.ifname, l.b.netns, l.b.ifname
            );
            if l.state != RowState::Ready && self.owner_gone(l.pid, &l.boot_id) {
                health
                    .collectable
                    .push(format!("{what} ({} interrupted)", verb(l.state)));
            } else if l.state == RowState::Ready
                && (!self.kernel.netns_exists(&ns_ref(&l.a.netns))
                    || !self.kernel.netns_exists(&ns_ref(&l.b.netns)))
            {
                health
                    .collectable
                    .push(format!("{what} (namespace deleted)"));
            }
        }
        self.doctor_shapings(&mut health)?;
        let ready: Vec<_> = networks
            .iter()
            .filter(|n| n.state == RowState::Ready)
            .collect();
        if !ready.is_empty() {
            let host = self.kernel.view(&NsRef::Host)?;
            health.switches = ready.len();
            // Networks whose switch itself is missing or down: their ports are that one
            // problem, not one more warning per endpoint.
            let mut broken = std::collections::HashSet::new();
            for n in &ready {
                let problems = switch_problems(&n.spec, &host.interfaces);
                if !problems.is_empty() {
                    broken.insert(n.spec.name());
                }
                health.drifted_switches.extend(
                    problems
                        .into_iter()
                        .map(|p| format!("network {}: {p}", n.spec.name())),
                );
            }
            let by_name: std::collections::HashMap<&str, &IfaceView> = host
                .interfaces
                .iter()
                .map(|i| (i.name.as_str(), i))
                .collect();
            let specs: std::collections::HashMap<_, _> =
                ready.iter().map(|n| (n.spec.name(), &n.spec)).collect();
            for e in endpoints.iter().filter(|e| e.state == RowState::Ready) {
                let veth = e.host_ifname.as_str();
                // A host end that is gone went with its namespace (`gc`'s) or with its peer
                // inside it (the veth pairs' line below): not this line's.
                let (Some(spec), Some(have)) = (specs.get(&e.network), by_name.get(veth)) else {
                    continue;
                };
                if broken.contains(&e.network) {
                    continue;
                }
                health.ports += 1;
                health.drifted_ports.extend(
                    port_problems(spec, veth, Some(have))
                        .into_iter()
                        .map(|p| format!("endpoint {} on network {}: {p}", e.netns, e.network)),
                );
            }
            let on_ready: Vec<_> = endpoints
                .iter()
                .filter(|e| specs.contains_key(&e.network))
                .cloned()
                .collect();
            health.veths = on_ready
                .iter()
                .filter(|e| e.state == RowState::Ready)
                .count();
            let host_end = |n: &str| by_name.contains_key(n);
            health.gone_veths = crate::veth_repair::gone(&mut self.kernel, &on_ready, host_end)?
                .into_iter()
                .map(|(e, p)| format!("endpoint {} on network {}: {p}", e.netns, e.network))
                .collect();
        }
        for n in networks.iter().filter(|n| n.state == RowState::Ready) {
            if n.spec.overlay_dev().is_none() {
                continue;
            }
            health.overlay_peers += self.store.read(|tx| tx.overlay_peers(n.spec.name()))?.len();
            health.drifted_peers.extend(
                self.overlay_peer_drift(&n.spec)?
                    .into_iter()
                    .map(|p| format!("network {}: overlay peer {p}", n.spec.name())),
            );
        }
        let owned = self.owned_elements()?;
        for elem in owned {
            match self.kernel.fw_has(&elem) {
                Ok(true) => {}
                Ok(false) => health.missing_elements.push(elem.to_string()),
                Err(err) => {
                    health.firewall_error = Some(err.to_string());
                    break;
                }
            }
        }
        Ok(health)
    }

    /// Recorded shaping against the kernel's: one view per namespace; an interface or
    /// namespace that is gone is `gc`'s, not drift.
    fn doctor_shapings(&mut self, health: &mut StoreHealth) -> Result<(), EngineError> {
        let rows = self.store.read(|tx| tx.shapings())?;
        health.shapings = rows.len();
        let mut views = std::collections::HashMap::new();
        for r in rows {
            let ns = ns_ref(&r.netns);
            if !views.contains_key(&r.netns) {
                let view = match self.kernel.netns_exists(&ns) {
                    true => Some(self.kernel.view(&ns)?),
                    false => None,
                };
                views.insert(r.netns.clone(), view);
            }
            let Some(Some(view)) = views.get(&r.netns) else {
                continue;
            };
            let Some(i) = view.interfaces.iter().find(|i| i.name == r.ifname) else {
                continue;
            };
            if !i.shaping.is_some_and(|have| r.shaping.matches(&have)) {
                health.drifted_shapings.push(format!(
                    "{} in netns {}: {} (recorded {})",
                    r.ifname,
                    r.netns,
                    i.shaping.map_or("none".to_string(), |h| h.to_string()),
                    r.shaping
                ));
            }
        }
        Ok(())
    }

    /// The firewall elements ready rows own: what `gc` checks and restores.
    pub(crate) fn owned_elements(&mut self) -> Result<Vec<FwElem>, EngineError> {
        self.store.read(|tx| {
            let mut owned = Vec::new();
            for n in tx.networks()? {
                if n.state != RowState::Ready {
                    continue;
                }
                owned.extend(firewall::network_elements(&n.spec));
                for e in tx.endpoints_of_network(n.spec.name())? {
                    if e.state == RowState::Ready {
                        owned.extend(endpoint_firewall(tx, &e)?);
                    }
                }
            }
            Ok::<_, EngineError>(owned)
        })
    }
}

/// The operation a non-ready row records.
fn verb(state: RowState) -> &'static str {
    match state {
        RowState::Creating => "create",
        RowState::Removing => "removal",
        RowState::Ready => "nothing",
    }
}

#[cfg(test)]
mod tests {
    use nsnet_core::model::NetworkSpec;
    use nsnet_core::names::NetName;
    use nsnet_store::Store;
    use nsnet_sys::fake::FakeKernel;

    use super::*;
    use crate::NetworkRequest;

    #[test]
    fn reports_a_missing_element_and_restores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut eng = Engine::new(store, FakeKernel::default(), 7, "boot".into());
        let spec = NetworkSpec::builder(NetName::new("front").unwrap())
            .subnets(["10.9.0.0/24".parse().unwrap()])
            .build()
            .unwrap();
        eng.network_create(NetworkRequest { spec }).unwrap();

        let healthy = eng.doctor_store().unwrap();
        assert!(healthy.integrity.is_empty());
        assert!(healthy.collectable.is_empty());
        assert!(healthy.missing_elements.is_empty(), "{healthy:?}");

        let gone = eng.kernel().fw.pop_first().unwrap();
        let sick = eng.doctor_store().unwrap();
        assert_eq!(sick.missing_elements.len(), 1, "{sick:?}");
        assert!(!eng.kernel().fw.contains(&gone), "doctor must not restore");
        assert_eq!(sick.rows, healthy.rows);
    }

    #[test]
    fn reports_a_missing_bridge_and_recreates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut eng = Engine::new(store, FakeKernel::default(), 7, "boot".into());
        let spec = NetworkSpec::builder(NetName::new("side").unwrap())
            .subnets(["10.7.0.0/24".parse().unwrap()])
            .build()
            .unwrap();
        let bridge = spec.bridge().to_string();
        eng.network_create(NetworkRequest { spec }).unwrap();

        let healthy = eng.doctor_store().unwrap();
        assert_eq!(healthy.switches, 1);
        assert!(healthy.drifted_switches.is_empty(), "{healthy:?}");

        // Deleted behind nsnet's back (its address goes with it).
        let host = NsRef::Host.to_string();
        let links = eng.kernel().links.get_mut(&host).unwrap();
        assert!(links.remove(&bridge), "{links:?}");
        if let Some(addrs) = eng.kernel().addrs.get_mut(&host) {
            addrs.retain(|(ifname, _)| *ifname != bridge);
        }
        let sick = eng.doctor_store().unwrap();
        assert_eq!(
            sick.drifted_switches,
            [format!("network side: bridge {bridge} is missing")]
        );
        assert!(
            !eng.kernel().links_in(&host).contains(&bridge),
            "doctor must not recreate"
        );
    }

    /// A host end taken off its bridge, or set down, by hand: doctor names the endpoint and
    /// changes nothing; repair makes it a port again and brings it up.
    #[test]
    fn reports_a_detached_or_down_host_end_and_repair_restores_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut eng = Engine::new(store, FakeKernel::default(), 7, "boot".into());
        let spec = NetworkSpec::builder(NetName::new("side").unwrap())
            .subnets(["10.6.0.0/24".parse().unwrap()])
            .build()
            .unwrap();
        eng.network_create(NetworkRequest { spec }).unwrap();
        let mut veths = Vec::new();
        for ns in ["app", "db"] {
            eng.netns_add(&nsnet_core::names::NsName::new(ns).unwrap())
                .unwrap();
            let ep = eng
                .connect(crate::ConnectRequest {
                    network: NetName::new("side").unwrap(),
                    netns: NsRef::Named(ns.into()),
                    ips: vec![],
                    mac: None,
                    ifname: None,
                    container_id: None,
                    publish: vec![],
                    aliases: vec![],
                })
                .unwrap();
            veths.push(ep.host_ifname);
        }
        let healthy = eng.doctor_store().unwrap();
        assert_eq!(healthy.ports, 2);
        assert!(healthy.drifted_ports.is_empty(), "{healthy:?}");

        let host = NsRef::Host.to_string();
        assert!(
            eng.kernel()
                .masters
                .remove(&(host.clone(), veths[0].clone()))
                .is_some()
        );
        eng.kernel().down.insert((host.clone(), veths[1].clone()));
        let sick = eng.doctor_store().unwrap();
        assert_eq!(
            sick.drifted_ports,
            [
                format!(
                    "endpoint app on network side: host interface {} is not a port of nsbr-side",
                    veths[0]
                ),
                format!(
                    "endpoint db on network side: host interface {} is down",
                    veths[1]
                ),
            ]
        );
        assert!(
            !eng.kernel()
                .masters
                .contains_key(&(host.clone(), veths[0].clone())),
            "doctor must not attach"
        );

        eng.repair().unwrap();
        let after = eng.doctor_store().unwrap();
        assert!(after.drifted_ports.is_empty(), "{after:?}");
        assert_eq!(after.ports, 2);

        // A host end that is gone is not this line's (nor, its peer being there, the veth
        // pairs': a pair gone has both ends gone).
        let links = eng.kernel().links.get_mut(&host).unwrap();
        assert!(links.remove(&veths[0]));
        let gone = eng.doctor_store().unwrap();
        assert_eq!((gone.ports, gone.drifted_ports.len()), (1, 0), "{gone:?}");
        assert!(gone.gone_veths.is_empty(), "{gone:?}");
    }

    #[test]
    fn reports_an_interrupted_create_whose_process_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut eng = Engine::new(store, FakeKernel::default(), 7, "boot".into());
        let spec = NetworkSpec::builder(NetName::new("back").unwrap())
            .subnets(["10.8.0.0/24".parse().unwrap()])
            .build()
            .unwrap();
        eng.store()
            .write(|tx| tx.insert_network(&spec, 99, "boot"))
            .unwrap();
        // Process 99 is alive: nothing to collect yet.
        assert!(eng.doctor_store().unwrap().collectable.is_empty());
        eng.kernel().dead_pids.insert(99);
        let health = eng.doctor_store().unwrap();
        assert_eq!(health.collectable, ["network back (create interrupted)"]);
    }
}
