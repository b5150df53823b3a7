//! Container-name DNS: nsnet's responder against aardvark-dns (Podman's) and dnsmasq (the
//! dnsname plugin's), in one run on one bridge setup: time from spawn until the first answer,
//! and the latency of sequential A queries from a container namespace to the gateway. Also
//! what DNS adds to a `network connect` (a signal to the running responder).

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::run;
use crate::sandbox::{Sandbox, in_fresh_netns, in_netns};
use crate::stats::{fmt_ratio, median, ratio};

/// Where Debian puts aardvark-dns (podman's helper directory).
const AARDVARK: &str = "/usr/lib/podman/aardvark-dns";

/// One server's figures, in microseconds.
struct Figures {
    name: &'static str,
    start_us: Option<f64>,
    p50: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
    note: Option<String>,
}

/// A bare A query for `name` with id `id`.
fn query(name: &str, id: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Asks `server` for `name` once; true when an answer with at least one record came back.
fn answered(sock: &UdpSocket, server: SocketAddr, name: &str, id: u16) -> bool {
    if sock.send_to(&query(name, id), server).is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => n >= 12 && buf[..2] == id.to_be_bytes() && buf[7] > 0,
        Err(_) => false,
    }
}

/// From namespace `ns`: microseconds from `spawn()` until `server` answers `name` (polled).
fn start_time(
    ns: &str,
    server: SocketAddr,
    name: &'static str,
    spawn: impl FnOnce() -> Result<Child>,
) -> Result<(f64, Child)> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let prober = in_netns(ns, move || {
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_micros(300)))
            .unwrap();
        rx.recv().unwrap();
        let t = Instant::now();
        let mut id = 1u16;
        while t.elapsed() < Duration::from_secs(5) {
            if answered(&sock, server, name, id) {
                return Some(t.elapsed().as_secs_f64() * 1e6);
            }
            id = id.wrapping_add(1);
        }
        None
    })?;
    std::thread::sleep(Duration::from_millis(20));
    // The prober's clock starts just before the spawn.
    tx.send(()).ok();
    let child = spawn()?;
    let us = prober
        .join()
        .unwrap()
        .context("no answer within 5 s of the start")?;
    Ok((us, child))
}

/// p50, p90 and p99 of `n` sequential queries from `ns` (microseconds).
fn latency(ns: &str, server: SocketAddr, name: &'static str, n: usize) -> Result<[f64; 3]> {
    let h = in_netns(ns, move || {
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        for i in 0..50u16 {
            answered(&sock, server, name, i);
        }
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            let t = Instant::now();
            if !answered(&sock, server, name, i as u16) {
                return None;
            }
            v.push(t.elapsed().as_secs_f64() * 1e6);
        }
        v.sort_by(f64::total_cmp);
        let at = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
        Some([at(0.5), at(0.9), at(0.99)])
    })?;
    h.join().unwrap().context("a query went unanswered")
}

