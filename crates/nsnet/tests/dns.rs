//! Container names over DNS, end to end in sandboxes: the responder nsnet starts on the
//! gateways answers names and aliases (scoped to shared networks), AAAA, NODATA and PTR,
//! forwards other names to a fake upstream in an "outside" namespace and to a loopback one,
//! over UDP and TCP with truncation honoured, keeps answering while it reloads, comes back
//! after kill -9 with `gc`, and is gone once the last network with DNS is.

mod cnidriver;
mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cnidriver::{Conflist, Driver, Runtime};
use common::{Sandbox, root};
use serde_json::json;
use simple_dns::rdata::{A, RData};
use simple_dns::{CLASS, Name, Packet, PacketFlag, QCLASS, QTYPE, Question, RCODE, TYPE};

/// A reply as the tests look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    rcode: RCODE,
    /// A, AAAA and PTR data as text, in order.
    data: Vec<String>,
    truncated: bool,
}

fn query_bytes(name: &str, qtype: TYPE, id: u16) -> Vec<u8> {
    let mut p = Packet::new_query(id);
    p.set_flags(PacketFlag::RECURSION_DESIRED);
    p.questions.push(Question::new(
        Name::new_unchecked(name),
        QTYPE::TYPE(qtype),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    p.build_bytes_vec().unwrap()
}

fn parse_answer(bytes: &[u8], id: u16) -> Answer {
    let p = Packet::parse(bytes).unwrap();
    assert_eq!(p.id(), id, "answer to another query");
    Answer {
        rcode: p.rcode(),
        data: p
            .answers
            .iter()
            .map(|a| match &a.rdata {
                RData::A(x) => std::net::Ipv4Addr::from(x.address).to_string(),
                RData::AAAA(x) => std::net::Ipv6Addr::from(x.address).to_string(),
                RData::PTR(x) => x.0.to_string(),
                other => format!("{other:?}"),
            })
            .collect(),
        truncated: p.has_flags(PacketFlag::TRUNCATION),
    }
}

/// One query over UDP (or TCP) from namespace `ns` to `server`:53; None without an answer
/// within `timeout`.
fn ask_with(
    s: &Sandbox,
    ns: &str,
    server: &str,
    name: &str,
    qtype: TYPE,
    tcp: bool,
    timeout: Duration,
) -> Option<Answer> {
    let server = SocketAddr::new(server.parse().unwrap(), 53);
    let name = name.to_string();
    s.in_ns(ns, move || {
        let id = 0x4242;
        let q = query_bytes(&name, qtype, id);
        if tcp {
            let mut c = std::net::TcpStream::connect_timeout(&server, timeout).ok()?;
            c.set_read_timeout(Some(timeout)).unwrap();
            let mut out = (q.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(&q);
            c.write_all(&out).ok()?;
            let mut len = [0u8; 2];
            c.read_exact(&mut len).ok()?;
            let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
            c.read_exact(&mut buf).ok()?;
            Some(parse_answer(&buf, id))
        } else {
            let bind = if server.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let sock = UdpSocket::bind(bind).unwrap();
            sock.set_read_timeout(Some(timeout)).unwrap();
            sock.send_to(&q, server).ok()?;
            let mut buf = [0u8; 4096];
            let (n, _) = sock.recv_from(&mut buf).ok()?;
            Some(parse_answer(&buf[..n], id))
        }
    })
    .join()
    .unwrap()
}

/// One UDP query that must be answered within 3 s.
fn ask(s: &Sandbox, ns: &str, server: &str, name: &str, qtype: TYPE) -> Answer {
    ask_with(s, ns, server, name, qtype, false, Duration::from_secs(3))
        .unwrap_or_else(|| panic!("no answer from {server} to {name} (asked from {ns})"))
}

fn found(data: &[&str]) -> Answer {
    Answer {
        rcode: RCODE::NoError,
        data: data.iter().map(|d| d.to_string()).collect(),
        truncated: false,
    }
}

fn nxdomain() -> Answer {
    Answer {
        rcode: RCODE::NameError,
        data: vec![],
        truncated: false,
    }
}

/// Points the sandbox's /etc/resolv.conf (what the responder forwards to) at `text`, through
/// a file bind-mounted over it in the sandbox's mount namespace; later calls rewrite the file.
fn host_resolv_conf(s: &Sandbox, text: &str) {
    let file = s.state_dir().join("host-resolv.conf");
    let first = !file.exists();
    std::fs::write(&file, text).unwrap();
    if first {
        let r = s.sh(
            "mount",
            &["--bind", file.to_str().unwrap(), "/etc/resolv.conf"],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
}

/// front: dual stack, DNS on. back: internal, DNS on. web on both (alias www on front), db on
/// back (alias postgres), solo on front.
fn two_networks(s: &Sandbox) {
    s.ok(&[
        "network",
        "create",
        "front",
        "--subnet",
        "10.1.0.0/24",
        "--subnet",
        "fd01::/64",
    ]);
    s.ok(&[
        "network",
        "create",
        "back",
        "--subnet",
        "10.2.0.0/24",
        "--internal",
    ]);
    for ns in ["web", "db", "solo"] {
        s.ok(&["netns", "add", ns]);
    }
    s.ok(&["network", "connect", "front", "web", "--alias", "www"]);
    s.ok(&["network", "connect", "back", "web"]);
    s.ok(&["network", "connect", "back", "db", "--alias", "postgres"]);
    s.ok(&["network", "connect", "front", "solo"]);
    // Commands return once they signalled the responder: solo's name answered means the
    // last reload is done.
    assert!(
        eventually(3, || ask_with(
            s,
            "solo",
            "10.1.0.1",
            "solo",
            TYPE::A,
            false,
            Duration::from_secs(1)
        ) == Some(found(&["10.1.0.3"]))),
        "solo never resolved"
    );
}

/// Waits until `f` holds, up to `secs`.
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

#[test]
fn names_aliases_scoping_families_and_ptr() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    host_resolv_conf(&s, "nameserver 192.0.2.53\n");
    two_networks(&s);
    assert!(s.dns_pid().is_some(), "network create started no responder");

    // solo (front only) sees front's names, in any case, bare or under the search domain.
    let (solo, front_gw) = ("solo", "10.1.0.1");
    assert_eq!(
        ask(&s, solo, front_gw, "web", TYPE::A),
        found(&["10.1.0.2"])
    );
    assert_eq!(
        ask(&s, solo, front_gw, "WWW", TYPE::A),
        found(&["10.1.0.2"])
    );
    assert_eq!(
        ask(&s, solo, front_gw, "www", TYPE::AAAA),
        found(&["fd01::2"])
    );
    assert_eq!(
        ask(&s, solo, front_gw, "web.front.dns.nsnet", TYPE::A),
        found(&["10.1.0.2"])
    );
    assert_eq!(
        ask(&s, solo, "fd01::1", "web", TYPE::AAAA),
        found(&["fd01::2"])
    );
    assert_eq!(
        ask(&s, solo, front_gw, "solo", TYPE::AAAA),
        found(&["fd01::3"])
    );
    // Names of networks solo is not on do not exist for it.
    assert_eq!(ask(&s, solo, front_gw, "db.dns.nsnet", TYPE::A), nxdomain());
    assert_eq!(
        ask(&s, solo, front_gw, "postgres.dns.nsnet", TYPE::A),
        nxdomain()
    );
    assert_eq!(
        ask(&s, solo, front_gw, "web.back.dns.nsnet", TYPE::A),
        nxdomain()
    );
    // PTR for an address on a shared network.
    assert_eq!(
        ask(&s, solo, front_gw, "2.0.1.10.in-addr.arpa", TYPE::PTR),
        found(&["web.dns.nsnet"])
    );

    // db (back only) sees web by its back address, and its own alias.
    let (db, back_gw) = ("db", "10.2.0.1");
    assert_eq!(ask(&s, db, back_gw, "web", TYPE::A), found(&["10.2.0.2"]));
    assert_eq!(
        ask(&s, db, back_gw, "postgres", TYPE::A),
        found(&["10.2.0.3"])
    );
    // A name that exists without an address of that family: NODATA, not NXDOMAIN.
    assert_eq!(ask(&s, db, back_gw, "postgres", TYPE::AAAA), found(&[]));
    assert_eq!(ask(&s, db, back_gw, "www.dns.nsnet", TYPE::A), nxdomain());
    assert_eq!(ask(&s, db, back_gw, "solo.dns.nsnet", TYPE::A), nxdomain());
    // back is internal: nothing is forwarded for db.
    assert_eq!(ask(&s, db, back_gw, "example.org", TYPE::A), nxdomain());

    // web is on both: it sees both networks' names, NAME.NETWORK picks one.
    assert_eq!(
        ask(&s, "web", front_gw, "postgres", TYPE::A),
        found(&["10.2.0.3"])
    );
    assert_eq!(
        ask(&s, "web", front_gw, "solo", TYPE::A),
        found(&["10.1.0.3"])
    );
    assert_eq!(
        ask(&s, "web", back_gw, "web.back", TYPE::A),
        found(&["10.2.0.2"])
    );

    // What users see: inspect and dns ls.
    let eps = s.json(&["inspect", "web"])["networks"].clone();
    let names: Vec<String> = eps
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["names"].to_string())
        .collect();
    assert_eq!(names, [r#"["web","www"]"#, r#"["web"]"#]);
    let ls = s.json(&["dns", "ls"]);
    assert_eq!(ls["responder"].as_i64(), s.dns_pid().map(i64::from));
    assert_eq!(ls["names"].as_array().unwrap().len(), 4, "{ls}");
    let table = s.ok(&["dns", "ls"]);
    assert!(table.contains("postgres"), "{table}");

    // Disconnect and reconnect: the names follow without any restart.
    let pid = s.dns_pid();
    // (The command returns after its signal; the reload follows within milliseconds.)
    s.ok(&["network", "disconnect", "front", "solo"]);
    assert!(eventually(2, || ask(
        &s,
        "web",
        front_gw,
        "solo.dns.nsnet",
        TYPE::A
    ) == nxdomain()));
    s.ok(&["network", "connect", "front", "solo", "--alias", "lone"]);
    assert!(eventually(2, || ask(&s, "web", front_gw, "lone", TYPE::A)
        == found(&["10.1.0.3"])));
    assert_eq!(s.dns_pid(), pid, "a reload must not restart the responder");

    // Bad aliases are refused before anything changes.
    s.ok(&["netns", "add", "x"]);
    s.fails(
        1,
        &["network", "connect", "front", "x", "--alias", "a b"],
        &["invalid alias \"a b\""],
    );
    assert_eq!(s.json(&["inspect", "x"])["networks"], serde_json::json!([]));
}

#[test]
fn containers_resolve_through_their_gateway_and_the_firewall_admits_dns() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    host_resolv_conf(
        &s,
        "nameserver 192.0.2.53\nsearch corp.example\noptions ndots:1\n",
    );
    s.ok(&[
        "network",
        "create",
        "lan",
        "--subnet",
        "10.5.0.0/24",
        "--icc=false",
    ]);
    s.ok(&[
        "network",
        "create",
        "plain",
        "--subnet",
        "10.6.0.0/24",
        "--no-dns",
    ]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "api",
        "--network",
        "lan",
        "--alias",
        "backend",
        "--",
        "sleep",
        "300",
    ]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "cli",
        "--network",
        "lan",
        "--",
        "sleep",
        "300",
    ]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "old",
        "--network",
        "plain",
        "--",
        "sleep",
        "300",
    ]);
    let resolv = s.sh("cat", &["/etc/netns/cli/resolv.conf"]).stdout;
    assert!(resolv.contains("\nnameserver 10.5.0.1\n"), "{resolv}");
    assert!(
        resolv.contains("\nsearch dns.nsnet corp.example\n"),
        "{resolv}"
    );
    let plain = s.sh("cat", &["/etc/netns/old/resolv.conf"]).stdout;
    assert!(
        plain.contains("nameserver 192.0.2.53"),
        "--no-dns keeps the host's: {plain}"
    );

    // An admin's default-drop input chain that accepts nsnet's mark: DNS to the gateway
    // still works (on an icc=false network too), anything else to the gateway does not.
    let admin = "table inet admin { chain input { type filter hook input priority 0; policy drop; \
                 ct state established,related accept; ct mark & 0x01000000 == 0x01000000 accept; }; }";
    let r = s.sh("nft", &[admin]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The container's own resolver (busybox nslookup reads its resolv.conf): through the
    // search domain and the gateway.
    let r = s.nsnet(&["exec", "cli", "busybox", "nslookup", "-type=a", "backend"]);
    // (busybox goes on to the host's search domain, which the fake 192.0.2.53 never answers.)
    assert!(
        r.stdout
            .contains("Name:\tbackend.dns.nsnet\nAddress: 10.5.0.2\n"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(
        !s.ping("cli", "10.5.0.1"),
        "the admin's drop is not in place"
    );
    let tcp = ask_with(
        &s,
        "cli",
        "10.5.0.1",
        "api",
        TYPE::A,
        true,
        Duration::from_secs(3),
    );
    assert_eq!(
        tcp,
        Some(found(&["10.5.0.2"])),
        "DNS over TCP through the drop"
    );
    // An internal network too.
    s.ok(&[
        "network",
        "create",
        "sealed",
        "--subnet",
        "10.7.0.0/24",
        "--internal",
    ]);
    s.ok(&["netns", "add", "vault"]);
    s.ok(&[
        "network", "connect", "sealed", "vault", "--alias", "secrets",
    ]);
    assert!(eventually(2, || ask(
        &s,
        "vault",
        "10.7.0.1",
        "secrets",
        TYPE::A
    ) == found(&["10.7.0.2"])));
    assert!(
        !s.ping("vault", "10.7.0.1"),
        "the admin's drop is not in place"
    );
    s.ok(&["netns", "rm", "vault"]);
    s.ok(&["network", "rm", "sealed"]);
    s.ok(&["rm", "-f", "api", "cli", "old"]);
    s.ok(&["network", "rm", "lan"]);
    s.ok(&["network", "rm", "plain"]);
    assert!(eventually(3, || s.dns_pid().is_none()), "responder left");
}

/// A fake upstream: answers `example.test` A with 198.51.100.7 over UDP and TCP; `big.test`
/// over UDP with TC set and nothing else, over TCP with 40 addresses. Counts the queries it
/// received and stops with the flag.
struct Upstream {
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

fn upstream_answer(query: &[u8], udp: bool) -> Vec<u8> {
    let q = Packet::parse(query).unwrap();
    let mut r = Packet::new_reply(q.id());
    r.set_flags(PacketFlag::RECURSION_AVAILABLE);
    let question = q.questions[0].clone();
    let name = question.qname.to_string();
    r.questions.push(question.clone());
    match name.as_str() {
        "example.test" => r.answers.push(simple_dns::ResourceRecord::new(
            question.qname.clone(),
            CLASS::IN,
            60,
            RData::A(A {
                address: u32::from(std::net::Ipv4Addr::new(198, 51, 100, 7)),
            }),
        )),
        "big.test" if udp => r.set_flags(PacketFlag::TRUNCATION),
        "big.test" => {
            for i in 0..40u8 {
                r.answers.push(simple_dns::ResourceRecord::new(
                    question.qname.clone(),
                    CLASS::IN,
                    60,
                    RData::A(A {
                        address: u32::from(std::net::Ipv4Addr::new(198, 51, 100, i)),
                    }),
                ));
            }
        }
        _ => *r.rcode_mut() = RCODE::NameError,
    }
    r.build_bytes_vec().unwrap()
}

impl Upstream {
    fn start(s: &Sandbox, ns: &str, addr: &str) -> Upstream {
        let addr: IpAddr = addr.parse().unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let udp = {
            let (queries, stop, tx) = (queries.clone(), stop.clone(), tx.clone());
            s.in_ns(ns, move || {
                let sock = UdpSocket::bind(SocketAddr::new(addr, 53)).unwrap();
                sock.set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                tx.send(()).unwrap();
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, peer)) = sock.recv_from(&mut buf) {
                        queries.fetch_add(1, Ordering::Relaxed);
                        let _ = sock.send_to(&upstream_answer(&buf[..n], true), peer);
                    }
                }
            })
        };
        let tcp = {
            let (queries, stop) = (queries.clone(), stop.clone());
            s.in_ns(ns, move || {
                let l = TcpListener::bind(SocketAddr::new(addr, 53)).unwrap();
                l.set_nonblocking(true).unwrap();
                tx.send(()).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let Ok((mut c, _)) = l.accept() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    c.set_nonblocking(false).unwrap();
                    let mut len = [0u8; 2];
                    if c.read_exact(&mut len).is_err() {
                        continue;
                    }
                    let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                    if c.read_exact(&mut q).is_err() {
                        continue;
                    }
                    queries.fetch_add(1, Ordering::Relaxed);
                    let a = upstream_answer(&q, false);
                    let mut out = (a.len() as u16).to_be_bytes().to_vec();
                    out.extend_from_slice(&a);
                    let _ = c.write_all(&out);
                }
            })
        };
        rx.recv().unwrap();
        rx.recv().unwrap();
        Upstream {
            queries,
            stop,
            threads: vec![udp, tcp],
        }
    }

    fn count(&self) -> usize {
        self.queries.load(Ordering::Relaxed)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[test]
fn forwarding_to_outside_and_loopback_upstreams_udp_tcp_truncation() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.add_outside();
    host_resolv_conf(&s, "nameserver 203.0.113.2\n");
    two_networks(&s);
    let outside = Upstream::start(&s, "outside", "203.0.113.2");
    let gw = "10.1.0.1";
    assert_eq!(
        ask(&s, "solo", gw, "example.test", TYPE::A),
        found(&["198.51.100.7"])
    );
    assert_eq!(ask(&s, "solo", gw, "nothere.test", TYPE::A), nxdomain());
    assert_eq!(outside.count(), 2);
    // Truncated over UDP, as the upstream said; complete when the client asks over TCP.
    let udp = ask(&s, "solo", gw, "big.test", TYPE::A);
    assert!(udp.truncated && udp.data.is_empty(), "{udp:?}");
    let tcp = ask_with(
        &s,
        "solo",
        gw,
        "big.test",
        TYPE::A,
        true,
        Duration::from_secs(3),
    )
    .unwrap();
    assert_eq!(
        (tcp.rcode, tcp.data.len(), tcp.truncated),
        (RCODE::NoError, 40, false)
    );
    assert_eq!(outside.count(), 4);
    // Names of ours are never forwarded, nor anything from an internal-only client.
    assert_eq!(ask(&s, "solo", gw, "www", TYPE::A), found(&["10.1.0.2"]));
    assert_eq!(ask(&s, "solo", gw, "www", TYPE::MX), found(&[]));
    assert_eq!(
        ask(&s, "db", "10.2.0.1", "example.test", TYPE::A),
        nxdomain()
    );
    assert_eq!(outside.count(), 4);
    drop(outside);

    // A loopback stub on the host (127.0.0.53 style): reachable from the responder, which
    // runs in the host's namespace. resolv.conf is re-read when it changes.
    let stub = Upstream::start(&s, "host", "127.0.0.53");
    host_resolv_conf(&s, "nameserver 127.0.0.53\n");
    assert!(
        eventually(3, || ask(&s, "solo", gw, "example.test", TYPE::A)
            == found(&["198.51.100.7"])),
        "the loopback upstream was not used"
    );
    assert!(stub.count() >= 1);
    // A dead first upstream: the next one answers within the client's patience.
    host_resolv_conf(&s, "nameserver 203.0.113.99\nnameserver 127.0.0.53\n");
    let t = Instant::now();
    let a = ask_with(
        &s,
        "solo",
        gw,
        "example.test",
        TYPE::A,
        false,
        Duration::from_secs(5),
    );
    assert_eq!(a, Some(found(&["198.51.100.7"])));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn reload_under_load_loses_no_answer() {
    if !root() {
        return;
    }
    let s = Arc::new(Sandbox::new());
    host_resolv_conf(&s, "nameserver 192.0.2.53\n");
    two_networks(&s);
    let pid = s.dns_pid().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (s, stop) = (s.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut sent, mut answered) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                sent += 1;
                let a = ask_with(
                    &s,
                    "solo",
                    "10.1.0.1",
                    "web",
                    TYPE::A,
                    false,
                    Duration::from_secs(1),
                );
                if a == Some(found(&["10.1.0.2"])) {
                    answered += 1;
                }
            }
            (sent, answered)
        })
    };
    // Each connect and disconnect signals a reload.
    for i in 0..15 {
        let ns = format!("load{i}");
        s.ok(&["netns", "add", &ns]);
        s.ok(&["network", "connect", "front", &ns]);
        s.ok(&["network", "disconnect", "front", &ns]);
    }
    stop.store(true, Ordering::Relaxed);
    let (sent, answered) = client.join().unwrap();
    assert!(sent > 30, "only {sent} queries sent");
    assert_eq!(answered, sent, "answers lost during reloads");
    assert_eq!(s.dns_pid(), Some(pid));
}

