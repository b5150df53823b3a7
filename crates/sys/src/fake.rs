//! A kernel that records operations, keeps a tiny model of interfaces, and fails on demand:
//! the engine's locking, planning and rollback are tested with it, without root.

use std::collections::{BTreeMap, BTreeSet};

use nsnet_core::firewall::{FwChange, FwElem};
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_core::port::PortMapping;

use crate::kernel::{FailKind, IfaceView, Kernel, KernelError, NsView};

/// Recording fake of `Kernel`.
#[derive(Debug, Default)]
pub struct FakeKernel {
    /// Every operation applied successfully, in order (including undo operations).
    pub log: Vec<KernelOp>,
    /// Named namespaces that exist.
    pub netns: BTreeSet<String>,
    /// Interfaces per namespace (host is "host").
    pub links: BTreeMap<String, BTreeSet<String>>,
    /// Fail the operation whose rendering contains this text (once per match).
    pub fail_on: Option<String>,
    /// Processes that count as dead for `process_alive`.
    pub dead_pids: BTreeSet<u32>,
    /// Firewall elements present, rendered (`set key : data`).
    pub fw: BTreeSet<String>,
    /// Whether the firewall tables are installed.
    pub fw_installed: bool,
    /// Host ports that count as busy for `port_busy` (`proto/port`).
    pub busy_ports: BTreeSet<String>,
    /// Addresses the host holds for `host_holds`.
    pub host_addrs: BTreeSet<std::net::IpAddr>,
    /// Container processes and files (see `process::fake`).
    pub procs: crate::process::fake::FakeProcesses,
}

impl FakeKernel {
    /// Interfaces currently in `ns` ("host" for the host).
    pub fn links_in(&self, ns: &str) -> Vec<String> {
        self.links
            .get(ns)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn key(ns: &NsRef) -> String {
        ns.to_string()
    }

    fn check_ns(&self, ns: &NsRef, what: &str) -> Result<(), KernelError> {
        match ns {
            NsRef::Named(n) if !self.netns.contains(n) => Err(KernelError::new(
                what,
                FailKind::NotFound,
                format!("netns {n} not found"),
            )),
            _ => Ok(()),
        }
    }

    fn add_link(&mut self, ns: &NsRef, name: &str, what: &str) -> Result<(), KernelError> {
        self.check_ns(ns, what)?;
        let set = self.links.entry(Self::key(ns)).or_default();
        if !set.insert(name.to_string()) {
            return Err(KernelError::new(what, FailKind::Exists, "File exists"));
        }
        Ok(())
    }
}

impl Kernel for FakeKernel {
    fn apply(&mut self, op: &KernelOp) -> Result<(), KernelError> {
        let what = op.to_string();
        if let Some(f) = &self.fail_on
            && what.contains(f.as_str())
        {
            self.fail_on = None;
            return Err(KernelError::new(what, FailKind::Other, "injected failure"));
        }
        match op {
            KernelOp::CreateBridge { name, .. } => self.add_link(&NsRef::Host, name, &what)?,
            KernelOp::CreateVeth { a, b, .. } => {
                self.check_ns(&b.ns, &what)?;
                if self
                    .links
                    .get(&Self::key(&b.ns))
                    .is_some_and(|s| s.contains(&b.name))
                {
                    return Err(KernelError::new(what, FailKind::Exists, "File exists"));
                }
                self.add_link(&a.ns, &a.name, &what)?;
                self.add_link(&b.ns, &b.name, &what)?;
            }
            KernelOp::DeleteLink { ns, ifname } => {
                if let Some(set) = self.links.get_mut(&Self::key(ns)) {
                    set.remove(ifname);
                }
                // Deleting a veth end deletes its peer: find the CreateVeth in the log.
                let peer = self.log.iter().rev().find_map(|o| match o {
                    KernelOp::CreateVeth { a, b, .. } if a.ns == *ns && a.name == *ifname => {
                        Some((b.ns.clone(), b.name.clone()))
                    }
                    KernelOp::CreateVeth { a, b, .. } if b.ns == *ns && b.name == *ifname => {
                        Some((a.ns.clone(), a.name.clone()))
                    }
                    _ => None,
                });
                if let Some((pns, pname)) = peer
                    && let Some(set) = self.links.get_mut(&Self::key(&pns))
                {
                    set.remove(&pname);
                }
            }
            KernelOp::AddAddr { ns, .. }
            | KernelOp::AddRoute { ns, .. }
            | KernelOp::LinkUp { ns, .. }
            | KernelOp::Sysctl { ns, .. } => self.check_ns(ns, &what)?,
            KernelOp::DelAddr { .. } | KernelOp::DelRoute { .. } | KernelOp::Hairpin { .. } => {}
            KernelOp::Shape { ns, ifname, .. } => {
                self.check_ns(ns, &what)?;
                if !self
                    .links
                    .get(&Self::key(ns))
                    .is_some_and(|s| s.contains(ifname))
                {
                    return Err(KernelError::new(
                        what,
                        FailKind::NotFound,
                        "no such interface",
                    ));
                }
            }
            KernelOp::Firewall(changes) => {
                if !self.fw_installed {
                    return Err(KernelError::new(
                        what,
                        FailKind::NotFound,
                        "table inet nsnet is missing (run `nsnet repair`)",
                    ));
                }
                let mut next = self.fw.clone();
                for c in changes {
                    match c {
                        FwChange::Add(e) => {
                            if !next.insert(e.to_string()) {
                                return Err(KernelError::new(
                                    what,
                                    FailKind::Exists,
                                    format!("element {e} exists"),
                                ));
                            }
                        }
                        FwChange::Del(e) => {
                            if !next.remove(&e.to_string()) {
                                return Err(KernelError::new(
                                    what,
                                    FailKind::NotFound,
                                    format!("no element {e}"),
                                ));
                            }
                        }
                    }
                }
                self.fw = next;
            }
        }
        self.log.push(op.clone());
        Ok(())
    }

