//! One netlink transport for every family nsnet speaks (rtnetlink, nf_tables): the socket
//! (`NlSocket`), the framing it shares (`wire`), and, for tests without root, a recording
//! transport (`record::Recorder`) that logs each request datagram and answers like the kernel.

#[cfg(any(test, feature = "testkit"))]
pub mod record;
mod socket;
pub(crate) mod wire;

pub(crate) use socket::{Answer, Failure, Replies, Reply};
pub(crate) use socket::{Netfilter, NlSocket, Route};
