//! The real kernel: netlink sockets per namespace, namespace files, sysctls.
//!
//! Sockets and namespace fds are opened once per namespace and reused for every operation of
//! the process, so one `connect` costs a handful of netlink round trips and no child process.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_core::port::PortMapping;

use crate::crashpoint::CrashPoints;
use crate::kernel::{FailKind, IfaceView, Kernel, KernelError, NsView, RouteView};
use crate::netlink::{BridgeSpec, Netem, NetlinkError, RouteSpec, Rtnl, Shaper, VethSpec};
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
    crash: CrashPoints,
}

fn nl_err(what: &str, err: &NetlinkError) -> KernelError {
    let kind = if err.is_exists() {
        FailKind::Exists
    } else if err.is_not_found() {
        FailKind::NotFound
    } else {
        FailKind::Other
    };
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

impl LiveKernel {
    /// A kernel backend for the namespace this process runs in (with the crash points of
    /// `NSNET_CRASH_AT`, a test hook).
    pub fn new() -> Self {
        LiveKernel {
            crash: CrashPoints::from_env(),
            ..Self::default()
        }
    }

    fn fd(&mut self, ns: &NsRef, what: &str) -> Result<std::os::fd::RawFd, KernelError> {
        match ns {
            NsRef::Host => {
                if self.host_fd.is_none() {
                    // The main thread never leaves the host namespace, so this names it.
                    let f = std::fs::File::open("/proc/self/ns/net")
                        .map_err(|e| KernelError::new(what, FailKind::Other, e.to_string()))?;
                    self.host_fd = Some(f.into());
                }
                Ok(self.host_fd.as_ref().expect("set above").as_raw_fd())
            }
            NsRef::Named(name) => {
                if !self.fds.contains_key(name) {
                    let fd = open_ns(name).map_err(|e| ns_err(what, &e))?;
                    self.fds.insert(name.clone(), fd);
                }
                Ok(self.fds[name].as_raw_fd())
            }
        }
    }

    fn sock(&mut self, ns: &NsRef, what: &str) -> Result<&mut Rtnl, KernelError> {
        match ns {
            NsRef::Host => {
                if self.host.is_none() {
                    self.host = Some(Rtnl::open().map_err(|e| nl_err(what, &e))?);
                }
                Ok(self.host.as_mut().expect("set above"))
            }
            NsRef::Named(name) => {
                if !self.sockets.contains_key(name) {
                    self.fd(ns, what)?;
                    let fd = self.fds[name].as_fd();
                    let sock = Rtnl::open_in(fd).map_err(|e| nl_err(what, &e))?;
                    self.sockets.insert(name.clone(), sock);
                }
                Ok(self.sockets.get_mut(name).expect("set above"))
            }
        }
    }

    fn index(&mut self, ns: &NsRef, ifname: &str, what: &str) -> Result<u32, KernelError> {
        self.sock(ns, what)?
            .link_index(ifname)
            .map_err(|e| nl_err(what, &e))?
            .ok_or_else(|| {
                KernelError::new(
                    what,
                    FailKind::NotFound,
                    format!("no interface {ifname} in netns {ns}"),
                )
            })
    }

    fn nft_sock(&mut self, what: &str) -> Result<&mut NftSocket, KernelError> {
        if self.nft.is_none() {
            self.nft = Some(NftSocket::open().map_err(|e| crate::live_fw::fw_err(what, &e))?);
        }
        Ok(self.nft.as_mut().expect("set above"))
    }

    fn apply_fw(
        &mut self,
        changes: &[nsnet_core::firewall::FwChange],
        what: &str,
    ) -> Result<(), KernelError> {
        if changes.is_empty() {
            return Ok(());
        }
        crate::live_fw::apply(self.nft_sock(what)?, changes, what)
    }

    /// A route with its output interface resolved to an index.
    fn route_spec(
        &mut self,
        ns: &NsRef,
        dest: ipnet::IpNet,
        via: Option<std::net::IpAddr>,
        dev: Option<&str>,
        what: &str,
    ) -> Result<RouteSpec, KernelError> {
        let oif = match dev {
            Some(d) => Some(self.index(ns, d, what)?),
            None => None,
        };
        Ok(RouteSpec {
            dest,
            gateway: via,
            oif,
        })
    }

    fn forget(&mut self, name: &str) {
        self.sockets.remove(name);
        self.fds.remove(name);
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
                self.sock(&NsRef::Host, what)?
                    .add_bridge(&spec)
                    .map_err(|e| nl_err(what, &e))?;
            }
            KernelOp::CreateVeth { a, b, mtu } => {
                let master = match &a.master {
                    Some(m) => Some(self.index(&a.ns, m, what)?),
                    None => None,
                };
                let peer_fd = self.fd(&b.ns, what)?;
                let spec = VethSpec {
                    name: a.name.clone(),
                    alias: Some(OWNER_ALIAS.to_string()),
                    mtu: *mtu,
                    master,
                    // Without IPv6 it goes up below, once IPv6 address generation is off.
                    up: a.ipv6,
                    peer_name: b.name.clone(),
                    peer_netns: Some(peer_fd),
                    peer_mac: b.mac.map(|m| m.0),
                    // Not here: add_veth would open a throwaway socket in the peer's namespace
                    // (a thread, a setns) just for this; below it goes on the namespace's
                    // cached socket, which the endpoint's next ops (lo, addresses, routes) reuse.
                    peer_up: false,
                };
                self.sock(&a.ns, what)?
                    .add_veth(&spec)
                    .map_err(|e| nl_err(what, &e))?;
                let up = if a.ipv6 {
                    Ok(())
                } else {
                    self.sock(&a.ns, what).and_then(|s| {
                        s.set_up_by_name(&a.name, false)
                            .map_err(|e| nl_err(&format!("{what}: set up"), &e))
                    })
                };
                let up = up.and_then(|()| self.sock(&b.ns, what)).and_then(|s| {
                    s.set_up_by_name(&b.name, b.ipv6)
                        .map_err(|e| nl_err(&format!("{what}: set peer up"), &e))
                });
                if let Err(err) = up {
                    // As add_veth does when a follow-up fails: a retry starts clean.
                    if let Ok(s) = self.sock(&a.ns, what) {
                        let _ = s.del_link(&a.name);
                    }
                    return Err(err);
                }
            }
            KernelOp::AddAddr { ns, ifname, addr } => {
                let index = self.index(ns, ifname, what)?;
                self.sock(ns, what)?
                    .add_addr(index, *addr, addr.addr().is_ipv6())
                    .map_err(|e| nl_err(what, &e))?;
            }
            KernelOp::DelAddr { ns, ifname, addr } => {
                let index = self.index(ns, ifname, what)?;
                if !self
                    .sock(ns, what)?
                    .del_addr(index, *addr)
                    .map_err(|e| nl_err(what, &e))?
                {
                    return Err(KernelError::new(
                        what,
                        FailKind::NotFound,
                        "no such address",
                    ));
                }
            }
            KernelOp::AddRoute { ns, dest, via, dev } => {
                let spec = self.route_spec(ns, *dest, *via, dev.as_deref(), what)?;
                self.sock(ns, what)?
                    .add_route(&spec)
                    .map_err(|e| nl_err(what, &e))?;
            }
            KernelOp::DelRoute { ns, dest, via, dev } => {
                let spec = self.route_spec(ns, *dest, *via, dev.as_deref(), what)?;
                if !self
                    .sock(ns, what)?
                    .del_route(&spec)
                    .map_err(|e| nl_err(what, &e))?
                {
                    return Err(KernelError::new(what, FailKind::NotFound, "no such route"));
                }
            }
            KernelOp::LinkUp { ns, ifname } => {
                let index = self.index(ns, ifname, what)?;
                self.sock(ns, what)?
                    .set_up(index)
                    .map_err(|e| nl_err(what, &e))?;
            }
            KernelOp::DeleteLink { ns, ifname } => {
                if !self.netns_exists(ns) {
                    return Err(KernelError::new(
                        what,
                        FailKind::NotFound,
                        format!("netns {ns} not found"),
                    ));
                }
                if !self
                    .sock(ns, what)?
                    .del_link(ifname)
                    .map_err(|e| nl_err(what, &e))?
                {
                    return Err(KernelError::new(
                        what,
                        FailKind::NotFound,
                        "no such interface",
                    ));
                }
            }
            KernelOp::Hairpin { ifname } => {
                let index = self.index(&NsRef::Host, ifname, what)?;
                self.sock(&NsRef::Host, what)?
                    .set_bridge_port_hairpin(index, true)
                    .map_err(|e| nl_err(what, &e))?;
            }
            KernelOp::Firewall(changes) => self.apply_fw(changes, what)?,
            KernelOp::Shape {
                ns,
                ifname,
                shaping,
            } => {
                let index = self.index(ns, ifname, what)?;
                let sock = self.sock(ns, what)?;
                if shaping.is_empty() {
                    sock.del_root_qdisc(index).map_err(|e| nl_err(what, &e))?;
                } else {
                    sock.set_shaper(index, &shaper_of(shaping)).map_err(|e| {
                        let mut err = nl_err(what, &e);
                        if e.errno() == Some(libc::ENOENT) {
                            err.cause = "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM is off): delay, jitter and loss cannot be shaped here; --rate alone works (tbf)".into();
                        }
                        err
                    })?;
                }
            }
            KernelOp::Sysctl { ns, key, value } => {
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
        Shaper::Tbf { rate_bytes } => {
            return Shaping {
                rate_bps: nonzero(rate_bytes * 8),
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

impl Kernel for LiveKernel {
    fn apply(&mut self, op: &KernelOp) -> Result<(), KernelError> {
        let what = op.to_string();
        self.crash.before(&what);
        let res = self.apply_op(op, &what);
        self.crash.after(&what);
        tracing::debug!(op = %what, ok = res.is_ok(), "kernel op");
        res
    }

    fn create_netns(&mut self, name: &str) -> Result<(), KernelError> {
        let what = format!("create netns {name}");
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
        self.forget(name);
        let what = format!("delete netns {name}");
        self.crash.before(&what);
        let deleted = netns::delete(name).map_err(|e| ns_err(&what, &e));
        self.crash.after(&what);
        deleted
    }

    fn list_netns(&mut self) -> Result<Vec<String>, KernelError> {
        netns::list().map_err(|e| ns_err("list netns", &e))
    }

    fn netns_exists(&mut self, ns: &NsRef) -> bool {
        match ns {
            NsRef::Host => true,
            NsRef::Named(name) if name.starts_with('/') => std::path::Path::new(name).exists(),
            NsRef::Named(name) => netns::exists(name),
        }
    }

    fn view(&mut self, ns: &NsRef) -> Result<NsView, KernelError> {
        let what = format!("inspect netns {ns}");
        let sock = self.sock(ns, &what)?;
        let links = sock.links().map_err(|e| nl_err(&what, &e))?;
        let addrs = sock.addrs().map_err(|e| nl_err(&what, &e))?;
        let routes = sock.routes().map_err(|e| nl_err(&what, &e))?;
        let shaped = sock.shapers().map_err(|e| nl_err(&what, &e))?;
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
        Ok(NsView { interfaces, routes })
    }

    fn fw_ensure(&mut self) -> Result<(), KernelError> {
        let what = "install nsnet firewall tables";
        self.crash.before(what);
        let made = crate::live_fw::ensure(self.nft_sock(what)?);
        self.crash.after(what);
        made
    }

    fn fw_remove(&mut self) -> Result<(), KernelError> {
        let what = "remove nsnet firewall tables";
        self.crash.before(what);
        let removed = crate::live_fw::remove();
        self.crash.after(what);
        removed
    }

    fn fw_has(&mut self, elem: &nsnet_core::firewall::FwElem) -> Result<bool, KernelError> {
        let what = format!("look up firewall element {elem}");
        crate::live_fw::has(self.nft_sock(&what)?, elem, &what)
    }

    fn port_busy(&mut self, m: &PortMapping) -> bool {
        crate::ports::busy(m)
    }

    fn process_alive(&mut self, pid: u32) -> bool {
        let Ok(pid) = i32::try_from(pid) else {
            return false;
        };
        !matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        )
    }
}
