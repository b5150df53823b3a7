//! Kernel backends of nsnet: netlink, namespaces, sysctls, behind the `Kernel` seam (with a
//! recording fake for tests without root).
pub mod crashpoint;
pub mod etcd;
pub mod fake;
pub mod kernel;
pub mod live;
mod live_fw;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod nl;
pub mod ovs;
pub mod ports;
pub mod probe;
pub mod process;
pub mod sandbox;
pub mod sysctl;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
