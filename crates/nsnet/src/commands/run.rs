//! `nsnet run`: a command in a new container, in the foreground (exit code = the command's)
//! or detached (`-d`: prints the name).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use nsnet_core::container::{NetworkArg, parse_env};
use nsnet_core::names::{NsName, stable_hash};
use nsnet_engine::RunRequest;
use nsnet_sys::process::ForwardSignals;

use super::port_specs;
use crate::cli::{Format, RunArgs};
use crate::context;
use crate::output::print;

/// Exit code for usage errors (as clap's).
const USAGE: i32 = 2;

/// A container name argument (it names a namespace and a directory, so it is checked).
pub(crate) fn container_name(s: &str) -> Result<NsName> {
    NsName::new(s).map_err(|e| {
        // "invalid namespace name ..." reads "invalid container name ...".
        anyhow::anyhow!("{}", e.to_string().replacen("namespace", "container", 1))
    })
}

/// `c` and 10 hex digits, from this process and the time.
fn generated_name() -> NsName {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let h = stable_hash(&[&std::process::id().to_string(), &nanos.to_string()]);
    NsName::new(&format!("c{:010x}", h & 0xff_ffff_ffff)).expect("valid name")
}

fn rootfs(dir: &Path) -> Result<PathBuf> {
    let abs = std::fs::canonicalize(dir).with_context(|| format!("rootfs {}", dir.display()))?;
    if !abs.is_dir() {
        bail!("rootfs {} is not a directory", dir.display());
    }
    Ok(abs)
}

pub fn run(state_dir: &Path, format: Format, args: RunArgs) -> Result<()> {
    if args.command.is_empty() {
        eprintln!("error: run needs a command: nsnet run [OPTIONS] -- CMD ARGS...");
        std::process::exit(USAGE);
    }
    let name = match &args.name {
        Some(n) => container_name(n)?,
        None => generated_name(),
    };
    let networks = args
        .networks
        .iter()
        .map(|s| s.parse::<NetworkArg>())
        .collect::<Result<Vec<_>, _>>()?;
    let mut env = Vec::new();
    for e in &args.env {
        env.extend(parse_env(e, |k| std::env::var(k).ok())?);
    }
    let req = RunRequest {
        name: name.clone(),
        hostname: args.hostname,
        networks,
        publish: port_specs(&args.publish)?,
        env,
        rootfs: args.rootfs.as_deref().map(rootfs).transpose()?,
        detach: args.detach,
        command: args.command,
        aliases: args.aliases,
    };
    let mut engine = context::open(state_dir)?;
    if args.detach {
        let view = engine.container_run(req)?;
        crate::dns::sync(state_dir, Some(engine.store())).context("DNS responder")?;
        return print(format, &view, |v| format!("{}\n", v.name));
    }
    // Blocked before the clone, so a signal arriving meanwhile is passed on, not lost.
    let forward = ForwardSignals::block();
    let view = engine.container_run(req)?;
    if let Err(e) = crate::dns::sync(state_dir, Some(engine.store())) {
        eprintln!("warning: DNS responder: {e:#}");
    }
    let pid = view.pid.context("the container has no init process")?;
    let code = forward.wait(pid)?;
    drop(forward);
    if let Err(err) = engine.container_finished(name.as_str(), code) {
        eprintln!("error: {err:#}");
    }
    drop(engine);
    std::process::exit(code)
}
