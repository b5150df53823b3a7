//! Link shaping with a root qdisc on an interface's egress: netem for delay, jitter and loss
//! (with its own rate limit), tbf when only the rate is limited (kernels built without netem
//! still have tbf). Their options are C structs and attributes the typed crate does not
//! model, so they are encoded and parsed here by hand.

use netlink_packet_core::{DefaultNla, NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::tc::{TcAttribute, TcHandle, TcMessage};

use super::{NetlinkError, Req, Rtnl};

const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
const TCA_NETEM_RATE: u16 = 6;
const TCA_NETEM_RATE64: u16 = 8;
const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;
const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;
/// TC_LINKLAYER_ETHERNET: lets the kernel compute rates without a rate table.
const LINKLAYER_ETHERNET: u8 = 1;
/// Size of `struct tc_netem_qopt`.
const QOPT_LEN: usize = 24;
/// Size of `struct tcmsg`.
const TCMSG_LEN: usize = 20;
/// netem's default queue length (packets), as `tc` uses.
const NETEM_LIMIT: u32 = 1000;

/// A netem configuration, in kernel units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Netem {
    /// Added delay in nanoseconds.
    pub latency_ns: u64,
    /// Delay variation in nanoseconds.
    pub jitter_ns: u64,
    /// Loss probability scaled to u32 (0 = none, u32::MAX = all).
    pub loss: u32,
    /// Rate limit in bytes per second (0 = none).
    pub rate_bytes: u64,
}

/// A root qdisc nsnet shapes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shaper {
    Netem(Netem),
    /// Token bucket rate limit in bytes per second, with the bucket's size in bytes (0: 10 ms
    /// at the rate). The kernel reports the bucket as a time, not a size: read back, it is 0.
    Tbf {
        rate_bytes: u64,
        burst_bytes: u32,
    },
}

fn nla(kind: u16, value: &[u8], out: &mut Vec<u8>) {
    let len = 4 + value.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize((out.len() + 3) & !3, 0);
}

/// TCA_OPTIONS payload for netem: the qopt struct, then 64-bit latency/jitter and the rate.
pub(crate) fn encode_options(n: &Netem) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    // latency and jitter in the struct are in scheduler ticks; the 64-bit attributes below
    // override them in nanoseconds, so the struct carries zeros.
    for v in [0u32, NETEM_LIMIT, n.loss, 0, 0, 0] {
        out.extend_from_slice(&v.to_ne_bytes());
    }
    nla(
        TCA_NETEM_LATENCY64,
        &(n.latency_ns as i64).to_ne_bytes(),
        &mut out,
    );
    nla(
        TCA_NETEM_JITTER64,
        &(n.jitter_ns as i64).to_ne_bytes(),
        &mut out,
    );
    if n.rate_bytes > 0 {
        let mut rate = Vec::with_capacity(16);
        rate.extend_from_slice(&(n.rate_bytes.min(u64::from(u32::MAX)) as u32).to_ne_bytes());
        rate.extend_from_slice(&[0u8; 12]);
        nla(TCA_NETEM_RATE, &rate, &mut out);
        if n.rate_bytes >= u64::from(u32::MAX) {
            nla(TCA_NETEM_RATE64, &n.rate_bytes.to_ne_bytes(), &mut out);
        }
    }
    out
}

/// TCA_OPTIONS payload for tbf: parameters with an Ethernet link layer (no rate table), the
/// given burst (else 10 ms at the rate, at least 16 full frames) and a queue of 50 ms more.
pub(crate) fn encode_tbf(rate_bytes: u64, burst_bytes: u32) -> Vec<u8> {
    let burst = match burst_bytes {
        0 => (rate_bytes / 100).max(16 * 1514).min(u64::from(u32::MAX)) as u32,
        b => b,
    };
    let limit = (u64::from(burst) + rate_bytes / 20).min(u64::from(u32::MAX)) as u32;
    let mut parms = Vec::with_capacity(36);
    // struct tc_ratespec rate: cell_log, linklayer, overhead, cell_align, mpu, rate.
    parms.extend_from_slice(&[0, LINKLAYER_ETHERNET]);
    parms.extend_from_slice(&[0u8; 6]);
    parms.extend_from_slice(&(rate_bytes.min(u64::from(u32::MAX)) as u32).to_ne_bytes());
    // peakrate (none), then limit, buffer (given as TCA_TBF_BURST instead), mtu.
    parms.extend_from_slice(&[0u8; 12]);
    for v in [limit, 0, 0] {
        parms.extend_from_slice(&v.to_ne_bytes());
    }
    let mut out = Vec::new();
    nla(TCA_TBF_PARMS, &parms, &mut out);
    if rate_bytes >= u64::from(u32::MAX) {
        nla(TCA_TBF_RATE64, &rate_bytes.to_ne_bytes(), &mut out);
    }
    nla(TCA_TBF_BURST, &burst.to_ne_bytes(), &mut out);
    out
}

