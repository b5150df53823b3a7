//! The DNS responder's lifecycle, seen from the commands: one `nsnet dns serve` per state
//! directory, started on first need socket-activation style (the starting command binds its
//! sockets and takes its lock, and does not wait for it), told about changes with
//! SIGHUP, recorded in a pidfile and held by a lock file for as long as it runs.

mod control;
mod forward;
mod listen;
mod load;
mod serve;
mod spawn;

pub use control::{notify, responder_pid, sync};
pub use load::table;
pub use serve::serve;

/// The responder's pid, written once it holds the lock.
pub const PID_FILE: &str = "dns.pid";
/// Held (flock) by the running responder: a command that can take it knows none runs.
pub const LOCK_FILE: &str = "dns.lock";
/// Where the responder's warnings go (its stderr).
pub const LOG_FILE: &str = "dns.log";
