//! Hosts for overlay tests and benchmarks: sandboxes joined by an underlay bridge.

#![allow(dead_code)]

use crate::common::Sandbox;

/// The underlay: a bridge `ul` (192.0.2.254, the outside) in its own sandbox, and a veth
/// `underlay0` (192.0.2.N) into each host.
pub fn underlay(hosts: &[Sandbox]) -> Sandbox {
    let ul = Sandbox::new();
    let run = |s: &Sandbox, args: &[&str]| {
        let r = s.sh("ip", args);
        assert_eq!(r.code, 0, "ip {}: {}", args.join(" "), r.stderr);
    };
    run(&ul, &["link", "add", "ul", "type", "bridge"]);
    run(&ul, &["addr", "add", "192.0.2.254/24", "dev", "ul"]);
    run(&ul, &["link", "set", "ul", "up"]);
    for (i, h) in hosts.iter().enumerate() {
        let port = format!("ul{}", i + 1);
        let pid = h.pid().to_string();
        run(
            &ul,
            &[
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                "underlay0",
                "netns",
                &pid,
            ],
        );
        run(&ul, &["link", "set", &port, "master", "ul", "up"]);
        run(
            h,
            &[
                "addr",
                "add",
                &format!("192.0.2.{}/24", i + 1),
                "dev",
                "underlay0",
            ],
        );
        run(h, &["link", "set", "underlay0", "up"]);
    }
    ul
}

pub fn write(s: &Sandbox, text: &str) -> String {
    let p = s.state_dir().join("overlay.yaml");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

pub fn lines(s: &Sandbox, args: &[&str]) -> Vec<String> {
    s.json(args)
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// `ip` output inside a host's own namespace.
pub fn ip(s: &Sandbox, args: &[&str]) -> String {
    let r = s.sh("ip", args);
    assert_eq!(r.code, 0, "ip {}: {}", args.join(" "), r.stderr);
    r.stdout
}

/// Whether `etcd` can run here; under CI its absence is a failure (scripts/deps.sh installs it).
pub fn have_etcd() -> bool {
    let ok = std::process::Command::new("etcd")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "etcd is missing: install etcd-server (scripts/deps.sh)"
        );
        eprintln!("skipped: etcd is missing (install etcd-server)");
    }
    ok
}

/// Waits up to `secs` for `cond`.
pub fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    cond()
}

/// A process started in a sandbox, killed (by its PID) when dropped.
pub struct Started(pub std::process::Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn routes_on(s: &Sandbox, dev: &str) -> usize {
    s.sh("ip", &["route", "show", "dev", dev])
        .stdout
        .lines()
        .count()
}

/// etcd on the outside (`ul`), reachable over the underlay at 192.0.2.254:2379, its data in
/// the sandbox's state directory; killed when dropped.
pub fn start_etcd(outside: &Sandbox) -> Started {
    let data = outside.state_dir().join("etcd");
    let log = std::fs::File::create(outside.state_dir().join("etcd.log")).unwrap();
    let etcd = Started(
        outside
            .command(
                "etcd",
                &[
                    "--data-dir",
                    data.to_str().unwrap(),
                    "--listen-client-urls",
                    "http://192.0.2.254:2379",
                    "--advertise-client-urls",
                    "http://192.0.2.254:2379",
                    "--listen-peer-urls",
                    "http://127.0.0.1:2380",
                ],
            )
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start etcd"),
    );
    assert!(
        eventually(20, || outside
            .in_ns("host", || std::net::TcpStream::connect("192.0.2.254:2379")
                .is_ok())
            .join()
            .unwrap()),
        "etcd did not come up"
    );
    etcd
}
