//! Containers (`nsnet run`, `exec`, `ps`, `logs`, `stop`, `rm`, `gc`) in sandboxes: PID and UTS
//! isolation seen from both sides, name resolution and traffic between containers, published
//! ports reached from an "outside" namespace, zombie reaping, teardown that leaves nothing,
//! and bad input refused without changing anything.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Run, Sandbox, root};

/// The container's init pid (on the host) as `ps` reports it.
fn pid_of(s: &Sandbox, name: &str) -> u32 {
    let list = s.json(&["ps"]);
    let c = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in ps: {list}"));
    c["pid"].as_u64().unwrap() as u32
}

/// The first address of a container.
fn addr_of(s: &Sandbox, name: &str) -> String {
    let list = s.json(&["ps", "-a"]);
    let c = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap();
    let cidr = c["networks"][0]["addrs"][0].as_str().unwrap();
    cidr.split('/').next().unwrap().to_string()
}

/// `nsnet exec NAME -- ARGS`, asserting success; returns stdout.
fn exec(s: &Sandbox, name: &str, args: &[&str]) -> String {
    let mut a = vec!["exec", name, "--"];
    a.extend(args);
    s.ok(&a)
}

/// State (and exit code) of a container in `ps -a`.
fn state_of(s: &Sandbox, name: &str) -> (String, Option<i64>) {
    let list = s.json(&["ps", "-a"]);
    let c = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in ps -a: {list}"));
    (c["state"].as_str().unwrap().into(), c["exit_code"].as_i64())
}

/// Waits until `cond` holds (up to 5 s).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// nsnet's firewall tables as text ("" when there are none).
fn ruleset(s: &Sandbox) -> String {
    s.sh("nft", &["list", "ruleset"]).stdout
}

/// Removes networks and checks nothing nsnet made is left (no table, link, netns, row, file).
fn teardown(s: &Sandbox, nets: &[&str]) {
    for n in nets {
        s.ok(&["network", "rm", n]);
    }
    assert!(!ruleset(s).contains("nsnet"), "tables left: {}", ruleset(s));
    s.assert_clean();
    let dir = s.state_dir().join("containers");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "container files left: {left:?}");
}

/// The one-line error of a failed command.
fn one_line(r: &Run) -> &str {
    let lines: Vec<&str> = r.stderr.trim().lines().collect();
    assert_eq!(lines.len(), 1, "not one line: {:?}", r.stderr);
    lines[0]
}

#[test]
fn pid_and_uts_namespaces_isolate_the_container() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["network", "create", "lan", "--subnet", "10.70.0.0/24"]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "lan",
        "--",
        "sleep",
        "300",
    ]);
    let pid = pid_of(&s, "web");

    // Inside: only the container's processes, its init as PID 1.
    let inside = exec(&s, "web", &["ps", "-eo", "pid=,comm="]);
    let procs: Vec<(u32, String)> = inside
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace();
            (
                w.next().unwrap().parse().unwrap(),
                w.next().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(procs.len(), 3, "{inside}");
    assert!(procs.contains(&(1, "nsnet-init".into())), "{inside}");
    assert!(procs.contains(&(2, "sleep".into())), "{inside}");
    assert!(procs.iter().all(|(p, _)| *p < 100), "{inside}");
    // PID 1's command line does not leak nsnet's arguments.
    let cmdline = exec(&s, "web", &["cat", "/proc/1/cmdline"]);
    assert_eq!(cmdline.trim_end_matches('\0'), "nsnet-init");

    // Outside: the host sees the init and, under it, the command in the container's netns.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "nsnet-init");
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let child: u32 = children.split_whitespace().next().unwrap().parse().unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{child}/comm"))
            .unwrap()
            .trim(),
        "sleep"
    );
    let host_ps = s.sh("ps", &["-eo", "pid="]).stdout;
    assert!(host_ps.lines().any(|l| l.trim() == child.to_string()));
    let netns = std::fs::read_link(format!("/proc/{child}/ns/net")).unwrap();
    let web_netns = s
        .in_ns("web", || {
            std::fs::read_link("/proc/thread-self/ns/net").unwrap()
        })
        .join()
        .unwrap();
    assert_eq!(netns, web_netns);
    assert_ne!(
        std::fs::read_link(format!("/proc/{child}/ns/pid")).unwrap(),
        std::fs::read_link("/proc/self/ns/pid").unwrap()
    );

    // Foreground: the command's exit code, its own hostname, a fresh /proc.
    let host_name = nix::unistd::gethostname().unwrap();
    let r = s.nsnet(&[
        "run",
        "--name",
        "fg",
        "--hostname",
        "box",
        "--",
        "sh",
        "-c",
        "hostname; ps -eo pid=; exit 7",
    ]);
    assert_eq!(r.code, 7, "{}{}", r.stdout, r.stderr);
    // The init, sh, and ps (hostname came and went).
    let lines: Vec<&str> = r.stdout.lines().map(str::trim).collect();
    assert_eq!(
        (lines.len(), &lines[..3]),
        (4, &["box", "1", "2"][..]),
        "{lines:?}"
    );
    assert_eq!(nix::unistd::gethostname().unwrap(), host_name);
    assert_eq!(exec(&s, "web", &["hostname"]).trim(), "web");
    // A foreground container releases its network when it ends, and stays listed.
    assert_eq!(state_of(&s, "fg"), ("exited".into(), Some(7)));
    assert!(!s.netns_files().contains(&"fg".to_string()));

    s.ok(&["rm", "fg"]);
    s.ok(&["rm", "-f", "web"]);
    teardown(&s, &["lan"]);
}

