//! The CNI `bandwidth` capability with real traffic: a pod's rates to and from it, as
//! containerd spells them (go-cni's untagged `BandWidth`: `IngressRate`, `IngressBurst`...),
//! measured by TCP between the host and the pod against an unshaped pod on the same network
//! in the same run; the qdiscs (tbf on each veth end) go with the attachment on DEL. This
//! kernel has tbf but no netem; ifb exists but is not needed (see engine/bandwidth.rs).

mod cnidriver;
mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cnidriver::{Conflist, Driver, Runtime};
use common::{Sandbox, root};
use serde_json::{Value, json};

fn plugin() -> Value {
    json!({
        "type": "nsnet",
        "name": "pods",
        "bridge": "cni0",
        "isGateway": true,
        "ipMasq": true,
        "capabilities": {"portMappings": true, "bandwidth": true},
        "ipam": {
            "type": "host-local",
            "routes": [{"dst": "0.0.0.0/0"}],
            "ranges": [[{"subnet": "10.244.7.0/24"}]]
        }
    })
}

/// The pod in namespace `shaped`: 20 Mbit/s in, 10 Mbit/s out, with bursts of 25 KiB and
/// 12.5 KiB.
fn shaped_pod() -> Runtime {
    Runtime::new("shaped-pod", "/run/netns/shaped").cap(
        "bandwidth",
        json!({"IngressRate": 20_000_000, "IngressBurst": 204_800,
               "EgressRate": 10_000_000, "EgressBurst": 102_400}),
    )
}

/// Throughputs (Mbit/s) that `shaped_pod`'s limits allow, with room for a loaded machine.
fn assert_at_limits(to_pod: f64, from_pod: f64) {
    assert!(
        (10.0..24.0).contains(&to_pod),
        "to the pod: {to_pod} Mbit/s"
    );
    assert!(
        (5.0..12.0).contains(&from_pod),
        "from the pod: {from_pod} Mbit/s"
    );
}

