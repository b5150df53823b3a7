//! `nsnet doctor`: what this machine supports and what nsnet will do about it, one line per
//! check (OK / WARN / FAIL) with the fix. Read-only: probes the kernel (qdiscs only inside a
//! throwaway namespace), checks the store, and reports what `gc`/`repair` would do.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use nsnet_core::firewall::TABLE;
use nsnet_engine::StoreHealth;
use nsnet_sys::probe::{self, Ruleset};
use serde::Serialize;

use crate::cli::Format;
use crate::context;
use crate::output::print;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do about a WARN or FAIL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The whole report.
#[derive(Debug, Serialize)]
struct Report {
    checks: Vec<Check>,
    /// No check failed (the exit code is 0).
    ok: bool,
}

/// Everything the checks look at, gathered first so classifying it is pure.
#[derive(Debug)]
pub struct Facts {
    pub ruleset: Result<Ruleset, String>,
    pub nft_binary: Option<String>,
    pub br_netfilter: bool,
    pub bridge_nf_iptables: Option<String>,
    pub bridge_nf_ip6tables: Option<String>,
    /// tbf and netem creation results; the outer error when the probe itself failed.
    pub qdiscs: Result<(Probed, Probed), String>,
    /// `net.ipv6.conf.all.disable_ipv6`; `None` for a kernel without IPv6.
    pub ipv6_disabled: Option<String>,
    pub ip_forward: Option<String>,
    pub state: StateFacts,
    /// Open vSwitch's programs and the datapath nsnet would use, or what is missing.
    pub ovs: Result<String, String>,
}

/// Whether a kernel feature worked when tried, or the kernel's refusal.
pub type Probed = Result<(), String>;

/// The state directory and, when it could be opened, the store's health.
#[derive(Debug)]
pub struct StateFacts {
    pub dir: PathBuf,
    /// Permission bits; `None` when nothing exists at the path.
    pub mode: Option<u32>,
    /// The path is a directory (not a file in the way).
    pub is_dir: bool,
    /// Bytes of the files directly in the directory (database, WAL).
    pub size: u64,
    /// `None` when the store was not opened: no database yet, or opening it would change
    /// the directory's mode.
    pub health: Option<Result<StoreHealth, String>>,
    /// Whether a network has DNS on, and the running responder's pid (None when the store
    /// was not opened).
    pub dns: Option<(bool, Option<i32>)>,
}

pub fn run(state_dir: &Path, format: Format) -> Result<()> {
    let facts = gather(state_dir);
    let checks = classify(&facts);
    let report = Report {
        ok: checks.iter().all(|c| c.status != Status::Fail),
        checks,
    };
    let colour = crate::output::colour_stdout();
    print(format, &report, |r| render_in(&r.checks, colour))?;
    let failed = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .count();
    if failed > 0 {
        anyhow::bail!("doctor found {failed} failing check(s)");
    }
    Ok(())
}

fn gather(state_dir: &Path) -> Facts {
    Facts {
        ruleset: probe::ruleset().map_err(|e| format!("list nf_tables ruleset: {e}")),
        nft_binary: probe::nft_binary(),
        br_netfilter: probe::module_present("br_netfilter"),
        bridge_nf_iptables: probe::sysctl("net.bridge.bridge-nf-call-iptables"),
        bridge_nf_ip6tables: probe::sysctl("net.bridge.bridge-nf-call-ip6tables"),
        qdiscs: probe::qdiscs()
            .map(|q| (q.tbf, q.netem))
            .map_err(|e| e.to_string()),
        ipv6_disabled: probe::sysctl("net.ipv6.conf.all.disable_ipv6"),
        ip_forward: probe::sysctl("net.ipv4.ip_forward"),
        state: gather_state(state_dir),
        ovs: nsnet_sys::ovs::installed(),
    }
}

