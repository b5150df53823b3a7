//! `nsnet route add|ls|rm`.

use std::path::Path;

use anyhow::Result;
use nsnet_core::model::{parse_cidr, parse_ip};
use nsnet_engine::route_dest;
use nsnet_engine::views::RouteEntry;

use super::ns_arg;
use crate::cli::{Format, RouteCmd};
use crate::context;
use crate::output::{Table, print};

pub(crate) fn routes_table(routes: &[RouteEntry]) -> String {
    let mut t = Table::new(&["DESTINATION", "GATEWAY", "DEV", "PROTO", "MANAGED BY"]);
    for r in routes {
        t.row(vec![
            r.route.dest.to_string(),
            r.route.via.map_or("-".to_string(), |v| v.to_string()),
            r.route.dev.clone().unwrap_or_else(|| "-".into()),
            r.route.proto.clone(),
            r.managed_by.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    t.render()
}

pub fn run(state_dir: &Path, format: Format, cmd: RouteCmd) -> Result<()> {
    match cmd {
        RouteCmd::Add {
            netns,
            dest,
            via: _,
            gateway,
        } => {
            let ns = ns_arg(&netns, false)?;
            let via = parse_ip("gateway", &gateway)?;
            let dest = route_dest(&dest, via)?;
            let added = context::open(state_dir)?.route_add(&ns, dest, via)?;
            print(format, &added, |a| {
                format!("{} via {} in netns {}\n", a.dest, a.via, a.netns)
            })?;
        }
        RouteCmd::Ls { netns } => {
            let ns = ns_arg(&netns, true)?;
            let routes = context::open(state_dir)?.route_ls(&ns)?;
            print(format, &routes, |r| routes_table(r))?;
        }
        RouteCmd::Rm { netns, dest } => {
            let ns = ns_arg(&netns, false)?;
            let dest = if dest == "default" {
                anyhow::bail!("give the default route's family explicitly: 0.0.0.0/0 or ::/0");
            } else {
                parse_cidr("route destination", &dest)?
            };
            context::open(state_dir)?.route_rm(&ns, dest)?;
        }
    }
    Ok(())
}
