//! Setup and teardown cost per container as the network grows: the network is filled one
//! container at a time (each setup timed); whenever it holds N containers (N = 1, 10, 100,
//! 1000) a probe container is set up and torn down repeatedly (each timed); at the end every
//! container is torn down in creation order (each timed).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::subject::{Container, FILL_PORT_BASE, PROBE_INDEX, PROBE_PORT, Subject};

/// How far and how often to measure.
#[derive(Debug, Clone)]
pub struct ScaleConfig {
    /// Container counts at which the probe is measured, ascending.
    pub checkpoints: Vec<usize>,
    /// Probe setup/teardown cycles per checkpoint.
    pub probes: usize,
    /// Time after which the fill stops (slow peers at large N), with a note.
    pub budget: Duration,
    /// Namespace name prefix of this run's containers.
    pub prefix: String,
}

/// Probe timings with N containers on the network.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    pub n: usize,
    pub setup: Vec<f64>,
    pub teardown: Vec<f64>,
}

/// Everything measured for one subject; times in milliseconds.
#[derive(Debug, Clone, Default)]
pub struct ScaleResult {
    pub subject: String,
    pub checkpoints: Vec<Checkpoint>,
    /// Setup of each container that grew the network, in order.
    pub fill: Vec<f64>,
    /// Teardown of each of them at the end, in creation order.
    pub drain: Vec<f64>,
    pub errors: Vec<String>,
    /// Why the run is incomplete or absent (skipped, budget, error).
    pub note: Option<String>,
}

impl ScaleResult {
    /// A subject that could not run.
    pub fn skipped(subject: String, why: String) -> ScaleResult {
        ScaleResult {
            subject,
            note: Some(why),
            ..Default::default()
        }
    }

    /// The probe timings at `n`, when measured.
    pub fn at(&self, n: usize) -> Option<&Checkpoint> {
        self.checkpoints.iter().find(|c| c.n == n)
    }
}

/// Times one call, in milliseconds.
pub fn timed<T>(f: impl FnOnce() -> Result<T>) -> (f64, Result<T>) {
    let start = Instant::now();
    let r = f();
    (start.elapsed().as_secs_f64() * 1000.0, r)
}

fn make_namespaces(names: impl Iterator<Item = String>) -> Result<Vec<String>> {
    let mut made = Vec::new();
    for n in names {
        nsnet_sys::netns::create(&n).with_context(|| format!("create netns {n}"))?;
        made.push(n);
    }
    Ok(made)
}

/// Removes the namespaces a run created.
pub fn remove_namespaces(names: &[String]) {
    for n in names {
        let _ = nsnet_sys::netns::delete(n);
    }
}

/// Runs the whole measurement for one subject (in the caller's network namespace).
pub fn run(subject: &mut dyn Subject, cfg: &ScaleConfig) -> ScaleResult {
    let mut res = ScaleResult {
        subject: subject.name(),
        ..Default::default()
    };
    let max_n = cfg.checkpoints.iter().copied().max().unwrap_or(0);
    let fill: Vec<Container> = (1..=max_n as u32)
        .map(|i| Container::new(&cfg.prefix, i, FILL_PORT_BASE + i as u16))
        .collect();
    let probe = Container::new(&cfg.prefix, PROBE_INDEX, PROBE_PORT);
    let names = fill
        .iter()
        .chain(std::iter::once(&probe))
        .map(|c| c.netns.clone());
    let namespaces = match make_namespaces(names) {
        Ok(n) => n,
        Err(e) => {
            res.note = Some(format!("could not create namespaces: {e:#}"));
            return res;
        }
    };
    if let Err(e) = subject.prepare() {
        res.note = Some(format!("prepare failed: {e:#}"));
        remove_namespaces(&namespaces);
        return res;
    }
    let on = fill_and_probe(subject, cfg, &fill, &probe, &mut res);
    eprintln!("  {}: tearing down {on} containers", res.subject);
    for c in &fill[..on] {
        let (ms, r) = timed(|| subject.teardown(c));
        match r {
            Ok(()) => res.drain.push(ms),
            Err(e) => res.errors.push(format!("teardown {}: {e:#}", c.netns)),
        }
    }
    if let Err(e) = subject.finish() {
        res.errors.push(format!("finish: {e:#}"));
    }
    remove_namespaces(&namespaces);
    res
}

/// Grows the network through the checkpoints, probing at each; returns how many containers
/// are on the network.
fn fill_and_probe(
    subject: &dyn Subject,
    cfg: &ScaleConfig,
    fill: &[Container],
    probe: &Container,
    res: &mut ScaleResult,
) -> usize {
    let start = Instant::now();
    let mut on = 0;
    for &n in &cfg.checkpoints {
        while on < n {
            if start.elapsed() > cfg.budget {
                res.note = Some(format!(
                    "stopped at {on} containers: the {} s budget was used up",
                    cfg.budget.as_secs()
                ));
                return on;
            }
            let c = &fill[on];
            if let Err(e) = subject.stage(c) {
                res.errors.push(format!("stage {}: {e:#}", c.netns));
                return on;
            }
            let (ms, r) = timed(|| subject.setup(c));
            if let Err(e) = r {
                res.errors.push(format!("setup {}: {e:#}", c.netns));
                res.note = Some(format!("stopped at {on} containers: setup failed"));
                return on;
            }
            res.fill.push(ms);
            on += 1;
            if on % 100 == 0 {
                eprintln!(
                    "  {}: {on} containers ({:.1} s)",
                    res.subject,
                    start.elapsed().as_secs_f64()
                );
            }
        }
        let mut cp = Checkpoint {
            n,
            ..Default::default()
        };
        for _ in 0..cfg.probes {
            if let Err(e) = subject.stage(probe) {
                res.errors.push(format!("stage probe: {e:#}"));
                break;
            }
            let (ms, r) = timed(|| subject.setup(probe));
            if let Err(e) = r {
                res.errors.push(format!("probe setup at N={n}: {e:#}"));
                break;
            }
            cp.setup.push(ms);
            let (ms, r) = timed(|| subject.teardown(probe));
            if let Err(e) = r {
                res.errors.push(format!("probe teardown at N={n}: {e:#}"));
                break;
            }
            cp.teardown.push(ms);
        }
        res.checkpoints.push(cp);
    }
    on
}
