//! nsnet-bench: nsnet against the kernel floor (`ip -batch` + `nft -f`), netavark and the CNI
//! reference chain, in one run, inside a throwaway sandbox. Prints Markdown tables of medians and
//! ratios and the targets. Needs root; touches nothing outside the sandbox.

mod dataplane;
mod dns;
mod longlife;
mod parallel;
mod ports;
mod report;
mod run;
mod sandbox;
mod scale;
mod stats;
mod subject;
mod table;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use crate::report::Results;
use crate::sandbox::{Sandbox, in_fresh_netns};
use crate::scale::{ScaleConfig, ScaleResult};
use crate::subject::cni::{self, nsnet_versions};
use crate::subject::floor::Floor;
use crate::subject::netavark::{self, Netavark};
use crate::subject::nsnet_cli::NsnetCli;
use crate::subject::{Net, Subject};

/// Benchmarks nsnet against the kernel floor and its peers, in a throwaway sandbox (root).
#[derive(Debug, Parser)]
#[command(name = "nsnet-bench", version)]
struct Args {
    /// The nsnet binary (default: `nsnet` next to this program).
    #[arg(long)]
    nsnet: Option<PathBuf>,
    /// Container counts at which setup and teardown are probed.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
    checkpoints: Vec<usize>,
    /// Probe setup/teardown cycles at each count.
    #[arg(long, default_value_t = 15)]
    probes: usize,
    /// Seconds a subject may spend filling its network before it stops with a note.
    #[arg(long, default_value_t = 300)]
    budget: u64,
    /// Subjects to run (nsnet-cli, nsnet-cni, floor, netavark, cni-ref).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "nsnet-cli,nsnet-cni,floor,netavark,cni-ref"
    )]
    only: Vec<String>,
    /// Containers set up at once in the parallel run (0 skips it).
    #[arg(long, default_value_t = 64)]
    parallel: usize,
    /// Workers of the parallel run.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Data-plane trials per path (0 skips it).
    #[arg(long, default_value_t = 5)]
    trials: usize,
    /// Seconds per data-plane trial (each also stops at 4 GiB).
    #[arg(long, default_value_t = 2.0)]
    trial_seconds: f64,
    /// Published-port counts at which one more `port add` is timed (empty skips it).
    #[arg(long, value_delimiter = ',', default_value = "10,1000")]
    ports: Vec<usize>,
    /// `port add`/`port rm` pairs timed at each of those counts.
    #[arg(long, default_value_t = 31)]
    port_probes: usize,
    /// Operations of the long-life mix (0 skips it).
    #[arg(long, default_value_t = 10_000, global = true)]
    long_life: usize,
    /// Also write the report (Markdown) to this file.
    #[arg(long, global = true)]
    out: Option<PathBuf>,
    #[command(subcommand)]
    mode: Option<Mode>,
}

/// Parts of the benchmark that run alone.
#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// Only the long-life mix: --long-life operations through nsnet's CLI and CNI face.
    LongLife,
    /// Only container-name DNS: nsnet's responder against aardvark-dns and dnsmasq.
    Dns {
        /// Sequential queries per server.
        #[arg(long, default_value_t = 2000)]
        queries: usize,
        /// Starts per server (median).
        #[arg(long, default_value_t = 15)]
        starts: usize,
        /// Connect + disconnect cycles per case (median).
        #[arg(long, default_value_t = 21)]
        connects: usize,
    },
}

/// Where each subject's containers live: a /16 of its own.
fn net(third: u8) -> Net {
    Net {
        base: Ipv4Addr::new(10, third, 0, 0),
    }
}

