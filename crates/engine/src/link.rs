//! Point-to-point links: the seed's veth between two namespaces.

use ipnet::IpNet;
use nsnet_core::names::{IfName, link_end};
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_core::plan::{self, LinkEnd};
use nsnet_core::shaping::Shaping;
use nsnet_store::{LinkEndRow, LinkRow, NewLink};
use nsnet_sys::kernel::{FailKind, Kernel};

use crate::apply::apply_all;
use crate::conflict::Conflict;
use crate::network::ns_key;
use crate::views::LinkView;
use crate::{Engine, EngineError};

/// `link add`, validated: each end's namespace (or the host), interface name and address.
#[derive(Debug, Clone)]
pub struct LinkRequest {
    pub a: NsRef,
    pub b: NsRef,
    pub ifname_a: Option<IfName>,
    pub ifname_b: Option<IfName>,
    pub addr_a: Option<IpNet>,
    pub addr_b: Option<IpNet>,
    pub mtu: Option<u32>,
}

pub(crate) fn link_view(l: &LinkRow) -> LinkView {
    LinkView {
        netns_a: l.a.netns.clone(),
        ifname_a: l.a.ifname.to_string(),
        addr_a: l.a.addr,
        netns_b: l.b.netns.clone(),
        ifname_b: l.b.ifname.to_string(),
        addr_b: l.b.addr,
        state: l.state.name().to_string(),
    }
}

fn end_uses(l: &LinkRow, netns: &str, ifname: &IfName) -> bool {
    (l.a.netns == netns && l.a.ifname == *ifname) || (l.b.netns == netns && l.b.ifname == *ifname)
}

impl<K: Kernel> Engine<K> {
    /// Creates a veth with one end in each namespace, addresses set and both ends up.
    pub fn link_add(&mut self, req: LinkRequest) -> Result<LinkView, EngineError> {
        let what = format!("link netns {} with netns {}", req.a, req.b);
        self.link_add_inner(req).map_err(|e| e.during(what))
    }

    fn link_add_inner(&mut self, req: LinkRequest) -> Result<LinkView, EngineError> {
        nsnet_core::model::check_link(req.addr_a, req.addr_b, req.mtu)?;
        if req.a == req.b {
            return Err(Conflict::LinkToItself.into());
        }
        for ns in [&req.a, &req.b] {
            if !self.kernel.netns_exists(ns) {
                return Err(EngineError::not_found("netns", ns));
            }
        }
        let (ka, kb) = (ns_key(&req.a), ns_key(&req.b));
        let a = LinkEndRow {
            ifname: req.ifname_a.clone().unwrap_or_else(|| link_end(&kb)),
            netns: ka,
            addr: req.addr_a,
        };
        let b = LinkEndRow {
            ifname: req.ifname_b.clone().unwrap_or_else(|| link_end(&a.netns)),
            netns: kb,
            addr: req.addr_b,
        };
        let (pid, boot) = (self.pid, self.boot_id.clone());
        let id = self.store.write(|tx| {
            let links = tx.links()?;
            for end in [&a, &b] {
                if links.iter().any(|l| end_uses(l, &end.netns, &end.ifname))
                    || tx
                        .endpoints_in_netns(&end.netns)?
                        .iter()
                        .any(|e| e.ifname == end.ifname)
                {
                    return Err(EngineError::from(Conflict::InterfaceUsed {
                        ifname: end.ifname.clone(),
                        netns: end.netns.clone(),
                    }));
                }
            }
            Ok(tx.insert_link(&NewLink {
                a: a.clone(),
                b: b.clone(),
                pid,
                boot_id: boot,
            })?)
        })?;
        let ops = plan::add_link(
            &LinkEnd {
                ns: req.a.clone(),
                ifname: a.ifname.clone(),
                addr: a.addr,
            },
            &LinkEnd {
                ns: req.b.clone(),
                ifname: b.ifname.clone(),
                addr: b.addr,
            },
            req.mtu,
        );
        if let Err(err) = apply_all(&mut self.kernel, &ops) {
            self.store.write(|tx| tx.delete_link(id))?;
            if err.kind == FailKind::Exists && err.what.starts_with("create veth") {
                return Err(Conflict::LinkInterfaceExists {
                    ifname_a: a.ifname.clone(),
                    netns_a: a.netns.clone(),
                    ifname_b: b.ifname.clone(),
                    netns_b: b.netns.clone(),
                }
                .into());
            }
            return Err(err.into());
        }
        self.store.write(|tx| tx.set_link_ready(id))?;
        let row = self.store.read(|tx| {
            tx.links()?
                .into_iter()
                .find(|l| l.id == id)
                .ok_or_else(|| EngineError::not_found("link", id))
        })?;
        Ok(link_view(&row))
    }

