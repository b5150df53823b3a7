//! Kubernetes through containerd's CRI, the way kubelet drives it: Version, Status,
//! RunPodSandbox with a hostPort (containerd runs CNI ADD with go-cni's untagged
//! `"HostPort"`), CreateContainer/StartContainer, PodSandboxStatus, then StopContainer,
//! RemoveContainer, StopPodSandbox (CNI DEL) and RemovePodSandbox. containerd 1.6 runs in a
//! sandbox with its own root, state, socket and configuration (`restrict_oom_score_adj`:
//! this VM's root lacks CAP_SYS_RESOURCE, and CRI sets -998 on sandboxes), images are built
//! offline (the pause image from the static catatonit, an httpd image from busybox-static),
//! and the client is tests/cri/client.py (Debian's python3-grpcio with messages protoc
//! compiles from tests/cri/cri.proto). The same pods run once with nsnet as the node's CNI
//! plugin and once with the reference bridge + portmap chain, each in its own sandbox, and
//! the pod start times of both are printed (see BENCHMARKS.md).

mod common;
mod engines;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{NSNET, Sandbox, root};
use engines::{assert_nothing_left, have, http_get_soon, oci_archive_running, rootfs};
use serde_json::{Value, json};

const PAUSE: &str = "localhost/pause:nsnet";
const HTTPD: &str = "localhost/httpd:nsnet";
const PYTHON: &str = "/usr/bin/python3";
const CATATONIT: &str = "/usr/bin/catatonit";
/// The node's pod CIDR, as the README's example gives it.
const POD_CIDR: &str = "10.244.1.0/24";
/// Pods per chain: the first serves HTTP on hostPort 8080, the second is its client; all are
/// timed.
const PODS: usize = 5;

/// The README's conflist for a Kubernetes node (with the test's state directory).
fn nsnet_conflist(state_dir: &Path) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": "k8s-pod-network",
        "plugins": [{
            "type": "nsnet",
            "bridge": "cni0",
            "isGateway": true,
            "ipMasq": true,
            "stateDir": state_dir,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": POD_CIDR}]],
                "routes": [{"dst": "0.0.0.0/0"}]
            },
            "capabilities": {"portMappings": true, "bandwidth": true}
        }]
    })
}

/// The reference chain kubelet's documentation shows: bridge, then portmap for hostPorts.
fn reference_conflist() -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": "k8s-pod-network",
        "plugins": [{
            "type": "bridge",
            "bridge": "cni0",
            "isGateway": true,
            "ipMasq": true,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": POD_CIDR}]],
                "routes": [{"dst": "0.0.0.0/0"}]
            }
        }, {
            "type": "portmap",
            "capabilities": {"portMappings": true},
            "snat": true
        }]
    })
}

/// Whether everything the test runs is installed; under CI a missing piece is a failure.
fn ready(test: &str) -> bool {
    if !root() {
        return false;
    }
    let needed = [
        "containerd",
        "containerd-shim-runc-v2",
        "ctr",
        "runc",
        "tar",
        "sha256sum",
        "protoc",
        "iptables",
        PYTHON,
        CATATONIT,
        engines::BUSYBOX,
    ];
    let mut ok = have(test, &needed);
    if ok {
        let grpc = Command::new(PYTHON)
            .args(["-c", "import grpc, google.protobuf"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !grpc {
            eprintln!(
                "SKIPPED {test}: python3-grpcio and python3-protobuf not installed (scripts/deps.sh installs them)"
            );
            ok = false;
        }
    }
    if !ok && std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{test}: a package it needs is missing and CI is set (run scripts/deps.sh)");
    }
    ok
}

/// containerd with its CRI plugin in a sandbox, and a CRI client on its socket.
struct Cri<'a> {
    s: &'a Sandbox,
    dir: tempfile::TempDir,
    daemon: Child,
    client: Child,
    to_client: ChildStdin,
    from_client: BufReader<ChildStdout>,
}

