//! Kubernetes through containerd's CRI, the way kubelet drives it: Version, Status,
//! RunPodSandbox with a hostPort (containerd runs CNI ADD with go-cni's untagged
//! `"HostPort"`), CreateContainer/StartContainer, PodSandboxStatus, then StopContainer,
//! RemoveContainer, StopPodSandbox (CNI DEL) and RemovePodSandbox. containerd 1.6 runs in a
//! sandbox with its own root, state, socket and configuration (`restrict_oom_score_adj`:
//! this VM's root lacks CAP_SYS_RESOURCE, and CRI sets -998 on sandboxes), images are built
//! offline (the pause image from the static catatonit, an httpd image from busybox-static),
//! and the client is tests/cri/client.py (Debian's python3-grpcio with messages protoc
//! compiles from tests/cri/cri.proto). The same pods run with nsnet as the node's CNI plugin
//! (the README's conflist) and with the reference bridge + portmap chain, each under its own
//! containerd in its own sandbox, their pods alternating, and the pod start times of both are
//! printed (see BENCHMARKS.md).

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
/// Pods per chain, all timed: each serves HTTP on its own hostPort; pod 1 is pod 0's client.
const PODS: usize = 7;

/// The README's conflist for a Kubernetes node, as written there, with the test's state
/// directory.
fn nsnet_conflist(state_dir: &Path) -> Value {
    let readme = include_str!("../../../README.md");
    let mut list: Value = readme
        .split("```json")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .find(|block| block.contains("\"k8s-pod-network\""))
        .map(|block| serde_json::from_str(block).expect("README conflist is JSON"))
        .expect("README has the Kubernetes node's conflist");
    let subnet = &list["plugins"][0]["ipam"]["ranges"][0][0]["subnet"];
    assert_eq!(subnet, POD_CIDR, "the README's pod CIDR");
    list["plugins"][0]["stateDir"] = json!(state_dir);
    list
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

/// What one chain's run measured, in seconds per pod.
#[derive(Default)]
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

/// One CNI configuration under its own containerd, in its own sandbox.
struct Chain<'a> {
    name: &'static str,
    nsnet: bool,
    s: &'a Sandbox,
    c: Cri<'a>,
    logs: PathBuf,
    pods: Vec<Pod>,
    timing: Timing,
}