fn decode_tbf(opts: &[u8]) -> u64 {
    let mut rate = 0;
    for (kind, value) in attrs(opts) {
        match kind {
            TCA_TBF_PARMS if rate == 0 => rate = u64::from(u32_at(value, 8)),
            TCA_TBF_RATE64 => rate = u64_of(value),
            _ => {}
        }
    }
    rate
}

fn attrs(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let kind = u16::from_ne_bytes([data[2], data[3]]) & 0x3fff;
        if len < 4 || len > data.len() {
            return None;
        }
        let value = &data[4..len];
        data = &data[((len + 3) & !3).min(data.len())..];
        Some((kind, value))
    })
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_ne_bytes(s.try_into().expect("4 bytes")))
}

fn u64_of(b: &[u8]) -> u64 {
    b.get(..8)
        .map_or(0, |s| u64::from_ne_bytes(s.try_into().expect("8 bytes")))
}

/// Parses a TCA_OPTIONS payload of netem (what the kernel dumps back).
pub(crate) fn decode_options(opts: &[u8], tick_ns: f64) -> Netem {
    let mut n = Netem {
        latency_ns: (f64::from(u32_at(opts, 0)) * tick_ns) as u64,
        loss: u32_at(opts, 8),
        jitter_ns: (f64::from(u32_at(opts, 20)) * tick_ns) as u64,
        rate_bytes: 0,
    };
    if opts.len() > QOPT_LEN {
        for (kind, value) in attrs(&opts[QOPT_LEN..]) {
            match kind {
                TCA_NETEM_LATENCY64 => n.latency_ns = u64_of(value),
                TCA_NETEM_JITTER64 => n.jitter_ns = u64_of(value),
                TCA_NETEM_RATE if n.rate_bytes == 0 => n.rate_bytes = u64::from(u32_at(value, 0)),
                TCA_NETEM_RATE64 => n.rate_bytes = u64_of(value),
                _ => {}
            }
        }
    }
    n
}

fn qdisc_msg(index: u32) -> TcMessage {
    let mut msg = TcMessage::default();
    msg.header.index = index as i32;
    msg.header.parent = TcHandle::ROOT;
    msg
}

impl Rtnl {
    /// Replaces the root qdisc of link `index` with `shaper`.
    pub fn set_shaper(&mut self, index: u32, shaper: &Shaper) -> Result<(), NetlinkError> {
        let (kind, options) = match shaper {
            Shaper::Netem(n) => ("netem", encode_options(n)),
            Shaper::Tbf {
                rate_bytes,
                burst_bytes,
            } => ("tbf", encode_tbf(*rate_bytes, *burst_bytes)),
        };
        let mut msg = qdisc_msg(index);
        msg.header.handle = TcHandle { major: 1, minor: 0 };
        msg.attributes.push(TcAttribute::Kind(kind.into()));
        msg.attributes
            .push(TcAttribute::Other(DefaultNla::new(TCA_OPTIONS, options)));
        let req = |msg: TcMessage| {
            Req::new(
                format!("set {kind} qdisc on ifindex {index}"),
                NLM_F_CREATE | NLM_F_REPLACE,
                RouteNetlinkMessage::NewQueueDiscipline(msg),
            )
        };
        match self.ack(req(msg.clone())) {
            // A root qdisc of another kind cannot be changed into this one: replace it, and
            // put the old one back if the new one is refused.
            Err(e) if e.errno() == Some(libc::EINVAL) => {
                let previous = self.shaper(index)?;
                if !self.del_root_qdisc(index)? {
                    return Err(e);
                }
                let res = self.ack(req(msg));
                if res.is_err()
                    && let Some(old) = previous
                {
                    self.set_shaper(index, &old)?;
                }
                res
            }
            res => res,
        }
    }

