//! Which endpoint of a namespace carries its default routes.
//!
//! Rule: the oldest endpoint of the namespace on a non-internal network is primary. When it
//! disconnects, the next oldest takes over and gets the default routes.

use nsnet_store::EndpointRow;

/// The id of the primary endpoint among `endpoints` (oldest first), given which networks are
/// internal.
pub(crate) fn primary(
    endpoints: &[EndpointRow],
    is_internal: impl Fn(&EndpointRow) -> bool,
) -> Option<i64> {
    endpoints.iter().find(|e| !is_internal(e)).map(|e| e.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nsnet_core::names::{IfName, NetName};
    use nsnet_store::RowState;

    fn ep(id: i64, net: &str) -> EndpointRow {
        EndpointRow {
            id,
            network: NetName::new(net).unwrap(),
            netns: "red".into(),
            ifname: IfName::new("eth0").unwrap(),
            host_ifname: IfName::new("nsv0").unwrap(),
            mac: None,
            addrs: vec![],
            container_id: None,
            no_default_route: false,
            state: RowState::Ready,
            pid: 1,
            boot_id: String::new(),
            created_at: 0,
        }
    }

    #[test]
    fn oldest_non_internal_wins() {
        let eps = [ep(3, "internal"), ep(5, "lan"), ep(9, "wan")];
        assert_eq!(primary(&eps, |e| e.network.as_str() == "internal"), Some(5));
        assert_eq!(
            primary(&eps[..1], |e| e.network.as_str() == "internal"),
            None
        );
    }
}