/// Mbit/s a TCP sender in namespace `from` pushes for `secs` to a receiver listening in `to`
/// on `listen`, reached at `dst`.
fn throughput(s: &Sandbox, from: &str, to: &str, listen: &str, dst: &str, secs: f64) -> f64 {
    let listen: SocketAddr = listen.parse().unwrap();
    let dst: SocketAddr = dst.parse().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let receiver = s.in_ns(to, move || {
        let l = std::net::TcpListener::bind(listen).unwrap();
        tx.send(()).unwrap();
        let (mut c, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        let start = Instant::now();
        while let Ok(n) = c.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        (total, start.elapsed())
    });
    rx.recv().unwrap();
    s.in_ns(from, move || {
        let mut c = std::net::TcpStream::connect_timeout(&dst, Duration::from_secs(2)).unwrap();
        let chunk = vec![7u8; 1 << 14];
        let end = Instant::now() + Duration::from_secs_f64(secs);
        while Instant::now() < end && c.write_all(&chunk).is_ok() {}
    })
    .join()
    .unwrap();
    let (bytes, elapsed) = receiver.join().unwrap();
    bytes as f64 * 8.0 / elapsed.as_secs_f64() / 1e6
}

/// `tc qdisc show` of `dev` in `ns` ("host" for the sandbox).
fn qdiscs(s: &Sandbox, ns: &str, dev: &str) -> String {
    let r = if ns == "host" {
        s.sh("tc", &["qdisc", "show", "dev", dev])
    } else {
        s.nsnet(&["netns", "exec", ns, "--", "tc", "qdisc", "show", "dev", dev])
    };
    r.stdout
}

#[test]
fn bandwidth_capability_limits_both_directions_and_goes_with_del() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let d = Driver::new(&s);
    let list = Conflist::single("1.0.0", plugin());
    s.ok(&["netns", "add", "shaped"]);
    s.ok(&["netns", "add", "free"]);
    let shaped = shaped_pod();
    let free = Runtime::new("free-pod", "/run/netns/free");
    let res = d.add(&list, &shaped).unwrap_or_else(|e| panic!("{e}"));
    let free_res = d.add(&list, &free).unwrap_or_else(|e| panic!("{e}"));
    let ip = |r: &Value| {
        let a = r["ips"][0]["address"].as_str().unwrap();
        a.split('/').next().unwrap().to_string()
    };
    let (shaped_ip, free_ip) = (ip(&res), ip(&free_res));
    let host_if = res["interfaces"][1]["name"].as_str().unwrap().to_string();
    let on_host = qdiscs(&s, "host", &host_if);
    assert!(
        on_host.contains("tbf") && on_host.contains("rate 20Mbit"),
        "{on_host}"
    );
    let in_pod = qdiscs(&s, "shaped", "eth0");
    assert!(
        in_pod.contains("tbf") && in_pod.contains("rate 10Mbit"),
        "{in_pod}"
    );
    assert!(
        !qdiscs(&s, "free", "eth0").contains("tbf"),
        "the unshaped pod got a qdisc"
    );

    let secs = 1.5;
    let gw = "10.244.7.1";
    let free_in = throughput(
        &s,
        "host",
        "free",
        "0.0.0.0:5001",
        &format!("{free_ip}:5001"),
        secs,
    );
    let shaped_in = throughput(
        &s,
        "host",
        "shaped",
        "0.0.0.0:5001",
        &format!("{shaped_ip}:5001"),
        secs,
    );
    let free_out = throughput(
        &s,
        "free",
        "host",
        "0.0.0.0:5002",
        &format!("{gw}:5002"),
        secs,
    );
    let shaped_out = throughput(
        &s,
        "shaped",
        "host",
        "0.0.0.0:5003",
        &format!("{gw}:5003"),
        secs,
    );
    eprintln!(
        "bandwidth: to the pod {shaped_in:.1} Mbit/s (limit 20; unshaped pod {free_in:.0}, ratio {:.3}); \
         from the pod {shaped_out:.1} Mbit/s (limit 10; unshaped pod {free_out:.0}, ratio {:.3})",
        shaped_in / free_in,
        shaped_out / free_out
    );
    assert_at_limits(shaped_in, shaped_out);
    assert!(
        free_in > 3.0 * shaped_in && free_out > 3.0 * shaped_out,
        "unshaped {free_in}/{free_out}"
    );

    d.del(&list, &shaped, Some(&res)).unwrap();
    assert!(!s.host_links().contains(&host_if), "{host_if} outlived DEL");
    assert!(!qdiscs(&s, "shaped", "eth0").contains("tbf"));
    d.del(&list, &free, Some(&free_res)).unwrap();
    for ns in s.netns_files() {
        s.ok(&["netns", "rm", &ns]);
    }
    s.assert_clean();
}

#[test]
fn containerds_burst_and_refusals_leave_nothing() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let d = Driver::new(&s);
    let list = Conflist::single("1.0.0", plugin());
    s.ok(&["netns", "add", "p"]);
    // containerd gives a kubernetes.io/ingress-bandwidth annotation the burst 2^32-1 bits.
    let rt = Runtime::new("annotated", "/run/netns/p").cap(
        "bandwidth",
        json!({"IngressRate": 1_000_000, "IngressBurst": 4_294_967_295u64,
               "EgressRate": 0, "EgressBurst": 0}),
    );
    let res = d.add(&list, &rt).unwrap_or_else(|e| panic!("{e}"));
    let host_if = res["interfaces"][1]["name"].as_str().unwrap().to_string();
    // The kernel keeps the bucket as a time (537 MB at 1 Mbit/s is 4295 s) and dumps it in
    // 32-bit ticks, so `tc` shows a wrapped burst: only the rate is checked here.
    let q = qdiscs(&s, "host", &host_if);
    assert!(q.contains("tbf") && q.contains("rate 1Mbit"), "{q}");
    assert!(!qdiscs(&s, "p", "eth0").contains("tbf"));
    d.del(&list, &rt, Some(&res)).unwrap();
    // A rate without its burst is refused before anything is made.
    let bad = Runtime::new("bad", "/run/netns/p").cap("bandwidth", json!({"EgressRate": 1000}));
    let e = d.add(&list, &bad).unwrap_err();
    assert!(
        e.to_string()
            .contains("egressRate is set without its burst"),
        "{e}"
    );
    s.ok(&["netns", "rm", "p"]);
    s.assert_clean();
}

