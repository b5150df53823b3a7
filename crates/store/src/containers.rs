//! Containers: one row per container, keyed by name (which is also its network namespace's).

use rusqlite::{OptionalExtension, Row, params};

use crate::StoreError;
use crate::tx::Tx;

/// Lifecycle of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    /// Namespace, endpoints or process are being set up by process `pid`.
    Creating,
    /// The init was started; whether it still runs is checked against the live process.
    Running,
    /// nsnet saw it end (foreground exit, `stop`); its network was released.
    Exited,
}

impl ContainerState {
    /// Name as stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            ContainerState::Creating => "creating",
            ContainerState::Running => "running",
            ContainerState::Exited => "exited",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "creating" => Ok(ContainerState::Creating),
            "running" => Ok(ContainerState::Running),
            "exited" => Ok(ContainerState::Exited),
            _ => Err(StoreError::Corrupt {
                what: "container state",
                value: s.to_string(),
            }),
        }
    }
}

/// A container to record (state `creating`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewContainer {
    pub name: String,
    pub hostname: String,
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub rootfs: Option<String>,
    pub detached: bool,
    pub pid: u32,
    pub boot_id: String,
}

/// A container as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRow {
    pub name: String,
    pub hostname: String,
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub rootfs: Option<String>,
    pub detached: bool,
    pub state: ContainerState,
    /// The init's pid and start time, once started.
    pub init: Option<(u32, u64)>,
    pub exit_code: Option<i32>,
    pub pid: u32,
    pub boot_id: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

const COLS: &str = "name, hostname, command, env, rootfs, detached, state, init_pid, init_start, \
                    exit_code, pid, boot_id, created_at, started_at, finished_at";

fn strings(what: &'static str, json: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(json).map_err(|_| StoreError::Corrupt {
        what,
        value: json.to_string(),
    })
}

fn json(v: &[String]) -> String {
    serde_json::to_string(v).expect("strings serialise")
}

struct Raw {
    name: String,
    hostname: String,
    command: String,
    env: String,
    rootfs: Option<String>,
    detached: bool,
    state: String,
    init_pid: Option<u32>,
    init_start: Option<i64>,
    exit_code: Option<i32>,
    pid: u32,
    boot_id: String,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

fn raw(r: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        name: r.get(0)?,
        hostname: r.get(1)?,
        command: r.get(2)?,
        env: r.get(3)?,
        rootfs: r.get(4)?,
        detached: r.get(5)?,
        state: r.get(6)?,
        init_pid: r.get(7)?,
        init_start: r.get(8)?,
        exit_code: r.get(9)?,
        pid: r.get(10)?,
        boot_id: r.get(11)?,
        created_at: r.get(12)?,
        started_at: r.get(13)?,
        finished_at: r.get(14)?,
    })
}

fn finish(r: Raw) -> Result<ContainerRow, StoreError> {
    Ok(ContainerRow {
        command: strings("container command", &r.command)?,
        env: strings("container environment", &r.env)?,
        state: ContainerState::parse(&r.state)?,
        init: r
            .init_pid
            .zip(r.init_start)
            .map(|(p, s)| (p, s.unsigned_abs())),
        name: r.name,
        hostname: r.hostname,
        rootfs: r.rootfs,
        detached: r.detached,
        exit_code: r.exit_code,
        pid: r.pid,
        boot_id: r.boot_id,
        created_at: r.created_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
    })
}

impl Tx<'_> {
    /// Records a container in state `creating`. A UNIQUE conflict means the name is taken.
    pub fn insert_container(&self, c: &NewContainer) -> Result<(), StoreError> {
        self.0.execute(
            "INSERT INTO containers (name, hostname, command, env, rootfs, detached, state, pid, boot_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'creating', ?7, ?8)",
            params![
                c.name,
                c.hostname,
                json(&c.command),
                json(&c.env),
                c.rootfs,
                c.detached,
                c.pid,
                c.boot_id
            ],
        )?;
        Ok(())
    }

    /// Marks a container `running` with its init process.
    pub fn set_container_running(
        &self,
        name: &str,
        init_pid: u32,
        init_start: u64,
    ) -> Result<(), StoreError> {
        self.0.execute(
            "UPDATE containers SET state = 'running', init_pid = ?2, init_start = ?3,
             started_at = unixepoch() WHERE name = ?1",
            params![
                name,
                init_pid,
                i64::try_from(init_start).unwrap_or(i64::MAX)
            ],
        )?;
        Ok(())
    }

    /// Marks a container `exited` (the exit code is unknown when its init was killed).
    pub fn set_container_exited(&self, name: &str, code: Option<i32>) -> Result<(), StoreError> {
        self.0.execute(
            "UPDATE containers SET state = 'exited', exit_code = ?2,
             finished_at = coalesce(finished_at, unixepoch()) WHERE name = ?1",
            params![name, code],
        )?;
        Ok(())
    }

    /// Forgets a container; Ok(false) when it was not there.
    pub fn delete_container(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .0
            .execute("DELETE FROM containers WHERE name = ?1", [name])?
            > 0)
    }

    /// One container by name.
    pub fn container(&self, name: &str) -> Result<Option<ContainerRow>, StoreError> {
        let sql = format!("SELECT {COLS} FROM containers WHERE name = ?1");
        self.0
            .query_row(&sql, [name], raw)
            .optional()?
            .map(finish)
            .transpose()
    }

    /// All containers, oldest first.
    pub fn containers(&self) -> Result<Vec<ContainerRow>, StoreError> {
        let sql = format!("SELECT {COLS} FROM containers ORDER BY created_at, rowid");
        let mut stmt = self.0.prepare_cached(&sql)?;
        let raws = stmt.query_map([], raw)?.collect::<Result<Vec<_>, _>>()?;
        raws.into_iter().map(finish).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn new(name: &str) -> NewContainer {
        NewContainer {
            name: name.into(),
            hostname: name.into(),
            command: vec!["sleep".into(), "a b".into()],
            env: vec!["PATH=/bin".into()],
            rootfs: None,
            detached: true,
            pid: 7,
            boot_id: "b".into(),
        }
    }

    #[test]
    fn lifecycle_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.write(|tx| tx.insert_container(&new("web"))).unwrap();
        let err = store
            .write(|tx| tx.insert_container(&new("web")))
            .unwrap_err();
        assert!(err.is_conflict(), "{err}");
        let c = store.read(|tx| tx.container("web")).unwrap().unwrap();
        assert_eq!(c.state, ContainerState::Creating);
        assert_eq!(c.command, ["sleep", "a b"]);
        assert_eq!(c.init, None);
        store
            .write(|tx| tx.set_container_running("web", 4321, 99))
            .unwrap();
        let c = store.read(|tx| tx.container("web")).unwrap().unwrap();
        assert_eq!(
            (c.state, c.init),
            (ContainerState::Running, Some((4321, 99)))
        );
        assert!(c.started_at.is_some());
        store
            .write(|tx| tx.set_container_exited("web", Some(3)))
            .unwrap();
        let all = store.read(|tx| tx.containers()).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(
            (all[0].state, all[0].exit_code),
            (ContainerState::Exited, Some(3))
        );
        assert!(store.write(|tx| tx.delete_container("web")).unwrap());
        assert!(!store.write(|tx| tx.delete_container("web")).unwrap());
        assert!(store.read(|tx| tx.container("web")).unwrap().is_none());
    }
}
