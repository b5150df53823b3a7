//! The SQLite state store: the source of truth for networks, endpoints, links and routes.
//!
//! Every read-modify-write runs in `Store::write` (`BEGIN IMMEDIATE`), which serialises
//! concurrent nsnet processes; UNIQUE constraints back every invariant (one address per
//! network, one interface name per namespace, one host veth name).

mod containers;
#[cfg(test)]
mod cost_tests;
mod dns;
mod error;
mod ipam;
mod overlay;
mod ports;
mod rows;
mod schema;
mod shapings;
mod topology;
mod tx;

pub use containers::{ContainerRow, ContainerState, NewContainer};
pub use dns::{DnsEndpointRow, DnsNetworkRow};
pub use error::StoreError;
pub use overlay::OverlayPeerRow;
pub use ports::PortRow;
pub use rows::{
    EndpointRow, LinkEndRow, LinkRow, NetworkRow, NewEndpoint, NewLink, RouteRow, RowState,
};
pub use shapings::ShapingRow;
pub use tx::Tx;

use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, TransactionBehavior};

/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/nsnet";
/// Database file inside the state directory.
pub const DB_FILE: &str = "state.db";

/// WAL frames (pages) after which a commit checkpoints the WAL into the database and
/// truncates it. Each command is a new process, and the first connection of a process rebuilds
/// the WAL index by reading every frame of the WAL, so the WAL's length is a cost every command
/// pays. SQLite's own auto-checkpoint cannot bound it here: its PASSIVE checkpoint leaves the
/// frames in the file until a later write of the same process restarts the log, and a process
/// that writes once (`port add`, `disconnect`) exits first; the next one's rebuilt index then
/// counts none of them as checkpointed, so the WAL grew with every such command (17 MB and
/// 4,400 reads at every start after 1000 `port add`s).
const WAL_CHECKPOINT_FRAMES: i32 = 64;

/// The WAL length after which a commit checkpoints while one process writes many times in a
/// row ([`Store::batch`]): every checkpoint syncs the database and truncates the WAL (on
/// this VM's disk 5-10 ms with its discard), and at 64 frames a topology of 200 endpoints
/// checkpointed about 150 times, a third of its apply. About 16 MB of WAL at 4 KiB pages.
const BATCH_CHECKPOINT_FRAMES: i32 = 4096;
/// Frames a removal's finish record writes (deleting an endpoint's rows and their index
/// entries: 14-16 pages, counted): a WAL this close to [`WAL_CHECKPOINT_FRAMES`] would be
/// checkpointed by that commit, so [`Store::checkpoint_early`] does it in the wait before.
const EARLY_CHECKPOINT_MARGIN: u64 = 16;
/// The WAL file size a long-lived connection keeps after its log restarts (bytes).
const WAL_SIZE_LIMIT: i64 = 1 << 20;
/// [`WAL_SIZE_LIMIT`] as the bundled SQLite's compile-time default (.cargo/config.toml).
const WAL_SIZE_LIMIT_OPTION: &std::ffi::CStr = c"DEFAULT_JOURNAL_SIZE_LIMIT=1048576";

/// Whether the linked SQLite was built with compile-time option `opt` (`NAME=VALUE` as
/// `PRAGMA compile_options` lists it).
fn compiled_default(opt: &std::ffi::CStr) -> bool {
    // SAFETY: a NUL-terminated string; SQLite only reads it.
    unsafe { rusqlite::ffi::sqlite3_compileoption_used(opt.as_ptr()) != 0 }
}

/// The WAL hook: after a commit that leaves `frames` in the WAL, checkpoint and truncate it
/// once it is long. TRUNCATE waits (busy timeout) for other processes' transactions to end;
/// when it cannot finish the next commit tries again, so the result is ignored.
fn truncate_long_wal(
    wal: &mut rusqlite::hooks::Wal,
    frames: std::ffi::c_int,
) -> rusqlite::Result<()> {
    truncate_wal_beyond(wal, frames, WAL_CHECKPOINT_FRAMES)
}

/// The WAL hook during a batch ([`Store::set_batching`]).
fn truncate_very_long_wal(
    wal: &mut rusqlite::hooks::Wal,
    frames: std::ffi::c_int,
) -> rusqlite::Result<()> {
    truncate_wal_beyond(wal, frames, BATCH_CHECKPOINT_FRAMES)
}

