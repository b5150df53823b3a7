//! Container names over DNS, as pure code: the name table a responder serves (built from
//! store rows), the answer to one query, and the upstream servers and time budget of a
//! forward. No sockets here: the responder process (`nsnet dns serve`) does the I/O.

pub mod answer;
pub mod table;
pub mod upstream;

pub use answer::{Reply, respond, servfail};
pub use table::{Entry, Key, Network, Table};

/// Search domain written into containers' resolv.conf; names under it are answered here
/// and never forwarded.
pub const SEARCH_DOMAIN: &str = "dns.nsnet";

/// TTL of local answers: containers come back with new addresses, so caches must not keep
/// them (aardvark-dns settled on 0 for the same reason).
pub const TTL: u32 = 0;
