//! One file per subcommand; each turns arguments into validated requests and calls the engine.

mod demo;
mod dns;
mod doctor;
mod exec;
mod gc;
mod graph;
mod inspect;
mod link;
mod logs;
mod netns;
mod network;
mod overlay;
mod port;
mod ps;
mod repair;
mod rm;
mod route;
mod run;
mod stop;
mod topology;

use anyhow::Result;
use nsnet_core::names::{HOST, NsName};
use nsnet_core::ops::NsRef;

use anyhow::Context;

use crate::cli::{Cli, Command, DnsCmd, NetnsCmd, NetworkCmd};

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let Cli {
        state_dir,
        format,
        quiet,
        command,
    } = cli;
    crate::output::set_quiet(quiet);
    // Commands that may add names or networks start the DNS responder when none runs;
    // those that only remove tell a running one.
    let adds = matches!(
        command,
        Command::Network(NetworkCmd::Create(_) | NetworkCmd::Connect(_))
            | Command::Repair
            | Command::Apply(_)
            | Command::Gc
    );
    let removes = matches!(
        command,
        Command::Netns(NetnsCmd::Rm { .. })
            | Command::Network(NetworkCmd::Rm { .. } | NetworkCmd::Disconnect { .. })
            | Command::Destroy(_)
            | Command::Stop { .. }
            | Command::Rm { .. }
    );
    let state = state_dir.clone();
    // A create or connect hands its engine back: the sync reads its open store.
    let mut result = match command {
        Command::Network(cmd) => network::run(&state_dir, format, cmd),
        command => dispatch(state_dir, format, command).map(|()| None),
    };
    // A failed command may have changed something before failing: tell the responder either
    // way, reporting the command's own error first.
    let told = if adds {
        let store = match &mut result {
            Ok(Some(engine)) => Some(engine.store()),
            _ => None,
        };
        crate::dns::sync(&state, store)
    } else if removes {
        crate::dns::notify(&state).map(drop)
    } else {
        Ok(())
    };
    result?;
    told.context("DNS responder")
}

fn dispatch(
    state_dir: std::path::PathBuf,
    format: crate::cli::Format,
    command: Command,
) -> Result<()> {
    match command {
        Command::Netns(cmd) => netns::run(&state_dir, format, cmd),
        Command::Link(cmd) => link::run(&state_dir, format, cmd),
        Command::Network(cmd) => network::run(&state_dir, format, cmd).map(drop),
        Command::Route(cmd) => route::run(&state_dir, format, cmd),
        Command::Port(cmd) => port::run(&state_dir, format, cmd),
        Command::Repair => repair::run(&state_dir, format),
        Command::Plan(t) => topology::plan(&state_dir, format, &t.file, t.host.as_deref()),
        Command::Apply(t) => topology::apply(&state_dir, format, &t.file, t.host.as_deref()),
        Command::Destroy(t) => topology::destroy(&state_dir, format, &t.file),
        Command::Graph { file, svg, html } => {
            let output = match (svg, html) {
                (_, true) => graph::Output::Html,
                (true, false) => graph::Output::Svg,
                (false, false) => graph::Output::Dot,
            };
            graph::run(&state_dir, file.as_deref(), output)
        }
        Command::Inspect { netns, check } => inspect::run(&state_dir, format, &netns, check),
        Command::Gc => gc::run(&state_dir, format),
        Command::Doctor => doctor::run(&state_dir, format),
        Command::Demo => demo::run(),
        Command::Run(args) => run::run(&state_dir, format, args),
        Command::Exec { name, command } => exec::run(&state_dir, &name, &command),
        Command::Ps { all } => ps::run(&state_dir, format, all),
        Command::Logs { name } => logs::run(&state_dir, &name),
        Command::Stop { names, time } => stop::run(&state_dir, &names, time),
        Command::Rm { force, names } => rm::run(&state_dir, &names, force),
        Command::Completions { shell } => crate::complete::script(shell, &mut std::io::stdout()),
        Command::Man { dir: None } => crate::complete::man_page(&mut std::io::stdout()),
        Command::Man { dir: Some(dir) } => {
            let pages = crate::complete::man_pages(&dir)?;
            crate::output::note(&format!(
                "wrote {} manual pages to {}",
                pages.len(),
                dir.display()
            ));
            Ok(())
        }
        Command::Dns(DnsCmd::Serve) => crate::dns::serve(&state_dir),
        Command::Dns(DnsCmd::Ls) => dns::ls(&state_dir, format),
        Command::Overlay(cmd) => overlay::run(&state_dir, format, cmd),
    }
}

/// Parses port specifications.
pub(crate) fn port_specs(specs: &[String]) -> Result<Vec<nsnet_core::port::PortSpec>> {
    Ok(specs
        .iter()
        .map(|s| s.parse())
        .collect::<Result<Vec<_>, _>>()?)
}

/// A namespace argument: any existing name under /run/netns, or "host" where allowed.
pub(crate) fn ns_arg(s: &str, allow_host: bool) -> Result<NsRef> {
    if s == HOST {
        if allow_host {
            return Ok(NsRef::Host);
        }
        anyhow::bail!("namespace \"host\" is not allowed here: give a namespace under /run/netns");
    }
    Ok(NsRef::Named(NsName::existing(s)?.to_string()))
}