fn truncate_wal_beyond(
    wal: &mut rusqlite::hooks::Wal,
    frames: std::ffi::c_int,
    limit: i32,
) -> rusqlite::Result<()> {
    if frames >= limit {
        let _ = wal.checkpoint_v2(rusqlite::wal::CheckpointMode::TRUNCATE);
    }
    Ok(())
}

/// How long a command waits for another's transaction before giving up on the store.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// The first wait of a command that finds the store locked, doubled at each retry up to
/// [`BUSY_POLL_MAX`]. A connect holds the write lock for about half a millisecond; SQLite's own
/// busy timeout sleeps 1, 2, 5, 10, 15 ms... between tries, so a command finding the lock
/// taken slept several times as long as the holder kept it (two callers filling a network:
/// 421 ms of sleep per 100 containers).
const BUSY_POLL_FIRST: Duration = Duration::from_micros(50);
const BUSY_POLL_MAX: Duration = Duration::from_millis(2);

/// SQLite's busy handler: `tries` is how many times it was called for this wait. Sleeps and
/// returns true to try again, or false once [`BUSY_TIMEOUT`] has passed (the statement then
/// fails with SQLITE_BUSY, as with a busy timeout).
fn wait_when_busy(tries: i32) -> bool {
    let (delay, waited) = busy_schedule(tries);
    if waited >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(delay);
    true
}

/// The delay before try `tries + 1`, and the time slept in the tries before.
fn busy_schedule(tries: i32) -> (Duration, Duration) {
    let doublings = BUSY_POLL_MAX.as_micros() / BUSY_POLL_FIRST.as_micros();
    let ramp = doublings.ilog2() as i32; // tries with a delay below the cap
    let tries = tries.max(0);
    if tries < ramp {
        let delay = BUSY_POLL_FIRST * (1 << tries);
        (delay, BUSY_POLL_FIRST * ((1 << tries) - 1))
    } else {
        let before = BUSY_POLL_FIRST * ((1 << ramp) - 1);
        (
            BUSY_POLL_MAX,
            before + BUSY_POLL_MAX * (tries - ramp) as u32,
        )
    }
}

/// An open state database.
pub struct Store {
    /// Closed on drop unless [`Store::close_at_exit`] was called.
    conn: ManuallyDrop<Connection>,
    path: PathBuf,
    close_on_drop: bool,
}

impl Drop for Store {
    fn drop(&mut self) {
        if self.close_on_drop {
            // SAFETY: dropped once, here, and never used after.
            unsafe { ManuallyDrop::drop(&mut self.conn) }
        }
    }
}

