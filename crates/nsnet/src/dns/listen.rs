//! Sockets on the gateway addresses: one UDP and one TCP listener per address, each served
//! by its own thread. A reload swaps the table and opens or closes only the listeners whose
//! addresses came or went (closing them all is how aardvark-dns lost packets, #389).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, getsockname, getsockopt,
    listen, setsockopt, socket, sockopt,
};
use nsnet_dns::{Reply, Table, respond, servfail};

use super::forward::Upstreams;

/// DNS port.
pub const PORT: u16 = 53;
/// How often blocked listeners look at their stop flag.
const POLL: Duration = Duration::from_millis(250);
/// Forwards in flight at once (each holds a thread); beyond it, SERVFAIL at once.
const MAX_FORWARDS: usize = 256;
/// An idle TCP client is dropped after this long.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// TCP clients served at once (each holds a thread); beyond it, new ones are closed.
const MAX_TCP_CLIENTS: usize = 128;

/// What every listener thread shares.
pub struct Shared {
    table: RwLock<Arc<Table>>,
    upstreams: Upstreams,
    forwards: AtomicUsize,
    tcp_clients: AtomicUsize,
}

impl Shared {
    fn table(&self) -> Arc<Table> {
        self.table
            .read()
            .map(|t| Arc::clone(&t))
            .unwrap_or_default()
    }
}

struct Listener {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Whether TCP is served too: a resolver listening on the wildcard address's port 53
    /// holds TCP (a listening socket there conflicts with any other), while UDP can still be
    /// bound beside it; TCP is retried at each update.
    tcp: bool,
}

/// The listeners of every served address.
pub struct Listeners {
    shared: Arc<Shared>,
    open: Mutex<BTreeMap<IpAddr, Listener>>,
    failed: AtomicBool,
    /// Sockets bound by the command that started us, by address and TCP or not, taken by the
    /// first update instead of binding anew (see `control::start`).
    adopted: Mutex<BTreeMap<(SocketAddr, bool), OwnedFd>>,
}

impl Listeners {
    pub fn new() -> Listeners {
        Listeners {
            shared: Arc::new(Shared {
                table: RwLock::new(Arc::new(Table::default())),
                upstreams: Upstreams::new(),
                forwards: AtomicUsize::new(0),
                tcp_clients: AtomicUsize::new(0),
            }),
            open: Mutex::new(BTreeMap::new()),
            failed: AtomicBool::new(false),
            adopted: Mutex::new(BTreeMap::new()),
        }
    }

    /// Sockets bound for us (by the command that started the responder): the next update
    /// serves those it wants and closes the others.
    pub fn adopt(&self, sockets: Vec<OwnedFd>) {
        let Ok(mut adopted) = self.adopted.lock() else {
            return;
        };
        for fd in sockets {
            let (Ok(Some(local)), Ok(ty)) = (
                getsockname::<SockaddrStorage>(fd.as_raw_fd()).map(|a| to_std(&a)),
                getsockopt(&fd, sockopt::SockType),
            ) else {
                continue;
            };
            adopted.insert((local, ty == SockType::Stream), fd);
        }
    }

    /// No network to serve.
    pub fn is_empty(&self) -> bool {
        self.shared.table().networks().is_empty()
    }

