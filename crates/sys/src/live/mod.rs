//! The real kernel: netlink sockets per namespace, namespace files, sysctls.
//!
//! Sockets and namespace fds are opened once per namespace and reused for every operation of
//! the process, and interface indexes are remembered per namespace, so one `connect` costs a
//! handful of netlink round trips and no child process.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use ipnet::IpNet;

use nsnet_core::firewall::FwChange;
use nsnet_core::model::overlaps;
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_core::port::PortMapping;

use crate::crashpoint::CrashPoints;
use crate::kernel::{FailKind, Firewall, IfaceView, KernelError, Net, NsView, RouteView};
use crate::netlink::{
    BridgeSpec, Netem, NetlinkError, PeerSpec, RouteSpec, Rtnl, Shaper, VethSpec, VxlanSpec,
};
use crate::nft::NftSocket;
use crate::{netns, sysctl};
use nsnet_core::shaping::Shaping;

/// Alias set on every interface nsnet creates, so leftovers can be recognised.
pub const OWNER_ALIAS: &str = "nsnet";

/// `Kernel` on the live system.
#[derive(Default)]
pub struct LiveKernel {
    host: Option<Rtnl>,
    sockets: HashMap<String, Rtnl>,
    fds: HashMap<String, OwnedFd>,
    host_fd: Option<OwnedFd>,
    nft: Option<NftSocket>,
    /// Interface indexes per namespace, learnt from creations and lookups: addresses, routes,
    /// hairpin and qdiscs name an interface by index, and each lookup is a round trip. An
    /// index the kernel no longer knows (the interface was replaced) is looked up again.
    indexes: HashMap<NsRef, HashMap<String, u32>>,
    crash: CrashPoints,
    /// Open vSwitch, for networks of the `ovs` driver.
    ovs: crate::ovs::Ovs,
    /// Link deletions running on helper threads (`Net::start`), oldest first.
    started: StartedOps,
    /// Netlink goes to this recorder instead of the kernel (tests without root).
    #[cfg(any(test, feature = "testkit"))]
    recorder: Option<crate::nl::record::Recorder>,
}

/// A link deletion `Net::start` began: what it is (for crash points and logs), and its
/// helper thread, or its outcome when no thread could be made and it ran at once.
struct Started {
    what: String,
    run: Result<std::thread::JoinHandle<Result<(), KernelError>>, Result<(), KernelError>>,
}

/// Deletes `ifname` through `sock`, as `apply` of `KernelOp::DeleteLink` reports it.
fn delete_link(sock: &mut Rtnl, ifname: &str, what: &str) -> Result<(), KernelError> {
    match sock.del_link(ifname) {
        Ok(true) => Ok(()),
        Ok(false) => Err(KernelError::new(
            what,
            FailKind::NotFound,
            "no such interface",
        )),
        Err(e) => Err(nl_err(what, &e)),
    }
}

/// The deletions started and not yet finished.
#[derive(Default)]
struct StartedOps(Vec<Started>);

impl Drop for StartedOps {
    fn drop(&mut self) {
        // A caller that returned early still waits for what it started: a command returns
        // only when what it removed is gone.
        for s in self.0.drain(..) {
            if let Ok(thread) = s.run {
                let _ = thread.join();
            }
        }
    }
}

/// The engine's terms for a kernel refusal.
pub(crate) fn fail_kind(exists: bool, not_found: bool) -> FailKind {
    match (exists, not_found) {
        (true, _) => FailKind::Exists,
        (false, true) => FailKind::NotFound,
        (false, false) => FailKind::Other,
    }
}

fn nl_err(what: &str, err: &NetlinkError) -> KernelError {
    let kind = fail_kind(err.is_exists(), err.is_not_found());
    let cause = match err.errno() {
        Some(errno) => std::io::Error::from_raw_os_error(errno).to_string(),
        None => err.to_string(),
    };
    KernelError::new(what, kind, cause)
}

fn ns_err(what: &str, err: &netns::NsError) -> KernelError {
    let kind = match err {
        netns::NsError::NotFound(_) | netns::NsError::NotMounted(_) => FailKind::NotFound,
        netns::NsError::Exists(_) => FailKind::Exists,
        _ => FailKind::Other,
    };
    KernelError::new(what, kind, err.to_string())
}

fn open_ns(name: &str) -> Result<OwnedFd, netns::NsError> {
    if name.starts_with('/') {
        // CNI hands us a path such as /proc/PID/ns/net or /var/run/netns/X.
        let f = std::fs::File::open(name).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                netns::NsError::NotFound(name.to_string())
            } else {
                netns::NsError::Io {
                    op: "open netns".into(),
                    path: name.into(),
                    source: e,
                }
            }
        })?;
        Ok(f.into())
    } else {
        netns::open(name)
    }
}

