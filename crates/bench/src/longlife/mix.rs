//! The long-life mix as data: a model of what exists (containers connected with their ports,
//! short-lived networks, CNI attachments) and a seeded choice of the next operation that keeps
//! the model near half full, so the first operations and the last ones meet the same amount of
//! live state and differ only in the history behind them. Pure: tested without root.

use std::collections::BTreeSet;

/// Kinds of operations, in the order the report lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Connect,
    Disconnect,
    PortAdd,
    PortRm,
    NetCreate,
    NetRm,
    CniAdd,
    CniDel,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 8] = [
        Kind::Connect,
        Kind::Disconnect,
        Kind::PortAdd,
        Kind::PortRm,
        Kind::NetCreate,
        Kind::NetRm,
        Kind::CniAdd,
        Kind::CniDel,
    ];

    /// The command as the report names it.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Connect => "network connect --publish",
            Kind::Disconnect => "network disconnect",
            Kind::PortAdd => "port add",
            Kind::PortRm => "port rm",
            Kind::NetCreate => "network create",
            Kind::NetRm => "network rm",
            Kind::CniAdd => "CNI ADD (portMappings)",
            Kind::CniDel => "CNI DEL",
        }
    }
}

/// One operation with its operands: indexes into the mix's pools and host ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// CLI namespace `ns` joins long-lived network `net`, publishing `port`.
    Connect {
        ns: usize,
        net: usize,
        port: u16,
    },
    Disconnect {
        ns: usize,
        net: usize,
    },
    /// One more published port of a connected CLI namespace.
    PortAdd {
        ns: usize,
        port: u16,
    },
    PortRm {
        ns: usize,
        port: u16,
    },
    /// Short-lived network `slot` (no endpoints) comes or goes.
    NetCreate {
        slot: usize,
    },
    NetRm {
        slot: usize,
    },
    /// CNI container `c` attached (publishing `port`) or detached.
    CniAdd {
        c: usize,
        port: u16,
    },
    CniDel {
        c: usize,
        port: u16,
    },
}

impl Op {
    /// The operation's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Op::Connect { .. } => Kind::Connect,
            Op::Disconnect { .. } => Kind::Disconnect,
            Op::PortAdd { .. } => Kind::PortAdd,
            Op::PortRm { .. } => Kind::PortRm,
            Op::NetCreate { .. } => Kind::NetCreate,
            Op::NetRm { .. } => Kind::NetRm,
            Op::CniAdd { .. } => Kind::CniAdd,
            Op::CniDel { .. } => Kind::CniDel,
        }
    }
}

/// How big each pool is.
#[derive(Debug, Clone, Copy)]
pub struct Pools {
    /// Namespaces the CLI connects.
    pub cli: usize,
    /// Long-lived networks they connect to.
    pub nets: usize,
    /// Extra published ports per connected namespace, at most.
    pub extra_ports: usize,
    /// Short-lived networks alive at once, at most.
    pub churn: usize,
    /// CNI containers.
    pub cni: usize,
}

impl Default for Pools {
    fn default() -> Pools {
        Pools {
            cli: 48,
            nets: 2,
            extra_ports: 4,
            churn: 6,
            cni: 24,
        }
    }
}

/// Host ports handed out, cycling through this range (a port is reused only after release).
const PORTS: std::ops::RangeInclusive<u16> = 30_000..=39_999;

#[derive(Debug, Clone)]
struct Connected {
    net: usize,
    port: u16,
    extra: Vec<u16>,
}

/// The model and the dice.
#[derive(Debug, Clone)]
pub struct Mix {
    pools: Pools,
    state: u64,
    cli: Vec<Option<Connected>>,
    churn: Vec<bool>,
    cni: Vec<Option<u16>>,
    ports_used: BTreeSet<u16>,
    next_port: u16,
}

impl Mix {
    /// An empty model (the long-lived networks exist; nothing is connected).
    pub fn new(pools: Pools, seed: u64) -> Mix {
        Mix {
            pools,
            state: seed,
            cli: vec![None; pools.cli],
            churn: vec![false; pools.churn],
            cni: vec![None; pools.cni],
            ports_used: BTreeSet::new(),
            next_port: *PORTS.start(),
        }
    }

