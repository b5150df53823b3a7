//! Relaying queries to the host's nameservers, from the host's namespace (so a loopback
//! stub such as 127.0.0.53 works). The query's bytes are relayed as they came, under a fresh
//! random id; answers are relayed as they came too (a truncated UDP answer makes the client
//! ask again over TCP, which is relayed over TCP).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use nsnet_dns::upstream::{nameservers, per_server};

/// The host's resolver configuration.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The upstream servers, re-read when /etc/resolv.conf changes (one stat per forward).
pub struct Upstreams {
    cached: Mutex<(Option<SystemTime>, Vec<SocketAddr>)>,
}

impl Upstreams {
    pub fn new() -> Upstreams {
        Upstreams {
            cached: Mutex::new((None, Vec::new())),
        }
    }

    fn current(&self) -> Vec<SocketAddr> {
        let mtime = std::fs::metadata(RESOLV_CONF)
            .and_then(|m| m.modified())
            .ok();
        let Ok(mut c) = self.cached.lock() else {
            return Vec::new();
        };
        if c.0.is_none() || c.0 != mtime {
            let text = std::fs::read_to_string(RESOLV_CONF).unwrap_or_default();
            *c = (mtime, nameservers(&text));
        }
        c.1.clone()
    }

    /// The first usable answer from the upstreams over UDP, each tried in turn within its
    /// share of the budget; None when none answered.
    pub fn forward_udp(&self, query: &[u8]) -> Option<Vec<u8>> {
        let ups = self.current();
        let share = per_server(ups.len());
        let mut last = None;
        for up in ups {
            match udp_once(up, query, share) {
                Some(a) if usable(&a) => return Some(a),
                Some(a) => last = Some(a),
                None => {}
            }
        }
        last
    }

    /// As `forward_udp`, over TCP.
    pub fn forward_tcp(&self, query: &[u8]) -> Option<Vec<u8>> {
        let ups = self.current();
        let share = per_server(ups.len());
        let mut last = None;
        for up in ups {
            match tcp_once(up, query, share) {
                Some(a) if usable(&a) => return Some(a),
                Some(a) => last = Some(a),
                None => {}
            }
        }
        last
    }
}

/// Not SERVFAIL or REFUSED: another upstream may do better with those.
fn usable(answer: &[u8]) -> bool {
    !matches!(answer.get(3).map(|b| b & 0x0f), Some(2 | 5))
}

fn random_id() -> u16 {
    let mut b = [0u8; 2];
    // SAFETY: writes at most 2 bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), 2, 0) };
    if n != 2 {
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        return t.subsec_nanos() as u16;
    }
    u16::from_be_bytes(b)
}

/// One query to one upstream over UDP, from a fresh socket (a fresh random port) connected
/// to it, so only its answers are read.
fn udp_once(up: SocketAddr, query: &[u8], budget: Duration) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let local = if up.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let sock = UdpSocket::bind(local).ok()?;
    sock.connect(up).ok()?;
    let id = random_id();
    let mut q = query.to_vec();
    q[..2].copy_from_slice(&id.to_be_bytes());
    sock.send(&q).ok()?;
    let deadline = Instant::now() + budget;
    let mut buf = vec![0u8; 65535];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        let n = sock.recv(&mut buf).ok()?;
        if n >= 12 && buf[..2] == id.to_be_bytes() && buf[2] & 0x80 != 0 {
            let mut a = buf[..n].to_vec();
            a[..2].copy_from_slice(&query[..2]);
            return Some(a);
        }
    }
}

/// One query to one upstream over TCP.
fn tcp_once(up: SocketAddr, query: &[u8], budget: Duration) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let deadline = Instant::now() + budget;
    let mut s = TcpStream::connect_timeout(&up, budget).ok()?;
    let left = deadline.checked_duration_since(Instant::now())?;
    s.set_read_timeout(Some(left)).ok()?;
    s.set_write_timeout(Some(left)).ok()?;
    let id = random_id();
    let mut out = Vec::with_capacity(query.len() + 2);
    out.extend_from_slice(&u16::try_from(query.len()).ok()?.to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&query[2..]);
    s.write_all(&out).ok()?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut a = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut a).ok()?;
    if a.len() < 12 || a[..2] != id.to_be_bytes() {
        return None;
    }
    a[..2].copy_from_slice(&query[..2]);
    Some(a)
}
