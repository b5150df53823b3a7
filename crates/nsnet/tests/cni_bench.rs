//! Time of one CNI ADD and one DEL: nsnet next to the reference bridge + host-local + portmap
//! chain, on the same machine in the same run, each container with one published port and a
//! masqueraded network. Medians of many, in a sandbox. The timing loop runs inside the sandbox
//! (this test binary re-executed there), so only the plugin processes are timed, as a runtime
//! would see them. Run it explicitly (release build recommended):
//!
//! ```sh
//! cargo test --release -p nsnet --test cni_bench -- --ignored --nocapture
//! ```
//!
//! `NSNET_BENCH_N` sets the number of containers per side (default 100).

mod cnidriver;
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use cnidriver::{Conflist, Driver, Runtime};
use common::{Sandbox, root};
use serde_json::json;

const INSIDE: &str = "NSNET_BENCH_INSIDE";

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn cni_add_del_timings() {
    if !root() {
        return;
    }
    if std::env::var_os(INSIDE).is_some() {
        inside();
        return;
    }
    let s = Sandbox::new();
    let exe = std::env::current_exe().unwrap();
    let out = s
        .command(
            exe.to_str().unwrap(),
            &["--exact", "cni_add_del_timings", "--ignored", "--nocapture"],
        )
        .env(INSIDE, "1")
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "benchmark failed inside the sandbox");
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn p90(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() * 9 / 10]
}

fn ip_netns(args: &[&str]) {
    let st = Command::new("ip").arg("netns").args(args).status().unwrap();
    assert!(st.success(), "ip netns {args:?}");
}

/// Runs inside the sandbox: plugins start directly, as a runtime starts them.
fn inside() {
    let n: usize = std::env::var("NSNET_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let d = Driver::direct();
    let data_dir = tempfile::tempdir().unwrap();
    let nsnet = Conflist::single(
        "1.0.0",
        json!({
            "type": "nsnet", "name": "bench-nsnet", "bridge": "nsbench0",
            "isGateway": true, "ipMasq": true, "hairpinMode": true,
            "capabilities": {"portMappings": true},
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.98.0.0/16"}]],
                     "routes": [{"dst": "0.0.0.0/0"}]}
        }),
    );
    let reference = Conflist::new(json!({
        "cniVersion": "1.0.0",
        "name": "bench-ref",
        "plugins": [
            {"type": "bridge", "bridge": "refbench0", "isGateway": true, "ipMasq": true,
             "hairpinMode": true,
             "ipam": {"type": "host-local", "dataDir": data_dir.path(),
                      "ranges": [[{"subnet": "10.99.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    }));
    let sides = [
        ("nsnet", &nsnet, 18080),
        ("bridge+host-local+portmap", &reference, 28080),
    ];
    let mut adds = [Vec::new(), Vec::new()];
    let mut dels = [Vec::new(), Vec::new()];
    // Iteration 0 warms up (creates the bridges, firewall tables and iptables chains); the
    // sides alternate so both see the same machine state.
    for i in 0..=n {
        for (k, (label, list, port)) in sides.iter().enumerate() {
            let name = format!("b{k}x{i}");
            ip_netns(&["add", &name]);
            let rt = Runtime::new(&format!("{name}ctr"), &format!("/run/netns/{name}")).cap(
                "portMappings",
                json!([{"hostPort": port + i, "containerPort": 80, "protocol": "tcp"}]),
            );
            let t = Instant::now();
            let res = d
                .add(list, &rt)
                .unwrap_or_else(|e| panic!("{label} ADD: {e}"));
            let add = t.elapsed();
            let t = Instant::now();
            d.del(list, &rt, Some(&res))
                .unwrap_or_else(|e| panic!("{label} DEL: {e}"));
            let del = t.elapsed();
            ip_netns(&["del", &name]);
            if i > 0 {
                adds[k].push(add);
                dels[k].push(del);
            }
        }
    }
    println!("CNI ADD and DEL, {n} containers per side, one published port each (median / p90):");
    for (k, (label, _, _)) in sides.iter().enumerate() {
        println!(
            "  {label:<28} ADD {} / {}   DEL {} / {}",
            ms(median(adds[k].clone())),
            ms(p90(adds[k].clone())),
            ms(median(dels[k].clone())),
            ms(p90(dels[k].clone()))
        );
    }
    let ratio = |a: &[Duration], b: &[Duration]| {
        median(a.to_vec()).as_secs_f64() / median(b.to_vec()).as_secs_f64()
    };
    println!(
        "  nsnet / reference            ADD {:.2}x   DEL {:.2}x",
        ratio(&adds[0], &adds[1]),
        ratio(&dels[0], &dels[1])
    );
}