fn gather_state(dir: &Path) -> StateFacts {
    let meta = std::fs::metadata(dir).ok();
    let mode = meta.as_ref().map(|m| m.permissions().mode() & 0o7777);
    let is_dir = meta.as_ref().is_some_and(|m| m.is_dir());
    let size = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    // Opening the store creates a missing database and tightens a loose mode: doctor only
    // opens one that is there and private already.
    let openable = is_dir && mode == Some(0o700) && dir.join(nsnet_store::DB_FILE).exists();
    let health = openable.then(|| {
        context::open(dir)
            .and_then(|mut engine| Ok(engine.doctor_store()?))
            .map_err(|e| format!("{e:#}"))
    });
    let dns = openable.then(|| {
        let needed = nsnet_store::Store::open_read_only(dir)
            .and_then(|mut st| st.read(|tx| tx.dns_needed()))
            .unwrap_or(false);
        let running = crate::dns::responder_pid(dir)
            .filter(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), None).is_ok());
        (needed, running)
    });
    StateFacts {
        dir: dir.to_path_buf(),
        mode,
        is_dir,
        size,
        health,
        dns,
    }
}

fn check(name: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
        fix: None,
    }
}

fn with_fix(mut c: Check, fix: impl Into<String>) -> Check {
    c.fix = Some(fix.into());
    c
}

/// The line of something the store records and the kernel should hold (rate limits, switches,
/// bridge ports, overlay peers): none when nothing is recorded, OK when all is as recorded, else a warning
/// listing what differs (`N <differ> from the store: ...`), which `repair` restores.
fn recorded(
    name: &'static str,
    count: usize,
    drifted: &[String],
    ok: String,
    differ: &str,
) -> Option<Check> {
    match (count, drifted.len()) {
        (0, _) => None,
        (_, 0) => Some(check(name, Status::Ok, ok)),
        (_, n) => Some(with_fix(
            check(
                name,
                Status::Warn,
                format!("{n} {differ} from the store: {}", drifted.join("; ")),
            ),
            "run nsnet repair",
        )),
    }
}

/// Turns the facts into checks (pure).
pub fn classify(f: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    let nsnet_table = f.ruleset.as_ref().ok().map(|r| {
        r.tables
            .iter()
            .any(|t| t.family == "inet" && t.table == TABLE)
    });
    out.push(match &f.ruleset {
        Ok(r) => check(
            "nftables",
            Status::Ok,
            format!(
                "nf_tables usable over netlink ({} table(s))",
                r.tables.len()
            ),
        ),
        Err(e) => with_fix(
            check("nftables", Status::Fail, e.clone()),
            "run as root on a kernel with nf_tables (modprobe nf_tables)",
        ),
    });
    out.push(match (&f.nft_binary, nsnet_table) {
        (Some(path), _) => check("nft binary", Status::Ok, path.clone()),
        (None, Some(true)) => with_fix(
            check(
                "nft binary",
                Status::Warn,
                "not installed; nsnet's tables exist, but `repair` and a first network after a flush need it",
            ),
            "install nftables (e.g. apt install nftables)",
        ),
        (None, _) => with_fix(
            check(
                "nft binary",
                Status::Fail,
                "not installed: the first network create runs `nft` once to install nsnet's tables",
            ),
            "install nftables (e.g. apt install nftables)",
        ),
    });
    out.push(check(
        "br_netfilter",
        Status::Ok,
        if f.br_netfilter {
            format!(
                "loaded: bridge-nf-call-iptables={}, bridge-nf-call-ip6tables={} (bridged traffic also passes iptables; nsnet works either way)",
                f.bridge_nf_iptables.as_deref().unwrap_or("?"),
                f.bridge_nf_ip6tables.as_deref().unwrap_or("?"),
            )
        } else {
            "not loaded: bridged traffic skips iptables (nsnet works either way)".to_string()
        },
    ));
    match &f.qdiscs {
        Ok((tbf, netem)) => {
            out.push(match tbf {
                Ok(()) => check("tbf qdisc", Status::Ok, "rate limits available"),
                Err(e) => with_fix(
                    check(
                        "tbf qdisc",
                        Status::Warn,
                        format!("rate limits unavailable: {e}"),
                    ),
                    "load the kernel's sch_tbf module (modprobe sch_tbf)",
                ),
            });
            out.push(match netem {
                Ok(()) => check("netem qdisc", Status::Ok, "delay, jitter and loss available"),
                Err(e) => with_fix(
                    check(
                        "netem qdisc",
                        Status::Warn,
                        format!(
                            "delay, jitter and loss unavailable (`link set --delay/--jitter/--loss` will fail); `--rate` alone works (tbf): {e}"
                        ),
                    ),
                    "install the kernel's sch_netem module (e.g. linux-modules-extra) and modprobe sch_netem",
                ),
            });
        }
        Err(e) => out.push(with_fix(
            check(
                "qdiscs",
                Status::Warn,
                format!("cannot probe tbf/netem: {e}"),
            ),
            "run as root",
        )),
    }
    out.push(match f.ipv6_disabled.as_deref() {
        Some("0") => check("ipv6", Status::Ok, "enabled"),
        Some(_) => with_fix(
            check(
                "ipv6",
                Status::Warn,
                "disabled (net.ipv6.conf.all.disable_ipv6=1): IPv6 subnets will not work",
            ),
            "sysctl -w net.ipv6.conf.all.disable_ipv6=0",
        ),
        None => check(
            "ipv6",
            Status::Warn,
            "this kernel has no IPv6: IPv6 subnets will not work",
        ),
    });
    out.push(match f.ip_forward.as_deref() {
        Some("1") => check("ip_forward", Status::Ok, "on"),
        _ => with_fix(
            check(
                "ip_forward",
                Status::Warn,
                "off: nsnet turns it on when a non-internal network is created (the host then routes between all its interfaces)",
            ),
            "nothing to do, or create only --internal networks to keep it off",
        ),
    });
    out.extend(classify_state(&f.state, nsnet_table));
    out.push(match &f.ovs {
        Ok(detail) => check("open vswitch", Status::Ok, detail.clone()),
        Err(missing) => with_fix(
            check(
                "open vswitch",
                Status::Warn,
                format!("{missing}: only `--driver ovs` networks need it"),
            ),
            "apt-get install openvswitch-switch (nsnet starts its daemons itself)",
        ),
    });
    if let Ok(r) = &f.ruleset {
        out.extend(conflicts(r));
    }
    out
}

