//! Long life: thousands of mixed operations through nsnet's CLI and its CNI face, one process
//! each, on one state directory, as a host lives with it for weeks: containers connected with
//! published ports and disconnected, ports published and withdrawn, networks created and
//! removed, CNI ADD and DEL. Each kind's median over its first and its last operations shows
//! whether the cost of a command depends on the history behind it (the goal: last within 1.1x
//! of first), and the state directory's size whether the store stays bounded.

pub mod mix;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::run;
use crate::scale::{remove_namespaces, timed};
use crate::stats::{fmt_ms, fmt_ratio, median, ratio};
use crate::subject::cni::{Chain, nsnet_chain, nsnet_versions};
use crate::subject::{CONTAINER_PORT, Container, Net};
use crate::table::Table;
use mix::{Kind, Mix, Op, Pools};

/// Operations compared at each end of a kind's series.
pub const WINDOW: usize = 500;
/// The goal for last / first.
pub const GOAL: f64 = 1.1;
/// The mix's seed (fixed, so runs before and after a change do the same operations).
const SEED: u64 = 0x5eed_1f3e;
/// The control (`nsnet --version`: a process that never opens the store) runs every this
/// many operations: its first and last medians show how the machine's load moved meanwhile.
const CONTROL_EVERY: usize = 10;

/// Everything one long-life run measured; times in milliseconds.
#[derive(Debug, Clone, Default)]
pub struct LongLifeResult {
    pub ops: usize,
    /// Untimed operations that first brought the pools to about half full.
    pub warmup: usize,
    /// Wall time of each operation, by kind, in order.
    pub samples: BTreeMap<Kind, Vec<f64>>,
    /// CPU time (user + system) of each operation's processes, by kind, in order: less
    /// sensitive than wall time to other work on a shared machine.
    pub cpu: BTreeMap<Kind, Vec<f64>>,
    pub control: Vec<f64>,
    /// State directory size (bytes) after setup, then after every 1000 operations.
    pub sizes: Vec<(usize, u64)>,
    /// The WAL's size at the end (bytes).
    pub wal_end: u64,
    pub seconds: f64,
}

/// First/last medians of one kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub kind: Kind,
    pub count: usize,
    pub window: usize,
    pub first: Option<f64>,
    pub last: Option<f64>,
}

impl Summary {
    /// last / first.
    pub fn ratio(&self) -> Option<f64> {
        ratio(self.last, self.first)
    }
}

/// Medians of the first and last `WINDOW` samples (half the series when it is shorter).
pub fn summarise(kind: Kind, series: &[f64]) -> Summary {
    let window = WINDOW.min(series.len() / 2);
    Summary {
        kind,
        count: series.len(),
        window,
        first: median(&series[..window]),
        last: median(&series[series.len() - window..]),
    }
}

/// CPU time (user + system, ms) of this process's children that have been waited for.
fn children_cpu_ms() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given and reads nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    if rc != 0 {
        return 0.0;
    }
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

fn nsnet_cmd(nsnet: &Path, state: &Path) -> Command {
    let mut c = Command::new(nsnet);
    c.env("NSNET_STATE_DIR", state)
        .env_remove("NSNET_LOG")
        .env_remove("CNI_COMMAND");
    c
}

/// Total size of the files under `dir` (bytes).
pub fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// What runs the operations: the CLI, and nsnet as a CNI plugin, on one state directory.
struct Host {
    nsnet: PathBuf,
    state: PathBuf,
    cni: Chain,
}

const CLI_PREFIX: &str = "lln";
const CNI_PREFIX: &str = "llc";

fn long_lived_net(i: usize) -> String {
    format!("ll{i}")
}

fn churn_net(slot: usize) -> String {
    format!("lc{slot}")
}

impl Host {
    fn cli(&self, args: &[&str]) -> Result<()> {
        run::output(nsnet_cmd(&self.nsnet, &self.state).args(args), None)?;
        Ok(())
    }

    fn cni_container(c: usize, port: u16) -> Container {
        Container::new(CNI_PREFIX, c as u32, port)
    }

