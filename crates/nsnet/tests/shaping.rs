//! Live link shaping (netem), measured with real traffic: the ping RTT grows by the delay.

mod common;

use common::{Sandbox, root};

/// Average RTT in milliseconds of `count` pings from `ns` to `dst`.
fn rtt_ms(s: &Sandbox, ns: &str, dst: &str, count: &str) -> Option<f64> {
    let r = s.nsnet(&[
        "netns", "exec", ns, "--", "ping", "-q", "-c", count, "-i", "0.2", "-W", "2", dst,
    ]);
    let line = r.stdout.lines().find(|l| l.contains("min/avg/max"))?;
    line.split('=')
        .nth(1)?
        .trim()
        .split('/')
        .nth(1)?
        .parse()
        .ok()
}

/// Mbit/s a TCP sender in `from` pushes to a receiver in `to` (at `addr`) for `secs`.
fn throughput_mbit(s: &Sandbox, from: &str, to: &str, addr: &str, secs: f64) -> f64 {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let listen: std::net::SocketAddr = format!("0.0.0.0:{}", addr.rsplit(':').next().unwrap())
        .parse()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let receiver = s.in_ns(to, move || {
        let l = std::net::TcpListener::bind(listen).unwrap();
        tx.send(()).unwrap();
        let (mut c, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        let start = Instant::now();
        loop {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n as u64,
            }
        }
        (total, start.elapsed())
    });
    rx.recv().unwrap();
    let dst: std::net::SocketAddr = addr.parse().unwrap();
    s.in_ns(from, move || {
        let mut c = std::net::TcpStream::connect_timeout(&dst, Duration::from_secs(2)).unwrap();
        let chunk = vec![7u8; 1 << 14];
        let end = Instant::now() + Duration::from_secs_f64(secs);
        while Instant::now() < end {
            if c.write_all(&chunk).is_err() {
                break;
            }
        }
    })
    .join()
    .unwrap();
    let (bytes, elapsed) = receiver.join().unwrap();
    bytes as f64 * 8.0 / elapsed.as_secs_f64() / 1e6
}

/// Whether the kernel can shape with netem (some CI kernels are built without it).
fn has_netem(s: &Sandbox, ns: &str, ifname: &str) -> bool {
    let r = s.nsnet(&["link", "set", ns, ifname, "--delay", "1ms"]);
    if r.stderr.contains("no netem qdisc") {
        eprintln!("delay/loss part skipped: {}", r.stderr.trim());
        return false;
    }
    assert_eq!(r.code, 0, "{}", r.stderr);
    s.ok(&["link", "set", ns, ifname, "--clear"]);
    true
}

#[test]
fn rate_limit_is_applied_live_and_removed() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["netns", "add", "a"]);
    s.ok(&["netns", "add", "b"]);
    s.ok(&[
        "link",
        "add",
        "a",
        "b",
        "--addr",
        "10.31.0.1/24",
        "--addr",
        "10.31.0.2/24",
    ]);
    let free = throughput_mbit(&s, "a", "b", "10.31.0.2:5001", 0.5);
    assert!(free > 100.0, "unshaped link only did {free:.1} Mbit/s");
    s.ok(&["link", "set", "a", "veth-b", "--rate", "10mbit"]);
    let view = s.json(&["inspect", "a"]);
    let iface = view["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "veth-b")
        .unwrap();
    assert_eq!(iface["shaping"]["rate_bps"], 10_000_000);
    let limited = throughput_mbit(&s, "a", "b", "10.31.0.2:5002", 1.5);
    assert!(
        (7.0..12.0).contains(&limited),
        "shaped to 10mbit but measured {limited:.2} Mbit/s"
    );
    s.ok(&["link", "set", "a", "veth-b", "--clear"]);
    let again = throughput_mbit(&s, "a", "b", "10.31.0.2:5003", 0.5);
    assert!(again > 100.0, "after clearing only {again:.1} Mbit/s");
    s.ok(&["netns", "rm", "a", "b"]);
    s.assert_clean();
}

#[test]
fn delay_and_loss_are_applied_live_and_removed() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["netns", "add", "a"]);
    s.ok(&["netns", "add", "b"]);
    s.ok(&[
        "link",
        "add",
        "a",
        "b",
        "--addr",
        "10.30.0.1/24",
        "--addr",
        "10.30.0.2/24",
    ]);
    let base = rtt_ms(&s, "a", "10.30.0.2", "5").expect("baseline ping");
    assert!(base < 5.0, "baseline rtt {base} ms");
    // Only nsnet's interfaces, with valid values.
    s.fails(
        1,
        &["link", "set", "a", "lo", "--delay", "1ms"],
        &["made by nsnet"],
    );
    s.fails(
        1,
        &["link", "set", "a", "veth-b", "--delay", "fast"],
        &["invalid delay"],
    );
    s.fails(
        1,
        &["link", "set", "a", "veth-b", "--jitter", "5ms"],
        &["needs a delay"],
    );
    s.fails(
        2,
        &["link", "set", "a", "veth-b", "--clear", "--delay", "1ms"],
        &[],
    );
    if !has_netem(&s, "a", "veth-b") {
        s.ok(&["netns", "rm", "a", "b"]);
        s.assert_clean();
        return;
    }
    s.ok(&["link", "set", "a", "veth-b", "--delay", "50ms"]);
    let shaped = rtt_ms(&s, "a", "10.30.0.2", "5").expect("shaped ping");
    assert!(
        (45.0..80.0).contains(&(shaped - base)),
        "rtt grew by {} ms, expected ~50",
        shaped - base
    );
    let view = s.json(&["inspect", "a"]);
    let iface = view["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "veth-b")
        .unwrap();
    assert_eq!(iface["shaping"]["delay_us"], 50_000);
    // Changed live, without recreating the link.
    s.ok(&[
        "link", "set", "a", "veth-b", "--delay", "20ms", "--loss", "100%",
    ]);
    assert!(
        rtt_ms(&s, "a", "10.30.0.2", "3").is_none(),
        "100% loss let pings through"
    );
    s.ok(&["link", "set", "a", "veth-b", "--clear"]);
    let after = rtt_ms(&s, "a", "10.30.0.2", "5").expect("ping after clear");
    assert!(after < 5.0, "rtt {after} ms after clearing");
    assert!(
        s.json(&["inspect", "a"])
            .to_string()
            .contains("\"shaping\":null")
    );
    s.ok(&["netns", "rm", "a", "b"]);
    s.assert_clean();
}