fn classify_state(s: &StateFacts, nsnet_table: Option<bool>) -> Vec<Check> {
    let dir = s.dir.display();
    let mut out = Vec::new();
    match s.dns {
        None | Some((false, None)) => {}
        Some((_, Some(pid))) => out.push(check(
            "DNS responder",
            Status::Ok,
            format!("running (pid {pid})"),
        )),
        Some((true, None)) => out.push(with_fix(
            check(
                "DNS responder",
                Status::Warn,
                "a network has DNS on but no responder runs: its containers' names go unanswered",
            ),
            "run nsnet gc (or nsnet repair)",
        )),
    }
    match s.mode {
        None => {
            out.push(check(
                "state directory",
                Status::Ok,
                format!("{dir} not created yet (the first command creates it, mode 0700)"),
            ));
            return out;
        }
        Some(_) if !s.is_dir => {
            out.push(with_fix(
                check(
                    "state directory",
                    Status::Fail,
                    format!("{dir} is not a directory"),
                ),
                format!("move {dir} aside, or give another --state-dir"),
            ));
            return out;
        }
        Some(0o700) => out.push(check(
            "state directory",
            Status::Ok,
            format!("{dir}, mode 0700, {}", human_size(s.size)),
        )),
        Some(mode) => {
            out.push(with_fix(
                check(
                    "state directory",
                    Status::Warn,
                    format!(
                        "{dir} has mode {mode:04o}: others can read nsnet's state (nsnet sets 0700 at its next command; not opened)"
                    ),
                ),
                format!("chmod 700 {dir}"),
            ));
            return out;
        }
    }
    let health = match &s.health {
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            out.push(with_fix(
                check("state database", Status::Fail, e.clone()),
                format!("move {dir} aside and recreate the networks"),
            ));
            return out;
        }
        None => {
            out.push(check(
                "state database",
                Status::Ok,
                "none yet (the first command creates it)",
            ));
            return out;
        }
    };
    let rows = |t: &str| {
        health
            .rows
            .iter()
            .find(|(n, _)| *n == t)
            .map_or(0, |(_, c)| *c)
    };
    out.push(if health.integrity.is_empty() {
        check(
            "state database",
            Status::Ok,
            format!(
                "integrity ok: {} network(s), {} endpoint(s), {} link(s), {} container(s)",
                rows("networks"),
                rows("endpoints"),
                rows("links"),
                rows("containers")
            ),
        )
    } else {
        with_fix(
            check(
                "state database",
                Status::Fail,
                format!("integrity check: {}", health.integrity.join("; ")),
            ),
            format!("move {dir} aside and recreate the networks"),
        )
    });
    out.push(if health.collectable.is_empty() {
        check("gc", Status::Ok, "nothing left by interrupted operations")
    } else {
        with_fix(
            check(
                "gc",
                Status::Warn,
                format!(
                    "{} leftover(s): {}",
                    health.collectable.len(),
                    health.collectable.join("; ")
                ),
            ),
            "run nsnet gc",
        )
    });
    out.extend(recorded(
        "rate limits",
        health.shapings,
        &health.drifted_shapings,
        format!("{} shaped interface(s), each as recorded", health.shapings),
        "shaped interface(s) differ",
    ));
    out.extend(recorded(
        "switches",
        health.switches,
        &health.drifted_switches,
        format!(
            "{} network(s), each with its bridge up and holding its gateway(s)",
            health.switches
        ),
        "difference(s)",
    ));
    out.extend(recorded(
        "bridge ports",
        health.ports,
        &health.drifted_ports,
        format!(
            "{} endpoint(s), each with its host end up on its switch",
            health.ports
        ),
        "host end(s) differ",
    ));
    out.extend(recorded(
        "veth pairs",
        health.veths,
        &health.gone_veths,
        format!(
            "{} endpoint(s), none with its veth pair deleted while its namespace stays",
            health.veths
        ),
        "veth pair(s) differ",
    ));
    out.extend(recorded(
        "overlay peers",
        health.overlay_peers,
        &health.drifted_peers,
        format!("{} overlay peer(s), each as recorded", health.overlay_peers),
        "overlay peer(s) differ",
    ));
    let tables_gone = nsnet_table == Some(false) && rows("networks") > 0;
    out.push(
        match (&health.firewall_error, health.missing_elements.len()) {
            (Some(e), _) => with_fix(
                check(
                    "firewall elements",
                    Status::Warn,
                    format!("cannot check: {e}"),
                ),
                "run nsnet repair",
            ),
            (None, 0) => check(
                "firewall elements",
                Status::Ok,
                "every element the store owns is in the kernel",
            ),
            (None, n) if tables_gone => with_fix(
                check(
                    "firewall elements",
                    Status::Warn,
                    format!("nsnet's tables are gone ({n} element(s) missing)"),
                ),
                "run nsnet repair",
            ),
            (None, n) => with_fix(
                check(
                    "firewall elements",
                    Status::Warn,
                    format!(
                        "{n} element(s) missing: {}",
                        health.missing_elements.join("; ")
                    ),
                ),
                "run nsnet gc (or nsnet repair)",
            ),
        },
    );
    out
}

