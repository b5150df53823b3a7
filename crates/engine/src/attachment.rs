//! Attachments: endpoints an owner outside nsnet (a container runtime) makes and removes by
//! its own key — the owner's id and the interface name — rather than by namespace, since the
//! namespace may be gone (or not given) when the owner removes it. The owner brings the
//! network's definition (made on first use, see `ensure`), may bound allocation to ranges, and
//! gives the endpoint's routes instead of nsnet's primary-endpoint rule; attachments are
//! independent of each other. Rows, kernel plans and firewall elements are those of any
//! endpoint (the owner id is the endpoint's `container_id`), so `network inspect` shows them.

use std::net::IpAddr;
use std::time::Instant;

use ipnet::IpNet;
use nsnet_core::endpoint::RoutePolicy;
use nsnet_core::ipam::Range;
use nsnet_core::model::{Mac, NetworkSpec};
use nsnet_core::names::{IfName, NetName};
use nsnet_core::ops::NsRef;
use nsnet_core::port::PortSpec;
use nsnet_store::{EndpointRow, RowState};
use nsnet_sys::kernel::Kernel;

use crate::conflict::Conflict;
use crate::ensure::{Ensured, NETWORK_WAIT};
use crate::network::{ConnectPolicy, endpoint_view, primary_in};
use crate::views::EndpointView;
use crate::{ConnectRequest, Engine, EngineError};

/// Which attachment, as its owner names it (on a given network).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OwnerKey {
    pub owner_id: String,
    pub ifname: IfName,
}

impl std::fmt::Display for OwnerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "owner {} interface {}", self.owner_id, self.ifname)
    }
}

/// An attachment to make, validated by the face.
#[derive(Debug, Clone)]
pub struct AttachRequest {
    pub key: OwnerKey,
    /// The network as the owner's configuration defines it; made on first use (owned by the
    /// configuration, so it goes with its last attachment).
    pub network: NetworkSpec,
    /// The namespace to attach.
    pub netns: NsRef,
    /// Requested addresses (at most one per subnet).
    pub ips: Vec<IpAddr>,
    pub mac: Option<Mac>,
    pub publish: Vec<PortSpec>,
    /// Allocation windows, at most one per subnet.
    pub ranges: Vec<Range>,
    pub routes: RoutePolicy,
    /// No default routes through this attachment, ever: it is not handed them when the
    /// attachment that carried them goes (netavark's `no_default_route`).
    pub no_default_route: bool,
    /// DNS aliases of the endpoint.
    pub aliases: Vec<String>,
}

/// An attachment `gc_attachments` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detached {
    pub key: OwnerKey,
    pub addrs: Vec<IpNet>,
}

/// What `gc_attachments` removed, and what it could not.
#[derive(Debug, Default)]
pub struct AttachmentGc {
    pub removed: Vec<Detached>,
    pub failed: Vec<(OwnerKey, EngineError)>,
}

fn key_of(e: &EndpointRow) -> Option<OwnerKey> {
    Some(OwnerKey {
        owner_id: e.container_id.clone()?,
        ifname: e.ifname.clone(),
    })
}

impl<K: Kernel> Engine<K> {
    /// The row of the attachment `key` names on `network`, if any.
    pub(crate) fn attachment_row(
        &mut self,
        network: &NetName,
        key: &OwnerKey,
    ) -> Result<Option<EndpointRow>, EngineError> {
        let rows = self
            .store
            .read(|tx| tx.endpoints_of_container(&key.owner_id))?;
        Ok(rows
            .into_iter()
            .find(|e| e.network == *network && e.ifname == key.ifname))
    }

    /// The attachment `key` names on `network`, if any.
    pub fn attachment(
        &mut self,
        network: &NetName,
        key: &OwnerKey,
    ) -> Result<Option<EndpointView>, EngineError> {
        let Some(e) = self.attachment_row(network, key)? else {
            return Ok(None);
        };
        let view = self.store.read(|tx| {
            let in_ns = tx.endpoints_in_netns(&e.netns)?;
            Ok::<_, EngineError>(endpoint_view(tx, &e, primary_in(tx, &in_ns)?)?)
        })?;
        Ok(Some(view))
    }

    /// Every attachment of an owner, on any network.
    pub fn owner_attachments(&mut self, owner_id: &str) -> Result<Vec<EndpointView>, EngineError> {
        self.store.read(|tx| {
            tx.endpoints_of_container(owner_id)?
                .iter()
                .map(|e| -> Result<EndpointView, EngineError> {
                    let in_ns = tx.endpoints_in_netns(&e.netns)?;
                    Ok(endpoint_view(tx, e, primary_in(tx, &in_ns)?)?)
                })
                .collect()
        })
    }

