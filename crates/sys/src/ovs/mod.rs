//! Open vSwitch for `--driver ovs` networks: the kernel operations on OVS, done over OVSDB
//! (`client`) with the daemons nsnet starts itself when they are not running (`daemon`).
//!
//! Every row nsnet makes (Bridge, Port, Interface) carries the external id `nsnet-network`
//! naming its network, and nsnet deletes only rows that carry it. An operation returns once
//! ovs-vswitchd has applied it (`cur_cfg` reached the transaction's `next_cfg`), so a connect
//! returns with the port switching.

pub mod client;
pub mod daemon;

use std::path::{Path, PathBuf};

use nsnet_core::model::Mac;
use serde_json::{Value, json};

use crate::kernel::{FailKind, KernelError};
use client::{Ovsdb, OvsdbError, map, map_get, rows, set_elems, uuid_of};
use daemon::{DaemonError, OvsDir};

/// The external id on every row nsnet makes: its value is the owning network.
pub const OWNER_KEY: &str = "nsnet-network";

/// Where a system's own Open vSwitch (Debian's service) listens. When it runs, nsnet uses it
/// and starts no daemon of its own: two ovs-vswitchd would fight over the kernel datapath.
const SYSTEM_SOCKETS: &[&str] = &["/run/openvswitch/db.sock", "/var/run/openvswitch/db.sock"];

/// How long ovs-vswitchd may take to apply a change, in milliseconds.
const APPLY_TIMEOUT_MS: u64 = 10_000;

/// The kernel datapath where the openvswitch module is loaded, else the userspace one
/// (`netdev`: packet sockets on the ports, a TAP as the local port).
pub fn datapath_type() -> &'static str {
    if Path::new("/sys/module/openvswitch").exists() {
        "system"
    } else {
        "netdev"
    }
}

/// What `doctor` says of Open vSwitch: where its daemons are and which datapath nsnet
/// would use, or the error a `--driver ovs` network would meet.
pub fn installed() -> Result<String, String> {
    let server = daemon::find("ovsdb-server").map_err(|e| e.to_string())?;
    let vswitchd = daemon::find("ovs-vswitchd").map_err(|e| e.to_string())?;
    let dp = match datapath_type() {
        "system" => "kernel datapath (openvswitch module loaded)",
        _ => "userspace datapath (no openvswitch module)",
    };
    Ok(format!(
        "{}, {}; {dp}",
        server.display(),
        vswitchd.display()
    ))
}

/// nsnet's Open vSwitch: the daemons' directory, and a connection once one is needed.
#[derive(Default)]
pub struct Ovs {
    dir: Option<OvsDir>,
    db: Option<Ovsdb>,
    /// The connection is to the system's Open vSwitch, which nsnet never stops.
    system: bool,
}

fn err(what: &str, kind: FailKind, cause: impl Into<String>) -> KernelError {
    KernelError::new(what, kind, cause)
}

fn db_err(what: &str, e: OvsdbError) -> KernelError {
    let kind = match &e {
        OvsdbError::Refused { error, .. } if error == "constraint violation" => FailKind::Exists,
        _ => FailKind::Other,
    };
    err(what, kind, e.to_string())
}

fn daemon_err(what: &str, e: DaemonError) -> KernelError {
    match e {
        DaemonError::Ovsdb(e) => db_err(what, e),
        e => err(what, FailKind::Other, e.to_string()),
    }
}

fn owner(network: &str) -> Value {
    map([(OWNER_KEY, network.to_string())])
}

fn by_name(name: &str) -> Value {
    json!([["name", "==", name]])
}

impl Ovs {
    /// OVS with its daemons' files under `dir`.
    pub fn new(dir: PathBuf) -> Ovs {
        Ovs {
            dir: Some(OvsDir(dir)),
            db: None,
            system: false,
        }
    }

    fn dir(&self, what: &str) -> Result<&OvsDir, KernelError> {
        self.dir.as_ref().ok_or_else(|| {
            err(
                what,
                FailKind::Other,
                "no directory for Open vSwitch's daemons was given",
            )
        })
    }

    /// The system's Open vSwitch, unless nsnet's own runs (it keeps serving what it has).
    fn system_db(&self) -> Option<Ovsdb> {
        if self.dir.as_ref().is_some_and(OvsDir::running) {
            return None;
        }
        SYSTEM_SOCKETS
            .iter()
            .find_map(|p| Ovsdb::connect(Path::new(p)).ok())
    }

    /// The connection: the system's Open vSwitch when it runs, else nsnet's own, its daemons
    /// started first if they are not running.
    fn db(&mut self, what: &str) -> Result<&mut Ovsdb, KernelError> {
        if self.db.is_none() {
            let db = match self.system_db() {
                Some(db) => {
                    self.system = true;
                    db
                }
                None => self.dir(what)?.ensure().map_err(|e| daemon_err(what, e))?,
            };
            self.db = Some(db);
        }
        Ok(self.db.as_mut().expect("set above"))
    }

