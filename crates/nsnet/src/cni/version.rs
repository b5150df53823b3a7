//! Spec versions: which ones nsnet speaks, which one a configuration asks for, and what each
//! command needs.

use serde_json::{Value, json};

use super::error::{CniError, code};

/// A CNI spec version nsnet supports, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V0_3_0,
    V0_3_1,
    V0_4_0,
    V1_0_0,
    V1_1_0,
}

impl Version {
    /// Every supported version, oldest first.
    pub const ALL: [Version; 5] = [
        Version::V0_3_0,
        Version::V0_3_1,
        Version::V0_4_0,
        Version::V1_0_0,
        Version::V1_1_0,
    ];
    /// The newest supported version.
    pub const LATEST: Version = Version::V1_1_0;

    /// The version string.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V0_3_0 => "0.3.0",
            Version::V0_3_1 => "0.3.1",
            Version::V0_4_0 => "0.4.0",
            Version::V1_0_0 => "1.0.0",
            Version::V1_1_0 => "1.1.0",
        }
    }

    /// A supported version by its string.
    pub fn parse(s: &str) -> Option<Version> {
        Version::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// CHECK exists from 0.4.0 on.
    pub fn has_check(self) -> bool {
        self >= Version::V0_4_0
    }

    /// STATUS and GC exist from 1.1.0 on.
    pub fn has_status_and_gc(self) -> bool {
        self >= Version::V1_1_0
    }

    /// Results before 1.0.0 carry `"version": "4"|"6"` in each IP.
    pub fn ip_has_version_field(self) -> bool {
        self < Version::V1_0_0
    }

    /// Interfaces carry `mtu` from 1.1.0 on.
    pub fn interface_has_mtu(self) -> bool {
        self >= Version::V1_1_0
    }
}

fn supported_list() -> String {
    Version::ALL
        .iter()
        .map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The version of a configuration: its `cniVersion`, or else the newest entry of its
/// `cniVersions` list that nsnet supports.
pub fn negotiate(
    cni_version: Option<&str>,
    cni_versions: Option<&[String]>,
) -> Result<Version, CniError> {
    if let Some(v) = cni_version {
        return Version::parse(v).ok_or_else(|| {
            CniError::new(
                code::INCOMPATIBLE_VERSION,
                format!(
                    "incompatible CNI version {v:?}: nsnet supports {}",
                    supported_list()
                ),
            )
        });
    }
    match cni_versions {
        Some(list) => list
            .iter()
            .filter_map(|v| Version::parse(v))
            .max()
            .ok_or_else(|| {
                CniError::new(
                    code::INCOMPATIBLE_VERSION,
                    format!(
                        "none of the configuration's cniVersions ({}) is supported: nsnet supports {}",
                        list.join(", "),
                        supported_list()
                    ),
                )
            }),
        None => Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!(
                "the network configuration has no cniVersion: give one of {}",
                supported_list()
            ),
        )),
    }
}

/// The VERSION command's answer.
pub fn version_info() -> Value {
    json!({
        "cniVersion": Version::LATEST.as_str(),
        "supportedVersions": Version::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_version_wins() {
        assert_eq!(negotiate(Some("0.4.0"), None).unwrap(), Version::V0_4_0);
        let list = vec!["1.1.0".to_string()];
        assert_eq!(
            negotiate(Some("1.0.0"), Some(&list)).unwrap(),
            Version::V1_0_0
        );
        let e = negotiate(Some("0.2.0"), None).unwrap_err();
        assert_eq!(e.code, code::INCOMPATIBLE_VERSION);
        assert!(
            e.msg.contains("0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"),
            "{}",
            e.msg
        );
    }

    #[test]
    fn versions_list_picks_the_newest_supported() {
        let list: Vec<String> = ["0.4.0", "1.0.0", "2.0.0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(negotiate(None, Some(&list)).unwrap(), Version::V1_0_0);
        let none = vec!["0.1.0".to_string()];
        assert_eq!(
            negotiate(None, Some(&none)).unwrap_err().code,
            code::INCOMPATIBLE_VERSION
        );
        assert_eq!(
            negotiate(None, None).unwrap_err().code,
            code::INCOMPATIBLE_VERSION
        );
    }

    #[test]
    fn command_support() {
        assert!(!Version::V0_3_1.has_check());
        assert!(Version::V0_4_0.has_check());
        assert!(!Version::V1_0_0.has_status_and_gc());
        assert!(Version::V1_1_0.has_status_and_gc());
        assert_eq!(
            version_info()["supportedVersions"],
            json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
        );
    }
}