#[test]
fn kill9_then_gc_restarts_and_last_network_stops_it() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    host_resolv_conf(&s, "nameserver 192.0.2.53\n");
    s.ok(&[
        "network",
        "create",
        "solo-net",
        "--subnet",
        "10.8.0.0/24",
        "--no-dns",
    ]);
    assert_eq!(s.dns_pid(), None, "no DNS network, no responder");
    two_networks(&s);
    let pid = s.dns_pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(eventually(3, || !alive(pid)));
    let lost = ask_with(
        &s,
        "solo",
        "10.1.0.1",
        "web",
        TYPE::A,
        false,
        Duration::from_millis(300),
    );
    assert_eq!(lost, None, "answered with the responder dead");
    s.ok(&["gc"]);
    let again = s.dns_pid().expect("gc did not restart the responder");
    assert_ne!(again, pid);
    assert_eq!(
        ask(&s, "solo", "10.1.0.1", "web", TYPE::A),
        found(&["10.1.0.2"])
    );
    // repair restarts it too.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(again),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(eventually(3, || !alive(again)));
    s.ok(&["repair"]);
    let third = s.dns_pid().expect("repair did not restart the responder");
    assert_eq!(
        ask(&s, "solo", "10.1.0.1", "www", TYPE::A),
        found(&["10.1.0.2"])
    );
    // Gone with the last network that has DNS; the one without does not keep it.
    s.ok(&["network", "rm", "front", "--force"]);
    assert!(alive(third), "back still has DNS");
    s.ok(&["network", "rm", "back", "--force"]);
    assert!(
        eventually(3, || !alive(third)),
        "responder outlived the last DNS network"
    );
    assert!(!s.state_dir().join("dns.pid").exists());
    s.ok(&["network", "rm", "solo-net"]);
    for ns in ["web", "db", "solo"] {
        s.ok(&["netns", "rm", ns]);
    }
    s.assert_clean();
}