    fn apply(&self, op: &Op) -> Result<()> {
        match *op {
            Op::Connect { ns, net, port } => self.cli(&[
                "network",
                "connect",
                &long_lived_net(net),
                &format!("{CLI_PREFIX}{ns}"),
                "--publish",
                &format!("{port}:{CONTAINER_PORT}"),
            ]),
            Op::Disconnect { ns, net } => self.cli(&[
                "network",
                "disconnect",
                &long_lived_net(net),
                &format!("{CLI_PREFIX}{ns}"),
            ]),
            Op::PortAdd { ns, port } => self.cli(&[
                "port",
                "add",
                &format!("{CLI_PREFIX}{ns}"),
                &format!("{port}:{CONTAINER_PORT}"),
            ]),
            Op::PortRm { ns, port } => self.cli(&[
                "port",
                "rm",
                &format!("{CLI_PREFIX}{ns}"),
                &format!("{port}:{CONTAINER_PORT}"),
            ]),
            Op::NetCreate { slot } => self.cli(&[
                "network",
                "create",
                &churn_net(slot),
                "--subnet",
                &format!("10.130.{slot}.0/24"),
            ]),
            Op::NetRm { slot } => self.cli(&["network", "rm", &churn_net(slot)]),
            Op::CniAdd { c, port } => self.cni.add(&Self::cni_container(c, port)).map(drop),
            Op::CniDel { c, port } => self.cni.del(&Self::cni_container(c, port)),
        }
    }

    fn control(&self) -> Result<f64> {
        let (ms, r) = timed(|| {
            run::output(nsnet_cmd(&self.nsnet, &self.state).arg("--version"), None).map(drop)
        });
        r.map(|()| ms)
    }
}

/// Runs `ops` operations of the mix in the current (fresh) network namespace, with nsnet's
/// state in `dir/state`.
pub fn run(nsnet: &Path, dir: &Path, ops: usize) -> Result<LongLifeResult> {
    let versions = nsnet_versions(nsnet).map_err(anyhow::Error::msg)?;
    let state = dir.join("state");
    std::fs::create_dir_all(&state)?;
    let cni_net = Net {
        base: std::net::Ipv4Addr::new(10, 122, 0, 0),
    };
    let host = Host {
        nsnet: nsnet.to_path_buf(),
        state: state.clone(),
        cni: nsnet_chain(nsnet, &versions, cni_net, &state),
    };
    let pools = Pools::default();
    let mut namespaces = Vec::new();
    let names = (0..pools.cli)
        .map(|i| format!("{CLI_PREFIX}{i}"))
        .chain((0..pools.cni).map(|i| format!("{CNI_PREFIX}{i}")));
    for n in names {
        nsnet_sys::netns::create(&n).with_context(|| format!("create netns {n}"))?;
        namespaces.push(n);
    }
    let result = measure(&host, pools, ops);
    remove_namespaces(&namespaces);
    result
}

fn measure(host: &Host, pools: Pools, ops: usize) -> Result<LongLifeResult> {
    for i in 0..pools.nets {
        host.cli(&[
            "network",
            "create",
            &long_lived_net(i),
            "--subnet",
            &format!("10.{}.0.0/16", 120 + i),
        ])?;
    }
    let mut res = LongLifeResult {
        ops,
        ..Default::default()
    };
    let mut mix = Mix::new(pools, SEED);
    while !mix.half_full() {
        let op = mix.next_op();
        host.apply(&op)
            .with_context(|| format!("warm-up operation {op:?}"))?;
        res.warmup += 1;
    }
    res.sizes = vec![(0, dir_size(&host.state))];
    let start = Instant::now();
    for i in 1..=ops {
        let op = mix.next_op();
        // Operations run one at a time from this thread, so the children's CPU time grows by
        // exactly this operation's processes.
        let cpu_before = children_cpu_ms();
        let (ms, r) = timed(|| host.apply(&op));
        r.with_context(|| format!("operation {i} of the long-life mix: {op:?}"))?;
        res.samples.entry(op.kind()).or_default().push(ms);
        res.cpu
            .entry(op.kind())
            .or_default()
            .push(children_cpu_ms() - cpu_before);
        if i % CONTROL_EVERY == 0 {
            res.control.push(host.control()?);
        }
        if i % 1000 == 0 {
            res.sizes.push((i, dir_size(&host.state)));
            eprintln!(
                "  long life: {i} operations ({:.0} s), state directory {} KiB",
                start.elapsed().as_secs_f64(),
                dir_size(&host.state) >> 10
            );
        }
    }
    res.seconds = start.elapsed().as_secs_f64();
    res.wal_end = std::fs::metadata(host.state.join("state.db-wal")).map_or(0, |m| m.len());
    for op in mix.leftovers() {
        host.apply(&op)?;
    }
    for i in 0..pools.nets {
        host.cli(&["network", "rm", &long_lived_net(i)])?;
    }
    Ok(res)
}

fn kib(bytes: u64) -> String {
    format!("{} KiB", bytes.div_ceil(1024))
}

fn holds_cell(holds: Option<bool>) -> String {
    match holds {
        Some(true) => "yes".into(),
        Some(false) => "NO".into(),
        None => "-".into(),
    }
}

