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
