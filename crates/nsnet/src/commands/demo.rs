//! `nsnet demo`: the seed's walkthrough, live, in a sandbox. Every step is an nsnet command,
//! printed with the raw `ip`/`iptables` command it replaces, and proven with traffic.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_sys::kernel::Kernel;
use nsnet_sys::live::LiveKernel;

use crate::sandbox::Sandbox;

struct Demo {
    exe: PathBuf,
    state_dir: PathBuf,
    step: usize,
}

impl Demo {
    fn section(&mut self, title: &str, seed: &[&str]) {
        self.step += 1;
        println!("\n== {}. {title}", self.step);
        for line in seed {
            println!("   seed: {line}");
        }
    }

    fn run_cmd(&self, shown: &str, cmd: &mut Command) -> Result<(bool, String)> {
        println!("$ {shown}");
        let out = cmd
            .env("NSNET_STATE_DIR", &self.state_dir)
            .output()
            .with_context(|| format!("run {shown}"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for line in text.lines() {
            println!("  {line}");
        }
        Ok((out.status.success(), text))
    }

    /// Runs `nsnet ARGS`; it must succeed.
    fn nsnet(&self, args: &[&str]) -> Result<String> {
        let shown = format!("nsnet {}", args.join(" "));
        let (ok, text) = self.run_cmd(&shown, Command::new(&self.exe).args(args))?;
        if !ok {
            anyhow::bail!("demo step failed: {shown}");
        }
        Ok(text)
    }

    /// Pings `dst` from `ns` ("host" for the sandbox's own namespace); `expect` says whether
    /// it must answer.
    fn ping(&self, ns: &str, dst: &str, expect: bool) -> Result<()> {
        // A reachable address gets several tries within 3 s (a loaded machine can lose the
        // first packet to a neighbour entry still being resolved); an unreachable one, one second.
        let ping: &[&str] = if expect {
            &["ping", "-c", "1", "-w", "3", "-i", "0.2", dst]
        } else {
            &["ping", "-c", "1", "-W", "1", dst]
        };
        let (ok, _) = if ns == "host" {
            self.run_cmd(&ping.join(" "), Command::new("ping").args(&ping[1..]))?
        } else {
            let mut args = vec!["netns", "exec", ns, "--"];
            args.extend(ping.iter().copied());
            self.run_cmd(
                &format!("nsnet {}", args.join(" ")),
                Command::new(&self.exe).args(&args),
            )?
        };
        match (ok, expect) {
            (true, true) => println!("   proof: {ns} reaches {dst}"),
            (false, false) => println!("   proof: {ns} cannot reach {dst}, as expected"),
            (true, false) => anyhow::bail!("{ns} reached {dst} but should not have"),
            (false, true) => anyhow::bail!("{ns} could not reach {dst}"),
        }
        Ok(())
    }
}

fn have_ping() -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("ping").exists()))
        .unwrap_or(false)
}

/// Real TCP between namespaces, in-process: a server thread in one namespace, a client
/// thread in another; the server reports the address its client came from.
mod traffic {
    use std::io::{Read, Write};
    use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
    use std::time::Duration;

    use anyhow::{Context, Result};

    fn in_ns<T: Send + 'static>(
        ns: &str,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> std::thread::JoinHandle<Result<T>> {
        let fd = nsnet_sys::netns::open(ns);
        std::thread::spawn(move || {
            let fd = fd?;
            nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).context("setns")?;
            f()
        })
    }

    /// Serves one connection in `server_ns` on `listen`, connects from `client_ns` to `dst`,
    /// checks the greeting, and returns the client address the server saw.
    pub fn tcp_exchange(
        server_ns: &str,
        listen: &str,
        client_ns: &str,
        dst: &str,
    ) -> Result<IpAddr> {
        let listen: SocketAddr = listen.parse()?;
        let dst: SocketAddr = dst.parse()?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let server = in_ns(server_ns, move || {
            let l = TcpListener::bind(listen).with_context(|| format!("listen on {listen}"))?;
            ready_tx.send(()).ok();
            let (mut s, peer) = l.accept()?;
            s.write_all(b"hello from nsnet demo")?;
            Ok(peer.ip())
        });
        ready_rx
            .recv_timeout(Duration::from_secs(3))
            .context("server did not start")?;
        let client = in_ns(client_ns, move || {
            let mut s = TcpStream::connect_timeout(&dst, Duration::from_secs(3))
                .with_context(|| format!("connect to {dst}"))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            let mut buf = String::new();
            s.read_to_string(&mut buf)?;
            anyhow::ensure!(buf == "hello from nsnet demo", "unexpected answer {buf:?}");
            Ok(())
        });
        client
            .join()
            .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
        server
            .join()
            .map_err(|_| anyhow::anyhow!("server thread panicked"))?
    }
}