#[test]
fn cni_dns_responder_key_aliases_and_result() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    host_resolv_conf(&s, "nameserver 192.0.2.53\n");
    let d = Driver::new(&s);
    let list = Conflist::single(
        "1.0.0",
        json!({
            "type": "nsnet",
            "name": "pods",
            "bridge": "cni-pods",
            "isGateway": true,
            "dnsResponder": true,
            "capabilities": {"aliases": true},
            "dns": {"search": ["corp.example"]},
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.89.0.0/24"}]]}
        }),
    );
    for ns in ["p1", "p2"] {
        s.ok(&["netns", "add", ns]);
    }
    let one = Runtime::new("ctr1", "/run/netns/p1").cap("aliases", json!({"pods": ["alpha"]}));
    let mut two = Runtime::new("ctr2", "/run/netns/p2");
    two.args.push(("IgnoreUnknown".into(), "1".into()));
    two.args.push(("K8S_POD_NAME".into(), "beta".into()));
    let res = d.add(&list, &one).unwrap();
    assert_eq!(
        res["dns"],
        json!({"nameservers": ["10.89.0.1"], "search": ["dns.nsnet", "corp.example"]})
    );
    let res2 = d.add(&list, &two).unwrap();
    assert!(s.dns_pid().is_some(), "ADD started no responder");
    assert!(eventually(2, || ask(
        &s,
        "p1",
        "10.89.0.1",
        "beta",
        TYPE::A
    ) == found(&["10.89.0.3"])));
    assert_eq!(
        ask(&s, "p2", "10.89.0.1", "alpha", TYPE::A),
        found(&["10.89.0.2"])
    );
    assert_eq!(
        ask(&s, "p1", "10.89.0.1", "beta", TYPE::A),
        found(&["10.89.0.3"])
    );
    // A CNI namespace is a path, not a name: only aliases are answered.
    let ls = s.json(&["dns", "ls"]);
    assert_eq!(ls["names"][0]["names"], json!(["alpha"]), "{ls}");
    d.del(&list, &one, Some(&res)).unwrap();
    assert!(eventually(2, || ask(
        &s,
        "p2",
        "10.89.0.1",
        "alpha.dns.nsnet",
        TYPE::A
    ) == nxdomain()));
    let pid = s.dns_pid().unwrap();
    // The last DEL removes the configuration's network, and the responder with it.
    d.del(&list, &two, Some(&res2)).unwrap();
    assert!(
        eventually(3, || !alive(pid)),
        "responder outlived the CNI network"
    );
    for ns in ["p1", "p2"] {
        s.ok(&["netns", "rm", ns]);
    }
    s.assert_clean();
}