/// Builds subject `kind` for one scenario, or says why it cannot run here.
fn make(kind: &str, nsnet: &Path, scenario: &str) -> Result<Box<dyn Subject>, String> {
    let dir = Sandbox::dir(&format!("{kind}-{scenario}")).map_err(|e| format!("{e:#}"))?;
    match kind {
        "nsnet-cli" => Ok(Box::new(NsnetCli {
            nsnet: nsnet.to_path_buf(),
            state_dir: dir.join("state"),
            net: net(90),
        })),
        "nsnet-cni" => {
            let versions = nsnet_versions(nsnet)?;
            Ok(Box::new(cni::nsnet_chain(
                nsnet,
                &versions,
                net(91),
                &dir.join("state"),
            )))
        }
        "floor" => Ok(Box::new(Floor { dir, net: net(92) })),
        "netavark" => {
            let binary = netavark::find().ok_or(
                "netavark is not installed (Debian: apt-get install netavark); skipped".to_string(),
            )?;
            Ok(Box::new(Netavark {
                binary,
                config_dir: dir.join("config"),
                net: net(93),
            }))
        }
        "cni-ref" => cni::reference_chain(net(94), &dir.join("ipam"))
            .map(|c| Box::new(c) as Box<dyn Subject>)
            .ok_or_else(|| {
                "the CNI reference plugins bridge, host-local and portmap are not installed \
                 (Debian: apt-get install containernetworking-plugins); skipped"
                    .to_string()
            }),
        other => Err(format!("unknown subject {other}")),
    }
}

fn label(kind: &str) -> &'static str {
    match kind {
        "nsnet-cli" => subject::NSNET_CLI,
        "nsnet-cni" => subject::NSNET_CNI,
        "floor" => subject::FLOOR,
        "netavark" => subject::NETAVARK,
        _ => subject::CNI_REF,
    }
}

fn nsnet_path(arg: Option<PathBuf>) -> Result<PathBuf> {
    let path = match arg {
        Some(p) => p,
        None => std::env::current_exe()
            .context("find this program")?
            .with_file_name("nsnet"),
    };
    run::find_executable(std::slice::from_ref(&path)).with_context(|| {
        format!(
            "no nsnet binary at {} (build it with `cargo build --release`, or pass --nsnet PATH)",
            path.display()
        )
    })
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or("unknown".into(), |kb| {
            format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0)
        });
    let uname = nix::sys::utsname::uname().ok();
    let kernel = uname.map_or("unknown".into(), |u| {
        format!(
            "{} {}",
            u.release().to_string_lossy(),
            u.machine().to_string_lossy()
        )
    });
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = loadavg();
    let version = |prog: &str, args: &[&str]| {
        run::ok(prog, args, None)
            .ok()
            .and_then(|s| s.lines().next().map(|l| l.trim().to_string()))
            .unwrap_or_else(|| "not installed".into())
    };
    let pkg = |name: &str| version("dpkg-query", &["-W", "-f", "${Version}", name]);
    format!(
        "- nproc: {nproc}; CPU: {cpu}; memory: {mem}\n- kernel: {kernel}\n\
         - iproute2: {}; nftables: {}\n- netavark: {}; containernetworking-plugins: {}\n\
         - load average at start: {load}\n",
        version("ip", &["-V"]),
        version("nft", &["-v"]),
        pkg("netavark"),
        pkg("containernetworking-plugins"),
    )
}

/// The 1, 5 and 15 minute load averages (other work on the machine skews every figure).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let args = Args::parse();
    if let Err(e) = real_main(args) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// The long-life section (empty when `ops` is 0).
fn long_life(nsnet: &Path, ops: usize) -> Result<String> {
    if ops == 0 {
        return Ok(String::new());
    }
    eprintln!("== nsnet CLI and CNI: long life, {ops} mixed operations");
    let dir = Sandbox::dir("longlife")?;
    let nsnet = nsnet.to_path_buf();
    let r = in_fresh_netns(move || longlife::run(&nsnet, &dir, ops))?;
    Ok(longlife::render(&r))
}

/// Writes the report to stdout and to `out`.
fn emit(text: &str, out: Option<&Path>) -> Result<()> {
    println!("{text}");
    if let Some(out) = out {
        std::fs::write(out, text).with_context(|| format!("write {}", out.display()))?;
    }
    Ok(())
}

