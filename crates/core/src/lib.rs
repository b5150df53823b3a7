//! Pure core of nsnet: the object model, name and address validation, derived kernel names,
//! IPAM and the planner. Nothing here performs I/O, so all of it is unit-tested without root.

pub mod container;
pub mod dnsname;
pub mod endpoint;
pub mod error;
pub mod firewall;
pub mod ipam;
pub mod model;
pub mod names;
pub mod ops;
pub mod overlay;
pub mod plan;
pub mod port;
pub mod shaping;
pub mod switch;
pub mod topology;

pub use error::CoreError;