    /// All links.
    pub fn link_ls(&mut self) -> Result<Vec<LinkView>, EngineError> {
        Ok(self
            .store
            .read(|tx| tx.links())?
            .iter()
            .map(link_view)
            .collect())
    }

    /// Removes the link between two namespaces (`ifname` picks one when there are several;
    /// it may name the interface at either end).
    pub fn link_rm(
        &mut self,
        a: &NsRef,
        b: &NsRef,
        ifname: Option<&IfName>,
    ) -> Result<(), EngineError> {
        let (ka, kb) = (ns_key(a), ns_key(b));
        let links: Vec<LinkRow> = self
            .store
            .read(|tx| tx.links())?
            .into_iter()
            .filter(|l| {
                (l.a.netns == ka && l.b.netns == kb) || (l.a.netns == kb && l.b.netns == ka)
            })
            .filter(|l| ifname.is_none_or(|i| l.a.ifname == *i || l.b.ifname == *i))
            .collect();
        match links.as_slice() {
            [] => Err(EngineError::NotFound {
                kind: "link",
                name: format!(
                    "between netns {ka} and netns {kb}{}",
                    ifname
                        .map(|i| format!(" with interface {i}"))
                        .unwrap_or_default()
                ),
            }),
            [one] => self.remove_link(one.id),
            many => Err(Conflict::SeveralLinks {
                a: ka,
                b: kb,
                ifnames: many.iter().map(|l| l.a.ifname.to_string()).collect(),
            }
            .into()),
        }
    }

    /// Shapes the egress of an interface nsnet manages (a link end, or an endpoint's
    /// interface); empty shaping removes it. Live: no reconnect, traffic keeps flowing.
    pub fn link_shape(
        &mut self,
        ns: &NsRef,
        ifname: &IfName,
        shaping: Shaping,
    ) -> Result<(), EngineError> {
        shaping.validate()?;
        let key = ns_key(ns);
        if !self.kernel.netns_exists(ns) {
            return Err(EngineError::not_found("netns", &key));
        }
        let managed = self.store.read(|tx| {
            let link_end = tx
                .links_in_netns(&key)?
                .iter()
                .any(|l| end_uses(l, &key, ifname));
            let endpoint = tx
                .endpoints_in_netns(&key)?
                .iter()
                .any(|e| e.ifname == *ifname);
            Ok::<_, EngineError>(link_end || endpoint)
        })?;
        if !managed {
            return Err(EngineError::NotFound {
                kind: "interface",
                name: format!(
                    "{ifname} made by nsnet in netns {key} (shape link ends or endpoint interfaces)"
                ),
            });
        }
        // Recorded in the transaction that applies it (for `repair`); a kernel failure rolls
        // the record back.
        let kernel = &mut self.kernel;
        self.store.write(|tx| {
            tx.set_shaping(&key, ifname.as_str(), &shaping)?;
            kernel.apply(&KernelOp::Shape {
                ns: ns.clone(),
                ifname: ifname.to_string(),
                shaping,
            })?;
            Ok::<_, EngineError>(())
        })
    }
}
