//! Overlay membership in etcd: each host claims its slice with a create-if-absent transaction
//! and publishes its underlay address, both under a lease it keeps alive; the hosts are the
//! range read of the topology's prefix. A host that stops renewing disappears from the others
//! when its lease expires, with both of its keys. Keys (under `/nsnet/TOPOLOGY/`):
//! `slices/N` -> host name, `hosts/NAME` -> `{"underlay": "192.0.2.1", "slice": 1}`.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use nsnet_core::overlay::{EtcdMember, Host};
use nsnet_sys::etcd::{Etcd, EtcdError};
use serde::{Deserialize, Serialize};

/// Why membership could not be read or claimed.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    #[error("slice {slice} is held by host {holder} in etcd; give host {host} another `slice`")]
    SliceHeld {
        slice: u32,
        holder: String,
        host: String,
    },
    #[error("etcd key {key}: {cause}")]
    BadValue { key: String, cause: String },
    #[error("lease file {path}: {cause}")]
    LeaseFile { path: String, cause: String },
}

/// What a host publishes about itself.
#[derive(Debug, Serialize, Deserialize)]
struct HostValue {
    underlay: Ipv4Addr,
    slice: u32,
}

/// One topology's membership in one etcd.
pub struct EtcdMembership {
    etcd: Etcd,
    prefix: String,
    ttl: u32,
    /// Where this host keeps its lease ID, so every nsnet process of the host renews one lease.
    lease_file: PathBuf,
}

impl EtcdMembership {
    /// The membership of topology `topology` as `member` configures it; the lease ID is kept
    /// in `state_dir`.
    pub fn new(
        member: &EtcdMember,
        topology: &str,
        state_dir: &std::path::Path,
    ) -> Result<EtcdMembership, MembershipError> {
        Ok(EtcdMembership {
            etcd: Etcd::new(&member.endpoint)?,
            prefix: format!("/nsnet/{topology}/"),
            ttl: member.ttl,
            lease_file: state_dir.join(format!("etcd-lease-{topology}")),
        })
    }

    fn saved_lease(&self) -> Option<i64> {
        std::fs::read_to_string(&self.lease_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// This host's lease, renewed; a new one (and `true`) when there was none or it expired.
    fn lease(&self) -> Result<(i64, bool), MembershipError> {
        if let Some(id) = self.saved_lease()
            && self.etcd.lease_keepalive(id)? > 0
        {
            return Ok((id, false));
        }
        let id = self.etcd.lease_grant(self.ttl)?;
        std::fs::write(&self.lease_file, id.to_string()).map_err(|e| {
            MembershipError::LeaseFile {
                path: self.lease_file.display().to_string(),
                cause: e.to_string(),
            }
        })?;
        Ok((id, true))
    }

    /// Keeps this host listed: renews its lease, and registers it again (claim and publish)
    /// when the lease was new.
    pub fn keep(&self, me: &Host) -> Result<(), MembershipError> {
        match self.lease()? {
            (_, false) => Ok(()),
            (lease, true) => self.register(me, lease),
        }
    }

    /// Registers this host under a live lease: claims its slice (create-if-absent; a slice
    /// this host held before is taken over by the new lease) and publishes its address.
    pub fn join(&self, me: &Host) -> Result<(), MembershipError> {
        let (lease, _) = self.lease()?;
        self.register(me, lease)
    }

    fn register(&self, me: &Host, lease: i64) -> Result<(), MembershipError> {
        let slice_key = format!("{}slices/{}", self.prefix, me.slice);
        match self.etcd.create_if_absent(&slice_key, &me.name, lease)? {
            None => {}
            Some(holder) if holder == me.name => self.etcd.put(&slice_key, &me.name, lease)?,
            Some(holder) => {
                return Err(MembershipError::SliceHeld {
                    slice: me.slice,
                    holder,
                    host: me.name.clone(),
                });
            }
        }
        let value = serde_json::to_string(&HostValue {
            underlay: me.underlay,
            slice: me.slice,
        })
        .expect("plain struct");
        self.etcd
            .put(&format!("{}hosts/{}", self.prefix, me.name), &value, lease)?;
        Ok(())
    }

    /// Takes this host out: revokes its lease (its keys go with it, the other hosts drop its
    /// peers at their next look) and forgets it. Idempotent.
    pub fn leave(&self) -> Result<(), MembershipError> {
        if let Some(id) = self.saved_lease() {
            self.etcd.lease_revoke(id)?;
        }
        match std::fs::remove_file(&self.lease_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(MembershipError::LeaseFile {
                path: self.lease_file.display().to_string(),
                cause: e.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// The hosts listed now, by name.
    pub fn hosts(&self) -> Result<Vec<Host>, MembershipError> {
        let hosts_prefix = format!("{}hosts/", self.prefix);
        self.etcd
            .range_prefix(&hosts_prefix)?
            .into_iter()
            .map(|(key, value)| {
                let v: HostValue =
                    serde_json::from_str(&value).map_err(|e| MembershipError::BadValue {
                        key: key.clone(),
                        cause: e.to_string(),
                    })?;
                Ok(Host {
                    name: key[hosts_prefix.len()..].to_string(),
                    underlay: v.underlay,
                    slice: v.slice,
                })
            })
            .collect()
    }
}
