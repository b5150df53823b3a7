//! Schema and migrations, versioned by `PRAGMA user_version`.

use rusqlite::Connection;

/// Each entry migrates from version `index` to `index + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
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
    // Removals record their intent (state `removing`) before touching the kernel. Only a CHECK
    // constraint widens, which changes no stored row: edit the table definitions in place
    // (SQLite's documented procedure for such changes) rather than rebuild tables that other
    // tables reference.
    r#"
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
   SET sql = replace(sql, 'CHECK (state IN (''creating'', ''ready''))',
                          'CHECK (state IN (''creating'', ''ready'', ''removing''))')
 WHERE type = 'table' AND name IN ('networks', 'endpoints', 'links');
PRAGMA writable_schema = OFF;
"#,
    // Networks that accept traffic routed from outside straight to their endpoints.
    r#"
ALTER TABLE networks ADD COLUMN routed INTEGER NOT NULL DEFAULT 0;
"#,
    // Connect refuses a MAC already used on the network, without reading its endpoints.
    // Not UNIQUE: stores from before the check may hold duplicates already.
    r#"
CREATE INDEX endpoints_by_mac ON endpoints(network, mac);
"#,
    // A network a CNI ADD created belongs to its configuration: it goes with its last
    // attachment, and a changed definition replaces it while nothing is attached.
    r#"
ALTER TABLE networks ADD COLUMN cni_owned INTEGER NOT NULL DEFAULT 0;
"#,
    IPAM_EXTENTS,
    // The switch driver that carries a network's frames (`nsnet_core::model::Driver`).
    r#"
ALTER TABLE networks ADD COLUMN driver TEXT NOT NULL DEFAULT 'bridge';
"#,
    // Container names over DNS: networks recorded before stay without; each endpoint may
    // answer to aliases besides its namespace's name.
    r#"
ALTER TABLE networks ADD COLUMN dns INTEGER NOT NULL DEFAULT 0;
CREATE TABLE aliases (
    endpoint INTEGER NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    PRIMARY KEY (endpoint, name)
) STRICT, WITHOUT ROWID;
"#,
    // The VXLAN network identifier of an overlay network (driver 'vxlan'); NULL otherwise.
    r#"
ALTER TABLE networks ADD COLUMN vni INTEGER;
"#,
    // Rate limits and other shaping nsnet put on an interface (CNI bandwidth, `link shape`),
    // so that `repair` can put them back; a row goes with the endpoint or link whose interface
    // it shapes, whichever statement deletes that.
    r#"
CREATE TABLE shapings (
    netns      TEXT NOT NULL,
    ifname     TEXT NOT NULL,
    delay_us   INTEGER,
    jitter_us  INTEGER,
    loss_ppm   INTEGER,
    rate_bps   INTEGER,
    burst_bits INTEGER,
    PRIMARY KEY (netns, ifname)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER shapings_of_endpoint AFTER DELETE ON endpoints
BEGIN
    DELETE FROM shapings WHERE netns = OLD.netns AND ifname = OLD.ifname;
    DELETE FROM shapings WHERE netns = 'host' AND ifname = OLD.host_ifname;
END;
CREATE TRIGGER shapings_of_link AFTER DELETE ON links
BEGIN
    DELETE FROM shapings WHERE netns = OLD.ns_a AND ifname = OLD.if_a;
    DELETE FROM shapings WHERE netns = OLD.ns_b AND ifname = OLD.if_b;
END;
"#,
    // The remote hosts an overlay network's device was last converged to (by `apply`,
    // `overlay sync`/`watch` or a CNI ADD), so that `repair` can put back entries deleted
    // behind nsnet's back without asking the membership source again. A peer is its slice and
    // underlay address; everything else of it derives from the network.
    r#"
CREATE TABLE overlay_peers (
    network  TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
    slice    TEXT NOT NULL,
    underlay TEXT NOT NULL,
    PRIMARY KEY (network, slice)
) STRICT, WITHOUT ROWID;
"#,
    // An endpoint its owner attached without default routes (netavark's `no_default_route`):
    // it is never its namespace's primary, so no removal hands it the default routes.
    r#"
ALTER TABLE endpoints ADD COLUMN no_default_route INTEGER NOT NULL DEFAULT 0;
"#,
    // Every process parses every index's definition when it opens the store, and every
    // connect and disconnect writes each index of `endpoints`: this one is a prefix of the
    // UNIQUE (network, netns) index, which answers the same lookups.
    r#"
DROP INDEX endpoints_by_network;
"#,
    // How many ready endpoints have left the ready state (a removal started), ever: bumped in
    // the removal's own intent record. The DNS responder's incremental reload sees every
    // other change of the rows it serves (new ids, pending rows, the count of rows); this
    // counter tells it, in the same snapshot, that a row it serves is being removed, so it
    // stops serving the name at its next reload whether the remover finishes or not.
    r#"
CREATE TABLE endpoint_removals (started INTEGER NOT NULL) STRICT;
INSERT INTO endpoint_removals VALUES (0);
CREATE TRIGGER endpoint_removal_started AFTER UPDATE OF state ON endpoints
WHEN OLD.state = 'ready' AND NEW.state != 'ready'
BEGIN
    UPDATE endpoint_removals SET started = started + 1;
END;
"#,
];

