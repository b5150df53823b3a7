//! Real container engines (podman with its CNI backend, containerd's `ctr --cni`) driving the
//! nsnet plugin inside throwaway sandboxes: everything an engine keeps (root, run and temp
//! directories, configuration, plugin and CNI configuration directories, its shared-memory
//! locks, the CNI result cache in /var/lib/cni) is private to the sandbox or a temporary
//! directory, and images are built offline from busybox-static.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::common::{NSNET, Sandbox};

/// Where Debian's reference CNI plugins live (`tuning` and `loopback` come from there).
pub const REFERENCE_DIR: &str = "/usr/lib/cni";
/// The static busybox the images are made of.
pub const BUSYBOX: &str = "/bin/busybox";
/// Directories the engines use at fixed paths, each hidden behind its own tmpfs in the
/// sandbox: /var/lib (nsnet's default store, /var/lib/cni), /etc/cni and /opt (containerd's
/// fixed CNI directories), /dev/shm (podman's lock segment).
pub const PRIVATE: [&str; 4] = ["/var/lib", "/etc/cni", "/opt", "/dev/shm"];

/// The first `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether every program (a name on PATH or an absolute path) is there; when one is not,
/// says which and that the test is skipped (scripts/deps.sh installs them all) — or, under
/// `CI`, fails: CI installs every engine, so a missing one is a broken install step.
pub fn have(test: &str, programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| {
            if p.starts_with('/') {
                !Path::new(p).exists()
            } else {
                which(p).is_none()
            }
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "{test}: {} not installed (scripts/deps.sh installs them)",
        missing.join(", ")
    );
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{why}");
    }
    eprintln!("SKIPPED {why}");
    false
}

/// Runs `cmd`, asserting success; returns stdout.
pub fn run_ok(mut cmd: Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A root filesystem of busybox applets and /www/index.html ("hello"), for `httpd`.
pub fn rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("www")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
    for applet in ["sh", "httpd", "sleep", "cat", "ip"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("www/index.html"), "hello\n").unwrap();
    root
}

/// `root` as a tar file (a layer, or what `podman import` takes).
pub fn tar(root: &Path, out: &Path) {
    let mut c = Command::new("tar");
    c.arg("-C").arg(root).arg("-cf").arg(out).arg(".");
    run_ok(c, "tar the rootfs");
}

fn sha256(path: &Path) -> String {
    let mut c = Command::new("sha256sum");
    c.arg(path);
    run_ok(c, "sha256sum")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Writes `bytes` as a blob of an OCI layout; returns its descriptor.
fn blob(layout: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let tmp = layout.join("blob.tmp");
    std::fs::write(&tmp, bytes).unwrap();
    let digest = sha256(&tmp);
    std::fs::rename(&tmp, layout.join("blobs/sha256").join(&digest)).unwrap();
    json!({"mediaType": media_type, "digest": format!("sha256:{digest}"), "size": bytes.len()})
}

/// An OCI image archive (what `ctr image import` takes) of `root`, named `name`, built
/// offline: one uncompressed layer, a config, a manifest and an index.
pub fn oci_archive(root: &Path, name: &str, out: &Path) {
    oci_archive_running(root, name, out, &["sh"]);
}

/// `oci_archive` with `cmd` as the image's command (a pause image runs its init).
pub fn oci_archive_running(root: &Path, name: &str, out: &Path, cmd: &[&str]) {
    let layout = out.with_extension("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let layer_tar = out.with_extension("layer.tar");
    tar(root, &layer_tar);
    let layer = blob(
        &layout,
        "application/vnd.oci.image.layer.v1.tar",
        &std::fs::read(&layer_tar).unwrap(),
    );
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": cmd, "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}
    });
    let config = blob(
        &layout,
        "application/vnd.oci.image.config.v1+json",
        config.to_string().as_bytes(),
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": [layer]
    });
    let mut manifest = blob(
        &layout,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.to_string().as_bytes(),
    );
    manifest["annotations"] = json!({
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": name.rsplit(':').next().unwrap()
    });
    let index = json!({"schemaVersion": 2, "manifests": [manifest]});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    tar(&layout, out);
}

/// A CNI plugin directory: `nsnet` (a link to the binary under test, as an administrator
/// installs it) and the reference `tuning` and `loopback`.
pub fn plugin_dir(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::os::unix::fs::symlink(NSNET, dir.join("nsnet")).unwrap();
    for p in ["tuning", "loopback"] {
        std::os::unix::fs::symlink(Path::new(REFERENCE_DIR).join(p), dir.join(p)).unwrap();
    }
}

/// `GET /` from namespace `ns` to `addr`; the body when the answer is 200.
pub fn http_get(s: &Sandbox, ns: &str, addr: &str) -> Option<String> {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    s.in_ns(ns, move || {
        let mut c =
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(1500)).ok()?;
        c.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
        c.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
        let mut reply = String::new();
        c.read_to_string(&mut reply).ok()?;
        let (head, body) = reply.split_once("\r\n\r\n")?;
        let status = head.lines().next()?;
        (status.starts_with("HTTP/1.") && status.contains(" 200 ")).then(|| body.to_string())
    })
    .join()
    .unwrap()
}

/// `http_get` retried for up to 5 s (a server just started may not listen yet).
pub fn http_get_soon(s: &Sandbox, ns: &str, addr: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = http_get(s, ns, addr);
        if got.is_some() || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Elements in nsnet's firewall sets and maps (the skeleton may stay without networks).
pub fn fw_elements(s: &Sandbox) -> Vec<String> {
    s.sh("nft", &["list", "ruleset"])
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("elements"))
        .map(|l| l.trim().to_string())
        .collect()
}

fn rows(s: &Sandbox) -> Vec<(&'static str, i64)> {
    s.rows()
        .into_iter()
        .filter(|(t, _)| ["networks", "subnets", "endpoints", "addresses", "ports"].contains(t))
        .collect()
}

/// Asserts that no network, attachment or published port is left: no rows, no interface
/// but `keep` in the sandbox, no firewall element, no namespace file but `keep_ns`.
pub fn assert_nothing_left(s: &Sandbox, keep: &[&str], keep_ns: &[&str], when: &str) {
    for (t, n) in rows(s) {
        assert_eq!(n, 0, "{when}: {n} rows left in {t}");
    }
    let mut links = s.host_links();
    links.retain(|l| !keep.contains(&l.as_str()));
    assert!(links.is_empty(), "{when}: interfaces left: {links:?}");
    assert_eq!(
        fw_elements(s),
        Vec::<String>::new(),
        "{when}: firewall elements left"
    );
    let mut ns = s.netns_files();
    ns.retain(|n| !keep_ns.contains(&n.as_str()));
    assert!(ns.is_empty(), "{when}: namespaces left: {ns:?}");
}
