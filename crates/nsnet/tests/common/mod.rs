//! Throwaway sandboxes for end-to-end tests: a holder process in new network and mount
//! namespaces (private tmpfs on /run and /etc/netns), commands run inside it with nsenter, and
//! a state directory on the test's side so rows can be counted. Nothing touches the machine's
//! own interfaces; everything dies with the holder.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use nsnet_store::Store;

/// The nsnet binary under test.
pub const NSNET: &str = env!("CARGO_BIN_EXE_nsnet");

/// Root is needed for namespaces: without it an end-to-end test skips, visibly, or fails when
/// `CI` is set (the one root check of every test, `nsnet_sys::testkit`).
pub fn root() -> bool {
    nsnet_sys::testkit::require_root(module_path!())
}

/// A running sandbox.
pub struct Sandbox {
    holder: Child,
    state: tempfile::TempDir,
}

/// What a command printed and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Sandbox {
    /// Starts a sandbox and waits until its mounts are in place.
    pub fn new() -> Sandbox {
        Sandbox::with_private(&[])
    }

    /// A sandbox that also hides each of `dirs` behind its own empty tmpfs, for programs
    /// with fixed paths (a runtime's /var/lib, /etc/cni, /opt/cni/bin, /dev/shm): what they
    /// write there stays in the sandbox and dies with it.
    pub fn with_private(dirs: &[&str]) -> Sandbox {
        // Mount points must exist to be covered (iproute2 creates /etc/netns too).
        let mut script = String::from(
            "mount -t tmpfs nsnet-test /run && mkdir -p /run/netns && \
             mount -t tmpfs nsnet-test /etc/netns && ip link set lo up && ",
        );
        for d in std::iter::once(&"/etc/netns").chain(dirs) {
            std::fs::create_dir_all(d).unwrap();
        }
        for d in dirs {
            script.push_str(&format!("mount -t tmpfs nsnet-test {d} && "));
        }
        script.push_str("echo ready && exec sleep 3600");
        let mut holder = Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                &script,
            ])
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("start sandbox holder (unshare)");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "sandbox failed to start");
        Sandbox {
            holder,
            state: tempfile::tempdir().unwrap(),
        }
    }

    /// The state directory (outside the sandbox, so the test can open the store).
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// The holder's pid: its namespaces are the sandbox's.
    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// A command run inside the sandbox.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("--target")
            .arg(self.holder.id().to_string())
            .args(["--net", "--mount", "--"])
            .arg(program)
            .args(args)
            .env("NSNET_STATE_DIR", self.state.path())
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null());
        c
    }

    /// Runs any program inside the sandbox.
    pub fn sh(&self, program: &str, args: &[&str]) -> Run {
        Run::from(self.command(program, args).output().unwrap())
    }

    /// Runs `nsnet ARGS` inside the sandbox.
    pub fn nsnet(&self, args: &[&str]) -> Run {
        self.sh(NSNET, args)
    }

    /// Runs `nsnet ARGS` and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.nsnet(args);
        assert_eq!(
            r.code,
            0,
            "nsnet {} failed: {}{}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
        r.stdout
    }

    /// Runs `nsnet ARGS --format json` and parses it.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["--format", "json"]);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// Runs `nsnet ARGS`, asserts it fails with `code` and that stderr contains each of `needles`.
    pub fn fails(&self, code: i32, args: &[&str], needles: &[&str]) -> String {
        let r = self.nsnet(args);
        assert_eq!(
            r.code,
            code,
            "nsnet {}: expected exit {code}, got {}: {}{}",
            args.join(" "),
            r.code,
            r.stdout,
            r.stderr
        );
        for n in needles {
            assert!(
                r.stderr.contains(n),
                "nsnet {}: {n:?} not in {:?}",
                args.join(" "),
                r.stderr
            );
        }
        // An error states its cause once: no ": "-separated clause of a line twice.
        for line in r.stderr.lines() {
            let clauses: Vec<&str> = line.split(": ").collect();
            for (i, c) in clauses.iter().enumerate() {
                assert!(
                    !clauses[..i].contains(c),
                    "nsnet {}: {c:?} stated twice in {line:?}",
                    args.join(" ")
                );
            }
        }
        r.stderr
    }

    /// Whether a ping from `ns` ("host" for the sandbox itself) to `dst` is answered within 2 s.
    pub fn ping(&self, ns: &str, dst: &str) -> bool {
        let mut args = vec![];
        if ns != "host" {
            args.extend(["netns", "exec", ns, "--"]);
        }
        // Up to 4 tries in 2 s: one lost first packet (ARP under a loaded CI machine) is not
        // what a reachability test is about.
        args.extend(["ping", "-c", "1", "-i", "0.5", "-w", "2", dst]);
        let r = if ns == "host" {
            self.sh("ping", &args[1..])
        } else {
            self.nsnet(&args)
        };
        r.code == 0
    }

    /// Interface names in the sandbox's own namespace.
    pub fn host_links(&self) -> Vec<String> {
        let r = self.sh("ip", &["-o", "link", "show"]);
        r.stdout
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap().to_string())
            .collect()
    }

    /// Namespace files under the sandbox's /run/netns.
    pub fn netns_files(&self) -> Vec<String> {
        let r = self.sh("ls", &["/run/netns"]);
        r.stdout.split_whitespace().map(str::to_string).collect()
    }

    /// Row counts of the state store, per table.
    pub fn rows(&self) -> Vec<(&'static str, i64)> {
        let mut store = Store::open(self.state.path()).unwrap();
        store.read(|tx| tx.row_counts()).unwrap()
    }

    /// Asserts nothing nsnet made is left: only lo in the sandbox, no namespace, no row.
    pub fn assert_clean(&self) {
        assert_eq!(self.host_links(), vec!["lo".to_string()], "links left");
        assert!(
            self.netns_files().is_empty(),
            "namespaces left: {:?}",
            self.netns_files()
        );
        for (table, n) in self.rows() {
            assert_eq!(n, 0, "{n} rows left in {table}");
        }
    }
}