    /// Removes the root qdisc of link `index` (back to the default); Ok(false) if there was
    /// none to remove.
    pub fn del_root_qdisc(&mut self, index: u32) -> Result<bool, NetlinkError> {
        let req = Req::new(
            format!("delete root qdisc of ifindex {index}"),
            0,
            RouteNetlinkMessage::DelQueueDiscipline(qdisc_msg(index)),
        );
        match self.ack(req) {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.errno(), Some(libc::ENOENT) | Some(libc::EINVAL)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The shaper of link `index`'s root qdisc, if it is one of nsnet's kinds.
    pub fn shaper(&mut self, index: u32) -> Result<Option<Shaper>, NetlinkError> {
        Ok(self
            .shapers()?
            .into_iter()
            .find_map(|(i, n)| (i == index).then_some(n)))
    }

    /// Every link of the namespace whose root qdisc is netem or tbf, with its settings (one
    /// dump).
    pub fn shapers(&mut self) -> Result<Vec<(u32, Shaper)>, NetlinkError> {
        let replies = self.dump(|| {
            Req::new(
                "list qdiscs".to_string(),
                0,
                RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default()),
            )
        })?;
        let tick_ns = psched_tick_ns();
        let mut out = Vec::new();
        for r in replies {
            let p = &r.payload;
            if p.len() < TCMSG_LEN || u32_at(p, 12) != u32::MAX {
                continue;
            }
            let mut kind = None;
            let mut opts: &[u8] = &[];
            for (k, v) in attrs(&p[TCMSG_LEN..]) {
                match k {
                    TCA_KIND => {
                        kind = Some(
                            String::from_utf8_lossy(v)
                                .trim_end_matches('\0')
                                .to_string(),
                        )
                    }
                    TCA_OPTIONS => opts = v,
                    _ => {}
                }
            }
            let shaper = match kind.as_deref() {
                Some("netem") => Shaper::Netem(decode_options(opts, tick_ns)),
                Some("tbf") => Shaper::Tbf {
                    rate_bytes: decode_tbf(opts),
                    burst_bytes: 0,
                },
                _ => continue,
            };
            out.push((u32_at(p, 4), shaper));
        }
        Ok(out)
    }
}

/// Nanoseconds per scheduler tick, from /proc/net/psched (for kernels that only report the
/// struct's tick-based latency).
fn psched_tick_ns() -> f64 {
    let text = std::fs::read_to_string("/proc/net/psched").unwrap_or_default();
    let words: Vec<u32> = text
        .split_whitespace()
        .filter_map(|w| u32::from_str_radix(w, 16).ok())
        .collect();
    match words.as_slice() {
        [t2us, us2t, ..] if *us2t > 0 => 1000.0 * f64::from(*t2us) / f64::from(*us2t),
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip() {
        let n = Netem {
            latency_ns: 50_000_000,
            jitter_ns: 5_000_000,
            loss: u32::MAX / 100,
            rate_bytes: 1_250_000,
        };
        let enc = encode_options(&n);
        assert_eq!(&enc[4..8], &NETEM_LIMIT.to_ne_bytes());
        assert_eq!(decode_options(&enc, 1.0), n);
        assert_eq!(decode_tbf(&encode_tbf(1_250_000, 0)), 1_250_000);
        assert_eq!(decode_tbf(&encode_tbf(10_000_000_000, 0)), 10_000_000_000);
        // A given burst goes as TCA_TBF_BURST; the queue limit is that plus 50 ms.
        let enc = encode_tbf(125_000, 10_000);
        let burst = attrs(&enc).find(|(k, _)| *k == TCA_TBF_BURST).unwrap().1;
        assert_eq!(u32_at(burst, 0), 10_000);
        let parms = attrs(&enc).find(|(k, _)| *k == TCA_TBF_PARMS).unwrap().1;
        assert_eq!(u32_at(parms, 24), 10_000 + 125_000 / 20);
    }

    #[test]
    fn shapers_on_a_veth_read_back() {
        crate::require_root!();
        crate::testkit::in_fresh_netns(|| {
            let mut nl = Rtnl::open().unwrap();
            nl.add_veth(&super::super::VethSpec {
                name: "shp0".into(),
                alias: None,
                mtu: None,
                master: None,
                up: true,
                ipv6: true,
                peer_name: "shp1".into(),
                peer_netns: None,
                peer_mac: None,
            })
            .unwrap();
            let index = nl.link_index("shp0").unwrap().unwrap();
            assert_eq!(nl.shaper(index).unwrap(), None);
            let tbf = Shaper::Tbf {
                rate_bytes: 125_000,
                burst_bytes: 0,
            };
            nl.set_shaper(index, &tbf).unwrap();
            assert_eq!(nl.shaper(index).unwrap(), Some(tbf));
            let netem = Shaper::Netem(Netem {
                latency_ns: 20_000_000,
                jitter_ns: 0,
                loss: 0,
                rate_bytes: 125_000,
            });
            match nl.set_shaper(index, &netem) {
                // Kernels built without CONFIG_NET_SCH_NETEM (like some CI VMs) say so.
                Err(e) if e.errno() == Some(libc::ENOENT) => {
                    eprintln!("netem part skipped: this kernel has no netem qdisc ({e})");
                    assert_eq!(
                        nl.shaper(index).unwrap(),
                        Some(tbf),
                        "old shaper not restored"
                    );
                }
                res => {
                    res.unwrap();
                    assert_eq!(nl.shaper(index).unwrap(), Some(netem));
                }
            }
            assert!(nl.del_root_qdisc(index).unwrap());
            assert_eq!(nl.shaper(index).unwrap(), None);
            assert!(!nl.del_root_qdisc(index).unwrap());
        });
    }
}
