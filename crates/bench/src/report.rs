//! From measurements to the printed report: tables of medians, ratios, the targets and
//! whether each holds. Pure.

use std::fmt::Write as _;

use crate::dataplane::DataResult;
use crate::parallel::ParallelResult;
use crate::scale::ScaleResult;
use crate::stats::{first_tenth, fmt_ms, fmt_ratio, last_tenth, median, ratio, total_seconds};
use crate::subject::{CNI_REF, FLOOR, NETAVARK, NSNET_CLI, NSNET_CNI};
use crate::table::Table;

/// Everything one run measured.
#[derive(Debug, Clone, Default)]
pub struct Results {
    pub checkpoints: Vec<usize>,
    pub probes: usize,
    pub scale: Vec<ScaleResult>,
    pub parallel: Vec<ParallelResult>,
    pub data: Option<DataResult>,
    pub notes: Vec<String>,
}

/// One target of the issue.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub what: String,
    pub measured: String,
    /// None when it could not be measured in this run.
    pub holds: Option<bool>,
}

impl Results {
    fn subject(&self, name: &str) -> Option<&ScaleResult> {
        self.scale
            .iter()
            .find(|s| s.subject == name && !s.checkpoints.is_empty())
    }
}

fn probe_median(s: &ScaleResult, n: usize, setup: bool) -> Option<f64> {
    let cp = s.at(n)?;
    median(if setup { &cp.setup } else { &cp.teardown })
}

/// `a / b` of probe medians at every N both measured.
fn ratios(a: &ScaleResult, b: &ScaleResult, ns: &[usize], setup: bool) -> Vec<(usize, f64)> {
    ns.iter()
        .filter_map(|&n| {
            ratio(probe_median(a, n, setup), probe_median(b, n, setup)).map(|r| (n, r))
        })
        .collect()
}