    fn create_netns(&mut self, name: &str) -> Result<(), KernelError> {
        if !self.netns.insert(name.to_string()) {
            return Err(KernelError::new(
                format!("create netns {name}"),
                FailKind::Exists,
                "already exists",
            ));
        }
        Ok(())
    }

    fn delete_netns(&mut self, name: &str) -> Result<bool, KernelError> {
        self.links.remove(name);
        Ok(self.netns.remove(name))
    }

    fn list_netns(&mut self) -> Result<Vec<String>, KernelError> {
        Ok(self.netns.iter().cloned().collect())
    }

    fn netns_exists(&mut self, ns: &NsRef) -> bool {
        match ns {
            NsRef::Host => true,
            NsRef::Named(n) => self.netns.contains(n),
        }
    }

    fn process_alive(&mut self, pid: u32) -> bool {
        !self.dead_pids.contains(&pid)
    }

    fn fw_ensure(&mut self) -> Result<(), KernelError> {
        self.fw_installed = true;
        Ok(())
    }

    fn fw_remove(&mut self) -> Result<(), KernelError> {
        self.fw_installed = false;
        self.fw.clear();
        Ok(())
    }

    fn fw_has(&mut self, elem: &FwElem) -> Result<bool, KernelError> {
        Ok(self.fw_installed && self.fw.contains(&elem.to_string()))
    }

    fn port_busy(&mut self, m: &PortMapping) -> bool {
        self.busy_ports
            .contains(&format!("{}/{}", m.proto, m.host_port))
    }

    fn host_holds(&mut self, ip: std::net::IpAddr) -> bool {
        self.host_addrs.contains(&ip)
    }

    fn view(&mut self, ns: &NsRef) -> Result<NsView, KernelError> {
        self.check_ns(ns, &format!("inspect netns {ns}"))?;
        let interfaces = self
            .links_in(&Self::key(ns))
            .into_iter()
            .enumerate()
            .map(|(i, name)| IfaceView {
                name,
                index: u32::try_from(i).unwrap_or(0) + 1,
                kind: None,
                up: true,
                mac: None,
                mtu: None,
                master: None,
                addrs: Vec::new(),
                shaping: None,
            })
            .collect();
        Ok(NsView {
            interfaces,
            routes: Vec::new(),
        })
    }
}