pub fn run() -> Result<()> {
    if !have_ping() {
        anyhow::bail!(
            "the demo proves each step with ping: install it (Debian: apt-get install iputils-ping)"
        );
    }
    let sandbox = Sandbox::enter()?;
    // The sandbox's own namespace stands for the host: bring its loopback up.
    LiveKernel::new().apply(&KernelOp::LinkUp {
        ns: NsRef::Host,
        ifname: "lo".into(),
    })?;
    let mut d = Demo {
        exe: std::env::current_exe().context("find the nsnet binary")?,
        state_dir: sandbox.state_dir(),
        step: 0,
    };
    println!(
        "nsnet demo: the seed walkthrough in a throwaway sandbox (own network and mount namespaces)."
    );
    let result = walkthrough(&mut d);
    // A DNS responder the walkthrough's network started lives in the sandbox's namespaces,
    // which it would keep alive after this process: it goes with the demo, however it ended.
    if let Some(pid) = crate::dns::responder_pid(&d.state_dir) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    result?;
    println!("\nDone: every step proven with traffic; the sandbox disappears with this process.");
    drop(sandbox);
    Ok(())
}

fn walkthrough(d: &mut Demo) -> Result<()> {
    d.section(
        "Process namespace: a container sees only its own processes",
        &["docker run ... (a process in its own PID namespace; `ps` inside lists only its own)"],
    );
    d.nsnet(&["run", "-d", "--name", "pidbox", "--", "sleep", "300"])?;
    let inside = d.nsnet(&["exec", "pidbox", "--", "ps", "-e", "-o", "pid,comm"])?;
    let procs = inside
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count();
    anyhow::ensure!(procs <= 3, "the container sees {procs} processes");
    let ps = d.nsnet(&["ps"])?;
    anyhow::ensure!(ps.contains("pidbox"), "host does not list the container");
    println!(
        "   proof: inside, PID 1 is nsnet's init and only {procs} processes exist; the host sees the container's process in `nsnet ps`"
    );
    d.nsnet(&["rm", "-f", "pidbox"])?;

    d.section(
        "Network namespaces",
        &["ip netns add red", "ip netns add blue", "ip netns"],
    );
    d.nsnet(&["netns", "add", "red"])?;
    d.nsnet(&["netns", "add", "blue"])?;
    d.nsnet(&["netns", "ls"])?;
    let red = d.nsnet(&["inspect", "red"])?;
    anyhow::ensure!(
        !red.contains("veth") && red.contains("lo"),
        "red should hold only lo"
    );
    println!("   proof: inside red only lo exists: it is isolated from the host's interfaces");

    d.section(
        "Connect two namespaces with a veth pair",
        &[
            "ip link add veth-red type veth peer name veth-blue",
            "ip link set veth-red netns red; ip link set veth-blue netns blue",
            "ip -n red addr add 192.168.15.1/24 dev veth-red; ip -n blue addr add 192.168.15.2/24 dev veth-blue",
            "ip -n red link set veth-red up; ip -n blue link set veth-blue up",
        ],
    );
    d.nsnet(&[
        "link",
        "add",
        "red",
        "blue",
        "--ifname-a",
        "veth-red",
        "--ifname-b",
        "veth-blue",
        "--addr",
        "192.168.15.1/24",
        "--addr",
        "192.168.15.2/24",
    ])?;
    d.ping("red", "192.168.15.2", true)?;
    d.nsnet(&["link", "rm", "red", "blue"])?;
    d.ping("red", "192.168.15.2", false)?;

    d.section(
        "A virtual switch: Linux bridge v-net-0, gateway 192.168.15.5 for the host",
        &[
            "ip link add v-net-0 type bridge; ip link set dev v-net-0 up",
            "ip addr add 192.168.15.5/24 dev v-net-0",
            "ip link add veth-red type veth peer name veth-red-br (and blue)",
            "ip link set veth-red netns red; ip link set veth-red-br master v-net-0 (and blue)",
            "ip -n red addr add 192.168.15.1/24 dev veth-red; ... up",
        ],
    );
    d.ping("host", "192.168.15.1", false)?;
    d.nsnet(&[
        "network",
        "create",
        "v-net-0",
        "--subnet",
        "192.168.15.0/24",
        "--gateway",
        "192.168.15.5",
        "--bridge",
        "v-net-0",
    ])?;
    d.nsnet(&[
        "network",
        "connect",
        "v-net-0",
        "red",
        "--ip",
        "192.168.15.1",
    ])?;
    d.nsnet(&[
        "network",
        "connect",
        "v-net-0",
        "blue",
        "--ip",
        "192.168.15.2",
    ])?;
    d.ping("red", "192.168.15.2", true)?;
    d.ping("host", "192.168.15.1", true)?;
    d.nsnet(&["network", "inspect", "v-net-0"])?;

    d.section(
        "Routes through the host, with NAT: reach the host's LAN 192.168.1.0/24 from blue",
        &[
            "ip netns exec blue ip route add 192.168.1.0/24 via 192.168.15.5",
            "iptables -t nat -A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE",
        ],
    );
    // A LAN machine: a namespace joined to the host by a veth, 192.168.1.0/24. It has no
    // route back to 192.168.15.0/24: masquerade (on by default) makes that unnecessary.
    d.nsnet(&["netns", "add", "lan"])?;
    d.nsnet(&[
        "link",
        "add",
        "host",
        "lan",
        "--ifname-a",
        "eth-lan",
        "--ifname-b",
        "eth0",
        "--addr",
        "192.168.1.1/24",
        "--addr",
        "192.168.1.2/24",
    ])?;
    d.nsnet(&[
        "route",
        "add",
        "blue",
        "192.168.1.0/24",
        "via",
        "192.168.15.5",
    ])?;
    d.ping("blue", "192.168.1.2", true)?;
    d.nsnet(&["route", "ls", "blue"])?;
    println!(
        "   note: blue's default route via 192.168.15.5 was set by `network connect` (the seed's `ip route add default via 192.168.15.5`)."
    );

    d.section(
        "Connect to the internet: NAT masquerade hides blue behind the host",
        &["ip netns exec blue ping 8.8.8.8  (here the internet is a namespace holding 203.0.113.2)"],
    );
    d.nsnet(&["netns", "add", "internet"])?;
    d.nsnet(&[
        "link",
        "add",
        "host",
        "internet",
        "--ifname-a",
        "uplink0",
        "--ifname-b",
        "eth0",
        "--addr",
        "203.0.113.1/24",
        "--addr",
        "203.0.113.2/24",
    ])?;
    d.ping("blue", "203.0.113.2", true)?;
    println!("$ (tcp from blue to 203.0.113.2:8000; the server there reports its client)");
    let seen = traffic::tcp_exchange("internet", "203.0.113.2:8000", "blue", "203.0.113.2:8000")?;
    anyhow::ensure!(seen.to_string() == "203.0.113.1", "not masqueraded: {seen}");
    println!(
        "   proof: the internet host saw the connection come from {seen} (the host's uplink), not 192.168.15.2"
    );

    d.section(
        "Port forwarding: host port 80 to blue's port 80",
        &["iptables -t nat -A PREROUTING --dport 80 --to-destination 192.168.15.2:80 -j DNAT"],
    );
    d.nsnet(&["port", "add", "blue", "80:80"])?;
    d.nsnet(&["port", "ls"])?;
    println!(
        "$ (tcp from the internet host to the host's 203.0.113.1:80; a server in blue listens on :80)"
    );
    let seen = traffic::tcp_exchange("blue", "0.0.0.0:80", "internet", "203.0.113.1:80")?;
    anyhow::ensure!(
        seen.to_string() == "203.0.113.2",
        "unexpected client address {seen}"
    );
    println!("   proof: blue's server answered, and saw its client as {seen} (source preserved)");

    d.section(
        "Teardown: nothing left behind",
        &["ip netns del red; ip link del v-net-0; ..."],
    );
    d.nsnet(&["network", "rm", "v-net-0", "--force"])?;
    d.nsnet(&["netns", "rm", "red", "blue", "lan", "internet"])?;
    let left = d.nsnet(&["netns", "ls"])?;
    anyhow::ensure!(left.lines().count() <= 1, "namespaces left: {left}");
    let host = d.nsnet(&["inspect", "host"])?;
    anyhow::ensure!(
        !host.contains("v-net-0") && !host.contains("nsv"),
        "links left on the host"
    );
    let tables = nsnet_sys::nft::NftSocket::open()?.table_exists(
        nsnet_core::firewall::FAMILY_INET,
        nsnet_core::firewall::TABLE,
    )?;
    anyhow::ensure!(!tables, "firewall table left");
    println!("   proof: no namespace, bridge, veth, firewall table or state row left");
    Ok(())
}
