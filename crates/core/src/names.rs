//! Names users choose (namespaces, networks, interfaces) and kernel names nsnet derives.
//!
//! User names are validated once here. Kernel interface names are at most 15 bytes
//! (IFNAMSIZ is 16 with the NUL), so derived names are length-checked and hashed when needed.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;
/// Longest namespace or network name: it becomes a file name and part of messages.
pub const NAME_MAX: usize = 64;
/// Token that stands for the machine's own network namespace in `link add`.
pub const HOST: &str = "host";
/// Prefix of bridges nsnet names itself.
pub const BRIDGE_PREFIX: &str = "nsbr-";
/// Prefix of host-side veth ends of endpoints.
pub const HOST_VETH_PREFIX: &str = "nsv";

const NAME_ALLOWED: &str =
    "use 1-64 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit";

fn check_name(kind: &'static str, name: &str) -> Result<(), CoreError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok || name.len() > NAME_MAX {
        return Err(CoreError::InvalidName {
            kind,
            name: name.to_string(),
            allowed: NAME_ALLOWED.to_string(),
        });
    }
    Ok(())
}

macro_rules! string_name {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $ty(String);

        impl $ty {
            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_name!(
    /// A named network namespace (a file under /run/netns).
    NsName
);
string_name!(
    /// The name of an nsnet network.
    NetName
);
string_name!(
    /// A kernel interface name (1-15 bytes).
    IfName
);

impl NsName {
    /// Validates a namespace name; it must be safe as a file name under /run/netns.
    pub fn new(name: &str) -> Result<Self, CoreError> {
        check_name("namespace", name)?;
        if name == HOST {
            return Err(CoreError::InvalidName {
                kind: "namespace",
                name: name.to_string(),
                allowed: format!("{HOST:?} is reserved for the machine's own namespace"),
            });
        }
        Ok(Self(name.to_string()))
    }

    /// Accepts any name a namespace file already has (made by `ip netns add`), refusing only
    /// names that could escape /run/netns.
    pub fn existing(name: &str) -> Result<Self, CoreError> {
        if name.is_empty()
            || name.contains('/')
            || name == "."
            || name == ".."
            || name.contains('\0')
        {
            return Err(CoreError::InvalidName {
                kind: "namespace",
                name: name.to_string(),
                allowed: "a file name under /run/netns (no '/', not '.' or '..')".to_string(),
            });
        }
        Ok(Self(name.to_string()))
    }
}

impl NetName {
    /// Validates a network name.
    pub fn new(name: &str) -> Result<Self, CoreError> {
        check_name("network", name)?;
        Ok(Self(name.to_string()))
    }
}

impl IfName {
    /// Validates an interface name the way the kernel's `dev_valid_name` does.
    pub fn new(name: &str) -> Result<Self, CoreError> {
        let bad = name.is_empty()
            || name.len() > IFNAME_MAX
            || name == "."
            || name == ".."
            || name
                .chars()
                .any(|c| c == '/' || c == ':' || c.is_whitespace() || !c.is_ascii_graphic());
        if bad {
            return Err(CoreError::InvalidName {
                kind: "interface",
                name: name.to_string(),
                allowed: format!(
                    "use 1-{IFNAME_MAX} printable ASCII characters without '/', ':' or spaces"
                ),
            });
        }
        Ok(Self(name.to_string()))
    }
}

/// FNV-1a, 64 bit: a stable hash for derived names (std's hasher is not stable across releases).
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// `prefix + name` when it fits in an interface name, else `prefix + hex hash` of the name.
fn fit_ifname(prefix: &str, name: &str) -> IfName {
    let plain = format!("{prefix}{name}");
    if plain.len() <= IFNAME_MAX && IfName::new(&plain).is_ok() {
        return IfName(plain);
    }
    let room = IFNAME_MAX - prefix.len();
    let hex = format!("{:016x}", stable_hash(&[name]));
    IfName(format!("{prefix}{}", &hex[..room]))
}

/// The default bridge of a network: `nsbr-NAME`, or `nsbr-<hash>` when NAME is too long.
pub fn default_bridge(network: &NetName) -> IfName {
    fit_ifname(BRIDGE_PREFIX, network.as_str())
}

/// The host end of an endpoint's veth: `nsv` + 12 hex digits derived from what identifies it.
pub fn host_veth(network: &NetName, netns: &str, ifname: &IfName) -> IfName {
    let hex = format!(
        "{:016x}",
        stable_hash(&[network.as_str(), netns, ifname.as_str()])
    );
    IfName(format!(
        "{HOST_VETH_PREFIX}{}",
        &hex[..IFNAME_MAX - HOST_VETH_PREFIX.len()]
    ))
}

/// Default name of a point-to-point link's end: `veth-PEER` (fitted to 15 bytes).
pub fn link_end(peer: &str) -> IfName {
    fit_ifname("veth-", peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names() {
        assert!(NsName::new("red").is_ok());
        assert!(NsName::new("a.b_c-1").is_ok());
        for bad in [
            "",
            "-x",
            ".x",
            "a/b",
            "../etc",
            "a b",
            "host",
            &"x".repeat(65),
        ] {
            assert!(NsName::new(bad).is_err(), "{bad:?} accepted");
        }
        let err = NsName::new("a/b").unwrap_err().to_string();
        assert!(err.contains("namespace") && err.contains("a/b") && err.contains("A-Z"));
        assert!(NsName::existing("weird name").is_ok());
        assert!(NsName::existing("..").is_err());
        assert!(NsName::existing("a/b").is_err());
    }

    #[test]
    fn interface_names() {
        assert!(IfName::new("eth0").is_ok());
        assert!(IfName::new("veth-red").is_ok());
        assert!(IfName::new(&"x".repeat(15)).is_ok());
        for bad in ["", "a:b", "a/b", "a b", ".", "..", &"x".repeat(16)] {
            assert!(IfName::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(
            IfName::new(&"x".repeat(16))
                .unwrap_err()
                .to_string()
                .contains("1-15")
        );
    }

    #[test]
    fn derived_names_fit_and_are_stable() {
        let short = NetName::new("lan").unwrap();
        assert_eq!(default_bridge(&short).as_str(), "nsbr-lan");
        let long = NetName::new("a-very-long-network-name").unwrap();
        let b = default_bridge(&long);
        assert_eq!(b.as_str().len(), IFNAME_MAX);
        assert_eq!(b, default_bridge(&long));
        let eth0 = IfName::new("eth0").unwrap();
        let v = host_veth(&short, "red", &eth0);
        assert_eq!(v.as_str().len(), IFNAME_MAX);
        assert!(v.as_str().starts_with("nsv"));
        assert_ne!(v, host_veth(&short, "blue", &eth0));
        assert_eq!(link_end("blue").as_str(), "veth-blue");
        assert_eq!(link_end("a-long-namespace").as_str().len(), IFNAME_MAX);
    }
}