#[test]
fn containers_on_a_network_reach_each_other_by_address_and_by_name() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["network", "create", "lan", "--subnet", "10.71.0.0/24"]);
    for name in ["a", "b"] {
        s.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "lan",
            "--",
            "sleep",
            "300",
        ]);
    }
    let (ip_a, ip_b) = (addr_of(&s, "a"), addr_of(&s, "b"));
    let hosts = exec(&s, "a", &["cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{ip_b}\tb\n")), "{hosts}");
    assert!(hosts.contains(&format!("{ip_a}\ta\n")), "{hosts}");
    assert_eq!(
        exec(&s, "a", &["getent", "hosts", "b"])
            .split_whitespace()
            .next(),
        Some(ip_b.as_str())
    );
    exec(&s, "a", &["ping", "-c", "1", "-W", "2", &ip_b]);
    exec(&s, "a", &["ping", "-c", "1", "-W", "2", "b"]);
    exec(&s, "b", &["ping", "-c", "1", "-W", "2", "a"]);

    // TCP by name from the container's own process to a listener in b's namespace.
    let server = s.tcp_server("b", "0.0.0.0:9000");
    let got = exec(&s, "a", &["bash", "-c", "exec 3<>/dev/tcp/b/9000; cat <&3"]);
    assert_eq!(got, "hello");
    assert_eq!(server.peer().unwrap().to_string(), ip_a);

    // A container joining later appears in the running ones' hosts files (rewritten in
    // place under their bind mount), and disappears when it leaves.
    s.ok(&[
        "run",
        "-d",
        "--name",
        "c",
        "--network",
        "lan",
        "--",
        "sleep",
        "300",
    ]);
    let ip_c = addr_of(&s, "c");
    exec(&s, "a", &["ping", "-c", "1", "-W", "2", "c"]);
    assert!(exec(&s, "b", &["cat", "/etc/hosts"]).contains(&format!("{ip_c}\tc\n")));
    s.ok(&["rm", "-f", "c"]);
    let hosts = exec(&s, "a", &["cat", "/etc/hosts"]);
    assert!(!hosts.contains("\tc\n"), "{hosts}");
    assert!(hosts.contains(&format!("{ip_b}\tb\n")), "{hosts}");

    s.ok(&["rm", "-f", "a", "b"]);
    teardown(&s, &["lan"]);
}

#[test]
fn parallel_runs_all_end_up_in_every_hosts_file() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["network", "create", "lan", "--subnet", "10.78.0.0/24"]);
    let names: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
    std::thread::scope(|scope| {
        for n in &names {
            let s = &s;
            scope.spawn(move || {
                s.ok(&[
                    "run",
                    "-d",
                    "--name",
                    n,
                    "--network",
                    "lan",
                    "--",
                    "sleep",
                    "300",
                ]);
            });
        }
    });
    for n in &names {
        let hosts = exec(&s, n, &["cat", "/etc/hosts"]);
        for other in &names {
            assert!(
                hosts.contains(&format!("\t{other}\n")),
                "{n} lacks {other}: {hosts}"
            );
        }
    }
    std::thread::scope(|scope| {
        for n in &names {
            let s = &s;
            scope.spawn(move || s.ok(&["rm", "-f", n]));
        }
    });
    teardown(&s, &["lan"]);
}