/// Traffic helpers: servers and clients run on threads that joined a namespace of the sandbox
/// (through /proc/HOLDER/root, which shows the sandbox's private /run/netns).
impl Sandbox {
    fn ns_path(&self, ns: &str) -> String {
        if ns == "host" {
            format!("/proc/{}/ns/net", self.holder.id())
        } else {
            format!("/proc/{}/root/run/netns/{ns}", self.holder.id())
        }
    }

    /// Runs `f` on a new thread inside namespace `ns` ("host" for the sandbox itself).
    pub fn in_ns<T: Send + 'static>(
        &self,
        ns: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = self.ns_path(ns);
        std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
    }

    /// Starts a one-shot TCP server in `ns` on `addr`; it answers "hello" and yields the
    /// client's address as it saw it (None if nobody came within 3 s).
    pub fn tcp_server(&self, ns: &str, addr: &str) -> Server {
        let addr: std::net::SocketAddr = addr.parse().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = self.in_ns(ns, move || {
            // The previous one-shot server on this port has returned, but the kernel may take
            // a moment to let its socket go (seen rarely under load): retry briefly.
            let mut tries = 0;
            let l = loop {
                match std::net::TcpListener::bind(addr) {
                    Ok(l) => break l,
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 100 => {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    Err(e) => panic!("bind {addr}: {e}"),
                }
            };
            l.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
            while std::time::Instant::now() < deadline {
                match l.accept() {
                    Ok((mut s, peer)) => {
                        use std::io::Write;
                        s.set_nonblocking(false).unwrap();
                        let _ = s.write_all(b"hello");
                        return Some(peer);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
            None
        });
        rx.recv().unwrap();
        Server(handle)
    }

    /// Starts a one-shot UDP server in `ns`: answers the first datagram with "hello".
    pub fn udp_server(&self, ns: &str, addr: &str) -> Server {
        let addr: std::net::SocketAddr = addr.parse().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = self.in_ns(ns, move || {
            let s = std::net::UdpSocket::bind(addr).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
                .unwrap();
            tx.send(()).unwrap();
            let mut buf = [0u8; 64];
            let (_, peer) = s.recv_from(&mut buf).ok()?;
            s.send_to(b"hello", peer).ok()?;
            Some(peer)
        });
        rx.recv().unwrap();
        Server(handle)
    }

    /// Connects from `ns` to `dst` over TCP; true when the server answered "hello".
    pub fn tcp_hello(&self, ns: &str, dst: &str) -> bool {
        let dst: std::net::SocketAddr = dst.parse().unwrap();
        self.in_ns(ns, move || {
            use std::io::Read;
            let Ok(mut s) =
                std::net::TcpStream::connect_timeout(&dst, std::time::Duration::from_millis(1500))
            else {
                return false;
            };
            s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            buf == "hello"
        })
        .join()
        .unwrap()
    }

    /// Sends one datagram from `ns` to `dst`; true when "hello" came back.
    pub fn udp_hello(&self, ns: &str, dst: &str) -> bool {
        let dst: std::net::SocketAddr = dst.parse().unwrap();
        self.in_ns(ns, move || {
            let bind = if dst.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
            let s = std::net::UdpSocket::bind(bind).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_millis(1500)))
                .unwrap();
            if s.send_to(b"hi", dst).is_err() {
                return false;
            }
            let mut buf = [0u8; 16];
            matches!(s.recv_from(&mut buf), Ok((5, _))) && &buf[..5] == b"hello"
        })
        .join()
        .unwrap()
    }

    /// An "outside" namespace on the sandbox's uplink: the sandbox is 203.0.113.1 on
    /// `uplink0`, the outside host 203.0.113.2 (documentation addresses that exist only here).
    pub fn add_outside(&self) {
        self.ok(&["netns", "add", "outside"]);
        self.ok(&[
            "link",
            "add",
            "host",
            "outside",
            "--ifname-a",
            "uplink0",
            "--ifname-b",
            "eth0",
            "--addr",
            "203.0.113.1/24",
            "--addr",
            "203.0.113.2/24",
        ]);
    }

    /// IPv6 on the uplink of `add_outside`: the sandbox is 2001:db8::1, outside 2001:db8::2
    /// (documentation addresses), without DAD.
    pub fn add_outside_v6(&self) {
        for (ns, addr) in [("host", "2001:db8::1/64"), ("outside", "2001:db8::2/64")] {
            let dev = if ns == "host" { "uplink0" } else { "eth0" };
            let mut args = vec![];
            if ns != "host" {
                args.extend(["-n", ns]);
            }
            args.extend(["addr", "add", addr, "dev", dev, "nodad"]);
            assert_eq!(self.sh("ip", &args).code, 0);
        }
    }

    /// Sets br_netfilter's call-iptables switches in the sandbox (per namespace).
    pub fn br_netfilter(&self, on: bool) {
        let v = if on { "1" } else { "0" };
        for key in ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables"] {
            let r = self.sh(
                "sh",
                &["-c", &format!("echo {v} > /proc/sys/net/bridge/{key}")],
            );
            assert_eq!(r.code, 0, "{}", r.stderr);
        }
    }
}