#[test]
fn topology_file_dns_key() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    host_resolv_conf(&s, "nameserver 192.0.2.53\n");
    let file = s.state_dir().join("named.yaml");
    let text = "name: named\nnetworks:\n  svc:\n    subnets: [10.30.0.0/24]\n    dns: true\n\
                containers:\n  api:\n    command: [sleep, infinity]\n    networks: [svc]\n  \
                worker:\n    command: [sleep, infinity]\n    networks: [svc]\n";
    std::fs::write(&file, text).unwrap();
    let file = file.to_str().unwrap();
    s.ok(&["apply", "-f", file]);
    assert!(s.dns_pid().is_some(), "apply started no responder");
    let resolv = s.sh("cat", &["/etc/netns/worker/resolv.conf"]).stdout;
    assert!(resolv.contains("\nnameserver 10.30.0.1\n"), "{resolv}");
    assert!(eventually(2, || ask(
        &s,
        "worker",
        "10.30.0.1",
        "api",
        TYPE::A
    ) == found(&["10.30.0.2"])));
    assert!(s.ok(&["plan", "-f", file]).contains("no changes"));
    // The same network without the key is a different definition.
    std::fs::write(
        s.state_dir().join("plain.yaml"),
        text.replace("    dns: true\n", ""),
    )
    .unwrap();
    let plain = s.state_dir().join("plain.yaml");
    let plan = s.ok(&["plan", "-f", plain.to_str().unwrap()]);
    assert!(plan.contains("svc"), "{plan}");
    let pid = s.dns_pid().unwrap();
    s.ok(&["destroy", "-f", file]);
    assert!(
        eventually(3, || !alive(pid)),
        "responder outlived the file's network"
    );
    s.assert_clean();
}