impl<'a> Cri<'a> {
    /// Starts containerd with `conflist` in its CNI configuration directory and `bin_dir`
    /// as its plugin directory, imports the two images and connects the client.
    fn start(s: &'a Sandbox, conflist: &Value, bin_dir: Option<&Path>) -> Cri<'a> {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let p = |sub: &str| d.join(sub).display().to_string();
        let bin = match bin_dir {
            Some(b) => b.to_path_buf(),
            None => {
                // nsnet, as an administrator installs it, and the loopback plugin CRI runs
                // for every pod's lo.
                let b = d.join("bin");
                std::fs::create_dir_all(&b).unwrap();
                std::os::unix::fs::symlink(NSNET, b.join("nsnet")).unwrap();
                std::os::unix::fs::symlink(
                    Path::new(engines::REFERENCE_DIR).join("loopback"),
                    b.join("loopback"),
                )
                .unwrap();
                b
            }
        };
        std::fs::create_dir_all(d.join("net.d")).unwrap();
        std::fs::write(
            d.join("net.d/10-k8s.conflist"),
            serde_json::to_string_pretty(conflist).unwrap(),
        )
        .unwrap();
        let conf = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = "{debug}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{bin}"
    conf_dir = "{confdir}"
    max_conf_num = 1
"#,
            root = p("root"),
            state = p("state"),
            sock = p("containerd.sock"),
            debug = p("debug.sock"),
            opt = p("opt"),
            bin = bin.display(),
            confdir = p("net.d"),
        );
        std::fs::write(d.join("config.toml"), conf).unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let daemon = s
            .command("containerd", &["--config", &p("config.toml")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let ctr = |args: &[&str]| {
            let sock = d.join("containerd.sock");
            let mut a = vec!["--address", sock.to_str().unwrap(), "--namespace", "k8s.io"];
            a.extend(args);
            s.command("ctr", &a)
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ctr(&["version"]).output().unwrap().status.success() {
            assert!(
                Instant::now() < deadline,
                "containerd did not start: {}",
                std::fs::read_to_string(d.join("containerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Images, offline: the pause image is catatonit in pause mode (what registry.k8s.io's
        // pause does), the workload busybox's httpd.
        let pause_root = d.join("pause-root");
        std::fs::create_dir_all(&pause_root).unwrap();
        std::fs::copy(CATATONIT, pause_root.join("catatonit")).unwrap();
        let images = [
            (pause_root, PAUSE, vec!["/catatonit", "-P"]),
            (rootfs(&d), HTTPD, vec!["sh"]),
        ];
        for (i, (root, name, cmd)) in images.iter().enumerate() {
            let archive = d.join(format!("image{i}.oci.tar"));
            oci_archive_running(root, name, &archive, cmd);
            engines::run_ok(
                ctr(&[
                    "image",
                    "import",
                    "--snapshotter",
                    "native",
                    archive.to_str().unwrap(),
                ]),
                &format!("import {name}"),
            );
        }
        // The client, on messages compiled from the test's proto.
        let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cri");
        let pb = d.join("pb");
        std::fs::create_dir_all(&pb).unwrap();
        let mut protoc = Command::new("protoc");
        protoc
            .arg(format!("--python_out={}", pb.display()))
            .arg(format!("-I{}", here.display()))
            .arg(here.join("cri.proto"));
        engines::run_ok(protoc, "protoc cri.proto");
        let mut client = Command::new(PYTHON)
            .arg(here.join("client.py"))
            .arg(d.join("containerd.sock"))
            .arg(&pb)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let to_client = client.stdin.take().unwrap();
        let from_client = BufReader::new(client.stdout.take().unwrap());
        Cri {
            s,
            dir,
            daemon,
            client,
            to_client,
            from_client,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// One CRI call; its response and how long it took, or the gRPC error.
    fn call(&mut self, method: &str, request: Value) -> Result<(Value, f64), String> {
        let line = json!({"method": method, "request": request}).to_string();
        writeln!(self.to_client, "{line}").unwrap();
        let mut answer = String::new();
        self.from_client.read_line(&mut answer).unwrap();
        let v: Value = serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("{method}: client said {answer:?}: {e}"));
        match v.get("error") {
            Some(e) => Err(e.as_str().unwrap_or_default().to_string()),
            None => Ok((v["ok"].clone(), v["seconds"].as_f64().unwrap())),
        }
    }

    fn ok(&mut self, method: &str, request: Value) -> (Value, f64) {
        self.call(method, request)
            .unwrap_or_else(|e| panic!("{method}: {e}\ncontainerd log:\n{}", tail(&self.log(), 30)))
    }
}

impl Drop for Cri<'_> {
    fn drop(&mut self) {
        // After a failure: no pod may outlive the test (kubelet's order: stop, then remove).
        if let Ok((pods, _)) = self.call("ListPodSandbox", json!({})) {
            for p in pods["items"].as_array().into_iter().flatten() {
                let id = json!({"pod_sandbox_id": p["id"]});
                let _ = self.call("StopPodSandbox", id.clone());
                let _ = self.call("RemovePodSandbox", id);
            }
        }
        let _ = self.client.kill();
        let _ = self.client.wait();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.daemon.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.daemon.wait();
        let _ = self.s;
        remove_cgroup_parent();
    }
}

/// The cgroup pods go under, as kubelet gives them `/kubepods/...`: one of this test
/// process, removed when it is empty (runc removes each container's own).
fn cgroup_parent() -> String {
    format!("/nsnet-cri-{}", std::process::id())
}

/// Removes the empty cgroup directories `cgroup_parent` left in every hierarchy.
fn remove_cgroup_parent() {
    let parent = cgroup_parent();
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut dirs = vec![PathBuf::from(format!("/sys/fs/cgroup{parent}"))];
    dirs.extend(hierarchies.flatten().map(|h| h.path().join(&parent[1..])));
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The sandbox config kubelet sends for pod `name` (its metadata, labels, DNS from the
/// cluster, the pod's namespaces), with `ports` as hostPort mappings.
fn pod_config(name: &str, logs: &Path, ports: &[(i32, i32)], annotations: Value) -> Value {
    let uid = format!("00000000-0000-4000-8000-{:012}", name.len() * 1000 + 7);
    json!({
        "metadata": {"name": name, "uid": format!("{uid}-{name}"), "namespace": "default", "attempt": 0},
        "hostname": name,
        "log_directory": logs.join(format!("default_{name}")).display().to_string(),
        "dns_config": {
            "servers": ["10.96.0.10"],
            "searches": ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"],
            "options": ["ndots:5"]
        },
        "port_mappings": ports.iter().map(|(host, container)| json!({
            "protocol": "TCP", "container_port": container, "host_port": host
        })).collect::<Vec<_>>(),
        "labels": {
            "io.kubernetes.pod.name": name,
            "io.kubernetes.pod.namespace": "default",
            "io.kubernetes.pod.uid": format!("{uid}-{name}")
        },
        "annotations": annotations,
        "linux": {
            "cgroup_parent": cgroup_parent(),
            "security_context": {"namespace_options": {"network": "POD", "pid": "CONTAINER", "ipc": "POD"}}
        }
    })
}

/// The network namespace file of a pod, from PodSandboxStatus's verbose info (the OCI spec
/// of its pause container).
fn netns_of(status: &Value) -> String {
    let info: Value = serde_json::from_str(status["info"]["info"].as_str().unwrap()).unwrap();
    info["runtimeSpec"]["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "network")
        .and_then(|n| n["path"].as_str())
        .unwrap()
        .to_string()
}

/// A pod as the test keeps it.
struct Pod {
    id: String,
    ip: String,
    netns: String,
    containers: Vec<String>,
}

/// What one chain's run measured.
struct Timing {
    run: Vec<f64>,
    start: Vec<f64>,
    stop: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Runs the pods of one chain in its own sandbox and checks them; returns the timings.
fn chain(name: &str, nsnet: bool) -> Timing {
    let s = Sandbox::with_private(&engines::PRIVATE);
    s.add_outside();
    let (conflist, bin) = if nsnet {
        (nsnet_conflist(s.state_dir()), None)
    } else {
        (
            reference_conflist(),
            Some(PathBuf::from(engines::REFERENCE_DIR)),
        )
    };
    let mut c = Cri::start(&s, &conflist, bin.as_deref());
    let logs = c.dir.path().join("pods");

    let (v, _) = c.ok("Version", json!({"version": "0.1.0"}));
    assert_eq!(v["runtime_name"], "containerd", "{v}");
    assert_eq!(v["runtime_api_version"], "v1", "{v}");
    // kubelet waits for NetworkReady: containerd has loaded the conflist.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (st, _) = c.ok("Status", json!({}));
        let ready = st["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|cond| cond["status"] == true);
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "{name}: runtime not ready: {st}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut timing = Timing {
        run: vec![],
        start: vec![],
        stop: vec![],
    };
    let mut pods = Vec::new();
    for i in 0..PODS {
        let pod = format!("pod{i}");
        let ports = [(8080 + i as i32, 80)];
        let config = pod_config(
            &pod,
            &logs,
            &ports,
            json!({"kubernetes.io/config.source": "api"}),
        );
        let (r, run_s) = c.ok(
            "RunPodSandbox",
            json!({"config": config, "runtime_handler": ""}),
        );
        let id = r["pod_sandbox_id"].as_str().unwrap().to_string();
        let container = json!({
            "pod_sandbox_id": id,
            "config": {
                "metadata": {"name": "web", "attempt": 0},
                "image": {"image": HTTPD},
                "command": ["httpd", "-f", "-p", "80", "-h", "/www"],
                "log_path": "web/0.log",
                "labels": {"io.kubernetes.container.name": "web"}
            },
            "sandbox_config": config
        });
        let (r, create_s) = c.ok("CreateContainer", container);
        let cid = r["container_id"].as_str().unwrap().to_string();
        let (_, start_s) = c.ok("StartContainer", json!({"container_id": cid}));
        let (st, _) = c.ok(
            "PodSandboxStatus",
            json!({"pod_sandbox_id": id, "verbose": true}),
        );
        assert_eq!(st["status"]["state"], "SANDBOX_READY", "{name}: {st}");
        let info: Value = serde_json::from_str(st["info"]["info"].as_str().unwrap()).unwrap();
        let cgroup = info["runtimeSpec"]["linux"]["cgroupsPath"]
            .as_str()
            .unwrap();
        assert!(
            cgroup.starts_with(&cgroup_parent()),
            "{name}: cgroup {cgroup}"
        );
        let ip = st["status"]["network"]["ip"].as_str().unwrap().to_string();
        assert!(ip.starts_with("10.244.1."), "{name}: pod {pod} got {ip}");
        timing.run.push(run_s);
        timing.start.push(run_s + create_s + start_s);
        pods.push(Pod {
            id,
            ip,
            netns: netns_of(&st),
            containers: vec![cid],
        });
    }
    let mut ips: Vec<&str> = pods.iter().map(|p| p.ip.as_str()).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), PODS, "{name}: pod IPs not distinct");
    if nsnet {
        // The store knows the same addresses CRI reports.
        let net = s.json(&["network", "inspect", "k8s-pod-network"]);
        let mut known: Vec<String> = net["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["addrs"][0]
                    .as_str()
                    .unwrap()
                    .split('/')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        known.sort();
        assert_eq!(known, ips, "{name}");
    }

    // Pod to pod, the hostPort from outside and from the host (its address and loopback).
    let client_ns = Path::new(&pods[1].netns)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let web = format!("{}:80", pods[0].ip);
    let hello = Some("hello\n".to_string());
    assert_eq!(
        http_get_soon(&s, &client_ns, &web),
        hello,
        "{name}: pod to pod"
    );
    for (from, to) in [
        ("outside", "203.0.113.1:8080"),
        ("host", "203.0.113.1:8080"),
        ("host", "127.0.0.1:8080"),
    ] {
        assert_eq!(
            http_get_soon(&s, from, to),
            hello,
            "{name}: hostPort from {from} to {to}"
        );
    }

    if nsnet {
        // A bandwidth annotation reaches nsnet as containerd's `bandwidth` capability.
        let config = pod_config(
            "limited",
            &logs,
            &[],
            json!({"kubernetes.io/ingress-bandwidth": "10M", "kubernetes.io/egress-bandwidth": "5M"}),
        );
        let (r, _) = c.ok("RunPodSandbox", json!({"config": config}));
        let id = r["pod_sandbox_id"].as_str().unwrap().to_string();
        let net = s.json(&["network", "inspect", "k8s-pod-network"]);
        let ep = net["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| {
                !pods.iter().any(|p| {
                    e["addrs"][0]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("{}/", p.ip))
                })
            })
            .unwrap()
            .clone();
        let host_if = ep["host_ifname"].as_str().unwrap();
        let q = s.sh("tc", &["qdisc", "show", "dev", host_if]).stdout;
        assert!(
            q.contains("tbf") && q.contains("rate 10Mbit"),
            "{name}: {q}"
        );
        let (st, _) = c.ok(
            "PodSandboxStatus",
            json!({"pod_sandbox_id": id, "verbose": true}),
        );
        let ns = netns_of(&st);
        let q = s
            .sh(
                "nsenter",
                &[&format!("--net={ns}"), "tc", "qdisc", "show", "dev", "eth0"],
            )
            .stdout;
        assert!(q.contains("tbf") && q.contains("rate 5Mbit"), "{name}: {q}");
        c.ok("StopPodSandbox", json!({"pod_sandbox_id": id}));
        c.ok("RemovePodSandbox", json!({"pod_sandbox_id": id}));
    }

    // kubelet's teardown: containers stopped and removed, then the sandbox stopped (CNI
    // DEL) and removed; StopPodSandbox twice, as kubelet may.
    for p in &pods {
        for cid in &p.containers {
            c.ok("StopContainer", json!({"container_id": cid, "timeout": 2}));
            c.ok("RemoveContainer", json!({"container_id": cid}));
        }
        let (_, stop_s) = c.ok("StopPodSandbox", json!({"pod_sandbox_id": p.id}));
        c.ok("StopPodSandbox", json!({"pod_sandbox_id": p.id}));
        c.ok("RemovePodSandbox", json!({"pod_sandbox_id": p.id}));
        timing.stop.push(stop_s);
    }
    let (left, _) = c.ok("ListPodSandbox", json!({}));
    assert_eq!(left["items"], json!([]), "{name}: pods left");
    assert!(
        http_get_soon(&s, "outside", "203.0.113.1:8080").is_none(),
        "{name}: the hostPort outlived its pod"
    );
    if nsnet {
        assert_nothing_left(&s, &["lo", "uplink0"], &["outside"], name);
    }
    timing
}

#[test]
fn kubelet_calls_through_containerds_cri_with_nsnet_and_the_reference_chain() {
    let test = "kubelet_calls_through_containerds_cri_with_nsnet_and_the_reference_chain";
    if !ready(test) {
        return;
    }
    let reference = chain("bridge+portmap", false);
    let ours = chain("nsnet", true);
    let ms = |v: &[f64]| median(v) * 1000.0;
    eprintln!(
        "CRI pod start, median of {PODS} pods with a hostPort (containerd 1.6, same run):\n\
         \x20 RunPodSandbox (CNI ADD inside): nsnet {:.0} ms, bridge+portmap {:.0} ms, ratio {:.2}\n\
         \x20 + CreateContainer + StartContainer: nsnet {:.0} ms, bridge+portmap {:.0} ms, ratio {:.2}\n\
         \x20 StopPodSandbox (CNI DEL inside): nsnet {:.0} ms, bridge+portmap {:.0} ms, ratio {:.2}",
        ms(&ours.run),
        ms(&reference.run),
        median(&ours.run) / median(&reference.run),
        ms(&ours.start),
        ms(&reference.start),
        median(&ours.start) / median(&reference.start),
        ms(&ours.stop),
        ms(&reference.stop),
        median(&ours.stop) / median(&reference.stop),
    );
}
