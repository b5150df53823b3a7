//! Topology batches killed part-way: `apply` and `destroy` of a file of many namespaces (made
//! at once, their endpoints removed at once) are killed with SIGKILL at their crash points
//! (the `NSNET_CRASH_AT` hook), then `gc`. No row may be left half made or half removed; the
//! command run again must finish the job; the file's network must carry traffic through a
//! published port; and `destroy` must leave nothing (links, namespaces, rows, nft tables).

mod common;

use common::{NSNET, Run, Sandbox, root};
use nsnet_store::{RowState, Store};

/// Namespaces in the file: enough for the batched paths (they start at 16).
const N: usize = 20;

fn file(s: &Sandbox) -> String {
    let mut yaml = String::from("name: many\nnamespaces:\n");
    for i in 0..N {
        yaml.push_str(&format!("  - m{i}\n"));
    }
    yaml.push_str("networks:\n  wide:\n    subnets: [10.70.0.0/24]\n    endpoints:\n");
    for i in 0..N {
        yaml.push_str(&format!(
            "      m{i}: {{ publish: [\"{}:80\"] }}\n",
            9000 + i
        ));
    }
    let p = s.state_dir().join("many.yaml");
    std::fs::write(&p, yaml).unwrap();
    p.to_str().unwrap().to_string()
}

fn killed_at(s: &Sandbox, args: &[&str], k: u32) -> Option<String> {
    let out = s
        .command(NSNET, args)
        .env("NSNET_CRASH_AT", k.to_string())
        .output()
        .unwrap();
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let point = r
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("nsnet: crash point "))
        .map(str::to_string);
    match &point {
        Some(p) => assert_eq!(r.code, -1, "killed at {p}: {}{}", r.stdout, r.stderr),
        None => assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr),
    }
    point
}

/// After a kill and `gc`: no row is left creating or removing.
fn settled(s: &Sandbox, point: &str) {
    let gc = s.nsnet(&["gc"]);
    assert_eq!(gc.code, 0, "gc after {point}: {}{}", gc.stdout, gc.stderr);
    let mut store = Store::open(s.state_dir()).unwrap();
    let (endpoints, networks) = store
        .read(|tx| Ok::<_, nsnet_store::StoreError>((tx.endpoints()?, tx.networks()?)))
        .unwrap();
    for e in endpoints {
        assert_eq!(
            e.state,
            RowState::Ready,
            "killed at {point}: endpoint {e:?}"
        );
    }
    for n in networks {
        assert_eq!(n.state, RowState::Ready, "killed at {point}: network {n:?}");
    }
}

fn converged_and_serving(s: &Sandbox, file: &str, point: &str) {
    let plan = s.ok(&["plan", "-f", file]);
    assert!(plan.contains("no changes"), "killed at {point}: {plan}");
    let server = s.tcp_server("m3", "0.0.0.0:80");
    assert!(
        s.tcp_hello("host", "10.70.0.1:9003"),
        "killed at {point}: published port does not answer"
    );
    assert!(server.peer().is_some());
}

fn destroyed(s: &Sandbox, file: &str, point: &str) {
    s.ok(&["destroy", "-f", file]);
    s.assert_clean();
    let tables = s.sh("nft", &["list", "tables"]);
    assert!(
        !tables.stdout.contains("nsnet"),
        "killed at {point}: tables left: {}",
        tables.stdout
    );
}

/// The points to kill at: every one of the first `all` (the batches come first), then a
/// sample of the one-by-one steps that follow (each is covered on its own by `crash.rs`).
fn points(all: u32) -> impl Iterator<Item = u32> {
    (1..).filter(move |k| *k <= all || k % 13 == 0)
}

/// Kills `apply` at point `k` and checks the recovery; false when the apply ended before.
fn apply_killed_at(k: u32) -> bool {
    let s = Sandbox::new();
    let file = file(&s);
    let Some(point) = killed_at(&s, &["apply", "-f", &file], k) else {
        return false;
    };
    settled(&s, &point);
    s.ok(&["apply", "-f", &file]);
    converged_and_serving(&s, &file, &point);
    destroyed(&s, &file, &point);
    eprintln!("apply killed at {point}: recovered");
    true
}

#[test]
fn apply_killed_at_its_batches_then_applied_again() {
    if !root() {
        return;
    }
    let mut covered = 0;
    let mut end = 0;
    let mut tried = Vec::new();
    // The first points (the namespaces, the network), a sample of the connects, then the
    // last points: the batch's firewall transaction and its rows made ready.
    for k in points(12) {
        if !apply_killed_at(k) {
            end = k;
            break;
        }
        tried.push(k);
        covered += 1;
    }
    for k in end.saturating_sub(20)..end {
        if !tried.contains(&k) && apply_killed_at(k) {
            covered += 1;
        }
    }
    assert!(covered >= 12, "only {covered} crash points");
}

#[test]
fn destroy_killed_at_each_point_then_destroyed_again() {
    if !root() {
        return;
    }
    let mut covered = 0;
    for k in points(40) {
        let s = Sandbox::new();
        let file = file(&s);
        s.ok(&["apply", "-f", &file]);
        let Some(point) = killed_at(&s, &["destroy", "-f", &file], k) else {
            break;
        };
        settled(&s, &point);
        destroyed(&s, &file, &point);
        eprintln!("destroy killed at {point}: recovered");
        covered += 1;
    }
    assert!(covered >= 6, "only {covered} crash points");
}