/// A resolver already listening on the host's wildcard address (dnsmasq's default, real
/// dnsmasq here) does not keep the responder from answering on the gateways: it binds the
/// gateway's UDP port beside it (the more specific bind wins the queries), says in dns.log that
/// TCP is held, and takes TCP as soon as the resolver is gone.
#[test]
fn a_wildcard_resolver_on_the_host_leaves_the_gateways_udp_to_the_responder() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    host_resolv_conf(&s, "nameserver 192.0.2.53\n");
    let mut dnsmasq = s
        .command(
            "dnsmasq",
            &[
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--user=root",
                "--port=53",
                "--pid-file=",
                "--address=/dnsmasq.test/198.51.100.9",
            ],
        )
        .spawn()
        .expect("dnsmasq (dnsmasq-base, scripts/deps.sh)");
    let deadline = Instant::now() + Duration::from_secs(5);
    while ask_with(
        &s,
        "host",
        "127.0.0.1",
        "x.dnsmasq.test",
        TYPE::A,
        false,
        Duration::from_millis(200),
    )
    .is_none()
    {
        assert!(Instant::now() < deadline, "dnsmasq does not answer");
    }
    s.ok(&["network", "create", "front", "--subnet", "10.1.0.0/24"]);
    for ns in ["web", "solo"] {
        s.ok(&["netns", "add", ns]);
        s.ok(&["network", "connect", "front", ns]);
    }
    assert_eq!(
        ask(&s, "solo", "10.1.0.1", "web", TYPE::A),
        found(&["10.1.0.2"])
    );
    // dnsmasq still has the rest of the host.
    assert_eq!(
        ask(&s, "host", "127.0.0.1", "x.dnsmasq.test", TYPE::A),
        found(&["198.51.100.9"])
    );
    let log = std::fs::read_to_string(s.state_dir().join("dns.log")).unwrap_or_default();
    assert!(log.contains("serving UDP only"), "dns.log: {log}");
    let tcp = |timeout| ask_with(&s, "solo", "10.1.0.1", "web", TYPE::A, true, timeout);
    // TCP to the gateway reaches dnsmasq's wildcard listener, which does not know the name.
    assert_ne!(
        tcp(Duration::from_millis(500)),
        Some(found(&["10.1.0.2"])),
        "TCP served beside a wildcard TCP listener"
    );

    dnsmasq.kill().unwrap();
    dnsmasq.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(a) = tcp(Duration::from_millis(500)) {
            assert_eq!(a, found(&["10.1.0.2"]));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "TCP not taken after dnsmasq stopped"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for ns in ["web", "solo"] {
        s.ok(&["network", "disconnect", "front", ns]);
        s.ok(&["netns", "rm", ns]);
    }
    s.ok(&["network", "rm", "front"]);
    s.assert_clean();
}

