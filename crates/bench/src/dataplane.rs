//! Data plane: TCP throughput from an "outside" namespace (joined to the sandbox's host by a
//! veth, documentation addresses 198.51.100.0/24) to a container on an nsnet network, once
//! through the published port on the host's address (DNAT) and once straight to the
//! container's address (routed through the host). Both paths cross the same two veths and the
//! bridge; the difference is the firewall's NAT. Each trial is bounded in bytes and time;
//! trials alternate between the paths and the medians are compared.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::run;
use crate::stats::median;
use crate::subject::nsnet_cli::NsnetCli;
use crate::subject::{CONTAINER_PORT, Container, Net, Subject};

/// The outside namespace's side of the link.
const OUTSIDE: &str = "dpout";
const HOST_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const OUTSIDE_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const PUBLISHED_PORT: u16 = 8080;
const CHUNK: usize = 128 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Limits of one trial.
#[derive(Debug, Clone, Copy)]
pub struct DataConfig {
    pub trials: usize,
    pub seconds: f64,
    pub max_bytes: u64,
}

/// Throughputs in Gbit/s.
#[derive(Debug, Clone, Default)]
pub struct DataResult {
    pub direct: Vec<f64>,
    pub published: Vec<f64>,
    pub note: Option<String>,
}

impl DataResult {
    /// Median published / median direct.
    pub fn ratio(&self) -> Option<f64> {
        crate::stats::ratio(median(&self.published), median(&self.direct))
    }
}

/// Bounds `accept` (Linux honours SO_RCVTIMEO on listening sockets), so a failed sender can
/// never leave the receiver waiting forever.
fn accept_timeout(l: &TcpListener, t: Duration) -> Result<()> {
    use std::os::fd::AsRawFd;
    let tv = libc::timeval {
        tv_sec: t.as_secs() as libc::time_t,
        tv_usec: 0,
    };
    // SAFETY: a valid socket fd and a pointer/length pair describing a live timeval.
    let rc = unsafe {
        libc::setsockopt(
            l.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    anyhow::ensure!(
        rc == 0,
        "set accept timeout: {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// Receives connections one after another: reads each to EOF, answers with the byte count.
fn receiver(listener: TcpListener, connections: usize) -> Result<()> {
    accept_timeout(&listener, IO_TIMEOUT)?;
    let mut buf = vec![0u8; CHUNK];
    for _ in 0..connections {
        let (mut s, _) = listener.accept().context("accept")?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        let mut total: u64 = 0;
        loop {
            let n = s.read(&mut buf).context("receive")?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        s.write_all(&total.to_be_bytes()).context("answer")?;
    }
    Ok(())
}

/// Sends until the time or byte bound, then waits for the receiver's count; Gbit/s received.
fn send(to: SocketAddr, cfg: DataConfig) -> Result<f64> {
    let buf = vec![0x5au8; CHUNK];
    let start = Instant::now();
    let mut s =
        TcpStream::connect_timeout(&to, IO_TIMEOUT).with_context(|| format!("connect {to}"))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut sent: u64 = 0;
    let limit = Duration::from_secs_f64(cfg.seconds);
    while sent < cfg.max_bytes && start.elapsed() < limit {
        s.write_all(&buf).context("send")?;
        sent += CHUNK as u64;
    }
    s.shutdown(std::net::Shutdown::Write)?;
    let mut count = [0u8; 8];
    s.read_exact(&mut count)
        .context("read the receiver's count")?;
    let secs = start.elapsed().as_secs_f64();
    let got = u64::from_be_bytes(count);
    anyhow::ensure!(got == sent, "sent {sent} bytes but {got} arrived");
    Ok(got as f64 * 8.0 / secs / 1e9)
}

fn link_outside(net: Net) -> Result<()> {
    nsnet_sys::netns::create(OUTSIDE)?;
    let host = format!("{HOST_ADDR}/24");
    let out = format!("{OUTSIDE_ADDR}/24");
    let host_gw = HOST_ADDR.to_string();
    run::ok(
        "ip",
        &[
            "link", "add", "dpo0", "type", "veth", "peer", "name", "eth0", "netns", OUTSIDE,
        ],
        None,
    )?;
    run::ok("ip", &["addr", "add", &host, "dev", "dpo0"], None)?;
    run::ok("ip", &["link", "set", "dpo0", "up"], None)?;
    let batch = format!(
        "link set lo up\nlink set eth0 up\naddr add {out} dev eth0\nroute add {} via {host_gw}\n",
        net.cidr()
    );
    run::ok(
        "ip",
        &["-n", OUTSIDE, "-batch", "-"],
        Some(batch.as_bytes()),
    )?;
    Ok(())
}

/// Runs the data-plane comparison (in the caller's fresh network namespace).
pub fn run(nsnet: PathBuf, state_dir: PathBuf, cfg: DataConfig) -> DataResult {
    let mut res = DataResult::default();
    if let Err(e) = measure(nsnet, state_dir, cfg, &mut res) {
        res.note = Some(format!("data plane not measured: {e:#}"));
    }
    let _ = nsnet_sys::netns::delete(OUTSIDE);
    let _ = nsnet_sys::netns::delete("dpc1");
    res
}

fn measure(
    nsnet: PathBuf,
    state_dir: PathBuf,
    cfg: DataConfig,
    res: &mut DataResult,
) -> Result<()> {
    let net = Net {
        base: Ipv4Addr::new(10, 95, 0, 0),
    };
    let mut subject = NsnetCli {
        nsnet,
        state_dir,
        net,
    };
    let c = Container::new("dpc", 1, PUBLISHED_PORT);
    nsnet_sys::netns::create(&c.netns)?;
    // The direct path is traffic routed from outside straight to the container: only a
    // `--routed` network accepts it (others take outside traffic through published ports only).
    std::fs::create_dir_all(&subject.state_dir)?;
    subject.nsnet(&[
        "network",
        "create",
        crate::subject::nsnet_cli::NETWORK,
        "--subnet",
        &net.cidr(),
        "--routed",
    ])?;
    let ip = subject
        .setup(&c)?
        .context("nsnet reported no address for the container")?;
    link_outside(net)?;
    let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), CONTAINER_PORT);
    let (tx, rx) = std::sync::mpsc::channel();
    let connections = 2 * cfg.trials;
    let recv = crate::sandbox::in_netns(&c.netns, move || -> Result<()> {
        let l = TcpListener::bind(listen).context("listen in the container")?;
        tx.send(()).ok();
        receiver(l, connections)
    })?;
    rx.recv_timeout(IO_TIMEOUT)
        .context("receiver did not start")?;
    let direct = SocketAddr::new(ip, CONTAINER_PORT);
    let published = SocketAddr::new(IpAddr::V4(HOST_ADDR), PUBLISHED_PORT);
    let sender = crate::sandbox::in_netns(OUTSIDE, move || -> Result<(Vec<f64>, Vec<f64>)> {
        let (mut d, mut p) = (Vec::new(), Vec::new());
        for _ in 0..cfg.trials {
            d.push(send(direct, cfg).context("direct")?);
            p.push(send(published, cfg).context("published port")?);
        }
        Ok((d, p))
    })?;
    let sent = sender.join().expect("sender thread");
    let received = recv.join().expect("receiver thread");
    let (d, p) = sent?;
    received?;
    res.direct = d;
    res.published = p;
    subject.teardown(&c)?;
    subject.finish()?;
    Ok(())
}
