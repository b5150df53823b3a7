//! The `bandwidth` capability, with the reference bandwidth plugin's rules: a rate (bits per
//! second) and its burst (bits) come together or not at all, and a burst fits the kernel's
//! 32-bit byte count. kubelet derives it from the `kubernetes.io/ingress-bandwidth` and
//! `egress-bandwidth` pod annotations; containerd gives every rate a burst of 2^32-1 bits.

use nsnet_core::shaping::Shaping;

use super::config::BandwidthConf;
use super::error::{CniError, code};

/// Limits on the traffic to (`ingress`) and from (`egress`) the container; empty: none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bandwidth {
    pub ingress: Shaping,
    pub egress: Shaping,
}

impl Bandwidth {
    /// Whether neither direction is limited.
    pub fn is_empty(&self) -> bool {
        self.ingress.is_empty() && self.egress.is_empty()
    }
}

fn direction(what: &str, rate: Option<u64>, burst: Option<u64>) -> Result<Shaping, CniError> {
    let bad = |msg: String| {
        CniError::new(
            code::INVALID_CONFIG,
            format!("runtimeConfig bandwidth: {what}{msg}"),
        )
    };
    match (rate.unwrap_or(0), burst.unwrap_or(0)) {
        (0, 0) => Ok(Shaping::default()),
        (_, 0) => Err(bad(
            "Rate is set without its burst: give both (rate in bits per second, burst in bits)"
                .into(),
        )),
        (0, _) => Err(bad(
            "Burst is set without its rate: give both (rate in bits per second, burst in bits)"
                .into(),
        )),
        (r, _) if r < 8 => Err(bad(format!(
            "Rate {r} is below one byte per second (allowed: at least 8 bits per second)"
        ))),
        (_, b) if b / 8 >= u64::from(u32::MAX) || b < 8 => Err(bad(format!(
            "Burst {b} does not fit (allowed: 8 bits to 32 Gbit, the kernel counts it in 32-bit bytes)"
        ))),
        (r, b) => Ok(Shaping {
            rate_bps: Some(r),
            burst_bits: Some(b),
            ..Shaping::default()
        }),
    }
}

/// The limits a `bandwidth` capability asks for.
pub fn bandwidth(b: &BandwidthConf) -> Result<Bandwidth, CniError> {
    Ok(Bandwidth {
        ingress: direction("ingress", b.ingress_rate, b.ingress_burst)?,
        egress: direction("egress", b.egress_rate, b.egress_burst)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(ir: u64, ib: u64, er: u64, eb: u64) -> BandwidthConf {
        let nz = |v: u64| (v > 0).then_some(v);
        BandwidthConf {
            ingress_rate: nz(ir),
            ingress_burst: nz(ib),
            egress_rate: nz(er),
            egress_burst: nz(eb),
        }
    }

    #[test]
    fn rates_and_bursts_as_the_reference_plugin() {
        let b = bandwidth(&conf(1_000_000, u64::from(u32::MAX), 0, 0)).unwrap();
        assert_eq!(b.ingress.rate_bps, Some(1_000_000));
        assert_eq!(b.ingress.burst_bits, Some(u64::from(u32::MAX)));
        assert!(b.egress.is_empty() && !b.is_empty());
        assert!(bandwidth(&conf(0, 0, 0, 0)).unwrap().is_empty());
        for (c, needle) in [
            (
                conf(1_000_000, 0, 0, 0),
                "ingressRate is set without its burst",
            ),
            (conf(0, 0, 0, 800), "egressBurst is set without its rate"),
            (conf(4, 800, 0, 0), "ingressRate 4 is below"),
            (conf(0, 0, 8_000, u64::from(u32::MAX) * 8), "egressBurst"),
        ] {
            let e = bandwidth(&c).unwrap_err();
            assert_eq!(e.code, code::INVALID_CONFIG);
            assert!(e.msg.contains(needle), "{}", e.msg);
        }
    }
}