/// `network create` starts the responder socket-activation style and returns without waiting
/// for it: the pidfile names the responder and its lock is held as soon as the command
/// returns, a reload signal sent at once waits for the responder's loop instead of killing it
/// (its default action), and a query sent at once (from the host) is answered from the socket
/// the command bound with the table the responder loads first, never lost or forwarded.
#[test]
fn a_responder_started_by_create_is_signalled_and_asked_at_once() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    host_resolv_conf(&s, "nameserver 192.0.2.53\n");
    s.ok(&["netns", "add", "solo"]);
    for round in 0..5 {
        let net = format!("n{round}");
        let subnet = format!("10.{}.0.0/24", 20 + round);
        let gw = format!("10.{}.0.1", 20 + round);
        s.ok(&["network", "create", &net, "--subnet", &subnet]);
        let pid = s
            .dns_pid()
            .expect("no responder named once create returned");
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(s.state_dir().join("dns.lock"))
            .unwrap();
        assert!(
            nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock).is_err(),
            "the responder's lock is free once create returned"
        );
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap();
        // Under the search domain: answered from the table the responder loads first, never
        // forwarded (the upstream is unreachable, so a forward would be SERVFAIL).
        assert_eq!(
            ask_with(
                &s,
                "host",
                &gw,
                "nobody.dns.nsnet",
                TYPE::A,
                false,
                Duration::from_secs(2)
            ),
            Some(nxdomain()),
            "round {round}: a query sent at once"
        );
        s.ok(&["network", "connect", &net, "solo"]);
        let addr = format!("10.{}.0.2", 20 + round);
        // The connect's reload is asynchronous (commands return once they signalled).
        assert!(
            eventually(3, || ask_with(
                &s,
                "solo",
                &gw,
                "solo",
                TYPE::A,
                false,
                Duration::from_secs(1)
            ) == Some(found(&[&addr]))),
            "round {round}: solo never resolved"
        );
        assert!(alive(pid), "a reload signal at once killed the responder");
        assert_eq!(s.dns_pid(), Some(pid), "another responder took over");
        s.ok(&["network", "disconnect", &net, "solo"]);
        s.ok(&["network", "rm", &net]);
        assert!(
            eventually(3, || !alive(pid)),
            "responder outlived the last DNS network"
        );
    }
    s.ok(&["netns", "rm", "solo"]);
    s.assert_clean();
}

