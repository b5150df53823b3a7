//! Parallel setups: C containers set up by W workers at once (as a container engine starting
//! many containers does), then torn down the same way; wall time, errors, distinct addresses.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::scale::remove_namespaces;
use crate::subject::{Container, Subject};

/// First host port of the parallel run's containers.
const PORT_BASE: u16 = 40000;

/// What one parallel run measured.
#[derive(Debug, Clone, Default)]
pub struct ParallelResult {
    pub subject: String,
    pub containers: usize,
    pub workers: usize,
    pub setup_wall_s: f64,
    pub teardown_wall_s: f64,
    pub setup_errors: Vec<String>,
    pub teardown_errors: Vec<String>,
    /// Distinct addresses among the containers set up (when the subject reports them).
    pub distinct_addrs: Option<usize>,
    pub note: Option<String>,
}

/// Runs `f` on every container with `workers` threads pulling from a shared counter; returns
/// the wall time in seconds and each container's result.
fn fan_out<T: Send>(
    containers: &[Container],
    workers: usize,
    f: impl Fn(&Container) -> anyhow::Result<T> + Sync,
) -> (f64, Vec<(usize, anyhow::Result<T>)>) {
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Vec::with_capacity(containers.len()));
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(c) = containers.get(i) else { break };
                    let r = f(c);
                    out.lock().expect("results lock").push((i, r));
                }
            });
        }
    });
    let wall = start.elapsed().as_secs_f64();
    (wall, out.into_inner().expect("results lock"))
}

/// Sets up one anchor container (so the network exists, as it would before a burst of
/// starts), then `count` containers with `workers` workers, then tears them down likewise.
pub fn run(
    subject: &mut dyn Subject,
    count: usize,
    workers: usize,
    prefix: &str,
) -> ParallelResult {
    let mut res = ParallelResult {
        subject: subject.name(),
        containers: count,
        workers,
        ..Default::default()
    };
    let anchor = Container::new(prefix, 1, PORT_BASE + 1);
    let containers: Vec<Container> = (2..count as u32 + 2)
        .map(|i| Container::new(prefix, i, PORT_BASE + i as u16))
        .collect();
    let mut namespaces = Vec::new();
    for c in std::iter::once(&anchor).chain(&containers) {
        if let Err(e) = nsnet_sys::netns::create(&c.netns) {
            res.note = Some(format!("could not create netns {}: {e}", c.netns));
            remove_namespaces(&namespaces);
            return res;
        }
        namespaces.push(c.netns.clone());
    }
    let staged = subject.prepare().and_then(|()| {
        std::iter::once(&anchor)
            .chain(&containers)
            .try_for_each(|c| subject.stage(c))
    });
    let anchor_ip = match staged.and_then(|()| subject.setup(&anchor)) {
        Ok(ip) => ip,
        Err(e) => {
            res.note = Some(format!("prepare or anchor setup failed: {e:#}"));
            remove_namespaces(&namespaces);
            return res;
        }
    };
    let subj: &dyn Subject = subject;
    let (wall, results) = fan_out(&containers, workers, |c| subj.setup(c));
    res.setup_wall_s = wall;
    let mut addrs: BTreeSet<IpAddr> = anchor_ip.into_iter().collect();
    let mut reported = anchor_ip.is_some();
    let mut up = Vec::new();
    for (i, r) in results {
        match r {
            Ok(ip) => {
                reported |= ip.is_some();
                addrs.extend(ip);
                up.push(containers[i].clone());
            }
            Err(e) => res
                .setup_errors
                .push(format!("setup {}: {e:#}", containers[i].netns)),
        }
    }
    if reported {
        // The anchor's address is in the set too: count only the parallel ones.
        res.distinct_addrs = Some(addrs.len() - usize::from(anchor_ip.is_some()));
    }
    let (wall, results) = fan_out(&up, workers, |c| subj.teardown(c));
    res.teardown_wall_s = wall;
    for (i, r) in results {
        if let Err(e) = r {
            res.teardown_errors
                .push(format!("teardown {}: {e:#}", up[i].netns));
        }
    }
    if let Err(e) = subject.teardown(&anchor).and_then(|()| subject.finish()) {
        res.teardown_errors.push(format!("anchor/finish: {e:#}"));
    }
    remove_namespaces(&namespaces);
    res
}
