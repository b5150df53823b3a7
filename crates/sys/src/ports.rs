//! Whether a host port is already in use in this process's network namespace: try to bind it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{FromRawFd, OwnedFd};

use nsnet_core::port::{PortMapping, Proto};

/// bind(2) without listen(2): nothing can connect to the probe socket in the meantime.
fn in_use(proto: Proto, addr: SocketAddr) -> bool {
    let (kind, protocol) = match proto {
        Proto::Tcp => (libc::SOCK_STREAM, libc::IPPROTO_TCP),
        Proto::Udp => (libc::SOCK_DGRAM, libc::IPPROTO_UDP),
        Proto::Sctp => (libc::SOCK_STREAM, libc::IPPROTO_SCTP),
    };
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe { libc::socket(family, kind | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return false;
    }
    // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
    let _owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let rc = match addr {
        SocketAddr::V4(a) => {
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sa is a valid sockaddr_in of the given length.
            unsafe {
                libc::bind(
                    fd,
                    (&sa as *const libc::sockaddr_in).cast(),
                    std::mem::size_of_val(&sa) as libc::socklen_t,
                )
            }
        }
        SocketAddr::V6(a) => {
            let sa = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sa is a valid sockaddr_in6 of the given length.
            unsafe {
                libc::bind(
                    fd,
                    (&sa as *const libc::sockaddr_in6).cast(),
                    std::mem::size_of_val(&sa) as libc::socklen_t,
                )
            }
        }
    };
    rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EADDRINUSE)
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
