//! The guides in docs/ run as written. In any `docs/*.md`:
//!
//! - a fenced block whose info string is `sh test` is run, in document order, by one
//!   `bash -euo pipefail` script (so a failed `ping` or `curl` in the guide fails its test);
//!   plain `sh` blocks (installation, image pulls) are shown but not run;
//! - a fenced block with `file=NAME` in its info string (```` ```yaml file=lab.yaml ````) is
//!   written to NAME in the script's working directory before the script runs;
//! - `<!-- doc-test: env=NAME -->` picks the environment the guide assumes (default `plain`):
//!   a sandbox with nsnet on PATH and its default state directory, plus what `NAME` sets up
//!   (an engine configured as the guide says, an image under its usual name, a daemon).
//!
//! Every run happens in a throwaway sandbox (private /run, /etc/netns, /var/lib, /etc/cni,
//! /opt, /dev/shm), and must leave no nsnet network and no namespace behind: a guide ends by
//! tearing down what it made. A guide joins by getting a `doc!` line below; a test fails when a
//! guide with `sh test` blocks has none, or when the README does not link a guide.

mod common;
mod engines;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{NSNET, Sandbox};

/// One test per guide.
macro_rules! doc {
    ($test:ident, $file:literal) => {
        #[test]
        fn $test() {
            run_doc($file);
        }
    };
}

doc!(walkthrough, "walkthrough.md");
doc!(topology_lab, "topology.md");
doc!(podman_cni, "podman-cni.md");
doc!(containerd_ctr, "containerd.md");

/// The guides the `doc!` lines above run (kept in step by `every_guide_runs`).
const GUIDES: [&str; 4] = [
    "walkthrough.md",
    "topology.md",
    "podman-cni.md",
    "containerd.md",
];

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

/// A guide, cut into what the harness needs.
#[derive(Debug, Default, PartialEq)]
struct Guide {
    env: String,
    script: String,
    files: Vec<(String, String)>,
}

/// Reads the marked blocks and the environment directive of a guide's text.
fn parse(text: &str) -> Guide {
    let mut g = Guide {
        env: "plain".into(),
        ..Guide::default()
    };
    let mut block: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some((info, body)) = &mut block {
            if line.trim_start().starts_with("```") {
                let words: Vec<&str> = info.split_whitespace().collect();
                if words.first() == Some(&"sh") && words.contains(&"test") {
                    g.script.push_str(body);
                } else if let Some(name) = words.iter().find_map(|w| w.strip_prefix("file=")) {
                    g.files.push((name.to_string(), body.clone()));
                }
                block = None;
            } else {
                body.push_str(line);
                body.push('\n');
            }
        } else if let Some(info) = line.trim_start().strip_prefix("```") {
            block = Some((info.to_string(), String::new()));
        } else if let Some(rest) = line.trim().strip_prefix("<!-- doc-test:") {
            for word in rest.trim_end_matches("-->").split_whitespace() {
                if let Some(env) = word.strip_prefix("env=") {
                    g.env = env.to_string();
                }
            }
        }
    }
    assert!(block.is_none(), "a fenced block is not closed");
    g
}

/// Whether `tool` is installed; a guide needing it skips visibly, or fails under `CI`.
fn have(guide: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| engines::which(t).is_none() && !Path::new(t).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    assert!(
        !ci,
        "{guide}: {} missing (scripts/deps.sh installs them)",
        missing.join(", ")
    );
    eprintln!("SKIPPED {guide}: {} not installed", missing.join(", "));
    false
}

/// What an environment runs besides the guide: on drop (the test passed, or panicked) the
/// engine's containers and daemon are stopped, so nothing outlives the sandbox.
struct Engine<'a> {
    sb: &'a Sandbox,
    vars: Vec<(String, String)>,
    kind: Kind,
}

enum Kind {
    Plain,
    Podman,
    Containerd(Child),
}

impl Engine<'_> {
    fn run(&self, program: &str, args: &[&str]) {
        let _ = self
            .sb
            .command(program, args)
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .env_remove("NSNET_STATE_DIR")
            .output();
    }
}

impl Drop for Engine<'_> {
    fn drop(&mut self) {
        match &mut self.kind {
            Kind::Plain => {}
            Kind::Podman => self.run("podman", &["rm", "--all", "--force", "--time", "0"]),
            Kind::Containerd(daemon) => {
                let pid = daemon.id();
                let tasks = self.sb.sh("ctr", &["task", "ls", "-q"]).stdout;
                for id in tasks.split_whitespace() {
                    let _ = self
                        .sb
                        .sh("ctr", &["task", "kill", "--signal", "SIGKILL", id]);
                }
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
                if let Kind::Containerd(daemon) = &mut self.kind {
                    let _ = daemon.wait();
                }
            }
        }
    }
}