impl Store {
    /// Opens (creating with mode 0700 if needed) the state directory and its database, and
    /// migrates the schema.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        create_private_dir(dir)?;
        let path = dir.join(DB_FILE);
        let mut conn = Connection::open(&path).map_err(|e| StoreError::open(&path, e))?;
        conn.busy_handler(Some(wait_when_busy))
            .map_err(|e| StoreError::open(&path, e))?;
        // Closing the last connection would checkpoint (two fsyncs per command); the WAL hook
        // below keeps the WAL short instead. NORMAL is durable across process crashes.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(|e| StoreError::open(&path, e))?;
        stable_plans(&conn).map_err(|e| StoreError::open(&path, e))?;
        // Settings that are not SQL (no statement to compile at every start).
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY, true)
            .map_err(|e| StoreError::open(&path, e))?;
        // NORMAL is durable across process crashes in WAL mode; the WAL's size once its log
        // restarts. Both are the bundled SQLite's defaults (.cargo/config.toml): a pragma
        // only when a build without them runs (LIBSQLITE3_FLAGS set in the environment).
        if !compiled_default(c"DEFAULT_WAL_SYNCHRONOUS=1") {
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(|e| StoreError::open(&path, e))?;
        }
        if !compiled_default(WAL_SIZE_LIMIT_OPTION) {
            conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
                .map_err(|e| StoreError::open(&path, e))?;
        }
        conn.wal_hook(Some(truncate_long_wal))
            .map_err(|e| StoreError::open(&path, e))?;
        let mut store = Store {
            conn: ManuallyDrop::new(conn),
            path,
            close_on_drop: true,
        };
        schema::migrate(&mut store.conn).map_err(|e| StoreError::open(&store.path, e))?;
        Ok(store)
    }

    /// Opens an existing store for reading only (the DNS responder: it never writes, and a
    /// store that is gone is not recreated).
    pub fn open_read_only(dir: &Path) -> Result<Store, StoreError> {
        use rusqlite::OpenFlags;
        let path = dir.join(DB_FILE);
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::open(&path, e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| StoreError::open(&path, e))?;
        stable_plans(&conn).map_err(|e| StoreError::open(&path, e))?;
        Ok(Store {
            conn: ManuallyDrop::new(conn),
            path,
            close_on_drop: true,
        })
    }

    /// SQLite's `PRAGMA data_version`: changes when another connection commits, so a
    /// long-lived reader notices changes it was not told about.
    pub fn data_version(&mut self) -> Result<i64, StoreError> {
        // Cached: the DNS responder asks at every reload and every second.
        Ok(self
            .conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?)
    }

    /// Leaves the connection to the process's exit instead of closing it when the store is
    /// dropped: for a command that opens the store once and exits after it (closing frees
    /// every statement, page and lookaside buffer and unmaps the WAL index, ~0.05 ms of a
    /// command's CPU, all of which the exit does anyway). Nothing is lost: a commit is in the
    /// WAL when it returns, the close would not checkpoint (`NO_CKPT_ON_CLOSE`), and the next
    /// process reads the WAL the same way after an exit as after a close. The locks go with
    /// the process's descriptors.
    pub fn close_at_exit(&mut self) {
        self.close_on_drop = false;
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SQLite's `PRAGMA integrity_check`: empty when the database is sound, else its findings.
    pub fn integrity_check(&mut self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let found = rows.collect::<Result<Vec<_>, _>>()?;
        Ok(found.into_iter().filter(|line| line != "ok").collect())
    }

    /// Runs `f` in a write transaction (`BEGIN IMMEDIATE`); commits when it returns Ok.
    pub fn write<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let wrapped = Tx::new(tx);
        let out = f(&wrapped)?;
        wrapped.commit()?;
        Ok(out)
    }

    /// Starts (`true`) or ends a run of many write transactions by this process (a topology's
    /// apply): meanwhile the WAL is checkpointed rarely; the end checkpoints and truncates it
    /// once, so the next process starts from a short WAL as after any command. Durability is
    /// unchanged: every transaction still commits on its own, and a commit in the WAL survives
    /// a crash as well as one checkpointed into the database.
    pub fn set_batching(&mut self, on: bool) -> Result<(), StoreError> {
        if on {
            self.conn.wal_hook(Some(truncate_very_long_wal))?;
            return Ok(());
        }
        self.conn.wal_hook(Some(truncate_long_wal))?;
        // Best effort, as in the hook: a busy WAL is truncated by a later commit.
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        Ok(())
    }

    /// Checkpoints and truncates the WAL now when the caller's next commit would (best
    /// effort, like the hook): when it is within [`EARLY_CHECKPOINT_MARGIN`] frames of the
    /// limit. For a caller that the kernel keeps waiting anyway (a removal's RCU barriers,
    /// on a helper thread) before its finish record: the checkpoint's syncs, 2-10 ms on this
    /// kind of disk, then happen in that wait instead of after it. Never more checkpoints
    /// than without it; the commit after one still syncs the WAL's new header (SQLite's rule
    /// for a reused WAL).
    pub fn checkpoint_early(&mut self) {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let Ok(len) = std::fs::metadata(&wal).map(|m| m.len()) else {
            return;
        };
        // A WAL is a 32-byte header, then frames of a 24-byte header and one page.
        let page: i64 = self
            .conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .unwrap_or(4096);
        let frames = len.saturating_sub(32) / (page.max(512) as u64 + 24);
        if frames + EARLY_CHECKPOINT_MARGIN >= WAL_CHECKPOINT_FRAMES as u64 {
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }

    /// Runs `f` in a read transaction (a consistent snapshot).
    pub fn read<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(StoreError::from)?;
        f(&Tx::new(tx))
    }
}

