//! Taking the machine back to what it was before an apply that failed part-way: what existed
//! before becomes the file to converge to, so the same diff that applies a file undoes it —
//! what the apply created (it owns it) is removed, what it removed or changed is made again
//! from the definition observed before.

use crate::names::{NetName, NsName};

use super::{
    Change, Desired, DesiredContainer, DesiredEndpoint, DesiredLink, DesiredNetwork, Kind,
    Observed, Owned, diff, endpoint_key, link_key,
};

/// The changes that turn `now` (after `failed` failed) back into `before`. Drift that was
/// there before the apply is left as it was: undoing does not repair what the apply did not
/// touch. What `failed` was working on is remade whole, as it may be half done.
pub fn undo(before: &Observed, now: &Observed, failed: &Change) -> Vec<Change> {
    let target = as_desired(before);
    let mut now = now.clone();
    forgive_old_drift(&mut now, before);
    unsettle(&mut now, failed);
    // Ports the apply published on endpoints it did not make are taken back too.
    for n in &target.networks {
        for e in &n.endpoints {
            now.owned.insert(Owned::new(
                Kind::Endpoint,
                endpoint_key(e.network.as_str(), e.netns.as_str()),
            ));
        }
    }
    diff(&target, &now)
}

/// Everything that existed, as a file would ask for it (a container's endpoints come with
/// the container).
fn as_desired(o: &Observed) -> Desired {
    let ns = |n: &str| NsName::existing(n).ok();
    let networks = o
        .networks
        .iter()
        .map(|n| DesiredNetwork {
            spec: n.spec.clone(),
            endpoints: o
                .endpoints
                .iter()
                .filter(|e| e.network == *n.spec.name() && e.container.is_none())
                .filter_map(|e| {
                    Some(DesiredEndpoint {
                        network: e.network.clone(),
                        netns: ns(&e.netns)?,
                        ips: e.ips.clone(),
                        mac: e.mac,
                        ifname: Some(e.ifname.clone()),
                        publish: e.ports.clone(),
                    })
                })
                .collect(),
        })
        .collect();
    Desired {
        name: String::new(),
        namespaces: o
            .owned
            .iter()
            .filter(|x| x.kind == Kind::Netns && o.namespaces.contains(&x.key))
            .filter_map(|x| ns(&x.key))
            .collect(),
        networks,
        links: o
            .links
            .iter()
            .map(|l| DesiredLink {
                a: l.a.clone(),
                b: l.b.clone(),
                mtu: l.mtu,
            })
            .collect(),
        routes: o.routes.iter().map(|r| r.route.clone()).collect(),
        containers: o
            .containers
            .iter()
            .filter_map(|c| {
                Some(DesiredContainer {
                    name: ns(&c.name)?,
                    command: c.command.clone(),
                    hostname: Some(c.hostname.clone()),
                    // The recorded environment already holds PATH and HOSTNAME: starting
                    // from it gives the same environment again.
                    env: c.env.clone().unwrap_or_default(),
                    rootfs: c.rootfs.clone(),
                    networks: c
                        .networks
                        .iter()
                        .map(|(n, ips)| (n.clone(), ips.first().copied()))
                        .collect(),
                    publish: c.ports.clone(),
                })
            })
            .collect(),
    }
}

/// Objects exactly as broken as before the apply count as intact.
fn forgive_old_drift(now: &mut Observed, before: &Observed) {
    for n in &mut now.networks {
        if before.networks.contains(n) {
            n.drift = None;
        }
    }
    for e in &mut now.endpoints {
        if before.endpoints.contains(e) {
            e.drift = None;
        }
    }
    for l in &mut now.links {
        if before.links.contains(l) {
            l.drift = None;
        }
    }
    for r in &mut now.routes {
        if before.routes.contains(r) {
            r.present = true;
        }
    }
    for c in &mut now.containers {
        if before.containers.contains(c) {
            c.running = true;
        }
    }
}

/// Marks what a failed step was removing or replacing as broken, so that undoing remakes it
/// whole: a removal stopped half-way can leave an object whose row and interfaces are there
/// while its firewall elements are gone. (A failed creation undoes itself.)
fn unsettle(now: &mut Observed, failed: &Change) {
    const WHY: &str = "the failed step left it half changed";
    let mut endpoint = |network: &str, netns: Option<&str>| {
        for e in &mut now.endpoints {
            if (e.network.as_str() == network || network.is_empty())
                && netns.is_none_or(|n| e.netns == n)
            {
                e.drift = Some(WHY.into());
            }
        }
    };
    let mut network = |n: &NetName| {
        for o in &mut now.networks {
            if o.spec.name() == n {
                o.drift = Some(WHY.into());
            }
        }
    };
    match failed {
        Change::RemoveNetwork(n) => {
            endpoint(n.as_str(), None);
            network(n);
        }
        Change::ReplaceNetwork { spec, .. } => {
            endpoint(spec.name().as_str(), None);
            network(spec.name());
        }
        Change::Disconnect { network, netns } => endpoint(network.as_str(), Some(netns)),
        Change::Connect { endpoint: e, .. } => endpoint(e.network.as_str(), Some(e.netns.as_str())),
        Change::RemoveNetns(n) => {
            endpoint("", Some(n));
            for l in &mut now.links {
                if l.a.netns == *n || l.b.netns == *n {
                    l.drift = Some(WHY.into());
                }
            }
            for r in &mut now.routes {
                if r.route.netns == *n {
                    r.present = false;
                }
            }
        }
        Change::RemoveLink { a, .. }
        | Change::AddLink {
            link: DesiredLink { a, .. },
            ..
        } => {
            for l in &mut now.links {
                if link_key(&l.a) == link_key(a) {
                    l.drift = Some(WHY.into());
                }
            }
        }
        Change::RemoveRoute(r) | Change::AddRoute { route: r, .. } => {
            for o in &mut now.routes {
                if o.route.netns == r.netns && o.route.dest == r.dest {
                    o.present = false;
                }
            }
        }
        Change::RemoveContainer(n) => mark_container(now, n),
        Change::RunContainer { container, .. } => mark_container(now, container.name.as_str()),
        // One atomic firewall transaction or one kernel request: done or not at all.
        Change::AddPorts { .. }
        | Change::RemovePorts { .. }
        | Change::Shape { .. }
        | Change::CreateNetns(_)
        | Change::CreateNetwork(_) => {}
    }
}

fn mark_container(now: &mut Observed, name: &str) {
    for c in &mut now.containers {
        if c.name == name {
            c.running = false;
        }
    }
}