/// Other firewall managers' tables and what they mean for nsnet's traffic.
fn conflicts(r: &Ruleset) -> Vec<Check> {
    let mut out = Vec::new();
    let docker = r.chains.iter().any(|c| {
        c.family == "ip"
            && (c.table == "nat" || c.table == "filter")
            && c.chain.as_deref().is_some_and(|n| n.starts_with("DOCKER"))
    });
    if docker {
        out.push(with_fix(
            check(
                "docker",
                Status::Warn,
                "Docker's chains in ip nat/filter: Docker sets the iptables FORWARD policy to DROP, which can drop traffic nsnet's bridges forward to the outside",
            ),
            "accept nsnet's bridges in DOCKER-USER (iptables -I DOCKER-USER -i nsbr+ -j ACCEPT), or run dockerd with --iptables=false",
        ));
    }
    let table = |name: &str| r.tables.iter().any(|t| t.table == name);
    if table("netavark") {
        out.push(with_fix(
            check(
                "podman",
                Status::Warn,
                "netavark's table (podman): its networks are managed apart from nsnet's; their subnets and bridges can collide",
            ),
            "give nsnet networks subnets podman does not use (podman network ls)",
        ));
    }
    if table("firewalld") {
        out.push(with_fix(
            check(
                "firewalld",
                Status::Warn,
                "firewalld's table: its zones can reject traffic forwarded from nsnet's bridges",
            ),
            "put nsnet's bridges in the trusted zone (firewall-cmd --zone=trusted --add-interface=BRIDGE)",
        ));
    }
    let known = ["netavark", "firewalld", TABLE];
    let others: Vec<String> = r
        .tables
        .iter()
        .filter(|t| !known.contains(&t.table.as_str()))
        .map(|t| format!("{} {}", t.family, t.table))
        .collect();
    out.push(check(
        "other tables",
        Status::Ok,
        if others.is_empty() {
            "none besides nsnet's".to_string()
        } else {
            format!("{} (nsnet's own table is separate)", others.join(", "))
        },
    ));
    out
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// One line per check, the fix indented under it; the status in green, yellow or red when
/// `colour`.
pub fn render_in(checks: &[Check], colour: bool) -> String {
    let name_width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let (status, sgr) = match c.status {
            Status::Ok => ("OK", "32"),
            Status::Warn => ("WARN", "33"),
            Status::Fail => ("FAIL", "31"),
        };
        let mut status = format!("{status:<4}");
        if colour {
            status = format!("\x1b[{sgr}m{status}\x1b[0m");
        }
        out.push_str(&format!(
            "{status}  {:<name_width$}  {}\n",
            c.name, c.detail
        ));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("      {:<name_width$}  fix: {fix}\n", ""));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use nsnet_sys::probe::NftObject;

    use super::*;

    fn obj(family: &str, table: &str, chain: Option<&str>) -> NftObject {
        NftObject {
            family: family.into(),
            table: table.into(),
            chain: chain.map(Into::into),
        }
    }

    fn facts() -> Facts {
        Facts {
            ruleset: Ok(Ruleset {
                tables: vec![obj("inet", "nsnet", None), obj("bridge", "nsnet", None)],
                chains: vec![],
            }),
            nft_binary: Some("/usr/sbin/nft".into()),
            br_netfilter: false,
            bridge_nf_iptables: None,
            bridge_nf_ip6tables: None,
            qdiscs: Ok((
                Ok(()),
                Err("create netem qdisc: No such file or directory".into()),
            )),
            ipv6_disabled: Some("0".into()),
            ip_forward: Some("0".into()),
            state: StateFacts {
                dir: "/var/lib/nsnet".into(),
                mode: Some(0o700),
                is_dir: true,
                size: 4096,
                health: Some(Ok(StoreHealth::default())),
                dns: Some((true, None)),
            },
            ovs: Err("Open vSwitch is not installed: no ovsdb-server".into()),
        }
    }

    #[test]
    fn a_dns_network_without_its_responder_warns_with_the_fix() {
        let mut f = facts();
        let c = find(&classify(&f), "DNS responder").clone();
        assert_eq!(c.status, Status::Warn);
        assert_eq!(c.fix.as_deref(), Some("run nsnet gc (or nsnet repair)"));
        f.state.dns = Some((true, Some(77)));
        let c = find(&classify(&f), "DNS responder").clone();
        assert_eq!(
            (c.status, c.detail.as_str()),
            (Status::Ok, "running (pid 77)")
        );
        f.state.dns = Some((false, None));
        assert!(classify(&f).iter().all(|c| c.name != "DNS responder"));
    }

    #[test]
    fn open_vswitch_missing_is_a_warning_with_the_package() {
        let c = classify(&facts());
        let ovs = find(&c, "open vswitch");
        assert_eq!(ovs.status, Status::Warn);
        assert!(ovs.detail.contains("--driver ovs"), "{}", ovs.detail);
        assert!(ovs.fix.as_deref().unwrap().contains("openvswitch-switch"));
        let mut f = facts();
        f.ovs = Ok("ovsdb-server, ovs-vswitchd; datapath netdev".into());
        assert_eq!(find(&classify(&f), "open vswitch").status, Status::Ok);
    }

    fn find<'a>(checks: &'a [Check], name: &str) -> &'a Check {
        checks.iter().find(|c| c.name == name).unwrap()
    }

    #[test]
    fn this_kernel_without_netem_warns_and_keeps_rate() {
        let checks = classify(&facts());
        assert_eq!(find(&checks, "tbf qdisc").status, Status::Ok);
        let netem = find(&checks, "netem qdisc");
        assert_eq!(netem.status, Status::Warn);
        assert!(netem.detail.contains("delay, jitter and loss unavailable"));
        assert!(netem.detail.contains("`--rate` alone works"));
        assert_eq!(find(&checks, "ip_forward").status, Status::Warn);
        assert!(checks.iter().all(|c| c.status != Status::Fail));
    }

    #[test]
    fn other_managers_tables_are_warnings() {
        let mut f = facts();
        f.ruleset = Ok(Ruleset {
            tables: vec![
                obj("inet", "nsnet", None),
                obj("ip", "nat", None),
                obj("inet", "netavark", None),
                obj("inet", "firewalld", None),
            ],
            chains: vec![obj("ip", "nat", Some("DOCKER"))],
        });
        let checks = classify(&f);
        for name in ["docker", "podman", "firewalld"] {
            let c = find(&checks, name);
            assert_eq!(c.status, Status::Warn, "{c:?}");
            assert!(c.fix.is_some());
        }
        assert_eq!(
            find(&checks, "other tables").detail,
            "ip nat (nsnet's own table is separate)"
        );
        // Without them: no conflict lines.
        let checks = classify(&facts());
        assert!(
            checks
                .iter()
                .all(|c| c.name != "docker" && c.name != "podman")
        );
    }

    #[test]
    fn store_findings_say_which_command_fixes_them() {
        let mut f = facts();
        f.state.health = Some(Ok(StoreHealth {
            collectable: vec!["endpoint web on network front (create interrupted)".into()],
            missing_elements: vec!["bridges nsbr-front".into()],
            ..StoreHealth::default()
        }));
        let checks = classify(&f);
        assert!(checks.iter().all(|c| c.name != "rate limits"));
        assert_eq!(find(&checks, "gc").fix.as_deref(), Some("run nsnet gc"));
        let fw = find(&checks, "firewall elements");
        assert_eq!(fw.status, Status::Warn);
        assert!(fw.fix.as_deref().unwrap().contains("nsnet gc"));
        assert!(fw.detail.contains("bridges nsbr-front"));
    }

    #[test]
    fn a_deleted_bridge_warns_and_repair_is_the_fix() {
        let mut f = facts();
        f.state.health = Some(Ok(StoreHealth {
            switches: 2,
            drifted_switches: vec!["network side: bridge nsbr-side is missing".into()],
            ..StoreHealth::default()
        }));
        let c = find(&classify(&f), "switches").clone();
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.contains("bridge nsbr-side is missing"), "{c:?}");
        assert_eq!(c.fix.as_deref(), Some("run nsnet repair"));
        f.state.health = Some(Ok(StoreHealth {
            switches: 2,
            ..StoreHealth::default()
        }));
        assert_eq!(find(&classify(&f), "switches").status, Status::Ok);
    }

    #[test]
    fn a_deleted_veth_pair_warns_naming_its_endpoint_and_repair_is_the_fix() {
        let mut f = facts();
        f.state.health = Some(Ok(StoreHealth {
            veths: 2,
            gone_veths: vec![
                "endpoint app on network side: veth nsv1 / eth0 in netns app is gone".into(),
            ],
            ..StoreHealth::default()
        }));
        let c = find(&classify(&f), "veth pairs").clone();
        assert_eq!(c.status, Status::Warn);
        assert!(
            c.detail
                .starts_with("1 veth pair(s) differ from the store: endpoint app on network side"),
            "{}",
            c.detail
        );
        assert_eq!(c.fix.as_deref(), Some("run nsnet repair"));
        f.state.health = Some(Ok(StoreHealth {
            veths: 2,
            ..StoreHealth::default()
        }));
        assert_eq!(find(&classify(&f), "veth pairs").status, Status::Ok);
        f.state.health = Some(Ok(StoreHealth::default()));
        assert!(!classify(&f).iter().any(|c| c.name == "veth pairs"));
    }

    #[test]
    fn a_detached_host_end_warns_naming_its_endpoint_and_repair_is_the_fix() {
        let mut f = facts();
        f.state.health = Some(Ok(StoreHealth {
            ports: 3,
            drifted_ports: vec![
                "endpoint app on network side: host interface nsv1 is not a port of nsbr-side"
                    .into(),
            ],
            ..StoreHealth::default()
        }));
        let c = find(&classify(&f), "bridge ports").clone();
        assert_eq!(c.status, Status::Warn);
        assert!(
            c.detail
                .starts_with("1 host end(s) differ from the store: endpoint app on network side"),
            "{}",
            c.detail
        );
        assert_eq!(c.fix.as_deref(), Some("run nsnet repair"));
        f.state.health = Some(Ok(StoreHealth {
            ports: 3,
            ..StoreHealth::default()
        }));
        assert_eq!(find(&classify(&f), "bridge ports").status, Status::Ok);
        f.state.health = Some(Ok(StoreHealth::default()));
        assert!(!classify(&f).iter().any(|c| c.name == "bridge ports"));
    }

    #[test]
    fn a_deleted_rate_limit_warns_and_repair_is_the_fix() {
        let mut f = facts();
        f.state.health = Some(Ok(StoreHealth {
            shapings: 2,
            drifted_shapings: vec![
                "nsv0 in netns host: none (recorded rate 20mbit burst 204800bit)".into(),
            ],
            ..StoreHealth::default()
        }));
        let c = find(&classify(&f), "rate limits").clone();
        assert_eq!(c.status, Status::Warn);
        assert!(
            c.detail.contains("nsv0 in netns host: none"),
            "{}",
            c.detail
        );
        assert_eq!(c.fix.as_deref(), Some("run nsnet repair"));
        f.state.health = Some(Ok(StoreHealth {
            shapings: 2,
            ..StoreHealth::default()
        }));
        assert_eq!(find(&classify(&f), "rate limits").status, Status::Ok);
    }

    #[test]
    fn loose_state_dir_warns_and_missing_nftables_fails() {
        let mut f = facts();
        f.state.mode = Some(0o755);
        f.ruleset = Err("list nf_tables ruleset: Operation not permitted".into());
        f.nft_binary = None;
        let checks = classify(&f);
        let dir = find(&checks, "state directory");
        assert_eq!(dir.status, Status::Warn);
        assert_eq!(dir.fix.as_deref(), Some("chmod 700 /var/lib/nsnet"));
        assert_eq!(find(&checks, "nftables").status, Status::Fail);
        assert_eq!(find(&checks, "nft binary").status, Status::Fail);
        f.state.is_dir = false;
        let checks = classify(&f);
        assert_eq!(find(&checks, "state directory").status, Status::Fail);
    }

    #[test]
    fn renders_one_line_per_check_with_the_fix_under_it() {
        let checks = vec![
            check("ipv6", Status::Ok, "enabled"),
            with_fix(
                check("gc", Status::Warn, "1 leftover(s): x"),
                "run nsnet gc",
            ),
        ];
        assert_eq!(
            render_in(&checks, false),
            "OK    ipv6  enabled\nWARN  gc    1 leftover(s): x\n            fix: run nsnet gc\n"
        );
        let coloured = render_in(&checks, true);
        assert!(
            coloured.starts_with("\x1b[32mOK  \x1b[0m  ipv6"),
            "{coloured:?}"
        );
        assert!(coloured.contains("\x1b[33mWARN\x1b[0m  gc"), "{coloured:?}");
    }
}