/// Connects from `ns` to `dst` and returns what the server sent (None if nobody answered).
fn fetch(s: &Sandbox, ns: &str, dst: &str) -> Option<String> {
    let dst: SocketAddr = dst.parse().unwrap();
    s.in_ns(ns, move || {
        let mut c = std::net::TcpStream::connect_timeout(&dst, Duration::from_secs(2)).ok()?;
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = c.write_all(b"hi\n");
        let mut got = String::new();
        let _ = c.read_to_string(&mut got);
        Some(got)
    })
    .join()
    .unwrap()
}

#[test]
fn published_port_of_a_running_container_answers_from_outside() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.add_outside();
    s.ok(&["network", "create", "lan", "--subnet", "10.72.0.0/24"]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "lan",
        "-p",
        "8080:80",
        "--",
        "sleep",
        "300",
    ]);
    let ps = s.json(&["ps"]);
    assert_eq!(ps[0]["ports"][0]["host_port"], 8080, "{ps}");
    // The listener lives in the container's network namespace.
    let server = s.tcp_server("web", "0.0.0.0:80");
    assert_eq!(
        fetch(&s, "outside", "203.0.113.1:8080").as_deref(),
        Some("hello")
    );
    assert_eq!(server.peer().unwrap().to_string(), "203.0.113.2");
    assert!(ruleset(&s).contains("8080"));

    s.ok(&["rm", "-f", "web"]);
    assert!(!ruleset(&s).contains("8080"), "{}", ruleset(&s));
    s.ok(&["netns", "rm", "outside"]);
    teardown(&s, &["lan"]);
}

#[test]
fn the_init_reaps_orphans() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&[
        "run",
        "-d",
        "--name",
        "z",
        "--",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do (sleep 1 &); done; exec sleep 300",
    ]);
    let pid = pid_of(&s, "z");
    let children = || {
        let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
        text.split_whitespace()
            .map(|c| std::fs::read_to_string(format!("/proc/{c}/cmdline")).unwrap_or_default())
            .collect::<Vec<_>>()
    };
    // Once the command has exec'd `sleep 300`, the five orphans are the init's children too.
    eventually("the command to exec", || {
        children().contains(&"sleep\x00300\x00".to_string())
    });
    assert_eq!(children().len(), 6, "{:?}", children());
    // When they exit, the init reaps them: no zombie is left.
    eventually("the orphans to be reaped", || children().len() == 1);
    let stats = exec(&s, "z", &["ps", "-eo", "stat=,comm="]);
    assert!(
        !stats.lines().any(|l| l.trim_start().starts_with('Z')),
        "zombies: {stats}"
    );
    assert_eq!(stats.lines().count(), 3, "{stats}");
    s.ok(&["rm", "-f", "z"]);
    teardown(&s, &[]);
}

#[test]
fn stop_rm_and_gc_leave_nothing() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["network", "create", "lan", "--subnet", "10.73.0.0/24"]);
    let run = |name: &str, port: &str, cmd: &[&str]| {
        let mut a = vec![
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "lan",
            "-p",
            port,
            "--",
        ];
        a.extend(cmd);
        s.ok(&a);
    };

    // stop: SIGTERM reaches the command through the init; the network goes, the row stays.
    run("s1", "8081:80", &["sleep", "300"]);
    s.ok(&["stop", "s1"]);
    assert_eq!(state_of(&s, "s1"), ("exited".into(), Some(143)));
    assert!(s.netns_files().is_empty());
    assert_eq!(s.host_links(), ["lo", "nsbr-lan"]);
    assert!(!ruleset(&s).contains("8081"));
    assert!(s.json(&["ps"]).as_array().unwrap().is_empty());
    s.ok(&["rm", "s1"]);

    // A command that ignores SIGTERM is killed after --time.
    run(
        "s2",
        "8082:80",
        &["sh", "-c", "trap '' TERM; echo trapped; sleep 300"],
    );
    // `run -d` returns once the command runs, maybe before its shell installed the trap.
    let ready = Instant::now() + Duration::from_secs(5);
    while !s.ok(&["logs", "s2"]).contains("trapped") {
        assert!(Instant::now() < ready, "s2 never installed its trap");
        std::thread::sleep(Duration::from_millis(10));
    }
    let t = Instant::now();
    s.ok(&["stop", "--time", "1", "s2"]);
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert_eq!(state_of(&s, "s2"), ("exited".into(), Some(137)));
    s.ok(&["rm", "s2"]);

    // Killed from the host with SIGKILL: shows as exited; gc releases everything.
    run("s3", "8083:80", &["sleep", "300"]);
    let pid = pid_of(&s, "s3");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("s3 to exit", || state_of(&s, "s3").0 == "exited");
    // Exited on its own, unwatched: its network stays until gc.
    run("s4", "8084:80", &["sh", "-c", "echo bye; exit 3"]);
    eventually("s4 to exit", || {
        state_of(&s, "s4") == ("exited".into(), Some(3))
    });
    assert_eq!(s.ok(&["logs", "s4"]), "bye\n");
    assert!(ruleset(&s).contains("8083") && ruleset(&s).contains("8084"));
    let gc = s.ok(&["gc"]);
    assert!(gc.contains("removed container s3 (exited)"), "{gc}");
    assert!(gc.contains("removed container s4 (exited 3)"), "{gc}");
    assert!(s.json(&["ps", "-a"]).as_array().unwrap().is_empty());
    assert!(!ruleset(&s).contains("8083"));
    assert_eq!(s.ok(&["gc"]), "nothing to collect\n");

    // rm -f of a running container.
    run("s5", "8085:80", &["sleep", "300"]);
    let pid = pid_of(&s, "s5");
    s.fails(1, &["rm", "s5"], &["container s5 is running"]);
    s.ok(&["rm", "-f", "s5"]);
    // Dead: gone, or a zombie until its parent (the machine's init) reaps it.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        !stat.contains("(nsnet-init) ") || stat.contains("(nsnet-init) Z"),
        "s5's init survived rm -f: {stat}"
    );
    teardown(&s, &["lan"]);
}