fn describe_ratios(rs: &[(usize, f64)]) -> String {
    rs.iter()
        .map(|(n, r)| format!("{} at N={n}", fmt_ratio(Some(*r))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "Holds at every N" for a bound on the ratio `face / other`.
fn ratio_target(
    what: String,
    face: Option<&ScaleResult>,
    other: Option<&ScaleResult>,
    ns: &[usize],
    setup: bool,
    ok: impl Fn(f64) -> bool,
) -> Target {
    let (Some(f), Some(o)) = (face, other) else {
        return Target {
            what,
            measured: "not measured in this run".into(),
            holds: None,
        };
    };
    let rs = ratios(f, o, ns, setup);
    Target {
        what,
        measured: if rs.is_empty() {
            "no common N".into()
        } else {
            describe_ratios(&rs)
        },
        holds: (!rs.is_empty()).then(|| rs.iter().all(|(_, r)| ok(*r))),
    }
}

/// The targets, for each nsnet face measured.
pub fn targets(r: &Results) -> Vec<Target> {
    let ns = &r.checkpoints;
    let mut out = Vec::new();
    for face_name in [NSNET_CLI, NSNET_CNI] {
        let Some(face) = r.subject(face_name) else {
            continue;
        };
        out.push(ratio_target(
            format!("{face_name} setup <= 1/10 of netavark's"),
            Some(face),
            r.subject(NETAVARK),
            ns,
            true,
            |x| x <= 0.1,
        ));
        out.push(ratio_target(
            format!("{face_name} setup below the floor's"),
            Some(face),
            r.subject(FLOOR),
            ns,
            true,
            |x| x < 1.0,
        ));
        out.push(ratio_target(
            format!("{face_name} teardown <= 1.0 x the floor"),
            Some(face),
            r.subject(FLOOR),
            ns,
            false,
            |x| x <= 1.0,
        ));
        let growth = ratio(probe_median(face, 1000, true), probe_median(face, 10, true));
        out.push(Target {
            what: format!("{face_name} setup at N=1000 <= 1.2 x at N=10"),
            measured: growth.map_or("N=1000 not reached".into(), |g| fmt_ratio(Some(g))),
            holds: growth.map(|g| g <= 1.2),
        });
        let total = (face.fill.len() >= 1000).then(|| total_seconds(&face.fill[..1000]));
        out.push(Target {
            what: format!("{face_name}: 1000 containers set up in under 5 s"),
            measured: total.map_or("fewer than 1000 set up".into(), |t| format!("{t:.2} s")),
            holds: total.map(|t| t < 5.0),
        });
        if let Some(p) = r.parallel.iter().find(|p| p.subject == face_name) {
            let errors = p.setup_errors.len() + p.teardown_errors.len();
            let distinct_ok = p.distinct_addrs.is_none_or(|d| d == p.containers);
            out.push(Target {
                what: format!(
                    "{face_name}: {} parallel setups with {} workers, 0 errors",
                    p.containers, p.workers
                ),
                measured: format!(
                    "{errors} errors, {} distinct addresses, {:.2} s",
                    p.distinct_addrs
                        .map_or("unknown".to_string(), |d| d.to_string()),
                    p.setup_wall_s
                ),
                holds: Some(errors == 0 && distinct_ok && p.note.is_none()),
            });
        }
    }
    if let Some(d) = &r.data {
        let ratio = d.ratio();
        out.push(Target {
            what: "throughput through a published port >= 95 % of direct".into(),
            measured: ratio.map_or("not measured".into(), |x| format!("{:.1} %", x * 100.0)),
            holds: ratio.map(|x| x >= 0.95),
        });
    }
    out
}

fn n_headers(ns: &[usize]) -> Vec<String> {
    ns.iter().map(|n| format!("N={n}")).collect()
}

fn cost_table(r: &Results, setup: bool) -> Table {
    let (series, verb) = if setup {
        ("fill", "set up")
    } else {
        ("drain", "torn down")
    };
    let mut header = vec!["subject".to_string()];
    header.extend(n_headers(&r.checkpoints));
    header.extend([
        format!("{series} first 10%"),
        format!("{series} last 10%"),
        format!("{series} total (containers {verb})"),
    ]);
    let mut t = Table::new(&header);
    for s in &r.scale {
        let mut row = vec![s.subject.clone()];
        if s.checkpoints.is_empty() && s.fill.is_empty() {
            row.push("skipped (see notes)".into());
            t.row(row);
            continue;
        }
        row.extend(
            r.checkpoints
                .iter()
                .map(|&n| fmt_ms(probe_median(s, n, setup))),
        );
        let v = if setup { &s.fill } else { &s.drain };
        row.push(fmt_ms(median(first_tenth(v))));
        row.push(fmt_ms(median(last_tenth(v))));
        row.push(if v.is_empty() {
            "-".into()
        } else {
            format!("{:.2} s ({})", total_seconds(v), v.len())
        });
        t.row(row);
    }
    t
}

fn ratio_table(r: &Results) -> Table {
    let mut header = vec!["nsnet / other".to_string()];
    for kind in ["setup", "teardown"] {
        header.extend(r.checkpoints.iter().map(|n| format!("{kind} N={n}")));
    }
    let mut t = Table::new(&header);
    for face_name in [NSNET_CLI, NSNET_CNI] {
        let Some(face) = r.subject(face_name) else {
            continue;
        };
        for other_name in [FLOOR, NETAVARK, CNI_REF] {
            let Some(other) = r.subject(other_name) else {
                continue;
            };
            let mut row = vec![format!("{face_name} / {other_name}")];
            for setup in [true, false] {
                row.extend(r.checkpoints.iter().map(|&n| {
                    fmt_ratio(ratio(
                        probe_median(face, n, setup),
                        probe_median(other, n, setup),
                    ))
                }));
            }
            t.row(row);
        }
    }
    t
}

fn parallel_table(r: &Results) -> Table {
    let mut t = Table::new(&[
        "subject",
        "containers",
        "workers",
        "setup wall",
        "setup errors",
        "distinct addresses",
        "teardown wall",
        "teardown errors",
    ]);
    for p in &r.parallel {
        if let Some(note) = &p.note {
            t.row(vec![p.subject.clone(), format!("not run: {note}")]);
            continue;
        }
        t.row(vec![
            p.subject.clone(),
            p.containers.to_string(),
            p.workers.to_string(),
            format!("{:.2} s", p.setup_wall_s),
            p.setup_errors.len().to_string(),
            p.distinct_addrs.map_or("-".to_string(), |d| d.to_string()),
            format!("{:.2} s", p.teardown_wall_s),
            p.teardown_errors.len().to_string(),
        ]);
    }
    t
}

fn data_table(d: &DataResult) -> Table {
    let mut t = Table::new(&[
        "path (outside ns -> container, TCP)",
        "median Gbit/s",
        "trials",
    ]);
    let fmt = |v: &[f64]| median(v).map_or("-".to_string(), |m| format!("{m:.2}"));
    t.row(vec![
        "direct to the container address".into(),
        fmt(&d.direct),
        d.direct.len().to_string(),
    ]);
    t.row(vec![
        "through the published port (DNAT)".into(),
        fmt(&d.published),
        d.published.len().to_string(),
    ]);
    t.row(vec![
        "published / direct".into(),
        d.ratio()
            .map_or("-".into(), |x| format!("{:.1} %", x * 100.0)),
        String::new(),
    ]);
    t
}

/// The whole report as Markdown.
pub fn render(r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Setup per container (ms, median)\n\n\
         N=k: median of {} probe setups with k containers already on the network. \
         fill: the setups that grew the network, in order (first and last tenth).\n",
        r.probes
    );
    out.push_str(&cost_table(r, true).render());
    let _ = writeln!(
        out,
        "\n### Teardown per container (ms, median)\n\n\
         N=k: the probes' teardowns; drain: every container torn down at the end, in creation \
         order (first tenth: network full; last tenth: nearly empty).\n"
    );
    out.push_str(&cost_table(r, false).render());
    out.push_str("\n### Ratios (nsnet / other, probe medians; below 1 means nsnet is faster)\n\n");
    out.push_str(&ratio_table(r).render());
    if !r.parallel.is_empty() {
        out.push_str("\n### Parallel setups\n\n");
        out.push_str(&parallel_table(r).render());
    }
    if let Some(d) = &r.data {
        out.push_str("\n### Data plane (nsnet network, one container)\n\n");
        out.push_str(&data_table(d).render());
        if let Some(n) = &d.note {
            let _ = writeln!(out, "\n{n}");
        }
    }
    out.push_str("\n### Targets\n\n");
    let mut t = Table::new(&["target", "measured", "holds"]);
    for target in targets(r) {
        t.row(vec![
            target.what,
            target.measured,
            match target.holds {
                Some(true) => "yes".into(),
                Some(false) => "NO".into(),
                None => "not measured".into(),
            },
        ]);
    }
    out.push_str(&t.render());
    let mut notes = r.notes.clone();
    for s in &r.scale {
        if let Some(n) = &s.note {
            notes.push(format!("{}: {n}", s.subject));
        }
        for e in s.errors.iter().take(5) {
            notes.push(format!("{} error: {e}", s.subject));
        }
    }
    for p in &r.parallel {
        for e in p.setup_errors.iter().chain(&p.teardown_errors).take(5) {
            notes.push(format!("{} parallel error: {e}", p.subject));
        }
    }
    if !notes.is_empty() {
        out.push_str("\n### Notes\n\n");
        for n in notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scale::Checkpoint;

    fn subject(name: &str, setup: f64, teardown: f64, growth: f64) -> ScaleResult {
        ScaleResult {
            subject: name.into(),
            checkpoints: [1, 10, 100, 1000]
                .iter()
                .map(|&n| Checkpoint {
                    n,
                    setup: vec![setup * if n == 1000 { growth } else { 1.0 }; 3],
                    teardown: vec![teardown; 3],
                })
                .collect(),
            fill: vec![setup; 1000],
            drain: vec![teardown; 1000],
            ..Default::default()
        }
    }

    fn results() -> Results {
        Results {
            checkpoints: vec![1, 10, 100, 1000],
            probes: 3,
            scale: vec![
                subject(NSNET_CLI, 2.0, 20.0, 1.1),
                subject(FLOOR, 5.0, 22.0, 1.0),
                subject(NETAVARK, 40.0, 200.0, 3.0),
                ScaleResult::skipped(NSNET_CNI.into(), "not yet".into()),
            ],
            parallel: vec![ParallelResult {
                subject: NSNET_CLI.into(),
                containers: 64,
                workers: 8,
                distinct_addrs: Some(64),
                ..Default::default()
            }],
            data: Some(DataResult {
                direct: vec![10.0, 10.0, 10.0],
                published: vec![9.8, 9.7, 9.9],
                note: None,
            }),
            notes: vec![],
        }
    }

    fn find<'a>(ts: &'a [Target], what: &str) -> &'a Target {
        ts.iter()
            .find(|t| t.what.contains(what))
            .unwrap_or_else(|| panic!("no target {what}: {ts:?}"))
    }

    #[test]
    fn targets_hold_or_not() {
        let ts = targets(&results());
        // 2/40 = 0.05 at small N; at 1000, 2.2/120.
        assert_eq!(find(&ts, "1/10 of netavark").holds, Some(true));
        assert_eq!(find(&ts, "below the floor").holds, Some(true));
        assert_eq!(find(&ts, "teardown <= 1.0").holds, Some(true));
        let growth = find(&ts, "N=1000 <= 1.2");
        assert_eq!(growth.holds, Some(true));
        assert_eq!(growth.measured, "1.10x");
        let total = find(&ts, "1000 containers set up");
        assert_eq!(total.measured, "2.00 s");
        assert_eq!(total.holds, Some(true));
        assert_eq!(find(&ts, "parallel").holds, Some(true));
        let dp = find(&ts, "published port");
        assert_eq!(dp.measured, "98.0 %");
        assert_eq!(dp.holds, Some(true));
        // The CNI face was skipped: no targets for it.
        assert!(ts.iter().all(|t| !t.what.contains(NSNET_CNI)));
    }

    #[test]
    fn missed_targets_say_no() {
        let mut r = results();
        r.scale[0] = subject(NSNET_CLI, 6.0, 30.0, 1.5);
        r.parallel[0].setup_errors.push("boom".into());
        let ts = targets(&r);
        assert_eq!(find(&ts, "1/10 of netavark").holds, Some(false));
        assert_eq!(find(&ts, "below the floor").holds, Some(false));
        assert_eq!(find(&ts, "teardown <= 1.0").holds, Some(false));
        assert_eq!(find(&ts, "N=1000 <= 1.2").holds, Some(false));
        assert_eq!(find(&ts, "parallel").holds, Some(false));
    }

    #[test]
    fn unmeasured_peers_are_not_measured() {
        let mut r = results();
        r.scale.retain(|s| s.subject == NSNET_CLI);
        r.scale[0].checkpoints.retain(|c| c.n <= 100);
        r.scale[0].fill.truncate(100);
        let ts = targets(&r);
        assert_eq!(find(&ts, "1/10 of netavark").holds, None);
        assert_eq!(find(&ts, "N=1000 <= 1.2").holds, None);
        assert_eq!(find(&ts, "1000 containers set up").holds, None);
    }

    #[test]
    fn report_has_every_section() {
        let out = render(&results());
        for needle in [
            "### Setup per container",
            "### Teardown per container",
            "| nsnet CLI / netavark",
            "### Parallel setups",
            "### Data plane",
            "### Targets",
            "skipped (see notes)",
            "- nsnet CNI: not yet",
        ] {
            assert!(out.contains(needle), "{needle} missing in\n{out}");
        }
    }
}