/// The Markdown section for the report.
pub fn render(r: &LongLifeResult) -> String {
    let mut t = Table::new(&[
        "operation",
        "count",
        "first (ms)",
        "last (ms)",
        "last / first",
        &format!("<= {GOAL}x"),
        "CPU first (ms)",
        "CPU last (ms)",
        "CPU last / first",
    ]);
    let mut misses = Vec::new();
    let series = |m: &BTreeMap<Kind, Vec<f64>>, k: Kind| m.get(&k).cloned().unwrap_or_default();
    let mut window = usize::MAX;
    for k in Kind::ALL {
        let wall = summarise(k, &series(&r.samples, k));
        let cpu = summarise(k, &series(&r.cpu, k));
        window = window.min(wall.window);
        let holds = wall.ratio().map(|x| x <= GOAL);
        if holds == Some(false) {
            misses.push(k.label());
        }
        t.row(vec![
            k.label().to_string(),
            wall.count.to_string(),
            fmt_ms(wall.first),
            fmt_ms(wall.last),
            fmt_ratio(wall.ratio()),
            holds_cell(holds),
            fmt_ms(cpu.first),
            fmt_ms(cpu.last),
            fmt_ratio(cpu.ratio()),
        ]);
    }
    let control = summarise(Kind::Connect, &r.control);
    t.row(vec![
        "control: `nsnet --version` (no store)".into(),
        control.count.to_string(),
        fmt_ms(control.first),
        fmt_ms(control.last),
        fmt_ratio(control.ratio()),
    ]);
    let (start, end) = (
        r.sizes.first().map_or(0, |s| s.1),
        r.sizes.last().map_or(0, |s| s.1),
    );
    let largest = r.sizes.iter().map(|s| s.1).max().unwrap_or(0);
    format!(
        "### Long life: {} mixed operations (nsnet CLI and CNI, one state directory)\n\n\
         After {} untimed operations that bring the pools to about half full, medians of each \
         kind's first and last {} operations (one process each; wall time, and CPU time of \
         its processes).\n\n{}\n\
         State directory: {} at the start, {} at the end, at most {} (sampled every 1000 \
         operations); WAL at the end: {}. {:.0} s in all.\n\n\
         Goal (last within {GOAL}x of first for every kind, wall time): {}\n",
        r.ops,
        r.warmup,
        if window == usize::MAX { 0 } else { window },
        t.render(),
        kib(start),
        kib(end),
        kib(largest),
        kib(r.wal_end),
        r.seconds,
        if misses.is_empty() {
            "holds".to_string()
        } else {
            format!("misses for {}", misses.join(", "))
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_and_last_windows() {
        let series: Vec<f64> = (0..1500)
            .map(|i| if i < 1000 { 2.0 } else { 3.0 })
            .collect();
        let s = summarise(Kind::PortAdd, &series);
        assert_eq!((s.count, s.window), (1500, 500));
        assert_eq!((s.first, s.last), (Some(2.0), Some(3.0)));
        assert_eq!(s.ratio(), Some(1.5));
        // A short series compares its halves.
        let s = summarise(Kind::PortRm, &[1.0, 1.0, 1.0, 4.0, 4.0, 4.0, 9.0]);
        assert_eq!(s.window, 3);
        assert_eq!((s.first, s.last), (Some(1.0), Some(4.0)));
        let empty = summarise(Kind::NetRm, &[]);
        assert_eq!((empty.first, empty.ratio()), (None, None));
    }

    #[test]
    fn renders_every_kind_the_goal_and_the_sizes() {
        let mut r = LongLifeResult {
            ops: 10_000,
            control: vec![1.0; 1000],
            sizes: vec![(0, 100 << 10), (5000, 300 << 10), (10_000, 200 << 10)],
            wal_end: 80 << 10,
            seconds: 180.0,
            ..Default::default()
        };
        for k in Kind::ALL {
            r.samples.insert(k, vec![5.0; 1200]);
            r.cpu.insert(k, vec![2.0; 1200]);
        }
        r.samples.insert(
            Kind::PortAdd,
            (0..1200).map(|i| if i < 600 { 4.0 } else { 8.0 }).collect(),
        );
        let s = render(&r);
        assert!(s.contains("10000 mixed operations"), "{s}");
        assert!(s.contains("| network disconnect"), "{s}");
        assert!(s.contains(" 2.00x |"), "{s}");
        assert!(s.contains("misses for port add"), "{s}");
        assert!(
            s.contains("100 KiB at the start, 200 KiB at the end, at most 300 KiB"),
            "{s}"
        );
        assert!(s.contains("WAL at the end: 80 KiB"), "{s}");
    }
}