#[test]
fn bad_input_is_refused_with_one_line_and_changes_nothing() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["network", "create", "lan", "--subnet", "10.74.0.0/24"]);
    s.ok(&[
        "network",
        "create",
        "internal",
        "--subnet",
        "10.75.0.0/24",
        "--internal",
    ]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "taken",
        "--network",
        "lan",
        "--",
        "sleep",
        "300",
    ]);
    s.ok(&["netns", "add", "plain"]);
    // A root whose only command cannot be executed: its interpreter is missing, which only
    // the kernel finds out, after the namespace and endpoint exist (they must be undone).
    let tree = tempfile::tempdir().unwrap();
    std::fs::create_dir(tree.path().join("bin")).unwrap();
    let broken = tree.path().join("bin/broken");
    std::fs::write(&broken, "#!/no/such/interpreter\n").unwrap();
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tree = tree.path().to_str().unwrap().to_string();

    let snapshot = |s: &Sandbox| {
        (
            s.host_links(),
            s.netns_files(),
            s.rows(),
            s.json(&["ps", "-a"]),
            ruleset(s),
        )
    };
    let before = snapshot(&s);
    let cases: &[(i32, &[&str], &str)] = &[
        (
            1,
            &["run", "--network", "nope", "--", "true"],
            "network nope not found",
        ),
        (
            1,
            &["run", "--name", "taken", "--", "true"],
            "container taken already exists",
        ),
        (
            1,
            &["run", "--name", "plain", "--", "true"],
            "netns plain already exists",
        ),
        (2, &["run", "--name", "x"], "run needs a command"),
        (2, &["run", "--name", "x", "--"], "run needs a command"),
        (
            1,
            &["run", "--", "no-such-command-x"],
            "command \"no-such-command-x\" not found",
        ),
        (
            1,
            &["run", "--rootfs", &tree, "--", "sh"],
            "command \"sh\" not found in",
        ),
        (
            1,
            &["run", "--rootfs", "/no/such/dir", "--", "sh"],
            "rootfs /no/such/dir",
        ),
        (
            1,
            &[
                "run",
                "--name",
                "half",
                "--network",
                "lan",
                "-p",
                "8090:80",
                "--rootfs",
                &tree,
                "--",
                "broken",
            ],
            "exec broken",
        ),
        (
            1,
            &["run", "--name", "a/b", "--", "true"],
            "invalid container name",
        ),
        (
            1,
            &["run", "--network", "lan:10.99.0.5", "--", "true"],
            "outside the network's subnets",
        ),
        (
            1,
            &["run", "--network", "lan:10.74.0.0.1", "--", "true"],
            "invalid container address",
        ),
        (
            1,
            &["run", "-p", "8080:80", "--", "true"],
            "published ports need a network to publish on: give one with --network",
        ),
        (
            1,
            &[
                "run",
                "--network",
                "internal",
                "-p",
                "8080:80",
                "--",
                "true",
            ],
            "internal",
        ),
        (
            1,
            &["run", "--network", "lan", "--network", "lan", "--", "true"],
            "given twice",
        ),
        (
            1,
            &["run", "--hostname", "bad host", "--", "true"],
            "invalid host name",
        ),
        (
            1,
            &["run", "-e", "=x", "--", "true"],
            "invalid environment variable",
        ),
        (
            1,
            &["exec", "nope", "--", "true"],
            "container nope not found",
        ),
        (1, &["logs", "nope"], "container nope not found"),
        (1, &["stop", "nope"], "container nope not found"),
        (1, &["rm", "nope"], "container nope not found"),
    ];
    for (code, args, needle) in cases {
        let r = s.nsnet(args);
        assert_eq!(r.code, *code, "nsnet {args:?}: {}{}", r.stdout, r.stderr);
        let line = one_line(&r);
        assert!(line.starts_with("error: "), "{line}");
        assert!(
            line.contains(needle),
            "nsnet {args:?}: {needle:?} not in {line:?}"
        );
        assert_eq!(snapshot(&s), before, "nsnet {args:?} changed something");
    }
    s.ok(&["rm", "-f", "taken"]);
    s.ok(&["netns", "rm", "plain"]);
    teardown(&s, &["lan", "internal"]);
}

