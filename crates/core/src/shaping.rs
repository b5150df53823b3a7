//! Link shaping: delay, jitter, loss and rate on an interface's egress (a netem qdisc, or tbf
//! for a rate alone).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// What a shaped interface does to the traffic leaving it. All fields unset means unshaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Shaping {
    /// Added one-way delay, in microseconds.
    pub delay_us: Option<u64>,
    /// Random variation of the delay, in microseconds.
    pub jitter_us: Option<u64>,
    /// Share of packets dropped, in parts per million (1% = 10000).
    pub loss_ppm: Option<u32>,
    /// Rate limit, in bits per second.
    pub rate_bps: Option<u64>,
    /// What may pass at once above the rate, in bits (the token bucket's size); unset: 10 ms
    /// at the rate. Only with a rate alone (the CNI bandwidth capability gives it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst_bits: Option<u64>,
}

impl Shaping {
    /// Whether nothing is shaped.
    pub fn is_empty(&self) -> bool {
        *self == Shaping::default()
    }

    /// Whether the shaping read back from the kernel (`have`) is what was set: delay, jitter
    /// and loss equal, the rate equal to the byte per second (the kernel keeps bytes). The
    /// burst is not compared: the kernel keeps it as a time and reports it rounded (or, for
    /// containerd's 2^32-1 bits, wrapped).
    pub fn matches(&self, have: &Shaping) -> bool {
        self.delay_us == have.delay_us
            && self.jitter_us == have.jitter_us
            && self.loss_ppm == have.loss_ppm
            && self.rate_bps.map(|r| r / 8) == have.rate_bps.map(|r| r / 8)
    }

    /// Checks combinations the kernel would refuse or silently ignore.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.jitter_us.is_some() && self.delay_us.is_none() {
            return Err(CoreError::InvalidValue {
                what: "jitter",
                value: fmt_us(self.jitter_us.unwrap_or(0)),
                reason: "jitter needs a delay (e.g. --delay 50ms --jitter 5ms)".into(),
            });
        }
        if let Some(b) = self.burst_bits {
            let alone = self.rate_bps.is_some()
                && self.delay_us.is_none()
                && self.jitter_us.is_none()
                && self.loss_ppm.is_none();
            if !alone {
                return Err(invalid(
                    "burst",
                    &fmt_bits(b),
                    "a burst goes with a rate alone (no delay, jitter or loss)",
                ));
            }
            // The kernel's tbf takes the bucket in bytes as a u32.
            if b / 8 >= u64::from(u32::MAX) || b < 8 {
                return Err(invalid(
                    "burst",
                    &fmt_bits(b),
                    "allowed: 8 bits to 32 Gbit (4 GiB)",
                ));
            }
        }
        Ok(())
    }
}

fn fmt_bits(bits: u64) -> String {
    format!("{bits}bit")
}

fn invalid(what: &'static str, s: &str, reason: &str) -> CoreError {
    CoreError::InvalidValue {
        what,
        value: s.to_string(),
        reason: reason.to_string(),
    }
}

/// Parses a duration such as `50ms`, `1.5s`, `200us` into microseconds.
pub fn parse_duration(what: &'static str, s: &str) -> Result<u64, CoreError> {
    let bad = || {
        invalid(
            what,
            s,
            "expected a duration such as 50ms, 1.5s or 200us (at most 60s)",
        )
    };
    let split = s.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1_000.0,
        "s" => 1_000_000.0,
        _ => return Err(bad()),
    };
    let us = n * scale;
    if !(0.0..=60_000_000.0).contains(&us) || !us.is_finite() {
        return Err(bad());
    }
    Ok(us.round() as u64)
}

/// Parses a loss such as `1%` or `0.5%` into parts per million.
pub fn parse_loss(s: &str) -> Result<u32, CoreError> {
    let bad = || {
        invalid(
            "loss",
            s,
            "expected a percentage between 0% and 100%, e.g. 1% or 0.5%",
        )
    };
    let n: f64 = s
        .strip_suffix('%')
        .ok_or_else(bad)?
        .parse()
        .map_err(|_| bad())?;
    if !(0.0..=100.0).contains(&n) {
        return Err(bad());
    }
    Ok((n * 10_000.0).round() as u32)
}

