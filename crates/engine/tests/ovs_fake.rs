//! An Open vSwitch network through the engine with the recording fake: a connect that fails
//! after its port was added takes the port off again, a failed network create leaves no
//! bridge, and disconnect and removal leave no OVS row.

mod common;

use common::{connect, fixture};

use nsnet_core::model::{Driver, NetworkSpec};
use nsnet_core::names::{NetName, NsName};
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_engine::NetworkRequest;

fn ovs_net(name: &str, icc: bool) -> NetworkRequest {
    NetworkRequest {
        spec: NetworkSpec::builder(NetName::new(name).unwrap())
            .subnets(["10.1.0.0/24".parse().unwrap()])
            .driver(Driver::Ovs)
            .icc(icc)
            .build()
            .unwrap(),
    }
}

#[test]
fn failed_connect_takes_its_port_off_the_switch() {
    let mut f = fixture();
    let e = &mut f.engine;
    e.netns_add(&NsName::new("red").unwrap()).unwrap();
    e.network_create(ovs_net("lan", false)).unwrap();
    assert!(e.kernel().ovs.contains_key("nsbr-lan"));
    for step in ["add address 10.1.0.2/24", "add port", "set lo up"] {
        e.kernel().fail_on = Some(step.into());
        let err = e.connect(connect("lan", "red")).unwrap_err().to_string();
        assert!(err.contains("injected"), "{err}");
        assert!(
            e.kernel().ovs["nsbr-lan"].1.is_empty(),
            "port left after {step}"
        );
        assert!(
            e.kernel().links_in("red").is_empty(),
            "veth left after {step}"
        );
    }
    let ok = e.connect(connect("lan", "red")).unwrap();
    let port = ok.host_ifname.to_string();
    assert!(e.kernel().ovs["nsbr-lan"].1.contains(&port));
    // icc off: the port is a protected one.
    assert!(e.kernel().log.iter().any(|op| matches!(
        op,
        KernelOp::OvsAddPort { port: p, protected: true, .. } if *p == port
    )));
    e.disconnect(&NetName::new("lan").unwrap(), &NsRef::Named("red".into()))
        .unwrap();
    assert!(e.kernel().ovs["nsbr-lan"].1.is_empty());
    e.network_rm(&NetName::new("lan").unwrap(), false).unwrap();
    assert!(e.kernel().ovs.is_empty());
    assert!(e.kernel().links_in("host").is_empty());
}

#[test]
fn failed_create_leaves_no_bridge() {
    let mut f = fixture();
    let e = &mut f.engine;
    e.kernel().fail_on = Some("add address 10.1.0.1/24".into());
    assert!(e.network_create(ovs_net("lan", true)).is_err());
    assert!(e.kernel().ovs.is_empty());
    assert!(e.kernel().links_in("host").is_empty());
    e.network_create(ovs_net("lan", true)).unwrap();
    assert!(e.kernel().ovs.contains_key("nsbr-lan"));
}