/// A path inside the sandbox's private mounts, from the test's side.
fn inside(sb: &Sandbox, path: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{}/root{path}", sb.pid()))
}

/// The image the guides use, as a user pulls it: busybox with the applets they call.
const IMAGE: &str = "docker.io/library/busybox:latest";

fn image_root(dir: &Path) -> PathBuf {
    let root = engines::rootfs(dir);
    for applet in ["mkdir", "echo", "hostname", "wget", "ls"] {
        let link = root.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link).unwrap();
        }
    }
    root
}

/// Prepares environment `env` in `sb`; returns the variables the script needs and what
/// must keep running.
fn prepare<'a>(guide: &str, env: &str, sb: &'a Sandbox, dir: &Path) -> Option<Engine<'a>> {
    let engine = |vars, kind| Engine { sb, vars, kind };
    match env {
        "plain" => have(guide, &["bash", "ping", "curl", "busybox"])
            .then(|| engine(Vec::new(), Kind::Plain)),
        "podman" => {
            if !have(
                guide,
                &[
                    "bash",
                    "curl",
                    "podman",
                    "runc",
                    "conmon",
                    "catatonit",
                    "tar",
                    engines::BUSYBOX,
                ],
            ) {
                return None;
            }
            Some(engine(podman(sb, dir), Kind::Podman))
        }
        "containerd" => {
            if !have(
                guide,
                &[
                    "bash",
                    "curl",
                    "containerd",
                    "containerd-shim-runc-v2",
                    "ctr",
                    "runc",
                    "tar",
                    "sha256sum",
                    engines::BUSYBOX,
                ],
            ) {
                return None;
            }
            let engine = engine(Vec::new(), Kind::Containerd(start_containerd(sb, dir)));
            containerd_ready(sb, dir);
            Some(engine)
        }
        other => panic!("{guide}: unknown doc-test env {other:?}"),
    }
}