/// A disconnect killed right after recording its intent leaves its endpoint `removing`, veth
/// and addresses still in place. The responder stops answering its name at its next reload
/// (here the one another connect signals), not a comparison later; `gc` then finishes it.
#[test]
fn a_name_whose_disconnect_died_is_not_answered_after_the_next_reload() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    host_resolv_conf(&s, "nameserver 192.0.2.53\n");
    s.ok(&["network", "create", "lan", "--subnet", "10.64.0.0/24"]);
    for ns in ["a", "b", "c"] {
        s.ok(&["netns", "add", ns]);
    }
    s.ok(&["network", "connect", "lan", "a", "--ip", "10.64.0.10"]);
    s.ok(&["network", "connect", "lan", "b", "--ip", "10.64.0.11"]);
    let asked = |name: &str| {
        ask_with(
            &s,
            "b",
            "10.64.0.1",
            name,
            TYPE::A,
            false,
            Duration::from_secs(1),
        )
    };
    assert!(
        eventually(3, || asked("a.dns.nsnet") == Some(found(&["10.64.0.10"]))),
        "a never resolved"
    );

    // Crash point 1: just before the disconnect's first kernel change, its intent committed.
    let killed = s
        .command(common::NSNET, &["network", "disconnect", "lan", "a"])
        .env("NSNET_CRASH_AT", "1")
        .output()
        .unwrap();
    assert_eq!(killed.status.code(), None, "the disconnect was not killed");
    let states: Vec<(String, String)> = s.json(&["network", "inspect", "lan"])["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap().to_string();
            (text("netns"), text("state"))
        })
        .collect();
    assert!(
        states.contains(&("a".to_string(), "removing".to_string())),
        "{states:?}"
    );

    s.ok(&["network", "connect", "lan", "c", "--ip", "10.64.0.12"]);
    // c answered: the responder reloaded after the kill, in one snapshot of the store.
    assert!(
        eventually(3, || asked("c") == Some(found(&["10.64.0.12"]))),
        "c never resolved"
    );
    assert_eq!(
        asked("a.dns.nsnet"),
        Some(nxdomain()),
        "a is answered while being removed"
    );

    s.ok(&["gc"]);
    assert_eq!(asked("a.dns.nsnet"), Some(nxdomain()));
    for ns in ["b", "c"] {
        s.ok(&["network", "disconnect", "lan", ns]);
    }
    s.ok(&["network", "rm", "lan"]);
    for ns in ["a", "b", "c"] {
        s.ok(&["netns", "rm", ns]);
    }
    s.assert_clean();
}