    /// Makes an attachment: the network on first use (see `ensure_network`), then a connect
    /// with the request's ranges, routes and published ports. Refuses an attachment that
    /// exists already, and a network that exists with another definition.
    pub fn attach(&mut self, req: &AttachRequest) -> Result<EndpointView, EngineError> {
        let deadline = Instant::now() + NETWORK_WAIT;
        loop {
            if let Ensured::Differs(m) = self.ensure_network(&req.network, true)? {
                return Err(Conflict::DefinitionDiffers(m).into());
            }
            match self.attach_to_existing(req) {
                Ok(view) => return Ok(view),
                Err(err) => {
                    // The network's last other attachment left and took the network with it
                    // between our look and the connect: start over (the connect undid itself).
                    let gone = self
                        .store
                        .read(|tx| tx.network(req.network.name()))?
                        .is_none_or(|n| n.state != RowState::Ready);
                    if !gone || Instant::now() > deadline {
                        return Err(err);
                    }
                }
            }
        }
    }

    fn attach_to_existing(&mut self, req: &AttachRequest) -> Result<EndpointView, EngineError> {
        let network = req.network.name();
        if let Some(e) = self.attachment_row(network, &req.key)? {
            return Err(Conflict::AlreadyAttached {
                key: req.key.clone(),
                network: network.clone(),
                netns: e.netns,
                addrs: e.addrs,
            }
            .into());
        }
        let connect = ConnectRequest {
            network: network.clone(),
            netns: req.netns.clone(),
            ips: req.ips.clone(),
            mac: req.mac,
            ifname: Some(req.key.ifname.clone()),
            container_id: Some(req.key.owner_id.clone()),
            publish: req.publish.clone(),
            aliases: req.aliases.clone(),
        };
        let policy = ConnectPolicy {
            routes: req.routes.clone(),
            ranges: req.ranges.clone(),
            no_default_route: req.no_default_route,
        };
        self.connect_with(&connect, &policy)
    }

    /// Removes the attachment `key` names on `network`, whether or not its namespace still
    /// exists; Ok(false) when there was none (removing twice is harmless). Unlike
    /// `disconnect`, no other endpoint of the namespace gets default routes: attachments
    /// are independent of each other.
    pub fn detach(&mut self, network: &NetName, key: &OwnerKey) -> Result<bool, EngineError> {
        self.detach_with(network, key, false)
    }

    /// `detach`, for an owner whose attachments share default routes the way `disconnect`'s
    /// endpoints do (podman's networks of one container: the first non-internal one carries
    /// them): when this attachment carried them, the next oldest of its namespace gets them,
    /// so removing one network of a container does not cut it off.
    pub fn detach_handing_over(
        &mut self,
        network: &NetName,
        key: &OwnerKey,
    ) -> Result<bool, EngineError> {
        self.detach_with(network, key, true)
    }

    fn detach_with(
        &mut self,
        network: &NetName,
        key: &OwnerKey,
        promote: bool,
    ) -> Result<bool, EngineError> {
        match self.attachment_row(network, key)? {
            Some(ep) => self.remove_endpoint(ep.id, promote).map(|()| true),
            None => Ok(false),
        }
    }

    /// Removes every attachment to `network` (an endpoint with an owner) whose key is not in
    /// `keep`. Attachments another live process is still creating are left alone; a failed
    /// removal is reported and the others go on.
    pub fn gc_attachments(
        &mut self,
        network: &NetName,
        keep: &[OwnerKey],
    ) -> Result<AttachmentGc, EngineError> {
        let endpoints = self.store.read(|tx| {
            let mut mine = Vec::new();
            for e in tx.endpoints_of_network(network)? {
                // `nsnet run` records its container's name as the owner too: those endpoints
                // are the container's, not a runtime's attachments.
                let ours = e.container_id.as_deref() == Some(e.netns.as_str())
                    && tx.container(&e.netns)?.is_some();
                if !ours {
                    mine.push(e);
                }
            }
            Ok::<_, EngineError>(mine)
        })?;
        let mut report = AttachmentGc::default();
        for e in endpoints {
            let Some(key) = key_of(&e) else {
                continue;
            };
            if keep.contains(&key) {
                continue;
            }
            let in_flight = e.state == RowState::Creating
                && e.boot_id == self.boot_id
                && self.kernel.process_alive(e.pid);
            if in_flight {
                continue;
            }
            match self.remove_endpoint(e.id, false) {
                Ok(()) => report.removed.push(Detached {
                    key,
                    addrs: e.addrs,
                }),
                Err(err) => report.failed.push((key, err)),
            }
        }
        Ok(report)
    }
}
