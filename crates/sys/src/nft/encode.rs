//! Byte encoding of set keys and map data, exactly as nft(8) would send them.
//!
//! A single-field key is sent with the field's own length (`inet_service` is 2 bytes,
//! `inet_proto` 1 byte). A concatenation (`a . b . c`) pads every field to a multiple of 4 bytes
//! (nf_tables registers are 32 bit), so `ipv4_addr . inet_proto . inet_service` is 4 + 4 + 4 = 12
//! bytes. Multi-byte values are in network byte order, as in the packet.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Length of an `ifname` key: `IFNAMSIZ`.
pub const IFNAMSIZ: usize = 16;

/// Type `ifname`: the name NUL-padded to 16 bytes. Longer names (impossible for real
/// interfaces, whose names have at most 15 bytes) are truncated to 15 bytes.
pub fn ifname(name: &str) -> Vec<u8> {
    let mut out = vec![0; IFNAMSIZ];
    let bytes = name.as_bytes();
    let n = bytes.len().min(IFNAMSIZ - 1);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

/// Type `ipv4_addr`: 4 bytes.
pub fn ipv4(a: Ipv4Addr) -> Vec<u8> {
    a.octets().to_vec()
}

/// Type `ipv6_addr`: 16 bytes.
pub fn ipv6(a: Ipv6Addr) -> Vec<u8> {
    a.octets().to_vec()
}

/// Type `inet_proto` (e.g. 6 = tcp, 17 = udp): 1 byte (padded to 4 when concatenated).
pub fn proto(p: u8) -> Vec<u8> {
    vec![p]
}

/// Type `inet_service` (a port): 2 bytes, big-endian (padded to 4 when concatenated).
pub fn port(p: u16) -> Vec<u8> {
    p.to_be_bytes().to_vec()
}

/// Type `mark` (`meta mark`, `ct mark`): 4 bytes in host byte order, as nft sends it.
pub fn mark(m: u32) -> Vec<u8> {
    m.to_ne_bytes().to_vec()
}

/// Concatenation `f1 . f2 . ...`: every field zero-padded to a multiple of 4 bytes.
pub fn concat(fields: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(fields.iter().map(|f| pad4(f.len())).sum());
    for f in fields {
        out.extend_from_slice(f);
        out.resize(pad4(out.len()), 0);
    }
    out
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_fields() {
        assert_eq!(
            ifname("br0"),
            b"br0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec(),
            "ifname is NUL padded to IFNAMSIZ"
        );
        assert_eq!(ifname("0123456789abcdefXYZ"), b"0123456789abcde\0");
        assert_eq!(ipv4(Ipv4Addr::new(10, 0, 0, 2)), [10, 0, 0, 2]);
        assert_eq!(
            ipv6("fd00::1".parse().unwrap()),
            [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(proto(6), [6]);
        assert_eq!(port(8080), [0x1f, 0x90]);
        assert_eq!(port(80), [0x00, 0x50]);
    }

    #[test]
    fn concat_pads_each_field() {
        // Same bytes nft 1.0.6 sends for `tcp . 8080 : 10.0.0.2 . 80` (strace of `nft add element`).
        assert_eq!(
            concat(&[proto(6), port(8080)]),
            [0x06, 0, 0, 0, 0x1f, 0x90, 0, 0]
        );
        assert_eq!(
            concat(&[ipv4(Ipv4Addr::new(10, 0, 0, 2)), port(80)]),
            [10, 0, 0, 2, 0x00, 0x50, 0, 0]
        );
        let k = concat(&[ipv4(Ipv4Addr::new(192, 168, 1, 7)), proto(17), port(53)]);
        assert_eq!(k.len(), 12);
        assert_eq!(k, [192, 168, 1, 7, 17, 0, 0, 0, 0, 53, 0, 0]);
        let k6 = concat(&[proto(6), port(443)]);
        let d6 = concat(&[ipv6("fd00::2".parse().unwrap()), port(443)]);
        assert_eq!((k6.len(), d6.len()), (8, 20));
        assert_eq!(
            concat(&[ifname("br0"), ipv4(Ipv4Addr::LOCALHOST)]).len(),
            20
        );
        assert!(concat(&[]).is_empty());
    }
}
