//! Containers on the recording fake kernel: run, hosts files, rollback, stop, rm and gc,
//! without root.

use std::time::Duration;

use nsnet_core::container::NetworkArg;
use nsnet_core::model::NetworkSpec;
use nsnet_core::names::{NetName, NsName};
use nsnet_engine::{Engine, NetworkRequest, RunRequest};
use nsnet_store::Store;
use nsnet_sys::fake::FakeKernel;

struct Fixture {
    engine: Engine<FakeKernel>,
    dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut engine = Engine::new(store, FakeKernel::default(), 4242, "boot-a".into());
    let n = NetName::new("lan").unwrap();
    let spec = NetworkSpec::builder(n)
        .subnets(["10.5.0.0/24".parse().unwrap()])
        .build()
        .unwrap();
    engine.network_create(NetworkRequest { spec }).unwrap();
    Fixture { engine, dir }
}

fn req(name: &str, nets: &[&str], cmd: &str) -> RunRequest {
    RunRequest {
        name: NsName::new(name).unwrap(),
        hostname: None,
        networks: nets
            .iter()
            .map(|n| n.parse::<NetworkArg>().unwrap())
            .collect(),
        publish: Vec::new(),
        env: Vec::new(),
        rootfs: None,
        detach: true,
        command: vec![cmd.into(), "300".into()],
        aliases: Vec::new(),
    }
}

fn hosts(e: &mut Engine<FakeKernel>, name: &str) -> String {
    e.kernel()
        .procs
        .etc
        .get(&(name.to_string(), "hosts".to_string()))
        .cloned()
        .unwrap_or_default()
}

fn rows(e: &mut Engine<FakeKernel>) -> Vec<(&'static str, i64)> {
    e.store().read(|tx| tx.row_counts()).unwrap()
}

fn count(e: &mut Engine<FakeKernel>, table: &str) -> i64 {
    rows(e).into_iter().find(|(t, _)| *t == table).unwrap().1
}

#[test]
fn run_connects_writes_hosts_and_starts_the_process() {
    let mut f = fixture();
    let e = &mut f.engine;
    let web = e.container_run(req("web", &["lan"], "sleep")).unwrap();
    assert_eq!(web.state, "running");
    assert_eq!(web.networks[0].addrs[0].to_string(), "10.5.0.2/24");
    let db = e
        .container_run(req("db", &["lan:10.5.0.9"], "sleep"))
        .unwrap();
    assert_eq!(db.networks[0].addrs[0].to_string(), "10.5.0.9/24");
    // Each hosts file lists the other, the older one rewritten when the newer joined.
    assert!(
        hosts(e, "web").contains("10.5.0.9\tdb\n"),
        "{}",
        hosts(e, "web")
    );
    assert!(
        hosts(e, "db").contains("10.5.0.2\tweb\n"),
        "{}",
        hosts(e, "db")
    );
    let resolv = e.kernel().procs.etc[&("web".into(), "resolv.conf".into())].clone();
    assert!(resolv.contains("\nnameserver 192.0.2.53\n"), "{resolv}");
    assert!(
        !resolv.lines().any(|l| l.starts_with("nameserver 127.")),
        "{resolv}"
    );
    // The process: its namespace, environment and state directory.
    let spec = e.kernel().procs.running.values().next().unwrap().clone();
    assert_eq!(spec.name, "web");
    assert_eq!(spec.exe, "/bin/sleep");
    assert!(spec.env.contains(&"HOSTNAME=web".to_string()));
    assert_eq!(spec.dir, f.dir.path().join("containers/web"));
    assert!(e.kernel().netns.contains("web"));
    let eps = e.store().read(|tx| tx.endpoints_in_netns("web")).unwrap();
    assert_eq!(eps[0].container_id.as_deref(), Some("web"));
    assert_eq!(e.container_ls(false).unwrap().len(), 2);
}