/// A root holding busybox-static and a few of its applets, or None without busybox.
fn busybox_tree() -> Option<tempfile::TempDir> {
    let busybox = ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let tree = tempfile::tempdir().unwrap();
    let bin = tree.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::create_dir(tree.path().join("etc")).unwrap();
    std::fs::copy(busybox, bin.join("busybox")).unwrap();
    for applet in ["sh", "ls", "cat", "ps", "hostname", "nc", "ping", "sleep"] {
        symlink("/bin/busybox", bin.join(applet)).unwrap();
    }
    Some(tree)
}

#[test]
fn rootfs_pivots_into_a_busybox_tree() {
    if !root() {
        return;
    }
    let Some(tree) = busybox_tree() else {
        eprintln!("skipped: busybox (Debian package busybox-static) is not installed");
        return;
    };
    let root = tree.path().to_str().unwrap();
    let s = Sandbox::new();
    s.add_outside();
    s.ok(&["network", "create", "lan", "--subnet", "10.76.0.0/24"]);
    // The container sees only the tree: no host /usr, its own /proc, /dev and hosts file.
    let out = s.ok(&[
        "run",
        "--name",
        "look",
        "--rootfs",
        root,
        "--network",
        "lan",
        "--",
        "sh",
        "-c",
        "ls /; echo ---; ps -o pid,comm; echo ---; cat /etc/hosts; echo x > /dev/null",
    ]);
    let parts: Vec<&str> = out.split("---\n").collect();
    let dirs: Vec<&str> = parts[0].split_whitespace().collect();
    assert_eq!(dirs, ["bin", "dev", "etc", "proc", "sys"], "{out}");
    assert!(parts[1].contains("1 nsnet-init"), "{out}");
    assert!(parts[2].contains("\tlook\n"), "{out}");

    // A server of the container's own, reached by name from another container and through a
    // published port from outside.
    s.ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--rootfs",
        root,
        "--network",
        "lan",
        "-p",
        "8080:80",
        "--",
        "nc",
        "-ll",
        "-p",
        "80",
        "-e",
        "echo",
        "hello",
    ]);
    let mut got = None;
    eventually("the server to answer", || {
        got = fetch(&s, "outside", "203.0.113.1:8080").filter(|g| g.contains("hello"));
        got.is_some()
    });
    let r = s.nsnet(&[
        "run",
        "--name",
        "cli",
        "--rootfs",
        root,
        "--network",
        "lan",
        "--",
        "nc",
        "srv",
        "80",
    ]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "hello\n"), "{}", r.stderr);

    s.ok(&["rm", "-f", "srv", "cli", "look"]);
    s.ok(&["netns", "rm", "outside"]);
    teardown(&s, &["lan"]);
}

/// Median wall time from `nsnet run -d` to its return (the command exec'd, its network up,
/// proven by a ping right after), over several runs.
#[test]
fn run_detached_until_running_with_network_up() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["network", "create", "lan", "--subnet", "10.77.0.0/24"]);
    let mut times = Vec::new();
    for i in 0..9 {
        let name = format!("t{i}");
        let t = Instant::now();
        s.ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "lan",
            "--",
            "sleep",
            "300",
        ]);
        times.push(t.elapsed());
        assert!(s.ping("host", &addr_of(&s, &name)), "{name} unreachable");
    }
    times.sort();
    let median = times[times.len() / 2];
    eprintln!(
        "nsnet run -d until running with network up: median {:.1} ms (min {:.1}, max {:.1}, {} runs)",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        times.len()
    );
    assert!(median < Duration::from_secs(2), "median {median:?}");
    for i in 0..9 {
        s.ok(&["rm", "-f", &format!("t{i}")]);
    }
    teardown(&s, &["lan"]);
}