    /// Some address could not be bound at the last update.
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Serves `table` from now on: new addresses get listeners, gone ones lose theirs, the
    /// others keep their sockets.
    pub fn update(&self, table: Table) {
        let want = table.listen_addrs();
        if let Ok(mut t) = self.shared.table.write() {
            *t = Arc::new(table);
        }
        let Ok(mut open) = self.open.lock() else {
            return;
        };
        let gone: Vec<IpAddr> = open.keys().filter(|a| !want.contains(a)).copied().collect();
        // Stop them all, then wait: each thread notices within one POLL.
        let stopped: Vec<Listener> = gone.iter().filter_map(|a| open.remove(a)).collect();
        for l in &stopped {
            l.stop.store(true, Ordering::Relaxed);
        }
        for t in stopped.into_iter().flat_map(|l| l.threads) {
            let _ = t.join();
        }
        let mut adopted = self
            .adopted
            .lock()
            .map(|mut a| std::mem::take(&mut *a))
            .unwrap_or_default();
        let mut failed = false;
        for addr in want {
            if let Some(l) = open.get_mut(&addr) {
                if !l.tcp {
                    // Quietly: the first attempt said why.
                    l.tcp = start_tcp(l, addr, &self.shared, &mut adopted).is_ok();
                    failed |= !l.tcp;
                }
                continue;
            }
            match start(addr, &self.shared, &mut adopted) {
                Ok(l) => {
                    failed |= !l.tcp;
                    open.insert(addr, l);
                }
                Err(e) => {
                    failed = true;
                    eprintln!("nsnet dns: listen on {addr} port {PORT}: {e}");
                }
            }
        }
        self.failed.store(failed, Ordering::Relaxed);
    }
}

/// Opens UDP and TCP on `addr`:53 and starts their threads. Without UDP nothing is served
/// (an error); without TCP (the port held by a resolver on the wildcard address) UDP is
/// served alone and TCP retried later.
fn start(addr: IpAddr, shared: &Arc<Shared>, adopted: &mut Adopted) -> std::io::Result<Listener> {
    let udp = UdpSocket::from(socket_for(addr, SockType::Datagram, adopted)?);
    udp.set_read_timeout(Some(POLL))?;
    let mut l = Listener {
        stop: Arc::new(AtomicBool::new(false)),
        threads: Vec::new(),
        tcp: false,
    };
    {
        let (stop, shared) = (Arc::clone(&l.stop), Arc::clone(shared));
        l.threads.push(std::thread::spawn(move || {
            serve_udp(udp, addr, &stop, &shared)
        }));
    }
    match start_tcp(&mut l, addr, shared, adopted) {
        Ok(()) => l.tcp = true,
        Err(e) => eprintln!(
            "nsnet dns: listen on {addr} port {PORT} (TCP): {e}; serving UDP only until it \
             can be bound (a resolver bound to the wildcard address holds it)"
        ),
    }
    Ok(l)
}

/// Opens TCP on `addr`:53 and starts its thread in `l`.
fn start_tcp(
    l: &mut Listener,
    addr: IpAddr,
    shared: &Arc<Shared>,
    adopted: &mut Adopted,
) -> std::io::Result<()> {
    let tcp = TcpListener::from(socket_for(addr, SockType::Stream, adopted)?);
    let (stop, shared) = (Arc::clone(&l.stop), Arc::clone(shared));
    l.threads.push(std::thread::spawn(move || {
        serve_tcp(tcp, addr, &stop, &shared)
    }));
    Ok(())
}

/// Sockets bound by the responder's starter, by local address and whether TCP.
type Adopted = BTreeMap<(SocketAddr, bool), OwnedFd>;

/// The socket of `addr`:53 of type `ty`: the one bound for us when there is one, else a new one.
fn socket_for(addr: IpAddr, ty: SockType, adopted: &mut Adopted) -> std::io::Result<OwnedFd> {
    let sa = SocketAddr::new(addr, PORT);
    match adopted.remove(&(sa, ty == SockType::Stream)) {
        Some(fd) => Ok(fd),
        None => open_socket(sa, ty),
    }
}

/// For a responder's starter: UDP and TCP sockets bound on port 53 of every address in `addrs`,
/// those that could be bound (the responder binds the others and says why they failed).
pub fn bind_all(addrs: &[IpAddr]) -> Vec<OwnedFd> {
    addrs
        .iter()
        .flat_map(|&a| [SockType::Datagram, SockType::Stream].map(|ty| (a, ty)))
        .filter_map(|(a, ty)| open_socket(SocketAddr::new(a, PORT), ty).ok())
        .collect()
}

fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::from(std::net::SocketAddrV4::from(*v4)));
    }
    a.as_sockaddr_in6()
        .map(|v6| SocketAddr::from(std::net::SocketAddrV6::from(*v6)))
}

/// A bound (and, for TCP, listening) socket. IP_FREEBIND: a gateway address whose DAD has
/// not finished, or whose bridge a repair is about to recreate, can be bound already.
/// SO_REUSEADDR on both: a resolver on the host bound to the wildcard address with it (as
/// dnsmasq binds) leaves the gateway's UDP port to nsnet, which is the more specific bind.
fn open_socket(sa: SocketAddr, ty: SockType) -> std::io::Result<OwnedFd> {
    let family = if sa.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, ty, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::IpFreebind, &true)?;
    if sa.is_ipv6() {
        setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(sa))?;
    if ty == SockType::Stream {
        listen(&fd, Backlog::new(128).map_err(std::io::Error::from)?)?;
    }
    Ok(fd)
}

fn serve_udp(sock: UdpSocket, local: IpAddr, stop: &AtomicBool, shared: &Arc<Shared>) {
    let sock = Arc::new(sock);
    let mut buf = vec![0u8; 65535];
    while !stop.load(Ordering::Relaxed) {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(_) => continue,
        };
        let query = &buf[..n];
        match respond(&shared.table(), query, peer.ip(), local, true) {
            Reply::Local(bytes) => {
                let _ = sock.send_to(&bytes, peer);
            }
            Reply::Drop => {}
            Reply::Forward => {
                if shared.forwards.fetch_add(1, Ordering::Relaxed) >= MAX_FORWARDS {
                    shared.forwards.fetch_sub(1, Ordering::Relaxed);
                    if let Some(b) = servfail(query) {
                        let _ = sock.send_to(&b, peer);
                    }
                    continue;
                }
                let (sock, shared, query) = (Arc::clone(&sock), Arc::clone(shared), query.to_vec());
                std::thread::spawn(move || {
                    let answer = shared
                        .upstreams
                        .forward_udp(&query)
                        .or_else(|| servfail(&query));
                    if let Some(b) = answer {
                        let _ = sock.send_to(&b, peer);
                    }
                    shared.forwards.fetch_sub(1, Ordering::Relaxed);
                });
            }
        }
    }
}

fn serve_tcp(sock: TcpListener, local: IpAddr, stop: &AtomicBool, shared: &Arc<Shared>) {
    let fd = sock.as_raw_fd();
    while !stop.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, POLL.as_millis() as libc::c_int) };
        if ready <= 0 {
            continue;
        }
        let Ok((stream, peer)) = sock.accept() else {
            continue;
        };
        if shared.tcp_clients.fetch_add(1, Ordering::Relaxed) >= MAX_TCP_CLIENTS {
            shared.tcp_clients.fetch_sub(1, Ordering::Relaxed);
            continue;
        }
        let shared = Arc::clone(shared);
        std::thread::spawn(move || {
            let _ = serve_tcp_client(stream, peer.ip(), local, &shared);
            shared.tcp_clients.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Answers length-prefixed queries on one connection until the client closes it or idles.
fn serve_tcp_client(
    mut s: TcpStream,
    peer: IpAddr,
    local: IpAddr,
    shared: &Shared,
) -> std::io::Result<()> {
    s.set_read_timeout(Some(TCP_IDLE))?;
    s.set_nodelay(true)?;
    loop {
        let mut len = [0u8; 2];
        s.read_exact(&mut len)?;
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut query)?;
        let answer = match respond(&shared.table(), &query, peer, local, false) {
            Reply::Local(b) => Some(b),
            Reply::Drop => None,
            Reply::Forward => shared
                .upstreams
                .forward_tcp(&query)
                .or_else(|| servfail(&query)),
        };
        let Some(answer) = answer else {
            return Ok(());
        };
        let Ok(n) = u16::try_from(answer.len()) else {
            return Ok(());
        };
        let mut out = Vec::with_capacity(answer.len() + 2);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&answer);
        s.write_all(&out)?;
    }
}