/// A running one-shot server; `peer` waits for it and returns the client address it saw.
pub struct Server(std::thread::JoinHandle<Option<std::net::SocketAddr>>);

impl Server {
    /// The client address the server saw (None when nobody came).
    pub fn peer(self) -> Option<std::net::IpAddr> {
        self.0.join().unwrap().map(|a| a.ip())
    }
}

impl Sandbox {
    /// The pid of this sandbox's DNS responder, when one runs (checked against its command
    /// line, so a stale pidfile never names another process).
    pub fn dns_pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.state.path().join("dns.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let state = self.state.path().as_os_str().as_encoded_bytes();
        let ours =
            args.windows(2).any(|w| w == [b"dns".as_slice(), b"serve"]) && args.contains(&state);
        ours.then_some(pid)
    }
}

impl Sandbox {
    /// Processes other than the holder in the sandbox's network namespaces: its own and the
    /// named ones made in it (its private /run/netns, seen through the holder's root).
    /// Daemons a test started, directly or through nsnet (the DNS responder, Open vSwitch's
    /// two), and containers it ran and left running (`nsnet run -d`: their init is in a
    /// named namespace and a pid namespace of its own, which it takes down with it), whatever
    /// state directory they use and however the test ended.
    fn strays(&self) -> Vec<i32> {
        use std::os::unix::fs::MetadataExt;
        let holder = self.holder.id() as i32;
        let Ok(own) = std::fs::read_link(format!("/proc/{holder}/ns/net")) else {
            return Vec::new();
        };
        let mut ours = vec![own.to_string_lossy().into_owned()];
        if let Ok(named) = std::fs::read_dir(format!("/proc/{holder}/root/run/netns")) {
            ours.extend(
                named
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| format!("net:[{}]", m.ino())),
            );
        }
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        procs
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| *pid != holder)
            .filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/ns/net"))
                    .is_ok_and(|ns| ours.iter().any(|o| *o == *ns.to_string_lossy()))
            })
            .collect()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Tests run in network and mount namespaces, not a pid namespace: a daemon a test
        // started would outlive the holder and keep the sandbox's namespaces alive.
        for pid in self.strays() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
