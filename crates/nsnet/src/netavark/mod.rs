//! The netavark plugin face (podman 5): netavark runs `<plugin-dir>/nsnet SUBCOMMAND [NETNS]`
//! with JSON on stdin, so when the first argument is one of the plugin API's subcommands the
//! nsnet binary answers as a plugin (link or copy it into a `netavark_plugin_dirs` directory
//! as `nsnet`; networks made with `podman network create -d nsnet` then use it). It calls the
//! same engine operations as the CNI face and prints the answer, or `{"error": "..."}` with
//! exit code 1, on stdout; logs go to stderr, which netavark passes through.

mod create;
mod network;
mod setup;
mod types;

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use nsnet_engine::Engine;
use nsnet_store::Store;
use nsnet_sys::live::LiveKernel;
use serde_json::{Value, json};

use types::PluginExec;

/// The plugin API's subcommands.
const SUBCOMMANDS: &[&str] = &["create", "setup", "teardown", "info"];

/// Whether this process was started as a netavark plugin (no CLI command has these names).
pub fn invoked() -> bool {
    std::env::args()
        .nth(1)
        .is_some_and(|a| SUBCOMMANDS.contains(&a.as_str()))
}

/// Opens the engine on a network's state directory, refusing an environment that names
/// another one: podman's cleanup process (which runs teardown) does not carry the
/// environment, so following `NSNET_STATE_DIR` would split a container's setup and teardown
/// across stores.
fn open(dir: &Path) -> Result<Engine<LiveKernel>> {
    if let Some(env) = std::env::var_os("NSNET_STATE_DIR").filter(|v| !v.is_empty())
        && Path::new(&env) != dir
    {
        bail!(
            "NSNET_STATE_DIR={} differs from the network's state directory ({}): give it as the network's option instead (podman network create -o state_dir=DIR)",
            Path::new(&env).display(),
            dir.display()
        );
    }
    let store =
        Store::open(dir).with_context(|| format!("open nsnet state in {}", dir.display()))?;
    Ok(Engine::new(
        store,
        LiveKernel::new(),
        std::process::id(),
        crate::context::boot_id(),
    ))
}

fn read_stdin() -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    if !std::io::stdin().is_terminal() {
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("read the JSON input from stdin")?;
    }
    Ok(buf)
}

fn exec_input(bytes: &[u8]) -> Result<PluginExec> {
    serde_json::from_slice(bytes).context("cannot decode the setup/teardown input on stdin")
}

/// `info`: the plugin's version and the API version it speaks.
pub fn info() -> Value {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "api_version": types::API_VERSION,
        "description": "nsnet: bridge networks with nsnet's ports, isolation and state store",
    })
}

/// Runs one subcommand; Ok(Some) is printed on stdout.
fn dispatch(args: &[String]) -> Result<Option<Value>> {
    let sub = args.first().map(String::as_str).unwrap_or("info");
    let netns = || {
        args.get(1)
            .map(String::as_str)
            .filter(|n| !n.is_empty())
            .with_context(|| format!("{sub}: the network namespace path argument is missing"))
    };
    match sub {
        "info" => Ok(Some(info())),
        "create" => {
            let input: Value = serde_json::from_slice(&read_stdin()?)
                .context("the network definition on stdin is not valid JSON")?;
            create::run(input).map(Some)
        }
        "setup" => {
            let netns = netns()?;
            let exec = exec_input(&read_stdin()?)?;
            let status = setup::setup(netns, &exec)?;
            Ok(Some(serde_json::to_value(status)?))
        }
        "teardown" => {
            // The namespace may be gone already: the store has what teardown removes.
            netns()?;
            setup::teardown(&exec_input(&read_stdin()?)?)?;
            Ok(None)
        }
        other => bail!(
            "unknown subcommand {other}; allowed: {}",
            SUBCOMMANDS.join(", ")
        ),
    }
}

fn print(v: &Value) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{v}")?;
    out.flush()
}

/// The plugin's `main`.
pub fn main() -> ExitCode {
    crate::init_logging("warn", false);
    let args: Vec<String> = std::env::args().skip(1).collect();
    tracing::debug!(?args, "netavark plugin start");
    let outcome = dispatch(&args);
    let printed = match &outcome {
        Ok(Some(v)) => print(v),
        Ok(None) => Ok(()),
        Err(e) => print(&json!({ "error": format!("{e:#}") })),
    };
    if let Err(e) = printed {
        eprintln!("nsnet: cannot write the plugin answer to stdout: {e}");
        return ExitCode::from(1);
    }
    match outcome {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "netavark plugin error");
            ExitCode::from(1)
        }
    }
}