#[test]
fn bad_runs_change_nothing() {
    let mut f = fixture();
    let e = &mut f.engine;
    e.container_run(req("taken", &["lan"], "sleep")).unwrap();
    e.netns_add(&NsName::new("plain").unwrap()).unwrap();
    e.kernel().procs.missing.insert("nope".into());
    let before = (rows(e), e.kernel().log.len(), e.kernel().netns.clone());
    let mut no_cmd = req("x", &[], "sleep");
    no_cmd.command.clear();
    let mut publish_alone = req("x", &[], "sleep");
    publish_alone.publish = vec!["8080:80".parse().unwrap()];
    let cases = [
        (req("taken", &[], "sleep"), "container taken already exists"),
        (req("plain", &[], "sleep"), "netns plain already exists"),
        (req("x", &["wan"], "sleep"), "network wan not found"),
        (
            req("x", &["lan", "lan"], "sleep"),
            "network lan is given twice",
        ),
        (req("x", &[], "nope"), "command \"nope\" not found"),
        (no_cmd, "run needs a command"),
        (publish_alone, "published ports need a network"),
    ];
    for (r, want) in cases {
        let err = e.container_run(r).unwrap_err().to_string();
        assert!(err.contains(want), "{err:?} lacks {want:?}");
        assert!(!err.contains("--"), "a CLI flag in the engine's {err:?}");
        assert_eq!(
            (rows(e), e.kernel().log.len(), e.kernel().netns.clone()),
            before,
            "{want}: something changed"
        );
    }
}

#[test]
fn a_failed_start_undoes_namespace_endpoints_hosts_and_row() {
    let mut f = fixture();
    let e = &mut f.engine;
    e.container_run(req("web", &["lan"], "sleep")).unwrap();
    let web_hosts = hosts(e, "web");
    let before = rows(e);
    e.kernel().procs.fail_spawn = true;
    let err = e.container_run(req("db", &["lan"], "sleep")).unwrap_err();
    assert!(err.to_string().starts_with("run container db: "), "{err}");
    assert_eq!(rows(e), before);
    assert!(!e.kernel().netns.contains("db"));
    assert_eq!(hosts(e, "web"), web_hosts, "web still lists db");
    assert!(e.kernel().links_in("db").is_empty());
    // The address was released: the next container gets it.
    let db = e.container_run(req("db", &["lan"], "sleep")).unwrap();
    assert_eq!(db.networks[0].addrs[0].to_string(), "10.5.0.3/24");
}

#[test]
fn stop_releases_the_network_and_rm_the_rest() {
    let mut f = fixture();
    let e = &mut f.engine;
    let mut r = req("web", &["lan"], "sleep");
    r.publish = vec!["8080:80".parse().unwrap()];
    let web = e.container_run(r).unwrap();
    e.container_run(req("db", &["lan"], "sleep")).unwrap();
    assert_eq!(web.ports.len(), 1);
    assert!(e.kernel().fw.iter().any(|el| el.contains("8080")));
    let err = e.container_rm("web", false).unwrap_err().to_string();
    assert!(err.contains("container web is running"), "{err}");

    let stopped = e.container_stop("web", Duration::from_secs(1)).unwrap();
    assert_eq!(
        (stopped.state.as_str(), stopped.exit_code),
        ("exited", Some(143))
    );
    assert!(stopped.networks.is_empty() && stopped.ports.is_empty());
    assert!(!e.kernel().fw.iter().any(|el| el.contains("8080")));
    assert!(!e.kernel().netns.contains("web"));
    assert!(!hosts(e, "db").contains("\tweb\n"), "{}", hosts(e, "db"));
    assert_eq!(count(e, "containers"), 2);
    assert_eq!(e.container_ls(false).unwrap().len(), 1);
    assert_eq!(e.container_ls(true).unwrap().len(), 2);

    e.container_rm("web", false).unwrap();
    e.container_rm("db", true).unwrap();
    assert_eq!(count(e, "containers"), 0);
    assert_eq!(count(e, "endpoints"), 0);
    let removed = e.kernel().procs.removed_dirs.clone();
    assert!(removed.contains(&f.dir.path().join("containers/web")));
    let err = e.container_rm("web", false).unwrap_err().to_string();
    assert_eq!(err, "container web not found");
}

