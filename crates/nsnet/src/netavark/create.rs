//! `create`: validate a network definition podman is about to store and complete it: a subnet
//! when none is given (the first free /24 of 10.89.0.0/16, podman's own pool), each subnet's
//! gateway, the bridge name, `ipv6_enabled` from the subnets, the IPAM driver, and
//! `dns_enabled` off (netavark gives plugin networks no aardvark-dns, and nsnet has no
//! responder yet). Nothing is made in the kernel: the network appears with its first container.

use anyhow::{Context, Result, bail};
use ipnet::IpNet;
use nsnet_core::model::overlaps;
use nsnet_store::Store;
use serde_json::{Value, json};

use super::network::{Definition, state_dir, subnets};
use super::types::Network;

/// Where a subnet is picked from when the definition has none.
const POOL: &str = "10.89.0.0/16";
const POOL_PREFIX: u8 = 24;

/// The first /24 of the pool that overlaps none of `used`.
pub fn pick_subnet(used: &[IpNet]) -> Option<IpNet> {
    let pool: IpNet = POOL.parse().expect("valid pool");
    pool.subnets(POOL_PREFIX)
        .expect("prefix inside the pool")
        .find(|s| !used.iter().any(|u| overlaps(u, s)))
}

/// The subnets of nsnet's networks in `dir` (none when it has no store yet).
fn used_subnets(dir: &std::path::Path) -> Result<Vec<IpNet>> {
    if !dir.join(nsnet_store::DB_FILE).exists() {
        return Ok(Vec::new());
    }
    let mut store =
        Store::open(dir).with_context(|| format!("open nsnet state in {}", dir.display()))?;
    let rows = store.read(|tx| tx.networks())?;
    Ok(rows
        .iter()
        .flat_map(|r| r.spec.subnets().iter().map(|s| s.cidr))
        .collect())
}

/// Runs `create` on the definition `input`; returns the completed definition.
pub fn run(input: Value) -> Result<Value> {
    let Value::Object(mut out) = input else {
        bail!("the network definition on stdin must be a JSON object");
    };
    let mut net: Network = serde_json::from_value(Value::Object(out.clone()))
        .context("cannot decode the network definition")?;
    if net.name.is_empty() {
        bail!("the network definition has no name (podman fills it in)");
    }
    if subnets(&net)?.is_empty() {
        let dir = state_dir(&net)?;
        let used = used_subnets(&dir)?;
        let Some(s) = pick_subnet(&used) else {
            bail!(
                "network {}: every /{POOL_PREFIX} of {POOL} is used by nsnet's networks; give one with --subnet",
                net.name
            );
        };
        out.insert("subnets".into(), json!([{ "subnet": s.to_string() }]));
        net = serde_json::from_value(Value::Object(out.clone()))
            .context("cannot decode the network definition")?;
    }
    let def = Definition::read(&net)?;
    let mut completed = Vec::new();
    let given = out
        .get("subnets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (s, original) in def.spec.subnets().iter().zip(given) {
        let mut entry = original.as_object().cloned().unwrap_or_default();
        entry.insert("subnet".into(), json!(s.cidr.to_string()));
        entry.insert("gateway".into(), json!(s.gateway.to_string()));
        completed.push(Value::Object(entry));
    }
    out.insert("subnets".into(), Value::Array(completed));
    out.insert(
        "network_interface".into(),
        json!(def.spec.bridge().as_str()),
    );
    out.insert(
        "ipv6_enabled".into(),
        json!(def.spec.subnets().iter().any(|s| s.cidr.addr().is_ipv6())),
    );
    out.insert("dns_enabled".into(), json!(false));
    if net
        .ipam_options
        .as_ref()
        .and_then(|o| o.get("driver"))
        .is_none()
    {
        out.insert("ipam_options".into(), json!({"driver": "host-local"}));
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_free_slash_24_of_the_pool_is_picked() {
        assert_eq!(pick_subnet(&[]).unwrap().to_string(), "10.89.0.0/24");
        let used = [
            "10.89.0.0/24".parse().unwrap(),
            "10.89.1.128/25".parse().unwrap(),
        ];
        assert_eq!(pick_subnet(&used).unwrap().to_string(), "10.89.2.0/24");
        assert_eq!(pick_subnet(&["10.0.0.0/8".parse().unwrap()]), None);
    }

    #[test]
    fn create_completes_gateway_bridge_and_flags_and_keeps_other_fields() {
        let out = run(json!({
            "name": "web", "id": "abc", "driver": "nsnet", "created": "2026-11-30T13:00:00Z",
            "labels": {"team": "a"},
            "subnets": [{"subnet": "10.90.0.0/24"}, {"subnet": "fd00:90::/64",
                "lease_range": {"start_ip": "fd00:90::10"}}],
            "ipv6_enabled": false, "internal": false, "dns_enabled": true,
            "options": {"mtu": "1400"}
        }))
        .unwrap();
        assert_eq!(out["name"], "web");
        assert_eq!(out["id"], "abc");
        assert_eq!(out["driver"], "nsnet");
        assert_eq!(out["created"], "2026-11-30T13:00:00Z");
        assert_eq!(out["labels"]["team"], "a");
        assert_eq!(out["subnets"][0]["gateway"], "10.90.0.1");
        assert_eq!(out["subnets"][1]["gateway"], "fd00:90::1");
        assert_eq!(out["subnets"][1]["lease_range"]["start_ip"], "fd00:90::10");
        assert_eq!(out["network_interface"], "nsbr-web");
        assert_eq!(out["ipv6_enabled"], true);
        assert_eq!(out["dns_enabled"], false);
        assert_eq!(out["ipam_options"]["driver"], "host-local");
        assert_eq!(out["options"]["mtu"], "1400");
        // What create completes reads back the same.
        let again = run(out.clone()).unwrap();
        assert_eq!(again, out);
    }

    #[test]
    fn create_picks_a_subnet_when_none_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let out = run(json!({"name": "n", "id": "x", "driver": "nsnet",
            "options": {"state_dir": dir.path().join("none").to_str().unwrap()}}))
        .unwrap();
        assert_eq!(out["subnets"][0]["subnet"], "10.89.0.0/24");
        assert_eq!(out["subnets"][0]["gateway"], "10.89.0.1");
    }

    #[test]
    fn create_refuses_what_nsnet_cannot_do_in_one_line() {
        let e = run(json!({"name": "n", "id": "x", "driver": "nsnet",
            "subnets": [{"subnet": "10.90.0.0/24"}], "options": {"macvlan": "x"}}))
        .unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "network n option macvlan: not an nsnet option; allowed: mtu, isolate, no_default_route, icc, state_dir"
        );
        assert!(run(json!([])).is_err());
        assert!(run(json!({"id": "x"})).is_err());
    }
}