/// Allocation without reading a network's addresses (see `nsnet_core::ipam`): each address
/// also records its subnet and its ordinal there, and the free ordinals of every subnet are
/// kept as disjoint extents, which triggers update whenever an address row comes or goes
/// (also through ON DELETE CASCADE), whichever statement removes it. Finding the lowest free
/// ordinal is then one or two index lookups. Rows of stores made before are filled in by
/// `crate::ipam::backfill` in the same transaction.
pub(crate) const IPAM_EXTENTS: &str = r#"
ALTER TABLE addresses ADD COLUMN subnet TEXT;
ALTER TABLE addresses ADD COLUMN ordinal INTEGER;
CREATE TABLE ipam_free (
    network TEXT NOT NULL,
    subnet  TEXT NOT NULL,
    lo      INTEGER NOT NULL,
    hi      INTEGER NOT NULL,
    PRIMARY KEY (network, subnet, lo),
    FOREIGN KEY (network, subnet) REFERENCES subnets(network, cidr) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
-- An address taken: the extent holding it keeps the part below it, the part above becomes an
-- extent of its own. (max(lo) <= x finds the one extent that can hold x with one index seek.)
CREATE TRIGGER ipam_take AFTER INSERT ON addresses WHEN NEW.ordinal IS NOT NULL
BEGIN
    INSERT INTO ipam_free (network, subnet, lo, hi)
    SELECT network, subnet, NEW.ordinal + 1, hi FROM ipam_free
     WHERE network = NEW.network AND subnet = NEW.subnet AND hi > NEW.ordinal
       AND lo = (SELECT max(lo) FROM ipam_free
                  WHERE network = NEW.network AND subnet = NEW.subnet AND lo <= NEW.ordinal);
    DELETE FROM ipam_free
     WHERE network = NEW.network AND subnet = NEW.subnet AND lo = NEW.ordinal;
    UPDATE ipam_free SET hi = NEW.ordinal - 1
     WHERE network = NEW.network AND subnet = NEW.subnet AND hi >= NEW.ordinal
       AND lo = (SELECT max(lo) FROM ipam_free
                  WHERE network = NEW.network AND subnet = NEW.subnet AND lo < NEW.ordinal);
END;
-- An address released (unless its subnet went, or it is free already): a one-address extent,
-- merged with the extents just above and just below it.
CREATE TRIGGER ipam_release AFTER DELETE ON addresses
WHEN OLD.ordinal IS NOT NULL
 AND EXISTS (SELECT 1 FROM subnets WHERE network = OLD.network AND cidr = OLD.subnet)
 AND NOT EXISTS (SELECT 1 FROM ipam_free
                  WHERE network = OLD.network AND subnet = OLD.subnet AND hi >= OLD.ordinal
                    AND lo = (SELECT max(lo) FROM ipam_free
                               WHERE network = OLD.network AND subnet = OLD.subnet
                                 AND lo <= OLD.ordinal))
BEGIN
    INSERT INTO ipam_free (network, subnet, lo, hi)
    VALUES (OLD.network, OLD.subnet, OLD.ordinal,
            coalesce((SELECT hi FROM ipam_free WHERE network = OLD.network
                       AND subnet = OLD.subnet AND lo = OLD.ordinal + 1), OLD.ordinal));
    DELETE FROM ipam_free
     WHERE network = OLD.network AND subnet = OLD.subnet AND lo = OLD.ordinal + 1;
    UPDATE ipam_free
       SET hi = (SELECT hi FROM ipam_free WHERE network = OLD.network
                  AND subnet = OLD.subnet AND lo = OLD.ordinal)
     WHERE network = OLD.network AND subnet = OLD.subnet AND hi = OLD.ordinal - 1
       AND lo = (SELECT max(lo) FROM ipam_free
                  WHERE network = OLD.network AND subnet = OLD.subnet AND lo < OLD.ordinal);
    DELETE FROM ipam_free
     WHERE network = OLD.network AND subnet = OLD.subnet AND lo = OLD.ordinal
       AND EXISTS (SELECT 1 FROM ipam_free
                    WHERE network = OLD.network AND subnet = OLD.subnet AND hi >= OLD.ordinal
                      AND lo = (SELECT max(lo) FROM ipam_free
                                 WHERE network = OLD.network AND subnet = OLD.subnet
                                   AND lo < OLD.ordinal));
END;
"#;

/// Brings the schema to the latest version inside one transaction.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), rusqlite::Error> {
    migrate_to(conn, MIGRATIONS.len())
}

