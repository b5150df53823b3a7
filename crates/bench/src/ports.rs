//! The cost of publishing one more port with few and with many already published. Each
//! published port is one element of a DNAT map, so the 1000th must cost what the 10th did.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Result;

use crate::run;
use crate::stats::{fmt_ms, fmt_ratio, median, ratio};

/// Medians at one count of already-published ports.
#[derive(Debug, Clone)]
pub struct PortsPoint {
    pub published: usize,
    pub add_ms: Option<f64>,
    pub rm_ms: Option<f64>,
}

struct Cli {
    nsnet: PathBuf,
    state: PathBuf,
}

impl Cli {
    fn timed(&self, args: &[&str]) -> Result<f64> {
        let mut c = Command::new(&self.nsnet);
        c.env("NSNET_STATE_DIR", &self.state)
            .env_remove("NSNET_LOG")
            .args(args);
        let start = Instant::now();
        run::output(&mut c, None)?;
        Ok(start.elapsed().as_secs_f64() * 1e3)
    }
}

/// In the current (fresh) network namespace: one endpoint, published ports grown one command
/// at a time to each of `counts` (ascending), and at each `probes` timed `port add` +
/// `port rm` of one more port.
pub fn run(
    nsnet: &Path,
    state: PathBuf,
    counts: &[usize],
    probes: usize,
) -> Result<Vec<PortsPoint>> {
    let cli = Cli {
        nsnet: nsnet.to_path_buf(),
        state,
    };
    std::fs::create_dir_all(&cli.state)?;
    cli.timed(&["netns", "add", "pweb"])?;
    cli.timed(&["network", "create", "pnet", "--subnet", "10.77.0.0/16"])?;
    cli.timed(&["network", "connect", "pnet", "pweb"])?;
    let mut published = 0usize;
    let mut out = Vec::new();
    for &count in counts {
        // One `port add` process per port, as users and engines publish them: a store whose
        // cost grows with its history (not only with its size) shows here.
        while published < count {
            let port = 20_000 + published;
            cli.timed(&["port", "add", "pweb", &format!("{port}:{port}")])?;
            published += 1;
        }
        let (mut adds, mut rms) = (Vec::new(), Vec::new());
        for i in 0..probes {
            let spec = format!("{}:80", 40_000 + i);
            adds.push(cli.timed(&["port", "add", "pweb", &spec])?);
            rms.push(cli.timed(&["port", "rm", "pweb", &spec])?);
        }
        out.push(PortsPoint {
            published,
            add_ms: median(&adds),
            rm_ms: median(&rms),
        });
    }
    cli.timed(&["netns", "rm", "pweb"])?;
    cli.timed(&["network", "rm", "pnet"])?;
    Ok(out)
}

/// The Markdown section for the report.
pub fn render(points: &[PortsPoint], probes: usize) -> String {
    let mut s = format!(
        "### Publishing one more port (nsnet CLI, median of {probes} `port add` / `port rm` processes)\n\n\
         | ports already published | port add | port rm |\n| --: | --: | --: |\n"
    );
    for p in points {
        s.push_str(&format!(
            "| {} | {} | {} |\n",
            p.published,
            fmt_ms(p.add_ms),
            fmt_ms(p.rm_ms)
        ));
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        s.push_str(&format!(
            "\nport add at {} / at {}: {} (the same within noise means O(1) per port)\n",
            last.published,
            first.published,
            fmt_ratio(ratio(last.add_ms, first.add_ms))
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_ratio() {
        let pts = [
            PortsPoint {
                published: 10,
                add_ms: Some(4.0),
                rm_ms: Some(3.0),
            },
            PortsPoint {
                published: 1000,
                add_ms: Some(4.4),
                rm_ms: Some(3.1),
            },
        ];
        let s = render(&pts, 31);
        assert!(s.contains("| 1000 |"), "{s}");
        assert!(s.contains("port add at 1000 / at 10: 1.10x"), "{s}");
    }
}