/// SQLite's query planner stability guarantee: plans never depend on the values bound to a
/// statement. Without it SQLite 3.54 marks some of our cached statements to be compiled again
/// whenever a parameter gets a new value (an endpoint id, an address), so a statement run
/// many times by one process (the DNS responder's reloads: a quarter of their CPU; a
/// topology's apply) was compiled at every run. No query here gains from value-specific
/// plans (no partial indexes, LIKE, or statistics).
fn stable_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map(drop)
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| StoreError::Dir(dir.to_path_buf(), e))?;
    }
    let meta = std::fs::metadata(dir).map_err(|e| StoreError::Dir(dir.to_path_buf(), e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| StoreError::Dir(dir.to_path_buf(), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod busy_tests {
    use super::*;

    /// The waits start at 50 µs, double up to 2 ms, and stop after 30 s in all.
    #[test]
    fn busy_waits_start_short_and_end_at_the_timeout() {
        let us = |t| {
            let (d, w) = busy_schedule(t);
            (d.as_micros(), w.as_micros())
        };
        assert_eq!(us(0), (50, 0));
        assert_eq!(us(1), (100, 50));
        assert_eq!(us(4), (800, 750));
        assert_eq!(us(5), (2000, 1550));
        assert_eq!(us(6), (2000, 3550));
        let mut tries = 0;
        while wait_schedule_left(tries) {
            tries += 1;
        }
        let (_, waited) = busy_schedule(tries);
        assert!(waited >= BUSY_TIMEOUT && waited < BUSY_TIMEOUT + BUSY_POLL_MAX);
    }

    fn wait_schedule_left(tries: i32) -> bool {
        busy_schedule(tries).1 < BUSY_TIMEOUT
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;
    use rusqlite::StatementStatus;

    /// How often a cached statement was compiled again while run with three values.
    fn reprepares(conn: &Connection) -> i32 {
        let sql = "SELECT ip FROM addresses WHERE endpoint = ?1 ORDER BY rowid";
        for id in 1..=3 {
            let mut stmt = conn.prepare_cached(sql).unwrap();
            let _: Vec<String> = stmt
                .query_map([id], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        }
        conn.prepare_cached(sql)
            .unwrap()
            .get_status(StatementStatus::RePrepare)
    }

    /// A store's statements keep their compiled form whatever values they are run with;
    /// SQLite's default recompiles this one at every new value.
    #[test]
    fn statements_are_not_compiled_again_for_new_values() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(reprepares(&store.conn), 0);
        let reader = Store::open_read_only(dir.path()).unwrap();
        assert_eq!(reprepares(&reader.conn), 0);
        let plain = Connection::open(dir.path().join(DB_FILE)).unwrap();
        assert!(
            reprepares(&plain) > 0,
            "SQLite's default no longer recompiles"
        );
    }
}

#[cfg(test)]
mod version_tests {
    use super::*;

    /// The (cached) data version query sees other connections' commits.
    #[test]
    fn data_version_moves_with_other_connections_commits() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = Store::open(dir.path()).unwrap();
        let mut reader = Store::open_read_only(dir.path()).unwrap();
        let before = reader.data_version().unwrap();
        assert_eq!(reader.data_version().unwrap(), before);
        writer
            .write(|tx| {
                tx.0.execute(
                    "INSERT INTO routes VALUES ('ns', '10.0.0.0/8', '10.1.0.1')",
                    [],
                )?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        assert_ne!(reader.data_version().unwrap(), before);
    }
}

#[cfg(test)]
mod open_tests {
    use super::*;

    fn settings(store: &Store) -> (String, i64, i64, i64) {
        let conn = &store.conn;
        let get = |p: &str| {
            conn.pragma_query_value(None, p, |r| r.get::<_, i64>(0))
                .unwrap()
        };
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        (
            mode,
            get("synchronous"),
            get("foreign_keys"),
            get("journal_size_limit"),
        )
    }

    /// What durability and cascades rely on holds for a new store and for one opened again
    /// (no migration, so no pragma), whether from compile-time defaults or pragmas.
    #[test]
    fn every_open_has_wal_normal_sync_foreign_keys_and_the_wal_limit() {
        let dir = tempfile::tempdir().unwrap();
        let want = ("wal".to_string(), 1, 1, WAL_SIZE_LIMIT);
        assert_eq!(settings(&Store::open(dir.path()).unwrap()), want);
        assert_eq!(settings(&Store::open(dir.path()).unwrap()), want);
    }

    /// The workspace's build gives the bundled SQLite the defaults `open` counts on instead
    /// of pragmas (.cargo/config.toml's LIBSQLITE3_FLAGS, which a LIBSQLITE3_FLAGS in the
    /// environment replaces): a build without them is correct (the test above) but slower.
    #[test]
    fn the_bundled_sqlite_has_the_defaults_open_counts_on() {
        if std::env::var_os("LIBSQLITE3_FLAGS").is_some() {
            // A packager's own flags replace the workspace's: what they build is theirs.
            return;
        }
        assert!(compiled_default(c"DEFAULT_WAL_SYNCHRONOUS=1"));
        assert!(compiled_default(WAL_SIZE_LIMIT_OPTION));
        assert!(compiled_default(c"DEFAULT_PCACHE_INITSZ=0"));
    }
}