    /// The connection for a removal: `None` when no Open vSwitch ever ran for nsnet here, so
    /// there is nothing to remove (and no daemon is started just to find that out).
    fn db_to_remove(&mut self, what: &str) -> Result<Option<&mut Ovsdb>, KernelError> {
        if self.db.is_none() && !self.dir(what)?.has_db() {
            match self.system_db() {
                Some(db) => {
                    self.system = true;
                    self.db = Some(db);
                }
                None => return Ok(None),
            }
        }
        self.db(what).map(Some)
    }

    /// Runs `ops` plus a bump of `next_cfg`, then waits until ovs-vswitchd has applied it.
    fn transact_applied(&mut self, what: &str, ops: Vec<Value>) -> Result<Vec<Value>, KernelError> {
        let (results, next) = self.commit(what, ops)?;
        self.wait_applied(what, next)?;
        Ok(results)
    }

    /// Runs `ops` plus a bump of `next_cfg`: their results and the `next_cfg` to wait for.
    fn commit(
        &mut self,
        what: &str,
        mut ops: Vec<Value>,
    ) -> Result<(Vec<Value>, i64), KernelError> {
        let n = ops.len();
        ops.push(json!({"op": "mutate", "table": "Open_vSwitch", "where": [], "mutations": [["next_cfg", "+=", 1]]}));
        ops.push(
            json!({"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["next_cfg"]}),
        );
        let db = self.db(what)?;
        let mut results = db.transact(ops).map_err(|e| db_err(what, e))?;
        let next = rows(&results[n + 1])
            .first()
            .and_then(|r| r["next_cfg"].as_i64())
            .ok_or_else(|| err(what, FailKind::Other, "ovsdb has no Open_vSwitch row"))?;
        results.truncate(n);
        Ok((results, next))
    }

    /// Waits on the server (one `wait` op, no polling) for `cur_cfg` to reach `next`.
    fn wait_applied(&mut self, what: &str, next: i64) -> Result<(), KernelError> {
        let db = self.db(what)?;
        let waited = db.transact(vec![json!({
            "op": "wait", "table": "Open_vSwitch", "where": [], "columns": ["cur_cfg"],
            "until": "==", "rows": [{"cur_cfg": next}], "timeout": APPLY_TIMEOUT_MS,
        })]);
        match waited {
            Ok(_) => Ok(()),
            Err(e) => {
                // Someone else's change may have moved it past ours meanwhile.
                let cur = db
                    .transact(vec![json!({"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["cur_cfg"]})])
                    .ok()
                    .and_then(|r| rows(&r[0]).first().and_then(|r| r["cur_cfg"].as_i64()));
                match cur {
                    Some(cur) if cur >= next => Ok(()),
                    _ => Err(err(
                        what,
                        FailKind::Other,
                        format!(
                            "ovs-vswitchd did not apply the change ({e}); is it running? see its log in {}",
                            self.dir(what)?.0.display()
                        ),
                    )),
                }
            }
        }
    }

    /// Whether ovs-vswitchd took the interface `name`: its `error` column, else an ofport.
    fn check_iface(&mut self, what: &str, name: &str) -> Result<(), KernelError> {
        let db = self.db(what)?;
        let found = db
            .transact(vec![json!({"op": "select", "table": "Interface", "where": by_name(name), "columns": ["ofport", "error"]})])
            .map_err(|e| db_err(what, e))?;
        let Some(row) = rows(&found[0]).first() else {
            return Err(err(
                what,
                FailKind::Other,
                format!("interface {name} vanished"),
            ));
        };
        if let Some(e) = set_elems(&row["error"]).first().and_then(|e| e.as_str()) {
            // As the kernel says of a missing interface (the `Net` contract).
            let kind = match e.contains("No such device") {
                true => FailKind::NotFound,
                false => FailKind::Other,
            };
            return Err(err(what, kind, format!("ovs-vswitchd: {e}")));
        }
        match set_elems(&row["ofport"]).first().and_then(|p| p.as_i64()) {
            Some(p) if p > 0 => Ok(()),
            _ => Err(err(
                what,
                FailKind::Other,
                format!("ovs-vswitchd gave {name} no OpenFlow port"),
            )),
        }
    }

    /// The uuid of the nsnet-owned row `name` of `table`; `NotFound` when missing, an error
    /// when the row is not nsnet's.
    fn owned_uuid(
        &mut self,
        what: &str,
        table: &str,
        name: &str,
    ) -> Result<Option<Value>, KernelError> {
        let Some(db) = self.db_to_remove(what)? else {
            return Err(err(what, FailKind::NotFound, format!("no {table} {name}")));
        };
        let found = db
            .transact(vec![json!({"op": "select", "table": table, "where": by_name(name), "columns": ["_uuid", "external_ids"]})])
            .map_err(|e| db_err(what, e))?;
        let Some(row) = rows(&found[0]).first() else {
            return Err(err(what, FailKind::NotFound, format!("no {table} {name}")));
        };
        if map_get(&row["external_ids"], OWNER_KEY).is_none() {
            return Err(err(
                what,
                FailKind::Other,
                format!("{table} {name} is not nsnet's (no external id {OWNER_KEY})"),
            ));
        }
        Ok(uuid_of(row))
    }

    /// A bridge with its local port (type internal: a TAP on the userspace datapath).
    pub fn add_bridge(
        &mut self,
        what: &str,
        name: &str,
        network: &str,
        mtu: Option<u32>,
        mac: Mac,
    ) -> Result<(), KernelError> {
        let mut iface = json!({"name": name, "type": "internal", "external_ids": owner(network)});
        if let Some(mtu) = mtu {
            iface["mtu_request"] = json!(mtu);
        }
        let ops = vec![
            json!({"op": "insert", "table": "Interface", "row": iface, "uuid-name": "iface"}),
            json!({"op": "insert", "table": "Port", "uuid-name": "port", "row": {
                "name": name, "interfaces": ["named-uuid", "iface"], "external_ids": owner(network)}}),
            json!({"op": "insert", "table": "Bridge", "uuid-name": "bridge", "row": {
                "name": name, "ports": ["named-uuid", "port"], "datapath_type": datapath_type(),
                "other_config": map([("hwaddr", mac.to_string())]), "external_ids": owner(network)}}),
            json!({"op": "mutate", "table": "Open_vSwitch", "where": [], "mutations": [["bridges", "insert", ["named-uuid", "bridge"]]]}),
        ];
        let (_, next) = self.commit(what, ops)?;
        // Committed: a bridge the switch did not take is deleted again, so a failed op
        // leaves nothing (the engine undoes only the ops that succeeded).
        let taken = self
            .wait_applied(what, next)
            .and_then(|()| self.check_iface(what, name));
        if let Err(e) = taken {
            let _ = self.del_bridge(what, name);
            return Err(e);
        }
        Ok(())
    }

    /// The bridge out of the root row (OVSDB then collects its ports and interfaces); the
    /// daemons stop when it was the last bridge.
    pub fn del_bridge(&mut self, what: &str, name: &str) -> Result<(), KernelError> {
        let uuid = self.owned_uuid(what, "Bridge", name)?;
        self.transact_applied(what, vec![json!({"op": "mutate", "table": "Open_vSwitch", "where": [], "mutations": [["bridges", "delete", uuid]]})])?;
        self.stop_if_idle(what);
        Ok(())
    }

    /// Stops nsnet's daemons when no bridge is left: nothing needs them.
    fn stop_if_idle(&mut self, what: &str) {
        if self.system {
            return;
        }
        let Ok(db) = self.db(what) else { return };
        let left = db
            .transact(vec![
                json!({"op": "select", "table": "Bridge", "where": [], "columns": ["name"]}),
            ])
            .map(|r| rows(&r[0]).len());
        if matches!(left, Ok(0)) {
            self.db = None;
            if let Some(dir) = &self.dir {
                dir.stop();
            }
        }
    }

    /// The host interface `port` as a port of `bridge`.
    pub fn add_port(
        &mut self,
        what: &str,
        bridge: &str,
        port: &str,
        network: &str,
        protected: bool,
    ) -> Result<(), KernelError> {
        let ops = vec![
            json!({"op": "insert", "table": "Interface", "uuid-name": "iface", "row": {"name": port, "external_ids": owner(network)}}),
            json!({"op": "insert", "table": "Port", "uuid-name": "port", "row": {
                "name": port, "interfaces": ["named-uuid", "iface"], "protected": protected, "external_ids": owner(network)}}),
            json!({"op": "mutate", "table": "Bridge", "where": by_name(bridge), "mutations": [["ports", "insert", ["named-uuid", "port"]]]}),
        ];
        let (done, next) = self.commit(what, ops)?;
        if done[2]["count"].as_u64() == Some(0) {
            // No bridge took the port: OVSDB dropped the unreferenced rows at commit.
            return Err(err(
                what,
                FailKind::NotFound,
                format!("no ovs bridge {bridge}"),
            ));
        }
        // Committed: a port the switch did not take is deleted again (see `add_bridge`).
        let taken = self
            .wait_applied(what, next)
            .and_then(|()| self.check_iface(what, port));
        if let Err(e) = taken {
            let _ = self.del_port(what, bridge, port);
            return Err(e);
        }
        Ok(())
    }

    /// The port off `bridge` (OVSDB collects its row and interface).
    pub fn del_port(&mut self, what: &str, bridge: &str, port: &str) -> Result<(), KernelError> {
        let uuid = self.owned_uuid(what, "Port", port)?;
        let done = self.transact_applied(what, vec![json!({"op": "mutate", "table": "Bridge", "where": by_name(bridge), "mutations": [["ports", "delete", uuid]]})])?;
        if done[0]["count"].as_u64() == Some(0) {
            return Err(err(
                what,
                FailKind::NotFound,
                format!("no ovs bridge {bridge}"),
            ));
        }
        Ok(())
    }
}