/// Brings the schema to version `target` (tests start from older versions this way).
pub(crate) fn migrate_to(conn: &mut Connection, target: usize) -> Result<(), rusqlite::Error> {
    let target = target.min(MIGRATIONS.len());
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let current = usize::try_from(current).unwrap_or(0);
    if current >= target {
        return Ok(());
    }
    // WAL (readers never wait for the writer; commits append) is recorded in the database
    // file, so only a store that is new or made by an older nsnet, which set it at every
    // open, needs it set.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Another process may have migrated while we waited for the lock.
    let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let current = usize::try_from(current).unwrap_or(0);
    for sql in MIGRATIONS.get(current..target).unwrap_or_default() {
        tx.execute_batch(sql)?;
        if sql.contains("writable_schema") {
            // Table definitions edited in place: make every connection (this one included,
            // before its next ALTER TABLE) reparse the schema.
            let version: i64 = tx.pragma_query_value(None, "schema_version", |r| r.get(0))?;
            tx.pragma_update(None, "schema_version", version + 1)?;
        }
        if *sql == IPAM_EXTENTS {
            crate::ipam::backfill(&tx)?;
        }
    }
    tx.pragma_update(None, "user_version", target as i64)?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store made before removals recorded their intent takes the `removing` state after
    /// migrating, keeps its rows, and passes SQLite's integrity check.
    #[test]
    fn removing_state_migrates_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        let before = MIGRATIONS
            .iter()
            .position(|m| m.contains("writable_schema"))
            .unwrap();
        migrate_to(&mut conn, before).unwrap();
        conn.execute_batch(
            "INSERT INTO networks (name, bridge, internal, state, pid, boot_id)
             VALUES ('n', 'nsbr-n', 0, 'ready', 1, 'b');
             INSERT INTO endpoints (network, netns, ifname, host_ifname, state, pid, boot_id)
             VALUES ('n', 'red', 'eth0', 'nsv1', 'ready', 1, 'b');",
        )
        .unwrap();
        let refused = conn.execute("UPDATE endpoints SET state = 'removing'", []);
        assert!(refused.is_err(), "the old schema refuses 'removing'");
        // Another connection opened before the migration must see the new definitions too.
        let other = Connection::open(&path).unwrap();
        migrate(&mut conn).unwrap();
        for table in ["networks", "endpoints", "links"] {
            let sql: String = conn
                .query_row(
                    "SELECT sql FROM sqlite_schema WHERE name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(sql.contains("'removing'"), "{table}: {sql}");
        }
        other
            .execute("UPDATE endpoints SET state = 'removing'", [])
            .unwrap();
        other
            .execute("UPDATE networks SET state = 'removing'", [])
            .unwrap();
        let bogus = other.execute("UPDATE endpoints SET state = 'gone'", []);
        assert!(bogus.is_err(), "the CHECK constraint still holds");
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
    }
}
