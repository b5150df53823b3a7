//! `nsnet netns add|ls|rm|exec`.

use std::path::Path;

use anyhow::Result;
use nsnet_core::names::NsName;

use crate::cli::{Format, NetnsCmd};
use crate::context;
use crate::output::{Table, print};

pub fn run(state_dir: &Path, format: Format, cmd: NetnsCmd) -> Result<()> {
    match cmd {
        NetnsCmd::Add { name } => {
            let name = NsName::new(&name)?;
            context::open(state_dir)?.netns_add(&name)?;
            crate::output::note(name.as_str());
        }
        NetnsCmd::Ls => {
            let list = context::open(state_dir)?.netns_ls()?;
            print(format, &list, |list| {
                let mut t = Table::new(&["NAME", "ENDPOINTS", "LINKS"]);
                for n in list {
                    t.row(vec![
                        n.name.clone(),
                        n.endpoints.to_string(),
                        n.links.to_string(),
                    ]);
                }
                t.render()
            })?;
        }
        NetnsCmd::Rm { names } => {
            let names = names
                .iter()
                .map(|n| NsName::existing(n))
                .collect::<Result<Vec<_>, _>>()?;
            let mut engine = context::open(state_dir)?;
            for name in names {
                engine.netns_rm(&name)?;
                crate::output::note(name.as_str());
            }
        }
        NetnsCmd::Exec { name, command } => {
            let name = NsName::existing(&name)?;
            // Only returns on failure; on success the process becomes the command.
            let err = nsnet_sys::netns::exec(name.as_str(), &command);
            anyhow::bail!("netns exec {name}: {err}");
        }
    }
    Ok(())
}