/// A pod's limits are recorded: CHECK reports a qdisc deleted behind nsnet's back, `nsnet
/// repair` puts both back (proven by traffic at the limit again), and the records go with DEL.
#[test]
fn repair_restores_deleted_limits_and_check_reports_them() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let d = Driver::new(&s);
    let list = Conflist::single("1.0.0", plugin());
    s.ok(&["netns", "add", "shaped"]);
    let rt = shaped_pod();
    let res = d.add(&list, &rt).unwrap_or_else(|e| panic!("{e}"));
    d.check(&list, &rt, &res).unwrap();
    let ip = res["ips"][0]["address"].as_str().unwrap();
    let ip = ip.split('/').next().unwrap().to_string();
    let host_if = res["interfaces"][1]["name"].as_str().unwrap().to_string();

    // Someone deletes both limits: CHECK names each, and the pod is unshaped.
    assert_eq!(
        s.sh("tc", &["qdisc", "del", "dev", &host_if, "root"]).code,
        0
    );
    assert_eq!(
        s.sh(
            "ip",
            &[
                "netns", "exec", "shaped", "tc", "qdisc", "del", "dev", "eth0", "root"
            ]
        )
        .code,
        0
    );
    let e = d.check(&list, &rt, &res).unwrap_err();
    assert_eq!(e.code, 100, "{e}");
    assert!(
        e.msg.contains(&format!(
            "{host_if} in netns host is shaped none, nsnet set rate 20mbit"
        )),
        "{}",
        e.msg
    );
    let unshaped = throughput(
        &s,
        "host",
        "shaped",
        "0.0.0.0:5011",
        &format!("{ip}:5011"),
        1.0,
    );

    let doctor = s.nsnet(&["doctor"]).stdout;
    assert!(
        doctor.contains("2 shaped interface(s) differ from the store")
            && doctor.contains("run nsnet repair"),
        "{doctor}"
    );
    let out = s.ok(&["repair"]);
    assert!(out.contains("2 shaped interface(s)"), "{out}");
    d.check(&list, &rt, &res).unwrap();
    let doctor = s.nsnet(&["doctor"]).stdout;
    assert!(
        doctor.contains("2 shaped interface(s), each as recorded"),
        "{doctor}"
    );
    assert!(qdiscs(&s, "host", &host_if).contains("rate 20Mbit"));
    assert!(qdiscs(&s, "shaped", "eth0").contains("rate 10Mbit"));
    let to_pod = throughput(
        &s,
        "host",
        "shaped",
        "0.0.0.0:5012",
        &format!("{ip}:5012"),
        1.5,
    );
    let from_pod = throughput(&s, "shaped", "host", "0.0.0.0:5013", "10.244.7.1:5013", 1.5);
    eprintln!(
        "after repair: to the pod {to_pod:.1} Mbit/s (limit 20; deleted limit {unshaped:.0}), \
         from the pod {from_pod:.1} (limit 10)"
    );
    assert_at_limits(to_pod, from_pod);
    assert!(
        unshaped > 3.0 * to_pod,
        "without its limit: {unshaped} Mbit/s"
    );

    d.del(&list, &rt, Some(&res)).unwrap();
    let out = s.ok(&["repair"]);
    assert!(out.contains("0 shaped interface(s)"), "{out}");
    for ns in s.netns_files() {
        s.ok(&["netns", "rm", &ns]);
    }
    s.assert_clean();
}