#[test]
fn gc_removes_exited_and_abandoned_containers_only() {
    let mut f = fixture();
    let e = &mut f.engine;
    let done = e.container_run(req("done", &["lan"], "sleep")).unwrap();
    e.container_run(req("live", &["lan"], "sleep")).unwrap();
    // The command of `done` exits with nobody watching: ps shows it, its network stays.
    e.kernel().procs.exit(done.pid.unwrap(), 3);
    let view = e.container_view("done").unwrap();
    assert_eq!((view.state.as_str(), view.exit_code), ("exited", Some(3)));
    assert_eq!(view.networks.len(), 1);
    // A run that died half-way (process 777): row `creating`, nothing else made yet.
    e.store()
        .write(|tx| {
            tx.insert_container(&nsnet_store::NewContainer {
                name: "half".into(),
                hostname: "half".into(),
                command: vec!["true".into()],
                env: vec![],
                rootfs: None,
                detached: true,
                pid: 777,
                boot_id: "boot-a".into(),
            })
        })
        .unwrap();
    e.kernel().dead_pids.insert(777);

    let report = e.gc().unwrap();
    assert_eq!(
        report.containers,
        ["done (exited 3)", "half (its run was interrupted)"]
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let names: Vec<String> = e
        .container_ls(true)
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["live"]);
    assert!(!e.kernel().netns.contains("done"));
    assert!(!hosts(e, "live").contains("\tdone\n"));
    assert!(e.gc().unwrap().containers.is_empty());
}

/// A runtime's garbage collection of its attachments on a network leaves the endpoints of
/// `nsnet run` containers on that network alone (they record their name as owner too).
#[test]
fn attachment_gc_leaves_containers_alone() {
    let mut f = fixture();
    let e = &mut f.engine;
    e.container_run(req("web", &["lan"], "sleep")).unwrap();
    let report = e
        .gc_attachments(&NetName::new("lan").unwrap(), &[])
        .unwrap();
    assert!(report.removed.is_empty(), "{:?}", report.removed);
    assert_eq!(count(e, "endpoints"), 1);
    let ls = e.container_ls(false).unwrap();
    assert_eq!(ls[0].networks.len(), 1);
}

/// A container whose first network has DNS on asks that network's gateway, under the search
/// domain; its aliases are recorded on each attachment; a bad alias changes nothing.
#[test]
fn dns_network_resolv_conf_and_aliases() {
    let mut f = fixture();
    let e = &mut f.engine;
    let spec = NetworkSpec::builder(NetName::new("named").unwrap())
        .subnets(["10.6.0.0/24".parse().unwrap(), "fd06::/64".parse().unwrap()])
        .dns(true)
        .build()
        .unwrap();
    e.network_create(NetworkRequest { spec }).unwrap();
    let mut r = req("api", &["named", "lan"], "sleep");
    r.aliases = vec!["backend".into()];
    e.container_run(r).unwrap();
    let resolv = e.kernel().procs.etc[&("api".into(), "resolv.conf".into())].clone();
    assert!(
        resolv.contains("\nnameserver 10.6.0.1\nnameserver fd06::1\nsearch dns.nsnet"),
        "{resolv}"
    );
    let names = |e: &mut Engine<FakeKernel>, net: &str| {
        e.network_inspect(&NetName::new(net).unwrap())
            .unwrap()
            .endpoints[0]
            .names
            .clone()
    };
    assert_eq!(names(e, "named"), ["api", "backend"]);
    assert!(names(e, "lan").is_empty(), "lan has DNS off");
    let mut bad = req("bad", &["named"], "sleep");
    bad.aliases = vec!["no way".into()];
    let err = e.container_run(bad).unwrap_err().to_string();
    assert!(err.contains("invalid alias \"no way\""), "{err}");
    assert!(
        e.container_ls(true)
            .unwrap()
            .iter()
            .all(|c| c.name != "bad")
    );
}
