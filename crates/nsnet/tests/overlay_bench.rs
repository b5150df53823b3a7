//! The overlay's cost, measured against a baseline in the same run: container-to-container TCP
//! throughput and round-trip time between two hosts through VXLAN, next to the same pair over
//! a plain routed underlay (bridge networks with `routed: true`, no masquerade, and a route to
//! the other host's subnet via its underlay address); and the time for a new host to become
//! reachable from another (`nsnet apply` adding it, then the first TCP answer through it)
//! with 2, 10 and 50 hosts (all but two simulated: listed, their entries programmed, nobody
//! behind them), with 1 and with 50 containers on the host that learns of it. Run it
//! explicitly:
//!
//! ```sh
//! cargo test -p nsnet --test overlay_bench -- --ignored --nocapture
//! ```
//!
//! `NSNET_BENCH_TRIALS` sets the trials per figure (default 5).

mod common;
mod overlaykit;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{Sandbox, root};
use overlaykit::{ip, underlay, write};

fn trials() -> usize {
    std::env::var("NSNET_BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Host `n`'s file: `containers` containers on the overlay (host 1's from 10.200.1.10 up),
/// one on a plain routed bridge network, and the hosts h1, h2 (when `with_h2`) and `fake`
/// simulated ones.
fn file(n: usize, containers: usize, with_h2: bool, fake: usize) -> String {
    let mut hosts = String::from("hosts:\n  h1: { underlay: 192.0.2.1 }\n");
    if with_h2 {
        hosts.push_str("  h2: { underlay: 192.0.2.2 }\n");
    }
    for i in 0..fake {
        hosts.push_str(&format!("  f{i}: {{ underlay: 192.0.2.{} }}\n", 100 + i));
    }
    let names: Vec<String> = (0..containers).map(|i| format!("a{n}x{i}")).collect();
    let mut eps = String::new();
    for (i, name) in names.iter().enumerate() {
        eps.push_str(&format!(
            "      {name}: {{ ip: [10.200.{n}.{}] }}\n",
            10 + i
        ));
    }
    format!(
        "name: bench\n{hosts}namespaces: [{}, c{n}]\nnetworks:\n  ov:\n    driver: vxlan\n    vni: 42\n    subnets: [10.200.0.0/16]\n    endpoints:\n{eps}  plain:\n    subnets: [10.210.{n}.0/24]\n    routed: true\n    masquerade: false\n    endpoints:\n      c{n}: {{ ip: [10.210.{n}.10] }}\n",
        names.join(", ")
    )
}

/// Bytes per second from `from`'s namespace `ns` to `dst` over one TCP connection, for `secs`.
fn throughput(from: &Sandbox, ns: &str, to: &Sandbox, to_ns: &str, dst: &str, secs: f64) -> f64 {
    let addr: std::net::SocketAddr = dst.parse().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let server = to.in_ns(to_ns, move || {
        let l = TcpListener::bind(addr).unwrap();
        tx.send(()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 1 << 17];
        let mut total = 0u64;
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n as u64,
            }
        }
    });
    rx.recv().unwrap();
    let elapsed = from
        .in_ns(ns, move || {
            let mut s = TcpStream::connect(addr).unwrap();
            let buf = vec![7u8; 1 << 17];
            let start = Instant::now();
            while start.elapsed().as_secs_f64() < secs {
                s.write_all(&buf).unwrap();
            }
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let mut rest = [0u8; 1];
            let _ = s.read(&mut rest);
            start.elapsed().as_secs_f64()
        })
        .join()
        .unwrap();
    server.join().unwrap() as f64 / elapsed
}

/// Median microseconds of a one-byte TCP request/answer between the two namespaces.
fn round_trip(from: &Sandbox, ns: &str, to: &Sandbox, to_ns: &str, dst: &str, n: usize) -> f64 {
    let addr: std::net::SocketAddr = dst.parse().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let server = to.in_ns(to_ns, move || {
        let l = TcpListener::bind(addr).unwrap();
        tx.send(()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut b = [0u8; 1];
        while s.read_exact(&mut b).is_ok() {
            s.write_all(&b).unwrap();
        }
    });
    rx.recv().unwrap();
    let times = from
        .in_ns(ns, move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            let mut b = [1u8; 1];
            let mut times = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                s.write_all(&b).unwrap();
                s.read_exact(&mut b).unwrap();
                times.push(t.elapsed().as_secs_f64() * 1e6);
            }
            times
        })
        .join()
        .unwrap();
    server.join().unwrap();
    median(times)
}