impl<'a> Chain<'a> {
    /// containerd with the chain's conflist, up and NetworkReady (what kubelet waits for),
    /// after kubelet's first calls.
    fn start(name: &'static str, nsnet: bool, s: &'a Sandbox) -> Chain<'a> {
        s.add_outside();
        let (conflist, bin) = if nsnet {
            (nsnet_conflist(s.state_dir()), None)
        } else {
            (
                reference_conflist(),
                Some(PathBuf::from(engines::REFERENCE_DIR)),
            )
        };
        let mut c = Cri::start(s, &conflist, bin.as_deref());
        let logs = c.dir.path().join("pods");
        let (v, _) = c.ok("Version", json!({"version": "0.1.0"}));
        assert_eq!(v["runtime_name"], "containerd", "{v}");
        assert_eq!(v["runtime_api_version"], "v1", "{v}");
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
        Chain {
            name,
            nsnet,
            s,
            c,
            logs,
            pods: Vec::new(),
            timing: Timing::default(),
        }
    }

    /// Pod `i` with hostPort 8080+i to its port 80, running httpd, as kubelet starts it.
    fn run_pod(&mut self, i: usize) {
        let name = self.name;
        let pod = format!("pod{i}");
        let ports = [(8080 + i as i32, 80)];
        let config = pod_config(
            &pod,
            &self.logs,
            &ports,
            json!({"kubernetes.io/config.source": "api"}),
        );
        let c = &mut self.c;
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
        self.timing.run.push(run_s);
        self.timing.start.push(run_s + create_s + start_s);
        self.pods.push(Pod {
            id,
            ip,
            netns: netns_of(&st),
            containers: vec![cid],
        });
    }

    /// Distinct pod IPs (nsnet's store agrees), pod to pod, and pod 0's hostPort from
    /// outside, from the host's address and from its loopback.
    fn check_traffic(&self) {
        let (name, s) = (self.name, self.s);
        let mut ips: Vec<&str> = self.pods.iter().map(|p| p.ip.as_str()).collect();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), self.pods.len(), "{name}: pod IPs not distinct");
        if self.nsnet {
            let net = s.json(&["network", "inspect", "k8s-pod-network"]);
            let mut known: Vec<String> = net["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    let a = e["addrs"][0].as_str().unwrap();
                    a.split('/').next().unwrap().to_string()
                })
                .collect();
            known.sort();
            assert_eq!(known, ips, "{name}: the store's addresses");
        }
        let client_ns = Path::new(&self.pods[1].netns)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let web = format!("{}:80", self.pods[0].ip);
        let hello = Some("hello\n".to_string());
        assert_eq!(
            http_get_soon(s, &client_ns, &web),
            hello,
            "{name}: pod to pod"
        );
        for (from, to) in [
            ("outside", "203.0.113.1:8080"),
            ("host", "203.0.113.1:8080"),
            ("host", "127.0.0.1:8080"),
        ] {
            assert_eq!(
                http_get_soon(s, from, to),
                hello,
                "{name}: hostPort from {from} to {to}"
            );
        }
    }

    /// A pod with bandwidth annotations gets nsnet's qdiscs (containerd's `bandwidth`
    /// capability), then goes.
    fn check_bandwidth(&mut self) {
        let name = self.name;
        let annotations = json!({
            "kubernetes.io/ingress-bandwidth": "10M",
            "kubernetes.io/egress-bandwidth": "5M"
        });
        let config = pod_config("limited", &self.logs, &[], annotations);
        let (r, _) = self.c.ok("RunPodSandbox", json!({"config": config}));
        let id = r["pod_sandbox_id"].as_str().unwrap().to_string();
        let (st, _) = self.c.ok(
            "PodSandboxStatus",
            json!({"pod_sandbox_id": id, "verbose": true}),
        );
        let ip = st["status"]["network"]["ip"].as_str().unwrap();
        let net = self.s.json(&["network", "inspect", "k8s-pod-network"]);
        let ep = net["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| {
                e["addrs"][0]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{ip}/"))
            })
            .unwrap_or_else(|| panic!("{name}: no endpoint for {ip}: {net}"))
            .clone();
        let host_if = ep["host_ifname"].as_str().unwrap();
        let q = self.s.sh("tc", &["qdisc", "show", "dev", host_if]).stdout;
        assert!(
            q.contains("tbf") && q.contains("rate 10Mbit"),
            "{name}: {q}"
        );
        let netns = format!("--net={}", netns_of(&st));
        let q = self
            .s
            .sh("nsenter", &[&netns, "tc", "qdisc", "show", "dev", "eth0"])
            .stdout;
        assert!(q.contains("tbf") && q.contains("rate 5Mbit"), "{name}: {q}");
        self.c.ok("StopPodSandbox", json!({"pod_sandbox_id": id}));
        self.c.ok("RemovePodSandbox", json!({"pod_sandbox_id": id}));
    }

    /// kubelet's teardown of pod `i`: containers stopped and removed, then the sandbox
    /// stopped (CNI DEL; twice, as kubelet may) and removed.
    fn remove_pod(&mut self, i: usize) {
        let p = &self.pods[i];
        for cid in &p.containers {
            self.c
                .ok("StopContainer", json!({"container_id": cid, "timeout": 2}));
            self.c.ok("RemoveContainer", json!({"container_id": cid}));
        }
        let id = json!({"pod_sandbox_id": p.id});
        let (_, stop_s) = self.c.ok("StopPodSandbox", id.clone());
        self.c.ok("StopPodSandbox", id.clone());
        self.c.ok("RemovePodSandbox", id);
        self.timing.stop.push(stop_s);
    }

    /// No pod left in containerd, the hostPort closed, and (nsnet) nothing left at all.
    fn check_gone(&mut self) {
        let name = self.name;
        let (left, _) = self.c.ok("ListPodSandbox", json!({}));
        assert_eq!(left["items"], json!([]), "{name}: pods left");
        assert!(
            engines::http_get(self.s, "outside", "203.0.113.1:8080").is_none(),
            "{name}: the hostPort outlived its pod"
        );
        if self.nsnet {
            assert_nothing_left(self.s, &["lo", "uplink0"], &["outside"], name);
        }
    }
}

#[test]
fn kubelet_calls_through_containerds_cri_with_nsnet_and_the_reference_chain() {
    let test = "kubelet_calls_through_containerds_cri_with_nsnet_and_the_reference_chain";
    if !ready(test) {
        return;
    }
    let sandboxes = [
        Sandbox::with_private(&engines::PRIVATE),
        Sandbox::with_private(&engines::PRIVATE),
    ];
    let mut chains = [
        Chain::start("bridge+portmap", false, &sandboxes[0]),
        Chain::start("nsnet", true, &sandboxes[1]),
    ];
    // Pods of both chains alternate, so a load that comes and goes on the machine weighs on
    // both alike.
    for i in 0..PODS {
        for ch in chains.iter_mut() {
            ch.run_pod(i);
        }
    }
    for ch in chains.iter_mut() {
        ch.check_traffic();
        if ch.nsnet {
            ch.check_bandwidth();
        }
    }
    for i in 0..PODS {
        for ch in chains.iter_mut() {
            ch.remove_pod(i);
        }
    }
    for ch in chains.iter_mut() {
        ch.check_gone();
    }
    let [reference, ours] = &chains;
    let (r, o) = (&reference.timing, &ours.timing);
    let line = |what: &str, o: &[f64], r: &[f64]| {
        format!(
            "  {what}: nsnet {:.0} ms, bridge+portmap {:.0} ms, ratio {:.2}",
            median(o) * 1000.0,
            median(r) * 1000.0,
            median(o) / median(r)
        )
    };
    eprintln!(
        "CRI pod start, median of {PODS} pods with a hostPort each, chains alternating (containerd 1.6, same run):\n{}\n{}\n{}",
        line("RunPodSandbox (CNI ADD inside)", &o.run, &r.run),
        line(
            "RunPodSandbox + CreateContainer + StartContainer",
            &o.start,
            &r.start
        ),
        line("StopPodSandbox (CNI DEL inside)", &o.stop, &r.stop),
    );
}