/// Parses a rate such as `10mbit`, `1gbit`, `500kbit` or `64000bit` into bits per second.
pub fn parse_rate(s: &str) -> Result<u64, CoreError> {
    let bad = || {
        invalid(
            "rate",
            s,
            "expected a rate such as 500kbit, 10mbit or 1gbit (at least 8bit)",
        )
    };
    let split = s.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let scale = match unit {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        _ => return Err(bad()),
    };
    let bps = n * scale;
    if !(8.0..=1e13).contains(&bps) {
        return Err(bad());
    }
    Ok(bps.round() as u64)
}

fn fmt_us(us: u64) -> String {
    if us.is_multiple_of(1_000_000) && us > 0 {
        format!("{}s", us / 1_000_000)
    } else if us.is_multiple_of(1_000) && us > 0 {
        format!("{}ms", us / 1_000)
    } else {
        format!("{us}us")
    }
}

fn fmt_rate(bps: u64) -> String {
    if bps.is_multiple_of(1_000_000_000) {
        format!("{}gbit", bps / 1_000_000_000)
    } else if bps.is_multiple_of(1_000_000) {
        format!("{}mbit", bps / 1_000_000)
    } else if bps.is_multiple_of(1_000) {
        format!("{}kbit", bps / 1_000)
    } else {
        format!("{bps}bit")
    }
}

impl fmt::Display for Shaping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(d) = self.delay_us {
            parts.push(format!("delay {}", fmt_us(d)));
        }
        if let Some(j) = self.jitter_us {
            parts.push(format!("jitter {}", fmt_us(j)));
        }
        if let Some(l) = self.loss_ppm {
            parts.push(format!("loss {}%", f64::from(l) / 10_000.0));
        }
        if let Some(r) = self.rate_bps {
            parts.push(format!("rate {}", fmt_rate(r)));
        }
        if let Some(b) = self.burst_bits {
            parts.push(format!("burst {}", fmt_bits(b)));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_back_limit_matches_to_the_byte_and_ignores_the_burst() {
        let set = Shaping {
            rate_bps: Some(20_000_001),
            burst_bits: Some(204_800),
            ..Shaping::default()
        };
        let have = Shaping {
            rate_bps: Some(20_000_000),
            burst_bits: Some(204_792),
            ..Shaping::default()
        };
        assert!(set.matches(&have));
        assert!(!set.matches(&Shaping::default()));
        let slower = Shaping {
            rate_bps: Some(10_000_000),
            ..have
        };
        assert!(!set.matches(&slower));
        let delayed = Shaping {
            delay_us: Some(1000),
            ..have
        };
        assert!(!set.matches(&delayed));
    }

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("delay", "50ms").unwrap(), 50_000);
        assert_eq!(parse_duration("delay", "1.5s").unwrap(), 1_500_000);
        assert_eq!(parse_duration("delay", "200us").unwrap(), 200);
        for bad in ["50", "ms", "5 ms", "-1ms", "61s", "1h"] {
            assert!(parse_duration("delay", bad).is_err(), "{bad}");
        }
        assert_eq!(parse_loss("0.5%").unwrap(), 5_000);
        assert!(parse_loss("1").is_err() && parse_loss("101%").is_err());
        assert_eq!(parse_rate("10mbit").unwrap(), 10_000_000);
        assert_eq!(parse_rate("1.5gbit").unwrap(), 1_500_000_000);
        assert!(parse_rate("10mbps").is_err() && parse_rate("1bit").is_err());
    }

    #[test]
    fn displays_like_tc() {
        let s = Shaping {
            delay_us: Some(50_000),
            jitter_us: Some(5_000),
            loss_ppm: Some(10_000),
            rate_bps: Some(10_000_000),
            burst_bits: None,
        };
        assert_eq!(s.to_string(), "delay 50ms jitter 5ms loss 1% rate 10mbit");
        let tbf = Shaping {
            rate_bps: Some(1_000_000),
            burst_bits: Some(80_000),
            ..Default::default()
        };
        tbf.validate().unwrap();
        assert_eq!(tbf.to_string(), "rate 1mbit burst 80000bit");
        for bad in [
            Shaping {
                burst_bits: Some(80_000),
                ..s
            },
            Shaping {
                burst_bits: Some(u64::from(u32::MAX) * 8),
                ..tbf
            },
        ] {
            assert!(
                bad.validate().unwrap_err().to_string().contains("burst"),
                "{bad}"
            );
        }
        assert_eq!(Shaping::default().to_string(), "none");
        let bad = Shaping {
            jitter_us: Some(1),
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("needs a delay")
        );
    }
}