fn nsnet(bin: &Path, state: &Path, args: &[&str]) -> Result<String> {
    let mut c = Command::new(bin);
    c.arg("--state-dir").arg(state).args(args);
    let out = run::output(&mut c, None)?;
    if !out.status.success() {
        bail!(
            "nsnet {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn stop(mut child: Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
}

/// Kills the process a pidfile names and waits for it to go.
fn stop_pidfile(path: &Path) {
    let Some(pid) = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return;
    };
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    for _ in 0..500 {
        if nix::sys::signal::kill(pid, None).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Median of `f` over `runs` runs (microseconds); the first error stops it.
fn median_of(runs: usize, mut f: impl FnMut() -> Result<f64>) -> Result<Option<f64>> {
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        v.push(f()?);
    }
    Ok(median(&v))
}

/// Runs the whole comparison; returns the Markdown section.
pub fn bench(bin: &Path, queries: usize, starts: usize, connects: usize) -> Result<String> {
    let bin = bin.to_path_buf();
    in_fresh_netns(move || run_all(&bin, queries, starts, connects))
}

fn run_all(bin: &Path, queries: usize, starts: usize, connects: usize) -> Result<String> {
    let dir = Sandbox::dir("dns")?;
    let state = dir.join("state");
    let gw: SocketAddr = "10.97.0.1:53".parse()?;
    // The peers serve dnsnet (DNS off in nsnet, so nothing of nsnet's listens there):
    // client asks for web, which is target (10.97.0.2).
    nsnet(
        bin,
        &state,
        &[
            "network",
            "create",
            "dnsnet",
            "--subnet",
            "10.97.0.0/24",
            "--no-dns",
        ],
    )?;
    // nsnet serves named: nclient asks for web, a namespace of that name (10.96.0.2).
    nsnet(
        bin,
        &state,
        &["network", "create", "named", "--subnet", "10.96.0.0/24"],
    )?;
    for ns in ["target", "client", "web", "nclient"] {
        nsnet(bin, &state, &["netns", "add", ns])?;
    }
    nsnet(bin, &state, &["network", "connect", "dnsnet", "target"])?;
    nsnet(bin, &state, &["network", "connect", "dnsnet", "client"])?;
    nsnet(bin, &state, &["network", "connect", "named", "web"])?;
    nsnet(bin, &state, &["network", "connect", "named", "nclient"])?;
    let ngw: SocketAddr = "10.96.0.1:53".parse()?;
    let mut out = Vec::new();

    // Started by `network create`; stopped here so its start can be timed.
    stop_pidfile(&state.join("dns.pid"));
    let serve = || -> Result<Child> {
        Ok(Command::new(bin)
            .arg("--state-dir")
            .arg(&state)
            .args(["dns", "serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?)
    };
    let start = median_of(starts, || {
        let (us, child) = start_time("nclient", ngw, "web", serve)?;
        stop(child);
        Ok(us)
    })?;
    let child = serve()?;
    std::thread::sleep(Duration::from_millis(100));
    let [p50, p90, p99] = latency("nclient", ngw, "web", queries)?;
    out.push(Figures {
        name: "nsnet dns serve",
        start_us: start,
        p50: Some(p50),
        p90: Some(p90),
        p99: Some(p99),
        note: None,
    });

    // What a command on a DNS network adds, done here the way `nsnet` does it: probe the
    // lock, read the pidfile, send SIGHUP.
    let notify_us = {
        let (lock, pidfile) = (state.join("dns.lock"), state.join("dns.pid"));
        let n = 1000;
        let t = Instant::now();
        for _ in 0..n {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&lock)?;
            // SAFETY: flock on an fd we own; EWOULDBLOCK (held by the responder) is expected.
            let held = unsafe {
                libc::flock(
                    std::os::fd::AsRawFd::as_raw_fd(&f),
                    libc::LOCK_EX | libc::LOCK_NB,
                )
            } != 0;
            anyhow::ensure!(held, "the responder does not hold its lock");
            let pid: i32 = std::fs::read_to_string(&pidfile)?.trim().parse()?;
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGHUP,
            )?;
        }
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    };
    std::thread::sleep(Duration::from_millis(500));

    // Per-connect cost: connect + disconnect of a namespace on the DNS network (each signals
    // the running responder) against the same on a network without DNS while no network has
    // DNS (each then only finds that out).
    nsnet(bin, &state, &["netns", "add", "probe"])?;
    let cycle = |net: &str| -> Result<Option<f64>> {
        median_of(connects, || {
            let t = Instant::now();
            nsnet(bin, &state, &["network", "connect", net, "probe"])?;
            nsnet(bin, &state, &["network", "disconnect", net, "probe"])?;
            Ok(t.elapsed().as_secs_f64() * 1e6)
        })
    };
    let with_dns = cycle("named")?;
    stop(child);
    nsnet(bin, &state, &["network", "rm", "named", "--force"])?;
    let without = cycle("dnsnet")?;

    // aardvark-dns: its config file for the network, then `run` (forks; the parent returns
    // once the child serves).
    if Path::new(AARDVARK).exists() {
        let conf = dir.join("aardvark");
        std::fs::create_dir_all(&conf)?;
        std::fs::write(
            conf.join("dnsnet"),
            "10.97.0.1\nabc123 10.97.0.2  target,web\n",
        )?;
        let spawn = || -> Result<Child> {
            Ok(Command::new(AARDVARK)
                .arg("--config")
                .arg(&conf)
                .args(["-p", "53", "run"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?)
        };
        let start = median_of(starts, || {
            let (us, mut parent) = start_time("client", gw, "web", spawn)?;
            let _ = parent.wait();
            stop_pidfile(&conf.join("aardvark.pid"));
            Ok(us)
        })?;
        let mut parent = spawn()?;
        let _ = parent.wait();
        std::thread::sleep(Duration::from_millis(100));
        let l = latency("client", gw, "web", queries);
        stop_pidfile(&conf.join("aardvark.pid"));
        let [p50, p90, p99] = l?;
        out.push(Figures {
            name: "aardvark-dns",
            start_us: start,
            p50: Some(p50),
            p90: Some(p90),
            p99: Some(p99),
            note: first_line(AARDVARK, &["--version"]),
        });
    } else {
        out.push(skipped(
            "aardvark-dns",
            "not installed (scripts/deps.sh aardvark-dns)",
        ));
    }

    // dnsmasq as the dnsname plugin ran it: bound to the gateway, names from a hosts file.
    if let Some(dnsmasq) = run::which("dnsmasq", &["/usr/sbin"]) {
        let hosts = dir.join("dnsmasq.hosts");
        std::fs::write(&hosts, "10.97.0.2 target web\n")?;
        let spawn = || -> Result<Child> {
            Ok(Command::new(&dnsmasq)
                .args([
                    "-k",
                    "-C",
                    "/dev/null",
                    "--bind-interfaces",
                    "--listen-address=10.97.0.1",
                ])
                .args([
                    "--except-interface=lo",
                    "--no-resolv",
                    "--no-hosts",
                    "--pid-file=",
                    "-u",
                    "root",
                ])
                .arg(format!("--addn-hosts={}", hosts.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?)
        };
        let start = median_of(starts, || {
            let (us, child) = start_time("client", gw, "web", spawn)?;
            stop(child);
            Ok(us)
        })?;
        let child = spawn()?;
        std::thread::sleep(Duration::from_millis(100));
        let l = latency("client", gw, "web", queries);
        stop(child);
        let [p50, p90, p99] = l?;
        out.push(Figures {
            name: "dnsmasq",
            start_us: start,
            p50: Some(p50),
            p90: Some(p90),
            p99: Some(p99),
            note: first_line(&dnsmasq.display().to_string(), &["--version"]),
        });
    } else {
        out.push(skipped(
            "dnsmasq",
            "not installed (scripts/deps.sh dnsmasq-base)",
        ));
    }
    Ok(render(
        &out, queries, starts, connects, with_dns, without, notify_us,
    ))
}

/// The first line a program prints for `args` (its version).
fn first_line(program: &str, args: &[&str]) -> Option<String> {
    run::ok(program, args, None)
        .ok()
        .and_then(|s| s.lines().next().map(|l| l.trim().to_string()))
}

fn skipped(name: &'static str, why: &str) -> Figures {
    Figures {
        name,
        start_us: None,
        p50: None,
        p90: None,
        p99: None,
        note: Some(why.to_string()),
    }
}

fn render(
    rows: &[Figures],
    queries: usize,
    starts: usize,
    connects: usize,
    with_dns: Option<f64>,
    without: Option<f64>,
    notify_us: f64,
) -> String {
    let us = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    let base = &rows[0];
    let mut s = format!(
        "Start: spawn until the first answer, median of {starts}. Latency: {queries} sequential \
         A queries from a namespace to the gateway over veth and bridge. Ratios: nsnet / peer.\n\n\
         | server | start (µs) | p50 (µs) | p90 (µs) | p99 (µs) | nsnet start ratio | nsnet p50 ratio | version |\n\
         |---|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.name,
            us(r.start_us),
            us(r.p50),
            us(r.p90),
            us(r.p99),
            fmt_ratio(ratio(base.start_us, r.start_us)),
            fmt_ratio(ratio(base.p50, r.p50)),
            r.note.as_deref().unwrap_or("-"),
        ));
    }
    let diff = match (with_dns, without) {
        (Some(a), Some(b)) => format!("{:+.0}", a - b),
        _ => "-".into(),
    };
    s.push_str(&format!(
        "\nPer connect (connect + disconnect through the CLI, median of {connects}): with DNS \
         (responder signalled twice) {} µs, without DNS (no responder) {} µs, difference {diff} µs \
         for two operations (noisy: a connect is milliseconds of kernel work).\n\n\
         The DNS work of one command on a DNS network (lock probe, pidfile read, SIGHUP; mean of \
         1000): {notify_us:.1} µs.\n",
        us(with_dns),
        us(without)
    ));
    s
}
