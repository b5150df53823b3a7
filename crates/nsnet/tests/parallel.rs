//! Many `nsnet network connect` processes at once into one network: distinct addresses,
//! working endpoints, no error and no caller-side lock.

mod common;

use std::collections::BTreeSet;

use common::{Sandbox, root};

#[test]
fn thirty_two_parallel_connects() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["network", "create", "lan", "--subnet", "10.50.0.0/24"]);
    let names: Vec<String> = (0..32).map(|i| format!("c{i}")).collect();
    for n in &names {
        s.ok(&["netns", "add", n]);
    }
    let children: Vec<_> = names
        .iter()
        .map(|n| {
            s.command(
                common::NSNET,
                &["network", "connect", "lan", n, "--format", "json"],
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut addrs = BTreeSet::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        addrs.insert(v["addrs"][0].as_str().unwrap().to_string());
    }
    assert_eq!(addrs.len(), 32, "{addrs:?}");
    for a in &addrs {
        let ip = a.split('/').next().unwrap();
        assert!(s.ping("c0", ip), "{ip} unreachable");
    }
    for n in &names {
        s.ok(&["netns", "rm", n]);
    }
    s.ok(&["network", "rm", "lan"]);
    s.assert_clean();
}