/// Milliseconds `nsnet VERB -f` takes, and until a TCP connection from `a1x0` on host 1 to
/// host 2's container is answered, when host 1 learns of host 2.
fn join(h1: &Sandbox, h2: &Sandbox, verb: &[&str], without: &str, with: &str) -> (f64, f64) {
    h1.ok(&[verb, &["-f", without]].concat());
    assert!(!h1.tcp_hello("a1x0", "10.200.2.10:7100"));
    let srv = h2.tcp_server("a2x0", "10.200.2.10:7100");
    let start = Instant::now();
    h1.ok(&[verb, &["-f", with]].concat());
    let applied = start.elapsed().as_secs_f64() * 1e3;
    let mut reached = None;
    while start.elapsed() < Duration::from_secs(10) {
        if h1.tcp_hello("a1x0", "10.200.2.10:7100") {
            reached = Some(start.elapsed().as_secs_f64() * 1e3);
            break;
        }
    }
    srv.peer();
    (applied, reached.expect("host 2 never became reachable"))
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn overlay_against_a_routed_underlay() {
    if !root() {
        return;
    }
    let hosts = [Sandbox::new(), Sandbox::new()];
    let _outside = underlay(&hosts);
    let [h1, h2] = &hosts;
    for (n, h) in [(1, h1), (2, h2)] {
        h.ok(&["apply", "-f", &write(h, &file(n, 1, true, 0))]);
    }
    // The plain path: each host routes the other's subnet via its underlay address.
    ip(h1, &["route", "add", "10.210.2.0/24", "via", "192.0.2.2"]);
    ip(h2, &["route", "add", "10.210.1.0/24", "via", "192.0.2.1"]);
    assert!(h1.ping("c1", "10.210.2.10") && h1.ping("a1x0", "10.200.2.10"));

    let k = trials();
    let paths = [
        ("routed underlay", "c1", "c2", "10.210.2.10"),
        ("vxlan overlay", "a1x0", "a2x0", "10.200.2.10"),
    ];
    let mut gbit = [Vec::new(), Vec::new()];
    let mut rtt = [Vec::new(), Vec::new()];
    // Interleaved, so the machine's load falls on both paths alike.
    for t in 0..k {
        for (i, (_, from, to, dst)) in paths.iter().enumerate() {
            let port = 7200 + t * 2;
            gbit[i].push(throughput(h1, from, h2, to, &format!("{dst}:{port}"), 2.0) * 8.0 / 1e9);
            rtt[i].push(round_trip(
                h1,
                from,
                h2,
                to,
                &format!("{dst}:{}", port + 1),
                2000,
            ));
        }
    }
    println!("\n## Overlay (VXLAN) against a routed underlay, {k} trials, medians\n");
    println!("| path | TCP throughput (Gbit/s) | TCP round trip (µs) |");
    println!("|---|---|---|");
    for (i, (name, ..)) in paths.iter().enumerate() {
        println!(
            "| {name} | {:.2} | {:.1} |",
            median(gbit[i].clone()),
            median(rtt[i].clone())
        );
    }
    println!(
        "| ratio vxlan / underlay | {:.2} | {:.2} |",
        median(gbit[1].clone()) / median(gbit[0].clone()),
        median(rtt[1].clone()) / median(rtt[0].clone())
    );

    println!("\n## A new host becomes reachable (host 1 learns of host 2), {k} trials, medians\n");
    println!(
        "| hosts | containers on host 1 | `nsnet apply` (ms) | first TCP answer after it (ms) | `nsnet overlay sync` (ms) | first TCP answer after it (ms) |"
    );
    println!("|---|---|---|---|---|---|");
    // Each column's ratio is against its own first row (2 hosts, 1 container).
    let mut base = [None, None];
    for containers in [1, 50] {
        for hosts in [2, 10, 50] {
            let fake = hosts - 2;
            h2.ok(&["apply", "-f", &write(h2, &file(2, 1, true, fake))]);
            let without = write(h1, &file(1, containers, false, fake));
            let p = h1.state_dir().join("with.yaml");
            std::fs::write(&p, file(1, containers, true, fake)).unwrap();
            let with = p.to_str().unwrap().to_string();
            h1.ok(&["apply", "-f", &without]);
            // Untimed once: new containers settle (addresses, neighbours) before timing.
            join(h1, h2, &["apply"], &without, &with);
            let mut cells = Vec::new();
            for (i, verb) in [&["apply"][..], &["overlay", "sync"][..]]
                .iter()
                .enumerate()
            {
                let (mut applied, mut reached) = (Vec::new(), Vec::new());
                for _ in 0..k {
                    let (a, r) = join(h1, h2, verb, &without, &with);
                    applied.push(a);
                    reached.push(r);
                }
                let (a, r) = (median(applied), median(reached));
                let b = *base[i].get_or_insert(a);
                cells.push(format!("{a:.1} ({:.2}x) | {r:.1}", a / b));
            }
            println!("| {hosts} | {containers} | {} |", cells.join(" | "));
            // Three entries per peer whatever the number of containers.
            let routes = ip(h1, &["route", "show", "dev", "nsvx42"]);
            assert_eq!(routes.lines().count(), hosts - 1, "{routes}");
        }
    }
}
