//! Schema and migrations, versioned by `PRAGMA user_version`.

use rusqlite::Connection;

/// Each entry migrates from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE networks (
    name       TEXT PRIMARY KEY,
    bridge     TEXT NOT NULL UNIQUE,
    mtu        INTEGER,
    internal   INTEGER NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('creating', 'ready')),
    pid        INTEGER NOT NULL,
    boot_id    TEXT NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (unixepoch())
) STRICT;
CREATE TABLE subnets (
    network TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
    cidr    TEXT NOT NULL,
    gateway TEXT NOT NULL,
    PRIMARY KEY (network, cidr)
) STRICT;
CREATE TABLE endpoints (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    network      TEXT NOT NULL REFERENCES networks(name),
    netns        TEXT NOT NULL,
    ifname       TEXT NOT NULL,
    host_ifname  TEXT NOT NULL UNIQUE,
    mac          TEXT,
    container_id TEXT,
    state        TEXT NOT NULL CHECK (state IN ('creating', 'ready')),
    pid          INTEGER NOT NULL,
    boot_id      TEXT NOT NULL,
    created_at   INTEGER NOT NULL DEFAULT (unixepoch()),
    UNIQUE (netns, ifname),
    UNIQUE (network, netns)
) STRICT;
CREATE INDEX endpoints_by_network ON endpoints(network);
CREATE TABLE addresses (
    network  TEXT NOT NULL,
    ip       TEXT NOT NULL,
    prefix   INTEGER NOT NULL,
    endpoint INTEGER NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    PRIMARY KEY (network, ip)
) STRICT;
CREATE INDEX addresses_by_endpoint ON addresses(endpoint);
CREATE TABLE links (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    ns_a     TEXT NOT NULL,
    if_a     TEXT NOT NULL,
    addr_a   TEXT,
    ns_b     TEXT NOT NULL,
    if_b     TEXT NOT NULL,
    addr_b   TEXT,
    state    TEXT NOT NULL CHECK (state IN ('creating', 'ready')),
    pid      INTEGER NOT NULL,
    boot_id  TEXT NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    UNIQUE (ns_a, if_a),
    UNIQUE (ns_b, if_b)
) STRICT;
CREATE TABLE routes (
    netns TEXT NOT NULL,
    dest  TEXT NOT NULL,
    via   TEXT NOT NULL,
    PRIMARY KEY (netns, dest)
) STRICT;
"#,
    r#"
ALTER TABLE networks ADD COLUMN masquerade INTEGER NOT NULL DEFAULT 1;
ALTER TABLE networks ADD COLUMN icc INTEGER NOT NULL DEFAULT 1;
CREATE TABLE ports (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint       INTEGER NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    proto          TEXT NOT NULL,
    host_ip        TEXT NOT NULL,  -- '' for every host address
    host_port      INTEGER NOT NULL,
    container_port INTEGER NOT NULL,
    UNIQUE (proto, host_port, host_ip)
) STRICT;
CREATE INDEX ports_by_endpoint ON ports(endpoint);
"#,
    // Containers: a process tree in its own namespaces; its network namespace is /run/netns/NAME
    // and its endpoints are the endpoints of that namespace.
    r#"
CREATE TABLE containers (
    name        TEXT PRIMARY KEY,
    hostname    TEXT NOT NULL,
    command     TEXT NOT NULL,  -- JSON array of argv
    env         TEXT NOT NULL,  -- JSON array of KEY=VALUE
    rootfs      TEXT,
    detached    INTEGER NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('creating', 'running', 'exited')),
    init_pid    INTEGER,        -- host pid of the container's init (PID 1 inside)
    init_start  INTEGER,        -- its start time (clock ticks after boot): guards against pid reuse
    exit_code   INTEGER,
    pid         INTEGER NOT NULL,
    boot_id     TEXT NOT NULL,
    created_at  INTEGER NOT NULL DEFAULT (unixepoch()),
    started_at  INTEGER,
    finished_at INTEGER
) STRICT;
"#,
    // Which objects each topology file created (`nsnet destroy` removes exactly those).
    r#"
CREATE TABLE topology_objects (
    topology TEXT NOT NULL,
    kind     TEXT NOT NULL,
    key      TEXT NOT NULL,
    PRIMARY KEY (topology, kind, key)
) STRICT;
"#,
    // CNI DEL and GC look endpoints up by container id.
    r#"
CREATE INDEX endpoints_by_container ON endpoints(container_id);
"#,
    // A network a CNI ADD created belongs to its configuration: it goes with its last
    // attachment, and a changed definition replaces it while nothing is attached.
    r#"
ALTER TABLE networks ADD COLUMN cni_owned INTEGER NOT NULL DEFAULT 0;
"#,
];

/// Brings the schema to the latest version inside one transaction.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), rusqlite::Error> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let current = usize::try_from(current).unwrap_or(0);
    if current >= MIGRATIONS.len() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Another process may have migrated while we waited for the lock.
    let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let current = usize::try_from(current).unwrap_or(0);
    for sql in &MIGRATIONS[current.min(MIGRATIONS.len())..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
    tx.commit()
}