    fn roll(&mut self, n: usize) -> usize {
        // 64-bit LCG (Knuth's MMIX constants); the high bits are the well-mixed ones.
        self.state = self
            .state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.state >> 33) % n as u64) as usize
    }

    /// Whether to grow a pool that is `live` of `cap` full: more likely the emptier it is.
    fn grow(&mut self, live: usize, cap: usize) -> bool {
        self.roll(cap.max(1)) >= live
    }

    fn pick(&mut self, candidates: &[usize]) -> Option<usize> {
        (!candidates.is_empty()).then(|| candidates[self.roll(candidates.len())])
    }

    fn take_port(&mut self) -> u16 {
        while self.ports_used.contains(&self.next_port) {
            self.advance_port();
        }
        let p = self.next_port;
        self.ports_used.insert(p);
        self.advance_port();
        p
    }

    fn advance_port(&mut self) {
        self.next_port = if self.next_port == *PORTS.end() {
            *PORTS.start()
        } else {
            self.next_port + 1
        };
    }

    fn indexes<T>(v: &[T], f: impl Fn(&T) -> bool) -> Vec<usize> {
        v.iter()
            .enumerate()
            .filter(|(_, x)| f(x))
            .map(|(i, _)| i)
            .collect()
    }

    /// The next operation, already applied to the model.
    pub fn next_op(&mut self) -> Op {
        loop {
            // Containers weigh more: their namespaces also withdraw extra ports (below).
            let op = match self.roll(9) {
                0..=2 => self.container_op(),
                3 | 4 => self.port_op(),
                5 | 6 => self.network_op(),
                _ => self.cni_op(),
            };
            if let Some(op) = op {
                return op;
            }
        }
    }

    fn container_op(&mut self) -> Option<Op> {
        let free = Self::indexes(&self.cli, Option::is_none);
        let connected = Self::indexes(&self.cli, Option::is_some);
        if self.grow(connected.len(), self.pools.cli) && !free.is_empty() {
            let ns = self.pick(&free)?;
            let net = self.roll(self.pools.nets);
            let port = self.take_port();
            self.cli[ns] = Some(Connected {
                net,
                port,
                extra: Vec::new(),
            });
            return Some(Op::Connect { ns, net, port });
        }
        let ns = self.pick(&connected)?;
        // A namespace leaves once its extra ports are withdrawn, one `port rm` at a time, so
        // `port rm` is as frequent as `port add`.
        if let Some(port) = self.cli[ns].as_mut()?.extra.pop() {
            self.ports_used.remove(&port);
            return Some(Op::PortRm { ns, port });
        }
        let gone = self.cli[ns].take()?;
        self.ports_used.remove(&gone.port);
        Some(Op::Disconnect { ns, net: gone.net })
    }

    fn port_op(&mut self) -> Option<Op> {
        let max = self.pools.extra_ports;
        let room = Self::indexes(&self.cli, |c| {
            c.as_ref().is_some_and(|c| c.extra.len() < max)
        });
        let with = Self::indexes(&self.cli, |c| {
            c.as_ref().is_some_and(|c| !c.extra.is_empty())
        });
        let live: usize = self.cli.iter().flatten().map(|c| c.extra.len()).sum();
        let cap = self.cli.iter().flatten().count() * max;
        if self.grow(live, cap) && !room.is_empty() {
            let ns = self.pick(&room)?;
            let port = self.take_port();
            self.cli[ns].as_mut()?.extra.push(port);
            return Some(Op::PortAdd { ns, port });
        }
        let ns = self.pick(&with)?;
        let c = self.cli[ns].as_mut()?;
        let i = (self.state >> 40) as usize % c.extra.len();
        let port = c.extra.remove(i);
        self.ports_used.remove(&port);
        Some(Op::PortRm { ns, port })
    }

    fn network_op(&mut self) -> Option<Op> {
        let absent = Self::indexes(&self.churn, |a| !a);
        let alive = Self::indexes(&self.churn, |a| *a);
        if self.grow(alive.len(), self.pools.churn) && !absent.is_empty() {
            let slot = self.pick(&absent)?;
            self.churn[slot] = true;
            return Some(Op::NetCreate { slot });
        }
        let slot = self.pick(&alive)?;
        self.churn[slot] = false;
        Some(Op::NetRm { slot })
    }

    fn cni_op(&mut self) -> Option<Op> {
        let free = Self::indexes(&self.cni, Option::is_none);
        let added = Self::indexes(&self.cni, Option::is_some);
        if self.grow(added.len(), self.pools.cni) && !free.is_empty() {
            let c = self.pick(&free)?;
            let port = self.take_port();
            self.cni[c] = Some(port);
            return Some(Op::CniAdd { c, port });
        }
        let c = self.pick(&added)?;
        let port = self.cni[c].take()?;
        self.ports_used.remove(&port);
        Some(Op::CniDel { c, port })
    }

    /// Whether the pools the mix grows and shrinks are at least half full (the steady state
    /// it keeps them near).
    pub fn half_full(&self) -> bool {
        let connected = self.cli.iter().flatten().count();
        let attached = self.cni.iter().flatten().count();
        let alive = self.churn.iter().filter(|a| **a).count();
        2 * connected >= self.pools.cli
            && 2 * attached >= self.pools.cni
            && 2 * alive >= self.pools.churn
    }

    /// What is still connected, published or attached (for the untimed cleanup).
    pub fn leftovers(&self) -> Vec<Op> {
        let mut out = Vec::new();
        for (ns, c) in self.cli.iter().enumerate() {
            if let Some(c) = c {
                out.push(Op::Disconnect { ns, net: c.net });
            }
        }
        for (c, port) in self.cni.iter().enumerate() {
            if let Some(port) = port {
                out.push(Op::CniDel { c, port: *port });
            }
        }
        for (slot, alive) in self.churn.iter().enumerate() {
            if *alive {
                out.push(Op::NetRm { slot });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashSet};

    /// 10,000 operations: every one valid against the model's own replay, each kind frequent
    /// enough for a first and a last 500, live state bounded, host ports never shared.
    #[test]
    fn ten_thousand_valid_operations_of_every_kind() {
        let pools = Pools::default();
        let mut mix = Mix::new(pools, 42);
        let mut counts: BTreeMap<Kind, usize> = BTreeMap::new();
        let mut connected: HashSet<usize> = HashSet::new();
        let mut ports: HashSet<u16> = HashSet::new();
        let mut owner: BTreeMap<u16, usize> = BTreeMap::new();
        let mut nets: HashSet<usize> = HashSet::new();
        let mut cni: HashSet<usize> = HashSet::new();
        for _ in 0..10_000 {
            let op = mix.next_op();
            *counts.entry(op.kind()).or_default() += 1;
            match op {
                Op::Connect { ns, net, port } => {
                    assert!(net < pools.nets);
                    assert!(connected.insert(ns));
                    assert!(ports.insert(port));
                    owner.insert(port, ns);
                }
                Op::Disconnect { ns, .. } => {
                    assert!(connected.remove(&ns));
                    // Only the port published at connect is left.
                    let own: Vec<u16> = owner
                        .iter()
                        .filter(|(_, o)| **o == ns)
                        .map(|(p, _)| *p)
                        .collect();
                    assert_eq!(own.len(), 1, "{ns} still publishes {own:?}");
                    owner.remove(&own[0]);
                    ports.remove(&own[0]);
                }
                Op::PortAdd { ns, port } => {
                    assert!(connected.contains(&ns));
                    assert!(ports.insert(port));
                    owner.insert(port, ns);
                }
                Op::PortRm { ns, port } => {
                    assert_eq!(owner.remove(&port), Some(ns));
                    assert!(ports.remove(&port));
                }
                Op::NetCreate { slot } => assert!(nets.insert(slot)),
                Op::NetRm { slot } => assert!(nets.remove(&slot)),
                Op::CniAdd { c, port } => {
                    assert!(cni.insert(c));
                    assert!(ports.insert(port));
                    owner.insert(port, usize::MAX - c);
                }
                Op::CniDel { c, port } => {
                    assert!(cni.remove(&c));
                    assert_eq!(owner.remove(&port), Some(usize::MAX - c));
                    assert!(ports.remove(&port));
                }
            }
            assert!(ports.len() <= pools.cli * (1 + pools.extra_ports) + pools.cni);
        }
        for k in Kind::ALL {
            let n = counts.get(&k).copied().unwrap_or(0);
            assert!(n >= 1000, "{}: only {n} of 10,000 ({counts:?})", k.label());
        }
        assert_eq!(
            mix.leftovers().len(),
            connected.len() + cni.len() + nets.len()
        );
        assert!(mix.half_full());
    }

    #[test]
    fn the_same_seed_gives_the_same_mix() {
        let a: Vec<Op> = {
            let mut m = Mix::new(Pools::default(), 7);
            (0..200).map(|_| m.next_op()).collect()
        };
        let mut m = Mix::new(Pools::default(), 7);
        let b: Vec<Op> = (0..200).map(|_| m.next_op()).collect();
        assert_eq!(a, b);
    }
}