fn missing(what: &str, ifname: &str, ns: &NsRef) -> KernelError {
    KernelError::new(
        what,
        FailKind::NotFound,
        format!("no interface {ifname} in netns {ns}"),
    )
}

impl LiveKernel {
    /// A kernel backend for the namespace this process runs in (with the crash points of
    /// `NSNET_CRASH_AT`, a test hook).
    pub fn new() -> Self {
        LiveKernel {
            crash: CrashPoints::from_env(),
            ..Self::default()
        }
    }

    /// This backend with nsnet's own Open vSwitch daemons (started on first use) keeping
    /// their database, socket and pidfiles in `dir`.
    pub fn with_ovs_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.ovs = crate::ovs::Ovs::new(dir);
        self
    }

    /// A kernel backend whose netlink requests go to `recorder`, which answers them, instead
    /// of the kernel: tests without root assert the messages each op produces. Namespace files
    /// are not opened (a placeholder fd stands in), sysctl writes are only noted in the
    /// recorder, and what would make or remove namespaces or run `nft` is refused.
    #[cfg(any(test, feature = "testkit"))]
    pub fn recording(recorder: crate::nl::record::Recorder) -> Self {
        LiveKernel {
            recorder: Some(recorder),
            ..Self::default()
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn recorder(&self) -> Option<&crate::nl::record::Recorder> {
        self.recorder.as_ref()
    }

    #[cfg(not(any(test, feature = "testkit")))]
    fn recorder(&self) -> Option<&std::convert::Infallible> {
        None
    }

    /// Refuses what a recording kernel cannot stand in for.
    fn live_only(&self, what: &str) -> Result<(), KernelError> {
        match self.recorder() {
            Some(_) => Err(KernelError::new(
                what,
                FailKind::Other,
                "not available on a recording kernel",
            )),
            None => Ok(()),
        }
    }

    fn fd(&mut self, ns: &NsRef, what: &str) -> Result<std::os::fd::RawFd, KernelError> {
        let placeholder = || {
            std::fs::File::open("/dev/null")
                .map(OwnedFd::from)
                .map_err(|e| KernelError::new(what, FailKind::Other, e.to_string()))
        };
        match ns {
            NsRef::Host => {
                if self.host_fd.is_none() {
                    self.host_fd = Some(match self.recorder() {
                        Some(_) => placeholder()?,
                        // The main thread is in the host namespace but for the moments it
                        // spends inside `netns::briefly_in` (opening a socket), so this names it.
                        None => std::fs::File::open("/proc/self/ns/net")
                            .map_err(|e| KernelError::new(what, FailKind::Other, e.to_string()))?
                            .into(),
                    });
                }
                Ok(self.host_fd.as_ref().expect("set above").as_raw_fd())
            }
            NsRef::Named(name) => {
                if !self.fds.contains_key(name) {
                    let fd = match self.recorder() {
                        Some(_) => placeholder()?,
                        None => open_ns(name).map_err(|e| ns_err(what, &e))?,
                    };
                    self.fds.insert(name.clone(), fd);
                }
                Ok(self.fds[name].as_raw_fd())
            }
        }
    }

    fn open_rtnl(&mut self, ns: &NsRef, what: &str) -> Result<Rtnl, KernelError> {
        #[cfg(any(test, feature = "testkit"))]
        if let Some(rec) = self.recorder() {
            return Ok(Rtnl::recording(rec, &ns.to_string()));
        }
        match ns {
            NsRef::Host => Rtnl::open(),
            NsRef::Named(name) => {
                self.fd(ns, what)?;
                Rtnl::open_in(self.fds[name].as_fd())
            }
        }
        .map_err(|e| nl_err(what, &e))
    }

    fn sock(&mut self, ns: &NsRef, what: &str) -> Result<&mut Rtnl, KernelError> {
        let open = match ns {
            NsRef::Host => self.host.is_none(),
            NsRef::Named(name) => !self.sockets.contains_key(name),
        };
        if open {
            let sock = self.open_rtnl(ns, what)?;
            match ns {
                NsRef::Host => self.host = Some(sock),
                NsRef::Named(name) => {
                    self.sockets.insert(name.clone(), sock);
                }
            }
        }
        Ok(match ns {
            NsRef::Host => self.host.as_mut(),
            NsRef::Named(name) => self.sockets.get_mut(name),
        }
        .expect("opened above"))
    }

    fn learn(&mut self, ns: &NsRef, ifname: &str, index: u32) {
        self.indexes
            .entry(ns.clone())
            .or_default()
            .insert(ifname.to_owned(), index);
    }

    fn unlearn(&mut self, ns: &NsRef, ifname: &str) {
        if let Some(names) = self.indexes.get_mut(ns) {
            names.remove(ifname);
        }
    }

    fn cached(&self, ns: &NsRef, ifname: &str) -> Option<u32> {
        self.indexes.get(ns)?.get(ifname).copied()
    }

    /// The index of `ifname` in `ns`, from the cache or else one GETLINK.
    fn index(&mut self, ns: &NsRef, ifname: &str, what: &str) -> Result<u32, KernelError> {
        if let Some(index) = self.cached(ns, ifname) {
            return Ok(index);
        }
        let index = self
            .sock(ns, what)?
            .link_index(ifname)
            .map_err(|e| nl_err(what, &e))?
            .ok_or_else(|| missing(what, ifname, ns))?;
        self.learn(ns, ifname, index);
        Ok(index)
    }

    /// Runs `request` on the socket of `ns` with the index of `ifname` (or without one when
    /// `ifname` is `None`). A cached index the kernel no longer knows (ENODEV: the interface
    /// was deleted and made again meanwhile) is looked up afresh, and the request repeated.
    fn with_index<T>(
        &mut self,
        ns: &NsRef,
        ifname: Option<&str>,
        what: &str,
        request: impl FnMut(&mut Rtnl, Option<u32>) -> Result<T, NetlinkError>,
    ) -> Result<T, KernelError> {
        self.with_index_as(ns, ifname, what, request, nl_err)
    }

    /// [`LiveKernel::with_index`] with the kernel's refusal turned into an error by `error`.
    fn with_index_as<T>(
        &mut self,
        ns: &NsRef,
        ifname: Option<&str>,
        what: &str,
        mut request: impl FnMut(&mut Rtnl, Option<u32>) -> Result<T, NetlinkError>,
        error: impl Fn(&str, &NetlinkError) -> KernelError,
    ) -> Result<T, KernelError> {
        let Some(ifname) = ifname else {
            return request(self.sock(ns, what)?, None).map_err(|e| error(what, &e));
        };
        let cached = self.cached(ns, ifname).is_some();
        let index = self.index(ns, ifname, what)?;
        match request(self.sock(ns, what)?, Some(index)) {
            Err(e) if cached && e.errno() == Some(libc::ENODEV) => {
                self.unlearn(ns, ifname);
                let index = self.index(ns, ifname, what)?;
                request(self.sock(ns, what)?, Some(index)).map_err(|e| error(what, &e))
            }
            res => res.map_err(|e| error(what, &e)),
        }
    }

    fn nft_sock(&mut self, what: &str) -> Result<&mut NftSocket, KernelError> {
        if self.nft.is_none() {
            #[cfg(any(test, feature = "testkit"))]
            if let Some(rec) = self.recorder() {
                self.nft = Some(NftSocket::recording(rec, "host"));
            }
            if self.nft.is_none() {
                self.nft = Some(NftSocket::open().map_err(|e| crate::live_fw::fw_err(what, &e))?);
            }
        }
        Ok(self.nft.as_mut().expect("set above"))
    }

    fn forget(&mut self, name: &str) {
        self.sockets.remove(name);
        self.fds.remove(name);
        self.indexes.remove(&NsRef::Named(name.to_owned()));
    }

    /// A veth, in four round trips: whether the host end's name is free, with the bridge's
    /// index (the create's follow-ups name the host end, and must never reach a link someone
    /// else holds under that name); the create with the host end's follow-ups; the peer up, on
    /// its namespace's socket, which the endpoint's next ops reuse; and the host end up. Both
    /// ends' indexes are remembered for those ops.
    ///
    /// The host end goes up last: a bridge walks all its ports each time one of them is
    /// enabled or disabled. Up before its peer, the host end was enabled (its carrier not yet
    /// known), disabled when the carrier-off of its creation was seen, and enabled again when
    /// the peer came up: three walks, a third of a connect's CPU with 1000 ports on the bridge.
    /// Up after its peer, its carrier is on from the start: one walk. (The peer's index is
    /// asked before it goes up: see [`Rtnl::index_then_up`].)
    fn create_veth(
        &mut self,
        a: &nsnet_core::ops::VethEnd,
        b: &nsnet_core::ops::VethEnd,
        mtu: Option<u32>,
        what: &str,
    ) -> Result<(), KernelError> {
        let peer_fd = self.fd(&b.ns, what)?;
        let mut names = vec![a.name.as_str()];
        names.extend(a.master.as_deref());
        let found = self
            .sock(&a.ns, what)?
            .link_indexes(&names)
            .map_err(|e| nl_err(what, &e))?;
        if found[0].is_some() {
            let exists = std::io::Error::from_raw_os_error(libc::EEXIST);
            return Err(KernelError::new(what, FailKind::Exists, exists.to_string()));
        }
        let master = match &a.master {
            Some(m) => {
                let index = found[1].ok_or_else(|| missing(what, m, &a.ns))?;
                self.learn(&a.ns, m, index);
                Some(index)
            }
            None => None,
        };
        let spec = VethSpec {
            name: a.name.clone(),
            alias: Some(OWNER_ALIAS.to_string()),
            mtu,
            master,
            up: false,
            ipv6: a.ipv6,
            peer_name: b.name.clone(),
            peer_netns: Some(peer_fd),
            peer_mac: b.mac.map(|m| m.0),
        };
        let host = self
            .sock(&a.ns, what)?
            .add_veth(&spec)
            .map_err(|e| nl_err(what, &e))?;
        self.learn(&a.ns, &a.name, host);
        let peer = self.sock(&b.ns, what).and_then(|s| {
            s.index_then_up(&b.name, b.ipv6)
                .map_err(|e| nl_err(&format!("{what}: set peer up"), &e))
        });
        let up = peer.and_then(|index| {
            self.learn(&b.ns, &b.name, index);
            self.sock(&a.ns, what)?
                .set_up_by_name(&a.name, a.ipv6)
                .map_err(|e| nl_err(&format!("{what}: set up"), &e))
        });
        match up {
            Ok(_) => Ok(()),
            Err(err) => {
                // As add_veth does when a follow-up fails: a retry starts clean.
                if let Ok(s) = self.sock(&a.ns, what) {
                    let _ = s.del_link(&a.name);
                }
                self.unlearn(&a.ns, &a.name);
                Err(err)
            }
        }
    }

    fn apply_op(&mut self, op: &KernelOp, what: &str) -> Result<(), KernelError> {
        match op {
            KernelOp::CreateBridge { name, mtu, mac } => {
                let spec = BridgeSpec {
                    name: name.clone(),
                    mtu: *mtu,
                    mac: Some(mac.0),
                    alias: Some(OWNER_ALIAS.to_string()),
                    up: false,
                };
                let index = self
                    .sock(&NsRef::Host, what)?
                    .add_bridge(&spec)
                    .map_err(|e| nl_err(what, &e))?;
                self.learn(&NsRef::Host, name, index);
            }
            KernelOp::CreateVeth { a, b, mtu } => self.create_veth(a, b, *mtu, what)?,
            KernelOp::CreateVxlan {
                name,
                vni,
                port,
                mtu,
                mac,
            } => {
                let spec = VxlanSpec {
                    name: name.clone(),
                    vni: *vni,
                    port: *port,
                    mtu: *mtu,
                    mac: mac.0,
                    alias: Some(OWNER_ALIAS.to_string()),
                };
                let index = self
                    .sock(&NsRef::Host, what)?
                    .add_vxlan(&spec)
                    .map_err(|e| nl_err(what, &e))?;
                self.learn(&NsRef::Host, name, index);
            }
            KernelOp::AddOverlayPeer(p) | KernelOp::DelOverlayPeer(p) => {
                let add = matches!(op, KernelOp::AddOverlayPeer(_));
                self.with_index(&NsRef::Host, Some(&p.dev), what, |s, index| {
                    let spec = PeerSpec {
                        oif: index.expect("given"),
                        slice: p.slice,
                        vtep: p.vtep,
                        mac: p.mac.0,
                        underlay: p.underlay,
                    };
                    if add {
                        s.add_overlay_peer(&spec)
                    } else {
                        s.del_overlay_peer(&spec)
                    }
                })?;
            }
            KernelOp::AddAddr { ns, ifname, addr } => {
                self.with_index(ns, Some(ifname), what, |s, index| {
                    s.add_addr(index.expect("given"), *addr, addr.addr().is_ipv6())
                })?;
            }
            KernelOp::DelAddr { ns, ifname, addr } => {
                let removed = self.with_index(ns, Some(ifname), what, |s, index| {
                    s.del_addr(index.expect("given"), *addr)
                })?;
                if !removed {
                    return Err(KernelError::new(
                        what,
                        FailKind::NotFound,
                        "no such address",
                    ));
                }
            }
            KernelOp::AddRoute { ns, dest, via, dev } => {
                self.with_index(ns, dev.as_deref(), what, |s, oif| {
                    s.add_route(&RouteSpec {
                        dest: *dest,
                        gateway: *via,
                        oif,
                    })
                })?;
            }
            KernelOp::DelRoute { ns, dest, via, dev } => {
                let removed = self.with_index(ns, dev.as_deref(), what, |s, oif| {
                    s.del_route(&RouteSpec {
                        dest: *dest,
                        gateway: *via,
                        oif,
                    })
                })?;
                if !removed {
                    return Err(KernelError::new(what, FailKind::NotFound, "no such route"));
                }
            }
            KernelOp::LinkUp { ns, ifname } => {
                // By name: one round trip, and the answer carries the index for later ops.
                let index = self
                    .sock(ns, what)?
                    .set_up_by_name(ifname, true)
                    .map_err(|e| nl_err(what, &e))?;
                self.learn(ns, ifname, index);
            }
            KernelOp::DeleteLink { ns, ifname } => {
                if !self.netns_exists(ns) {
                    return Err(KernelError::new(
                        what,
                        FailKind::NotFound,
                        format!("netns {ns} not found"),
                    ));
                }
                let deleted = delete_link(self.sock(ns, what)?, ifname, what);
                self.unlearn(ns, ifname);
                deleted?;
            }
            KernelOp::Hairpin { ifname } => {
                self.with_index(&NsRef::Host, Some(ifname), what, |s, index| {
                    s.set_bridge_port_hairpin(index.expect("given"), true)
                })?;
            }
            KernelOp::SetMaster { ifname, master } => {
                let master = self.index(&NsRef::Host, master, what)?;
                self.with_index(&NsRef::Host, Some(ifname), what, |s, index| {
                    s.set_master(index.expect("given"), master)
                })?;
            }
            KernelOp::Firewall(_) => {
                return Err(KernelError::new(
                    what,
                    FailKind::Other,
                    "firewall changes go through Firewall::apply_fw",
                ));
            }
            KernelOp::OvsAddBridge {
                name,
                network,
                mtu,
                mac,
            } => {
                self.live_only(what)?;
                self.ovs.add_bridge(what, name, network, *mtu, *mac)?;
            }
            KernelOp::OvsDelBridge { name } => {
                self.live_only(what)?;
                self.unlearn(&NsRef::Host, name);
                self.ovs.del_bridge(what, name)?;
            }
            KernelOp::OvsAddPort {
                bridge,
                port,
                network,
                protected,
            } => {
                self.live_only(what)?;
                self.ovs.add_port(what, bridge, port, network, *protected)?;
            }
            KernelOp::OvsDelPort { bridge, port } => {
                self.live_only(what)?;
                self.ovs.del_port(what, bridge, port)?;
            }
            KernelOp::Shape {
                ns,
                ifname,
                shaping,
            } => {
                let shaper = (!shaping.is_empty()).then(|| shaper_of(shaping));
                let error = |what: &str, e: &NetlinkError| {
                    let mut err = nl_err(what, e);
                    if shaper.is_some() && e.errno() == Some(libc::ENOENT) {
                        err.cause = "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM is off): delay, jitter and loss cannot be shaped here; --rate alone works (tbf)".into();
                    }
                    err
                };
                self.with_index_as(
                    ns,
                    Some(ifname),
                    what,
                    |s, index| {
                        let index = index.expect("given");
                        match &shaper {
                            None => s.del_root_qdisc(index).map(drop),
                            Some(shaper) => s.set_shaper(index, shaper),
                        }
                    },
                    error,
                )?;
            }
            KernelOp::Sysctl { ns, key, value } => {
                #[cfg(any(test, feature = "testkit"))]
                if let Some(rec) = self.recorder() {
                    rec.note_sysctl(&ns.to_string(), key, value);
                    return Ok(());
                }
                let res = match ns {
                    NsRef::Host => sysctl::write(key, value),
                    NsRef::Named(name) => {
                        self.fd(ns, what)?;
                        sysctl::write_in(self.fds[name].as_fd(), key, value)
                    }
                };
                match res {
                    // No /proc/sys/net/ipv6: the kernel has no IPv6, so it is off already.
                    Err(sysctl::SysctlError::NotFound { .. })
                        if key.ends_with("/disable_ipv6") && value == "1" => {}
                    res => {
                        res.map_err(|e| KernelError::new(what, FailKind::Other, e.to_string()))?
                    }
                }
            }
        }
        Ok(())
    }
}

/// The qdisc for a shaping: tbf for a rate alone (every kernel has it), else netem.
fn shaper_of(s: &Shaping) -> Shaper {
    if s.delay_us.is_none() && s.jitter_us.is_none() && s.loss_ppm.is_none() {
        return Shaper::Tbf {
            rate_bytes: s.rate_bps.unwrap_or(0) / 8,
            burst_bytes: s.burst_bits.map_or(0, |b| (b / 8) as u32),
        };
    }
    Shaper::Netem(Netem {
        latency_ns: s.delay_us.unwrap_or(0) * 1_000,
        jitter_ns: s.jitter_us.unwrap_or(0) * 1_000,
        loss: s.loss_ppm.map_or(0, |ppm| {
            (u64::from(u32::MAX) * u64::from(ppm) / 1_000_000) as u32
        }),
        rate_bytes: s.rate_bps.unwrap_or(0) / 8,
    })
}

/// A qdisc's kernel units back to shaping (what `inspect` shows and `plan` compares).
fn shaping_of(shaper: &Shaper) -> Shaping {
    let nonzero = |v: u64| (v > 0).then_some(v);
    let n = match shaper {
        Shaper::Tbf {
            rate_bytes,
            burst_bytes,
        } => {
            return Shaping {
                rate_bps: nonzero(rate_bytes * 8),
                burst_bits: (*burst_bytes > 0).then(|| u64::from(*burst_bytes) * 8),
                ..Shaping::default()
            };
        }
        Shaper::Netem(n) => n,
    };
    Shaping {
        delay_us: nonzero(n.latency_ns / 1_000),
        jitter_us: nonzero(n.jitter_ns / 1_000),
        loss_ppm: (n.loss > 0).then(|| {
            ((u64::from(n.loss) * 1_000_000 + u64::from(u32::MAX) / 2) / u64::from(u32::MAX)) as u32
        }),
        rate_bps: nonzero(n.rate_bytes * 8),
        burst_bits: None,
    }
}

fn proto_name(p: u8) -> String {
    match p {
        2 => "kernel".into(),
        3 => "boot".into(),
        4 => "static".into(),
        16 => "dhcp".into(),
        n => n.to_string(),
    }
}

fn mac_string(m: [u8; 6]) -> String {
    nsnet_core::model::Mac(m).to_string()
}

/// What a namespace's view is made of: its links, addresses, routes and root qdiscs.
struct Dumps {
    links: Vec<crate::netlink::LinkInfo>,
    addrs: Vec<crate::netlink::AddrInfo>,
    routes: Vec<crate::netlink::RouteInfo>,
    shaped: Vec<(u32, Shaper)>,
}

impl Dumps {
    /// Four dumps on `sock`.
    fn take(sock: &mut Rtnl) -> Result<Dumps, NetlinkError> {
        Ok(Dumps {
            links: sock.links()?,
            addrs: sock.addrs()?,
            routes: sock.routes()?,
            shaped: sock.shapers()?,
        })
    }

    /// The links alone (`full`: all four dumps).
    fn take_some(sock: &mut Rtnl, full: bool) -> Result<Dumps, NetlinkError> {
        if full {
            return Self::take(sock);
        }
        Ok(Dumps {
            links: sock.links()?,
            addrs: Vec::new(),
            routes: Vec::new(),
            shaped: Vec::new(),
        })
    }
}

impl LiveKernel {
    /// The view `dumps` make of `ns`; the interfaces' indexes are remembered.
    fn view_of(&mut self, ns: &NsRef, dumps: Dumps) -> NsView {
        let Dumps {
            links,
            addrs,
            routes,
            shaped,
        } = dumps;
        self.indexes.insert(
            ns.clone(),
            links.iter().map(|l| (l.name.clone(), l.index)).collect(),
        );
        let name_of = |i: u32| links.iter().find(|l| l.index == i).map(|l| l.name.clone());
        let interfaces = links
            .iter()
            .map(|l| IfaceView {
                name: l.name.clone(),
                index: l.index,
                kind: l.kind.clone(),
                up: l.up,
                mac: l.mac.map(mac_string),
                mtu: l.mtu,
                master: l.master.and_then(name_of),
                addrs: addrs
                    .iter()
                    .filter(|a| a.index == l.index)
                    .map(|a| a.addr)
                    .collect(),
                shaping: shaped
                    .iter()
                    .find(|(i, _)| *i == l.index)
                    .map(|(_, n)| shaping_of(n)),
            })
            .collect();
        let routes = routes
            .into_iter()
            .map(|r| RouteView {
                dest: r.dest,
                via: r.gateway,
                dev: r.oif.and_then(name_of),
                proto: proto_name(r.protocol),
            })
            .collect();
        NsView { interfaces, routes }
    }
}

impl Net for LiveKernel {
    fn apply_net(&mut self, op: &KernelOp) -> Result<(), KernelError> {
        let what = op.to_string();
        self.crash.before(&what);
        let res = self.apply_op(op, &what);
        self.crash.after(&what);
        tracing::debug!(op = %what, ok = res.is_ok(), "kernel op");
        res
    }

    fn create_netns(&mut self, name: &str) -> Result<(), KernelError> {
        let what = format!("create netns {name}");
        self.live_only(&what)?;
        self.crash.before(&what);
        let made = netns::create(name).map_err(|e| ns_err(&what, &e));
        self.crash.after(&what);
        made?;
        let ns = NsRef::Named(name.to_string());
        let up = self.apply_op(
            &KernelOp::LinkUp {
                ns,
                ifname: "lo".into(),
            },
            &what,
        );
        if let Err(err) = up {
            self.forget(name);
            let _ = netns::delete(name);
            return Err(err);
        }
        Ok(())
    }

    fn delete_netns(&mut self, name: &str) -> Result<bool, KernelError> {
        let what = format!("delete netns {name}");
        self.live_only(&what)?;
        self.forget(name);
        self.crash.before(&what);
        let deleted = netns::delete(name).map_err(|e| ns_err(&what, &e));
        self.crash.after(&what);
        deleted
    }

    fn list_netns(&mut self) -> Result<Vec<String>, KernelError> {
        self.live_only("list netns")?;
        netns::list().map_err(|e| ns_err("list netns", &e))
    }

    fn netns_exists(&mut self, ns: &NsRef) -> bool {
        if self.recorder().is_some() {
            return true;
        }
        match ns {
            NsRef::Host => true,
            NsRef::Named(name) if name.starts_with('/') => std::path::Path::new(name).exists(),
            NsRef::Named(name) => netns::exists(name),
        }
    }

    fn view(&mut self, ns: &NsRef) -> Result<NsView, KernelError> {
        let what = format!("inspect netns {ns}");
        let dumps = Dumps::take(self.sock(ns, &what)?).map_err(|e| nl_err(&what, &e))?;
        Ok(self.view_of(ns, dumps))
    }

    fn views(&mut self, list: &[NsRef]) -> Vec<Result<NsView, KernelError>> {
        self.views_at_once(list, true)
    }

    fn create_netns_many(&mut self, names: &[String]) -> Vec<Result<(), KernelError>> {
        self.create_netns_at_once(names)
    }

    fn interface_names(&mut self, list: &[NsRef]) -> Vec<Result<Vec<String>, KernelError>> {
        self.views_at_once(list, false)
            .into_iter()
            .map(|v| Ok(v?.interfaces.into_iter().map(|i| i.name).collect()))
            .collect()
    }

    fn routes_overlapping(
        &mut self,
        ns: &NsRef,
        nets: &[IpNet],
    ) -> Result<Vec<RouteView>, KernelError> {
        let what = format!("inspect routes of netns {ns}");
        let sock = self.sock(ns, &what)?;
        let mut out = Vec::new();
        for v6 in [false, true] {
            let wanted: Vec<&IpNet> = nets.iter().filter(|n| n.addr().is_ipv6() == v6).collect();
            if wanted.is_empty() {
                continue;
            }
            for r in sock.routes_of(Some(v6)).map_err(|e| nl_err(&what, &e))? {
                if r.dest.prefix_len() == 0 || !wanted.iter().any(|n| overlaps(n, &r.dest)) {
                    continue;
                }
                // Only a matching route's device is looked up: the links are never dumped.
                let dev = match r.oif {
                    Some(i) => sock
                        .link_by_index(i)
                        .map_err(|e| nl_err(&what, &e))?
                        .map(|l| l.name),
                    None => None,
                };
                out.push(RouteView {
                    dest: r.dest,
                    via: r.gateway,
                    dev,
                    proto: proto_name(r.protocol),
                });
            }
        }
        Ok(out)
    }

    fn port_busy(&mut self, m: &PortMapping) -> bool {
        crate::ports::busy(m)
    }

    fn overlay_entries(
        &mut self,
        dev: &str,
    ) -> Result<nsnet_core::overlay::LiveEntries, KernelError> {
        let what = format!("inspect overlay device {dev}");
        let e = self.with_index(&NsRef::Host, Some(dev), &what, |s, index| {
            s.overlay_entries(index.expect("given"))
        })?;
        let mac = nsnet_core::model::Mac;
        Ok(nsnet_core::overlay::LiveEntries {
            routes: e.routes,
            neighbours: e
                .neighbours
                .into_iter()
                .map(|(ip, m)| (ip, mac(m)))
                .collect(),
            fdb: e.fdb.into_iter().map(|(m, ip)| (mac(m), ip)).collect(),
        })
    }

    fn host_holds(&mut self, ip: std::net::IpAddr) -> bool {
        crate::ports::held(ip)
    }

    fn delete_links(&mut self, ns: &NsRef, ifnames: &[String]) -> Vec<Result<(), KernelError>> {
        self.delete_links_at_once(ns, ifnames)
    }

    fn start(&mut self, op: &KernelOp) -> bool {
        let KernelOp::DeleteLink {
            ns: NsRef::Host,
            ifname,
        } = op
        else {
            return false;
        };
        if self.recorder().is_some() {
            return false;
        }
        let what = op.to_string();
        // A socket of its own, opened here in the host namespace (the main thread never
        // leaves it): the thread blocks in the kernel's RCU barriers while this one goes on.
        let mut sock = match self.open_rtnl(&NsRef::Host, &what) {
            Ok(sock) => sock,
            Err(_) => return false,
        };
        self.crash.before(&what);
        self.unlearn(&NsRef::Host, ifname);
        tracing::debug!(op = %what, "kernel op started on a helper thread");
        let (name, w) = (ifname.clone(), what.clone());
        let spawned = std::thread::Builder::new()
            .name("nsnet-delete".into())
            .spawn(move || {
                let t = std::time::Instant::now();
                let res = delete_link(&mut sock, &name, &w);
                tracing::debug!(op = %w, ms = t.elapsed().as_secs_f64() * 1e3, "kernel op done on a helper thread");
                res
            });
        let run = spawned.map_err(|_| {
            // No thread to be had: delete it here and now.
            self.sock(&NsRef::Host, &what)
                .and_then(|s| delete_link(s, ifname, &what))
        });
        self.started.0.push(Started { what, run });
        true
    }

    fn finish_started(&mut self) -> Vec<Result<(), KernelError>> {
        let started: Vec<Started> = self.started.0.drain(..).collect();
        started
            .into_iter()
            .map(|s| {
                let res = match s.run {
                    Ok(thread) => thread.join().unwrap_or_else(|_| {
                        Err(KernelError::new(
                            &s.what,
                            FailKind::Other,
                            "helper thread panicked",
                        ))
                    }),
                    Err(done) => done,
                };
                self.crash.after(&s.what);
                tracing::debug!(op = %s.what, ok = res.is_ok(), "kernel op (helper thread joined)");
                res
            })
            .collect()
    }
}

impl Firewall for LiveKernel {
    fn apply_fw(&mut self, changes: &[FwChange]) -> Result<(), KernelError> {
        // Named as the op renders, so crash points and errors read as before the split.
        let what = KernelOp::Firewall(changes.to_vec()).to_string();
        self.crash.before(&what);
        let res = if changes.is_empty() {
            Ok(())
        } else {
            self.nft_sock(&what)
                .and_then(|sock| crate::live_fw::apply(sock, changes, &what))
        };
        self.crash.after(&what);
        tracing::debug!(op = %what, ok = res.is_ok(), "kernel op");
        res
    }

    fn fw_ensure(&mut self) -> Result<(), KernelError> {
        let what = "install nsnet firewall tables";
        self.live_only(what)?;
        self.crash.before(what);
        let made = crate::live_fw::ensure(self.nft_sock(what)?);
        self.crash.after(what);
        made
    }

    fn fw_remove(&mut self) -> Result<(), KernelError> {
        let what = "remove nsnet firewall tables";
        self.live_only(what)?;
        self.crash.before(what);
        let removed = crate::live_fw::remove(self.nft_sock(what)?);
        self.crash.after(what);
        removed
    }

    fn fw_has(&mut self, elem: &nsnet_core::firewall::FwElem) -> Result<bool, KernelError> {
        let what = format!("look up firewall element {elem}");
        crate::live_fw::has(self.nft_sock(&what)?, elem, &what)
    }
}

mod batch;
#[cfg(test)]
mod tests;
