//! What every engine test on the fake kernel starts from.

#![allow(dead_code)]

use nsnet_core::model::NetworkSpec;
use nsnet_core::names::NetName;
use nsnet_core::ops::NsRef;
use nsnet_engine::{ConnectRequest, Engine};
use nsnet_store::Store;
use nsnet_sys::fake::FakeKernel;

/// An engine on a fresh store (kept alive with it) and an empty fake kernel.
pub struct Fixture {
    pub engine: Engine<FakeKernel>,
    _dir: tempfile::TempDir,
}

/// An engine acting as process 4242 of boot "boot-a".
pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    Fixture {
        engine: Engine::new(store, FakeKernel::default(), 4242, "boot-a".into()),
        _dir: dir,
    }
}

/// A network `name` with one subnet and every default.
pub fn spec(name: &str, cidr: &str) -> NetworkSpec {
    NetworkSpec::builder(NetName::new(name).unwrap())
        .subnets([cidr.parse().unwrap()])
        .build()
        .unwrap()
}

/// Connect the named namespace `ns` to `network` with every default.
pub fn connect(network: &str, ns: &str) -> ConnectRequest {
    ConnectRequest {
        network: NetName::new(network).unwrap(),
        netns: NsRef::Named(ns.into()),
        ips: vec![],
        mac: None,
        ifname: None,
        container_id: None,
        publish: vec![],
        aliases: vec![],
    }
}