fn real_main(args: Args) -> Result<()> {
    let nsnet = nsnet_path(args.nsnet.clone())?;
    // Before the sandbox hides /var/lib (where dpkg keeps its package list).
    let machine = machine();
    // While single-threaded: unshare the network and mount namespaces.
    let sandbox = Sandbox::enter()?;
    if let Some(Mode::Dns {
        queries,
        starts,
        connects,
    }) = args.mode
    {
        let section = dns::bench(&nsnet, queries, starts, connects)?;
        let text = format!(
            "## nsnet-bench dns\n\n{machine}- load average at end: {}\n\n{section}",
            loadavg()
        );
        drop(sandbox);
        return emit(&text, args.out.as_deref());
    }
    if let Some(Mode::LongLife) = args.mode {
        let section = long_life(&nsnet, args.long_life)?;
        let text = format!(
            "## nsnet-bench long-life\n\n{machine}- load average at end: {}\n\n{section}",
            loadavg()
        );
        drop(sandbox);
        return emit(&text, args.out.as_deref());
    }
    let mut results = Results {
        checkpoints: args.checkpoints.clone(),
        probes: args.probes,
        ..Default::default()
    };
    let cfg = |prefix: &str| ScaleConfig {
        checkpoints: args.checkpoints.clone(),
        probes: args.probes,
        budget: Duration::from_secs(args.budget),
        prefix: prefix.to_string(),
    };
    let mut runnable = Vec::new();
    for kind in &args.only {
        match make(kind, &nsnet, "probe") {
            Err(why) => {
                eprintln!("{}: {why}", label(kind));
                results
                    .scale
                    .push(ScaleResult::skipped(label(kind).into(), why));
            }
            Ok(s) => {
                runnable.push(kind.clone());
                eprintln!(
                    "== {}: setup/teardown at N = {:?}",
                    s.name(),
                    args.checkpoints
                );
                let cfg = cfg(&format!("b{}-", &kind[..2]));
                let mut s = s;
                let r = in_fresh_netns(move || Ok(scale::run(s.as_mut(), &cfg)))?;
                results.scale.push(r);
            }
        }
    }
    if args.parallel > 0 {
        for kind in &runnable {
            let Ok(mut s) = make(kind, &nsnet, "parallel") else {
                continue;
            };
            eprintln!(
                "== {}: {} parallel setups with {} workers",
                s.name(),
                args.parallel,
                args.workers
            );
            let (n, w) = (args.parallel, args.workers);
            let prefix = format!("p{}-", &kind[..2]);
            let r = in_fresh_netns(move || Ok(parallel::run(s.as_mut(), n, w, &prefix)))?;
            results.parallel.push(r);
        }
    }
    if args.trials > 0 {
        eprintln!("== data plane: {} trials per path", args.trials);
        let dir = Sandbox::dir("dataplane")?;
        let cfg = dataplane::DataConfig {
            trials: args.trials,
            seconds: args.trial_seconds,
            max_bytes: 4 << 30,
        };
        let nsnet = nsnet.clone();
        let d = in_fresh_netns(move || Ok(dataplane::run(nsnet, dir.join("state"), cfg)))?;
        results.data = Some(d);
    }
    let mut ports_section = String::new();
    if !args.ports.is_empty() {
        eprintln!(
            "== nsnet CLI: port add with {:?} ports published",
            args.ports
        );
        let dir = Sandbox::dir("ports")?;
        let (nsnet, counts, probes) = (nsnet.clone(), args.ports.clone(), args.port_probes);
        let points =
            in_fresh_netns(move || ports::run(&nsnet, dir.join("state"), &counts, probes))?;
        ports_section = ports::render(&points, args.port_probes);
    }
    let long_life_section = long_life(&nsnet, args.long_life)?;
    if let Some(p) = netavark::find() {
        results.notes.push(format!(
            "{}; DNS off; addresses passed as static IPs (podman's IPAM is not part of netavark).",
            Netavark::version(&p)
        ));
    }
    results.notes.push(
        "floor: iproute2 addresses one namespace per process, so the floor is two `ip -batch` \
         files (host side, container side) plus one `nft -f` file per container; files are \
         written before timing; addresses are assigned by the benchmark (no IPAM)."
            .into(),
    );
    let text = format!(
        "## nsnet-bench\n\n{}- load average at end: {}\n\n{}\n{}\n{}",
        machine,
        loadavg(),
        report::render(&results),
        ports_section,
        long_life_section
    );
    drop(sandbox);
    emit(&text, args.out.as_deref())
}
