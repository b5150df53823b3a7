//! Open vSwitch next to the Linux bridge, in one sandbox and one run: time of a connect and a
//! disconnect per container (interleaved, the two networks growing together to N), ping RTT
//! and single-stream TCP throughput container to container, and TCP through a published port
//! from an "outside" namespace. Figures are medians, with OVS / bridge as the ratio. Run it
//! explicitly (release build recommended):
//!
//! ```sh
//! cargo test --release -p nsnet --test ovs_bench -- --ignored --nocapture
//! ```
//!
//! `NSNET_BENCH_N` sets the number of containers per network (default 100).

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{Sandbox, root};

/// Kills nsnet's OVS daemons of this sandbox when the benchmark ends, however it ends.
struct Daemons(std::path::PathBuf);

impl Drop for Daemons {
    fn drop(&mut self) {
        for d in ["ovs-vswitchd", "ovsdb-server"] {
            let pid = std::fs::read_to_string(self.0.join(format!("ovs/{d}.pid")));
            if let Some(pid) = pid.ok().and_then(|p| p.trim().parse::<i32>().ok()) {
                // SAFETY: a daemon this benchmark's nsnet started (pid from its state dir).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn timed(s: &Sandbox, args: &[&str]) -> f64 {
    let t = Instant::now();
    s.ok(args);
    t.elapsed().as_secs_f64() * 1e3
}

/// Average RTT in ms of 50 pings from `ns` to `dst`.
fn rtt(s: &Sandbox, ns: &str, dst: &str) -> f64 {
    let r = s.nsnet(&[
        "netns", "exec", ns, "--", "ping", "-c", "50", "-i", "0.01", "-q", dst,
    ]);
    assert_eq!(r.code, 0, "ping {dst}: {}", r.stdout);
    let line = r.stdout.lines().find(|l| l.contains("min/avg")).unwrap();
    let stats = line.split(" = ").nth(1).unwrap();
    stats.split('/').nth(1).unwrap().parse().unwrap()
}

/// Gbit/s of one TCP stream from `from` to `to_ns` listening on `listen`, sending to `dst`
/// for up to 2 s or 1 GB.
fn throughput(s: &Sandbox, from: &str, to_ns: &str, listen: &str, dst: &str) -> f64 {
    let listen: std::net::SocketAddr = listen.parse().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let server = s.in_ns(to_ns, move || {
        let l = std::net::TcpListener::bind(listen).unwrap();
        tx.send(()).unwrap();
        let (mut c, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        let mut n = 0u64;
        loop {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k as u64,
            }
        }
        let _ = c.write_all(&n.to_le_bytes());
        n
    });
    rx.recv().unwrap();
    let dst: std::net::SocketAddr = dst.parse().unwrap();
    let client = s.in_ns(from, move || {
        let mut c = std::net::TcpStream::connect_timeout(&dst, Duration::from_secs(3)).unwrap();
        let buf = vec![7u8; 256 * 1024];
        let t = Instant::now();
        let mut sent = 0u64;
        while t.elapsed() < Duration::from_secs(2) && sent < 1 << 30 {
            c.write_all(&buf).unwrap();
            sent += buf.len() as u64;
        }
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut ack = [0u8; 8];
        c.read_exact(&mut ack).unwrap();
        (u64::from_le_bytes(ack), t.elapsed())
    });
    let (got, took) = client.join().unwrap();
    assert_eq!(server.join().unwrap(), got);
    got as f64 * 8.0 / took.as_secs_f64() / 1e9
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn ovs_against_the_bridge() {
    if !root() {
        return;
    }
    let n: usize = std::env::var("NSNET_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let s = Sandbox::new();
    let _daemons = Daemons(s.state_dir().to_path_buf());
    s.add_outside();
    let drivers = [("bridge", "br", "10.61"), ("ovs", "ov", "10.62")];
    let mut create = Vec::new();
    for (driver, net, prefix) in drivers {
        let subnet = format!("{prefix}.0.0/16");
        create.push(timed(
            &s,
            &[
                "network", "create", net, "--driver", driver, "--subnet", &subnet,
            ],
        ));
    }
    let (mut conn, mut disc) = ([vec![], vec![]], [vec![], vec![]]);
    for i in 0..n {
        for (d, (_, net, _)) in drivers.iter().enumerate() {
            let ns = format!("{net}{i}");
            s.ok(&["netns", "add", &ns]);
            let publish = (i == 0).then(|| format!("{}:80", 8080 + d));
            let mut args = vec!["network", "connect", net, ns.as_str()];
            if let Some(p) = &publish {
                args.extend(["--publish", p]);
            }
            conn[d].push(timed(&s, &args));
        }
    }
    let mut rows = Vec::new();
    for (d, (_, net, prefix)) in drivers.iter().enumerate() {
        let (a, b) = (format!("{net}0"), format!("{net}1"));
        let peer = format!("{prefix}.0.3");
        let ping = rtt(&s, &a, &peer);
        let c2c = median(
            (0..3)
                .map(|_| throughput(&s, &a, &b, "0.0.0.0:5001", &format!("{peer}:5001")))
                .collect(),
        );
        let published = median(
            (0..3)
                .map(|_| {
                    throughput(
                        &s,
                        "outside",
                        &a,
                        "0.0.0.0:80",
                        &format!("203.0.113.1:{}", 8080 + d),
                    )
                })
                .collect(),
        );
        rows.push((ping, c2c, published));
    }
    for i in (0..n).rev() {
        for (d, (_, net, _)) in drivers.iter().enumerate() {
            let ns = format!("{net}{i}");
            disc[d].push(timed(&s, &["network", "disconnect", net, &ns]));
            s.ok(&["netns", "rm", &ns]);
        }
    }
    for (_, net, _) in drivers {
        s.ok(&["network", "rm", net]);
    }
    let [cb, co] = conn.map(median);
    let [db, dov] = disc.map(median);
    println!("\nOVS (userspace datapath) against the Linux bridge, N = {n} containers per network");
    println!("| figure | bridge | ovs | ovs / bridge |");
    println!("|---|---|---|---|");
    let line = |what: &str, b: f64, o: f64, unit: &str| {
        println!("| {what} | {b:.2} {unit} | {o:.2} {unit} | {:.2} |", o / b);
    };
    line(
        "network create (ovs: starts both daemons)",
        create[0],
        create[1],
        "ms",
    );
    line("connect, per container (median)", cb, co, "ms");
    line("disconnect, per container (median)", db, dov, "ms");
    line(
        "ping RTT container -> container",
        rows[0].0,
        rows[1].0,
        "ms",
    );
    line("TCP container -> container", rows[0].1, rows[1].1, "Gbit/s");
    line(
        "TCP outside -> published port",
        rows[0].2,
        rows[1].2,
        "Gbit/s",
    );
}