/// Podman 4 set up as the guide assumes: the CNI backend, its configuration directory at the
/// usual /etc/cni/net.d, and the image already pulled. Where a machine's podman keeps its
/// storage and locks is the sandbox's own (and runc, cgroupfs, small ulimits: see podman.rs).
fn podman(sb: &Sandbox, dir: &Path) -> Vec<(String, String)> {
    let p = |sub: &str| dir.join(sub).display().to_string();
    for sub in ["root", "runroot", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    engines::plugin_dir(&dir.join("bin"));
    std::fs::create_dir_all(inside(sb, "/etc/cni/net.d")).unwrap();
    let catatonit = engines::which("catatonit").unwrap();
    let conf = format!(
        r#"[containers]
init_path = "{catatonit}"
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[network]
network_backend = "cni"
cni_plugin_dirs = ["{bin}"]
network_config_dir = "/etc/cni/net.d"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{events}"
runtime = "runc"
tmp_dir = "{tmp}"
image_copy_tmp_dir = "{tmp}"
"#,
        catatonit = catatonit.display(),
        bin = p("bin"),
        events = p("events.log"),
        tmp = p("tmp"),
    );
    std::fs::write(dir.join("containers.conf"), conf).unwrap();
    let storage = format!(
        "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
        p("root"),
        p("runroot")
    );
    std::fs::write(dir.join("storage.conf"), storage).unwrap();
    let vars = vec![
        ("CONTAINERS_CONF".to_string(), p("containers.conf")),
        ("CONTAINERS_STORAGE_CONF".to_string(), p("storage.conf")),
    ];
    let image = dir.join("busybox.tar");
    engines::tar(&image_root(dir), &image);
    let mut c = sb.command("podman", &["import", image.to_str().unwrap(), IMAGE]);
    c.envs(vars.iter().map(|(k, v)| (k, v)));
    engines::run_ok(c, "podman import");
    vars
}

/// containerd at its usual socket (/run/containerd, private to the sandbox) and state
/// (/var/lib/containerd, private too), without its CRI plugin, the image imported.
fn start_containerd(sb: &Sandbox, dir: &Path) -> Child {
    let conf = dir.join("config.toml");
    std::fs::write(
        &conf,
        "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n",
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
    sb.command("containerd", &["--config", conf.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Waits for containerd to answer, then imports the image.
fn containerd_ready(sb: &Sandbox, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while sb.sh("ctr", &["version"]).code != 0 {
        assert!(
            Instant::now() < deadline,
            "containerd did not start: {}",
            std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let archive = dir.join("busybox.oci.tar");
    engines::oci_archive(&image_root(dir), IMAGE, &archive);
    engines::run_ok(
        sb.command("ctr", &["image", "import", archive.to_str().unwrap()]),
        "ctr image import",
    );
}

/// Runs guide `file` in a fresh sandbox.
fn run_doc(file: &str) {
    if !common::root() {
        return;
    }
    let text = std::fs::read_to_string(docs_dir().join(file)).unwrap();
    let guide = parse(&text);
    assert!(!guide.script.is_empty(), "{file}: no `sh test` block");
    let sb = Sandbox::with_private(&engines::PRIVATE);
    let dir = tempfile::tempdir().unwrap();
    let Some(engine) = prepare(file, &guide.env, &sb, dir.path()) else {
        return;
    };
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    for (name, body) in &guide.files {
        std::fs::write(work.join(name), body).unwrap();
    }
    let nsnet_dir = Path::new(NSNET).parent().unwrap().display().to_string();
    let path = format!("{nsnet_dir}:{}", std::env::var("PATH").unwrap_or_default());
    // -x: a failing guide shows the command it stopped at; timeout: a hung step fails. The
    // script leads its own process group, killed once it ends, so a server a guide left in
    // the background (it stopped half-way) goes too; its output goes to files, which no
    // leftover can hold open.
    // Entering the sandbox's mount namespace (nsenter) resets the working directory to /:
    // the script starts by going back to the guide's own directory.
    let script = format!("cd '{}'\n{}", work.display(), guide.script);
    let mut c = sb.command(
        "timeout",
        &[
            "300",
            "bash",
            "--norc",
            "--noprofile",
            "-euxo",
            "pipefail",
            "-c",
            &script,
        ],
    );
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    c.env("PATH", path)
        .env("PS4", "+ ")
        // The guides use nsnet's default state directory, as the engines' CNI calls do.
        .env_remove("NSNET_STATE_DIR")
        .envs(engine.vars.iter().map(|(k, v)| (k, v)))
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .process_group(0);
    let mut child = c.spawn().unwrap();
    let status = child.wait().unwrap();
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let report = format!(
        "{file} (env {}):\n--- stdout\n{}\n--- stderr\n{}",
        guide.env,
        std::fs::read_to_string(&out_path).unwrap_or_default(),
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    assert!(status.success(), "{report}");
    // Nothing left: no namespace and no nsnet network.
    let netns = sb.sh("ls", &["/run/netns"]).stdout;
    assert_eq!(netns.trim(), "", "{file} left namespaces\n{report}");
    let mut ls = sb.command(NSNET, &["network", "ls", "--format", "json"]);
    ls.env_remove("NSNET_STATE_DIR");
    let nets: serde_json::Value = serde_json::from_slice(&ls.output().unwrap().stdout).unwrap();
    assert_eq!(
        nets,
        serde_json::json!([]),
        "{file} left networks\n{report}"
    );
    drop(engine);
}

#[test]
fn every_guide_runs_and_the_readme_links_it() {
    let readme = std::fs::read_to_string(docs_dir().join("../README.md")).unwrap();
    let mut tested = Vec::new();
    for entry in std::fs::read_dir(docs_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !name.ends_with(".md") {
            continue;
        }
        let text = std::fs::read_to_string(docs_dir().join(&name)).unwrap();
        assert!(
            readme.contains(&format!("(docs/{name})")),
            "README.md does not link docs/{name}"
        );
        if !parse(&text).script.is_empty() {
            tested.push(name);
        }
    }
    tested.sort();
    let mut listed = GUIDES.to_vec();
    listed.sort();
    assert_eq!(
        tested, listed,
        "guides with `sh test` blocks vs the doc! lines of tests/docs.rs"
    );
}

#[test]
fn marked_blocks_only() {
    let text = "# t\n<!-- doc-test: env=podman -->\n```sh\napt-get install x\n```\n\
                ```sh test\nnsnet netns add a\n```\n```yaml file=lab.yaml\nname: lab\n```\n\
                ```sh test\nnsnet netns rm a\n```\n```json\n{}\n```\n";
    assert_eq!(
        parse(text),
        Guide {
            env: "podman".into(),
            script: "nsnet netns add a\nnsnet netns rm a\n".into(),
            files: vec![("lab.yaml".into(), "name: lab\n".into())],
        }
    );
}
