//! Starting Open vSwitch's two daemons for nsnet when they are not running: ovsdb-server with
//! its database, socket and pidfile in nsnet's state directory, and ovs-vswitchd, both in the
//! network namespace nsnet runs in (ovs-vswitchd binds its packet sockets to the ports'
//! interface indexes there). Debian's `ovs-ctl` is avoided on purpose: it loads the kernel
//! module and expects the system's paths.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;

use super::client::{Ovsdb, OvsdbError, map, rows};

/// Where the schema of the Open_vSwitch database is installed (Debian's openvswitch-common).
const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
/// Where Debian keeps ovs-vswitchd when the alternatives link is missing.
const VSWITCHD_LIB: &str = "/usr/lib/openvswitch-switch/ovs-vswitchd";
const HINT: &str = "Open vSwitch is not installed (Debian: apt-get install openvswitch-switch)";

/// Why the daemons could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{HINT}: no {0}")]
    NotInstalled(String),
    #[error("start {program}: {cause} (log in {log})")]
    Start {
        program: String,
        cause: String,
        log: String,
    },
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Ovsdb(#[from] OvsdbError),
}

/// The files of nsnet's own Open vSwitch, under one directory.
#[derive(Debug, Clone)]
pub struct OvsDir(pub PathBuf);

impl OvsDir {
    pub fn socket(&self) -> PathBuf {
        self.0.join("db.sock")
    }
    fn db(&self) -> PathBuf {
        self.0.join("conf.db")
    }
    fn file(&self, daemon: &str, ext: &str) -> PathBuf {
        self.0.join(format!("{daemon}.{ext}"))
    }

    /// Whether a database was ever made here (else there is nothing to delete from).
    pub fn has_db(&self) -> bool {
        self.db().exists()
    }

    /// A connection to a running ovsdb-server with ovs-vswitchd running too, starting what
    /// is not. Each start waits for the daemon's own readiness (`--detach` returns once it
    /// serves).
    pub fn ensure(&self) -> Result<Ovsdb, DaemonError> {
        let mut db = match self.alive("ovsdb-server") {
            true => Ovsdb::connect(&self.socket()).ok(),
            false => None,
        };
        if db.is_none() {
            self.start_ovsdb()?;
            db = Some(Ovsdb::connect(&self.socket())?);
        }
        let mut db = db.expect("connected above");
        if !self.alive("ovs-vswitchd") {
            self.init_root(&mut db)?;
            self.start_vswitchd()?;
        }
        Ok(db)
    }

    /// The pid in a daemon's pidfile, if that process lives.
    fn pid(&self, daemon: &str) -> Option<i32> {
        let text = std::fs::read_to_string(self.file(daemon, "pid")).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        // SAFETY: signal 0 only checks that the process exists.
        (unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
    }

    fn alive(&self, daemon: &str) -> bool {
        self.pid(daemon).is_some()
    }

    /// Whether nsnet's own ovsdb-server runs here.
    pub fn running(&self) -> bool {
        self.alive("ovsdb-server")
    }

    fn io(&self, what: &str, e: std::io::Error) -> DaemonError {
        DaemonError::Io(format!("{what} {}: {e}", self.0.display()))
    }

    fn start_ovsdb(&self) -> Result<(), DaemonError> {
        // Both daemons before anything is made: a missing install is said up front.
        find("ovsdb-server")?;
        find("ovs-vswitchd")?;
        std::fs::create_dir_all(&self.0).map_err(|e| self.io("create", e))?;
        if !self.db().exists() {
            if !Path::new(SCHEMA).exists() {
                return Err(DaemonError::NotInstalled(SCHEMA.into()));
            }
            let tmp = self.0.join("conf.db.new");
            let _ = std::fs::remove_file(&tmp);
            self.run(
                "ovsdb-tool",
                &["create".into(), tmp.display().to_string(), SCHEMA.into()],
            )?;
            // Renamed once complete: a crash half-way leaves no half-made database behind.
            std::fs::rename(&tmp, self.db()).map_err(|e| self.io("rename database in", e))?;
        }
        // A socket left by a dead server would make the new one fail to bind.
        let _ = std::fs::remove_file(self.socket());
        self.run(
            "ovsdb-server",
            &[
                format!("--remote=punix:{}", self.socket().display()),
                self.db().display().to_string(),
            ],
        )
    }

    fn start_vswitchd(&self) -> Result<(), DaemonError> {
        self.run(
            "ovs-vswitchd",
            &[format!("unix:{}", self.socket().display())],
        )
    }

    /// The root row, made once, before ovs-vswitchd starts: userspace TSO is read only at
    /// its start, and without it TCP over veth ports of the userspace datapath fails (veth
    /// hands packets over with partial checksums that nothing completes).
    fn init_root(&self, db: &mut Ovsdb) -> Result<(), DaemonError> {
        let found = db.transact(vec![
            json!({"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["_uuid"]}),
        ])?;
        if rows(&found[0]).is_empty() {
            db.transact(vec![json!({
                "op": "insert",
                "table": "Open_vSwitch",
                "row": {"other_config": map([("userspace-tso-enable", "true".to_string())])},
            })])?;
        }
        Ok(())
    }

    /// Runs one of OVS's programs with everything it writes under this directory, and waits
    /// for it (a daemon's `--detach` parent exits once the daemon is ready).
    fn run(&self, program: &str, args: &[String]) -> Result<(), DaemonError> {
        let path = find(program)?;
        let log = self.file(program, "log");
        let mut cmd = Command::new(&path);
        if program != "ovsdb-tool" {
            cmd.args([
                "--detach".to_string(),
                "--no-chdir".to_string(),
                format!("--pidfile={}", self.file(program, "pid").display()),
                format!("--log-file={}", log.display()),
                format!("--unixctl={}", self.file(program, "ctl").display()),
                "-vconsole:off".to_string(),
            ]);
        }
        for var in ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR"] {
            cmd.env(var, &self.0);
        }
        // Null stdio: a daemon holding its caller's pipes open would keep whoever reads
        // them (a CNI runtime, a test) waiting for as long as it lives.
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| DaemonError::Start {
                program: program.into(),
                cause: e.to_string(),
                log: log.display().to_string(),
            })?;
        if !out.status.success() {
            return Err(DaemonError::Start {
                program: program.into(),
                cause: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                log: log.display().to_string(),
            });
        }
        Ok(())
    }

    /// Stops both daemons (if nsnet's own run here), vswitchd first: it removes the ports'
    /// datapath state as it exits.
    pub fn stop(&self) {
        for daemon in ["ovs-vswitchd", "ovsdb-server"] {
            if let Some(pid) = self.pid(daemon) {
                // SAFETY: plain signal to the pid the daemon wrote in our state directory.
                unsafe { libc::kill(pid, libc::SIGTERM) };
                for _ in 0..500 {
                    // SAFETY: as above.
                    if unsafe { libc::kill(pid, 0) } != 0 {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            }
        }
    }
}

/// A program of OVS on PATH (ovs-vswitchd also where Debian keeps it).
pub fn find(program: &str) -> Result<PathBuf, DaemonError> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.iter()
        .map(|d| d.join(program))
        .chain((program == "ovs-vswitchd").then(|| PathBuf::from(VSWITCHD_LIB)))
        .find(|p| p.is_file())
        .ok_or_else(|| DaemonError::NotInstalled(program.into()))
}
