//! Whether a host port is already in use in this process's network namespace: try to bind it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, SockFlag, SockProtocol, SockType, SockaddrIn, SockaddrIn6, bind, socket,
};
use nsnet_core::port::{PortMapping, Proto};

/// bind(2) without listen(2): nothing can connect to the probe socket in the meantime.
fn in_use(proto: Proto, addr: SocketAddr) -> bool {
    let (kind, protocol) = match proto {
        Proto::Tcp => (SockType::Stream, SockProtocol::Tcp),
        Proto::Udp => (SockType::Datagram, SockProtocol::Udp),
        Proto::Sctp => (SockType::Stream, SockProtocol::Sctp),
    };
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let Ok(fd) = socket(family, kind, SockFlag::SOCK_CLOEXEC, protocol) else {
        return false;
    };
    let bound = match addr {
        SocketAddr::V4(a) => bind(fd.as_raw_fd(), &SockaddrIn::from(a)),
        SocketAddr::V6(a) => bind(fd.as_raw_fd(), &SockaddrIn6::from(a)),
    };
    bound == Err(Errno::EADDRINUSE)
}

/// True when binding the mapping's host address (or every address) and port fails with
/// EADDRINUSE: a server already owns it.
pub fn busy(m: &PortMapping) -> bool {
    let addrs: Vec<IpAddr> = match m.host_ip {
        Some(ip) => vec![ip],
        None => vec![
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        ],
    };
    addrs
        .into_iter()
        .any(|ip| in_use(m.proto, SocketAddr::new(ip, m.host_port)))
}

/// Whether this namespace holds `ip` on one of its interfaces: binding to it fails with
/// EADDRNOTAVAIL otherwise. One syscall however many interfaces there are (with
/// `ip_nonlocal_bind` set, every address counts as held).
pub fn held(ip: IpAddr) -> bool {
    match std::net::UdpSocket::bind(SocketAddr::new(ip, 0)) {
        Ok(_) => true,
        Err(e) => e.raw_os_error() != Some(libc::EADDRNOTAVAIL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_held_and_a_documentation_address_is_not() {
        assert!(held("127.0.0.1".parse().unwrap()));
        assert!(!held("192.0.2.77".parse().unwrap()));
        assert!(!held("2001:db8::77".parse().unwrap()));
    }

    #[test]
    fn a_listening_port_is_busy_and_a_free_one_is_not() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let m = |host_ip| PortMapping {
            host_ip,
            host_port: port,
            container_port: 80,
            proto: Proto::Tcp,
        };
        assert!(busy(&m(Some("127.0.0.1".parse().unwrap()))));
        assert!(busy(&m(None)));
        drop(l);
        assert!(!busy(&m(Some("127.0.0.1".parse().unwrap()))));
    }
}
