//! Object keys as Go's `encoding/json` matches them: a key names a struct field when it equals
//! the field's name ignoring case. The reference plugins are Go, so runtimes get away with any
//! case: containerd's go-cni declares its capability structs (`PortMapping`, `IPRanges`,
//! `BandWidth`, `DNS`) without JSON tags and sends `"HostPort"`, `"IngressRate"`,
//! `"Servers"`, while CRI-O and podman send `"hostPort"`. Before serde decodes a
//! `runtimeConfig`, its keys are rewritten here to the spelling nsnet's structs use.

use serde_json::{Map, Value};

/// Where the keys to fold are: an object's known fields (each with what its value holds),
/// a list of something, or a value with no keys of interest.
pub enum Keys {
    Object(&'static [(&'static str, Keys)]),
    List(&'static Keys),
    Leaf,
}

/// A `portMappings` entry (CNI's CONVENTIONS.md spelling).
const PORT_MAPPING: Keys = Keys::Object(&[
    ("hostPort", Keys::Leaf),
    ("containerPort", Keys::Leaf),
    ("protocol", Keys::Leaf),
    ("hostIP", Keys::Leaf),
]);

/// A range of `ipRanges` (host-local's range).
const RANGE: Keys = Keys::Object(&[
    ("subnet", Keys::Leaf),
    ("rangeStart", Keys::Leaf),
    ("rangeEnd", Keys::Leaf),
    ("gateway", Keys::Leaf),
]);

/// The capabilities nsnet reads from `runtimeConfig`. `aliases` maps network names (user
/// data, never folded) to names.
pub const RUNTIME_CONFIG: Keys = Keys::Object(&[
    ("portMappings", Keys::List(&PORT_MAPPING)),
    ("ipRanges", Keys::List(&Keys::List(&RANGE))),
    (
        "bandwidth",
        Keys::Object(&[
            ("ingressRate", Keys::Leaf),
            ("ingressBurst", Keys::Leaf),
            ("egressRate", Keys::Leaf),
            ("egressBurst", Keys::Leaf),
        ]),
    ),
    (
        "dns",
        Keys::Object(&[
            ("servers", Keys::Leaf),
            ("searches", Keys::Leaf),
            ("options", Keys::Leaf),
        ]),
    ),
    ("ips", Keys::Leaf),
    ("mac", Keys::Leaf),
    ("aliases", Keys::Leaf),
]);

/// Rewrites the keys of `v` that match a known field ignoring ASCII case to the field's
/// spelling, at every level `keys` describes. When several keys match one field, the one
/// spelled exactly wins (Go prefers it too); unknown keys stay as they are.
pub fn fold(v: &mut Value, keys: &Keys) {
    match (v, keys) {
        (Value::Object(map), Keys::Object(fields)) => {
            let old = std::mem::take(map);
            let mut out = Map::with_capacity(old.len());
            let mut folded: Vec<(String, Value)> = Vec::new();
            for (k, val) in old {
                match fields.iter().find(|(f, _)| f.eq_ignore_ascii_case(&k)) {
                    Some((f, _)) if *f != k => folded.push((f.to_string(), val)),
                    _ => {
                        out.insert(k, val);
                    }
                }
            }
            for (k, val) in folded {
                out.entry(k).or_insert(val);
            }
            for (f, inner) in fields.iter() {
                if let Some(val) = out.get_mut(*f) {
                    fold(val, inner);
                }
            }
            *map = out;
        }
        (Value::Array(items), Keys::List(inner)) => {
            for item in items {
                fold(item, inner);
            }
        }
        // One level of list less than expected: go-cni sends `ipRanges` as a flat list of
        // ranges where host-local reads a list of range sets.
        (v @ Value::Object(_), Keys::List(inner)) => fold(v, inner),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn containerd_spelling_becomes_the_conventions_one() {
        // What containerd 1.6 (go-cni 1.1) writes for a pod with a hostPort, bandwidth
        // annotations and a DNS config.
        let mut v = json!({
            "portMappings": [{"HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}],
            "bandwidth": {"IngressRate": 1000000, "IngressBurst": 4294967295u64,
                          "EgressRate": 2000000, "EgressBurst": 4294967295u64},
            "dns": {"Servers": ["10.96.0.10"], "Searches": ["svc.cluster.local"], "Options": ["ndots:5"]},
            "ipRanges": [[{"Subnet": "10.244.1.0/24", "RangeStart": "", "RangeEnd": "", "Gateway": ""}]],
            "aliases": {"Net": ["Web"]},
            "Unknown": 1
        });
        fold(&mut v, &RUNTIME_CONFIG);
        assert_eq!(
            v,
            json!({
                "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""}],
                "bandwidth": {"ingressRate": 1000000, "ingressBurst": 4294967295u64,
                              "egressRate": 2000000, "egressBurst": 4294967295u64},
                "dns": {"servers": ["10.96.0.10"], "searches": ["svc.cluster.local"], "options": ["ndots:5"]},
                "ipRanges": [[{"subnet": "10.244.1.0/24", "rangeStart": "", "rangeEnd": "", "gateway": ""}]],
                "aliases": {"Net": ["Web"]},
                "Unknown": 1
            })
        );
    }

    #[test]
    fn any_case_and_the_exact_spelling_first() {
        let mut v = json!({"PORTMAPPINGS": [{"hostport": 1, "HOSTIP": "::1"}],
                           "Mac": "02:00:00:00:00:01", "mac": "02:00:00:00:00:02"});
        fold(&mut v, &RUNTIME_CONFIG);
        assert_eq!(
            v,
            json!({"portMappings": [{"hostPort": 1, "hostIP": "::1"}], "mac": "02:00:00:00:00:02"})
        );
        // go-cni's flat ipRanges fold too; a value of another shape is left for serde.
        let mut v = json!({"IPRanges": [{"Subnet": "10.0.0.0/24"}], "Mac": 5});
        fold(&mut v, &RUNTIME_CONFIG);
        assert_eq!(
            v,
            json!({"ipRanges": [{"subnet": "10.0.0.0/24"}], "mac": 5})
        );
    }
}
