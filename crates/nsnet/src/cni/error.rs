//! CNI errors: a spec code, a message that names the object and what is allowed, and details.
//! Printed as the spec's error JSON on stdout; the exit status is 1.

use nsnet_core::CoreError;
use nsnet_engine::EngineError;
use serde_json::{Value, json};

/// Error codes: 1-99 are the spec's, 100 and up are nsnet's own.
pub mod code {
    /// The configuration's version is not one nsnet supports.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// A configuration field asks for something nsnet does not do.
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// The container (its namespace, or its attachment) is unknown.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// A CNI_* environment variable is missing or invalid.
    pub const INVALID_ENV: u32 = 4;
    /// Reading stdin or the state store failed.
    pub const IO_FAILURE: u32 = 5;
    /// stdin is not the JSON the spec describes.
    pub const DECODE_FAILURE: u32 = 6;
    /// The network configuration is invalid (or disagrees with the stored network).
    pub const INVALID_CONFIG: u32 = 7;
    /// Another process is in the middle of the object (a network being created or removed):
    /// the runtime may retry.
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: nothing can be attached now.
    pub const NOT_AVAILABLE: u32 = 50;
    /// STATUS: attachments may have limited connectivity.
    pub const LIMITED_CONNECTIVITY: u32 = 51;
    /// CHECK found the attachment different from what nsnet made.
    pub const CHECK_FAILED: u32 = 100;
    /// An address, interface, host port or attachment is already taken.
    pub const CONFLICT: u32 = 101;
    /// The subnet (or its allocation range) has no free address left.
    pub const NO_ADDRESS: u32 = 102;
    /// A kernel operation failed (libcni's "internal error").
    pub const INTERNAL: u32 = 999;
}

/// A CNI error result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

impl CniError {
    /// An error with a code and a message.
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        CniError {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    /// The same error with details.
    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// The spec's error JSON for a configuration of version `version`.
    pub fn to_json(&self, version: &str) -> Value {
        let mut v = json!({
            "cniVersion": version,
            "code": self.code,
            "msg": self.msg,
        });
        if !self.details.is_empty() {
            v["details"] = Value::String(self.details.clone());
        }
        v
    }
}

impl std::fmt::Display for CniError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "code {}: {}", self.code, self.msg)
    }
}

/// The code of an engine failure: 7 for a request that is wrong whatever exists, 101 for one
/// in conflict with something that exists.
fn engine_code(e: &EngineError) -> u32 {
    match e {
        EngineError::Context { cause, .. } => engine_code(cause),
        EngineError::Invalid(CoreError::SubnetFull { .. } | CoreError::RangeFull { .. }) => {
            code::NO_ADDRESS
        }
        EngineError::Invalid(CoreError::AddressTaken { .. }) => code::CONFLICT,
        EngineError::Invalid(_) => code::INVALID_CONFIG,
        EngineError::Connect(c) if c.is_invalid_request() => code::INVALID_CONFIG,
        EngineError::Connect(_) => code::CONFLICT,
        EngineError::Conflict(c) if c.is_invalid_request() => code::INVALID_CONFIG,
        EngineError::Conflict(c) if c.is_transient() => code::TRY_AGAIN_LATER,
        EngineError::Store(_) => code::IO_FAILURE,
        EngineError::NotFound { .. } => code::UNKNOWN_CONTAINER,
        EngineError::Exists { .. } | EngineError::Conflict(_) | EngineError::Refused(_) => {
            code::CONFLICT
        }
        EngineError::Kernel(_) | EngineError::Teardown { .. } => code::INTERNAL,
    }
}

impl From<EngineError> for CniError {
    fn from(e: EngineError) -> Self {
        CniError::new(engine_code(&e), super::words::message(&e))
    }
}

impl From<CoreError> for CniError {
    fn from(e: CoreError) -> Self {
        CniError::new(code::INVALID_CONFIG, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use nsnet_core::names::NetName;
    use nsnet_core::port::{PortMapping, Proto};
    use nsnet_engine::Conflict;

    use super::*;

    #[test]
    fn json_shape() {
        let e = CniError::new(code::INVALID_ENV, "CNI_IFNAME is missing");
        assert_eq!(
            e.to_json("1.0.0"),
            json!({"cniVersion": "1.0.0", "code": 4, "msg": "CNI_IFNAME is missing"})
        );
        let e = e.details("set it to the interface name");
        assert_eq!(
            e.to_json("1.1.0")["details"],
            "set it to the interface name"
        );
    }

    #[test]
    fn engine_codes() {
        let full = EngineError::Invalid(CoreError::SubnetFull {
            network: "n".into(),
            subnet: "10.0.0.0/30".parse().unwrap(),
        })
        .during("attach");
        assert_eq!(CniError::from(full).code, code::NO_ADDRESS);
        let gone = EngineError::NotFound {
            kind: "netns",
            name: "/proc/1/ns/net".into(),
        };
        assert_eq!(CniError::from(gone).code, code::UNKNOWN_CONTAINER);
        let mapping = PortMapping {
            proto: Proto::Tcp,
            host_ip: None,
            host_port: 8080,
            container_port: 80,
        };
        let busy = EngineError::from(Conflict::PortPublished {
            mapping,
            other: mapping,
            endpoint: 1,
        });
        let e = CniError::from(busy);
        assert_eq!(e.code, code::CONFLICT);
        assert!(e.msg.contains("8080/tcp"));
        let taken = EngineError::Invalid(CoreError::AddressTaken {
            network: "n".into(),
            ip: "10.0.0.2".parse().unwrap(),
        });
        assert_eq!(CniError::from(taken).code, code::CONFLICT);
        let twice = EngineError::from(Conflict::AddressesInOneSubnet {
            subnet: "10.0.0.0/24".parse().unwrap(),
            network: NetName::new("n").unwrap(),
        });
        assert_eq!(CniError::from(twice).code, code::INVALID_CONFIG);
    }

    /// Typed refusals keep their texts and get the code of their kind: another process in the
    /// middle of the object is "try again later", a missing command an invalid request.
    #[test]
    fn typed_refusals_keep_their_texts_and_get_their_codes() {
        let removing = EngineError::from(Conflict::NetworkInFlux {
            network: NetName::new("n").unwrap(),
            removing: true,
        })
        .during("attach");
        let e = CniError::from(removing);
        assert_eq!(e.code, code::TRY_AGAIN_LATER);
        assert_eq!(e.msg, "attach: network n is being removed");
        let creating = EngineError::from(Conflict::ContainerBeingCreated {
            name: "web".into(),
            pid: 42,
        });
        assert_eq!(
            creating.to_string(),
            "container web is still being created (by nsnet process 42)"
        );
        assert_eq!(CniError::from(creating).code, code::TRY_AGAIN_LATER);
        let missing = EngineError::from(Conflict::CommandNotFound {
            program: "srv".into(),
            root: "/".into(),
            path: "/bin".into(),
        });
        assert_eq!(
            missing.to_string(),
            "command \"srv\" not found in / (searched PATH /bin)"
        );
        assert_eq!(CniError::from(missing).code, code::INVALID_CONFIG);
        let stopped = EngineError::from(Conflict::ContainerNotRunning { name: "web".into() });
        assert_eq!(stopped.to_string(), "container web is not running");
        assert_eq!(CniError::from(stopped).code, code::CONFLICT);
        let held = EngineError::from(Conflict::Held {
            what: "endpoint 3".into(),
            pid: 7,
            secs: 30,
        });
        assert_eq!(
            CniError::from(held).code,
            code::CONFLICT,
            "a wait that timed out"
        );
    }
}
