//! `nsnet ps [-a]`.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use nsnet_engine::ContainerView;

use crate::cli::Format;
use crate::context;
use crate::output::{Table, list, print};

/// "42s", "5m", "3h", "2d".
pub(crate) fn human(secs: i64) -> String {
    match secs.max(0) {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

fn table(views: &[ContainerView]) -> String {
    let now = now();
    let mut t = Table::new(&[
        "NAME", "PID", "STATE", "NETWORKS", "PORTS", "UPTIME", "COMMAND",
    ]);
    for v in views {
        let state = match (v.state.as_str(), v.exit_code) {
            ("exited", Some(code)) => format!("exited ({code})"),
            (s, _) => s.to_string(),
        };
        let uptime = match (v.state.as_str(), v.started_at) {
            ("running", Some(t)) => human(now - t),
            _ => "-".into(),
        };
        let nets = v.networks.iter().map(|n| {
            let addrs: Vec<String> = n.addrs.iter().map(|a| a.addr().to_string()).collect();
            format!("{}:{}", n.network, addrs.join(","))
        });
        t.row(vec![
            v.name.clone(),
            v.pid.map_or("-".into(), |p| p.to_string()),
            state,
            list(nets),
            list(&v.ports),
            uptime,
            v.command.join(" "),
        ]);
    }
    t.render()
}

pub fn run(state_dir: &Path, format: Format, all: bool) -> Result<()> {
    let views = context::open(state_dir)?.container_ls(all)?;
    print(format, &views, |v| table(v))
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn uptimes_read_like_docker() {
        assert_eq!(human(5), "5s");
        assert_eq!(human(600), "10m");
        assert_eq!(human(3 * 3600), "3h");
        assert_eq!(human(5 * 86_400), "5d");
        assert_eq!(human(-3), "0s");
    }
}
