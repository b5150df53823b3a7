//! The CNI face: when `CNI_COMMAND` is set, the nsnet binary is a CNI plugin (installed by
//! linking it into the runtime's plugin directory as `nsnet`). It reads the environment and
//! the network configuration on stdin, calls the same engine operations as the CLI, and
//! prints the result (or the spec's error JSON) on stdout; logs go to stderr only.

mod add;
mod bandwidth;
mod check;
mod config;
mod del;
mod env;
mod error;
mod gc;
mod gokeys;
mod overlay;
mod result;
mod status;
mod version;
mod words;

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use nsnet_engine::Engine;
use nsnet_store::Store;
use nsnet_sys::live::LiveKernel;
use serde_json::Value;

use config::{Basics, NetConf};
use env::{CniEnv, Command};
use error::{CniError, code};
use version::Version;

/// Whether this process was started as a CNI plugin.
pub fn invoked() -> bool {
    std::env::var_os("CNI_COMMAND").is_some()
}

/// Opens the engine on the configuration's state directory, refusing an environment that
/// names another one.
fn open(basics: &Basics) -> Result<Engine<LiveKernel>, CniError> {
    basics.env_agrees(std::env::var_os("NSNET_STATE_DIR").as_deref())?;
    open_dir(&basics.state_dir()?)
}

/// Opens the engine for DEL: on the configuration's state directory whatever the
/// environment says (a DEL must reach the store its ADD used), and only when a store is
/// there (no store, no attachment: DEL creates none). None when there is none.
fn open_for_del(basics: &Basics) -> Result<Option<Engine<LiveKernel>>, CniError> {
    let dir = basics.state_dir()?;
    if !dir.join(nsnet_store::DB_FILE).exists() {
        return Ok(None);
    }
    open_dir(&dir).map(Some)
}

fn open_dir(dir: &std::path::Path) -> Result<Engine<LiveKernel>, CniError> {
    let store = Store::open(dir).map_err(|e| {
        CniError::new(
            code::IO_FAILURE,
            format!("open nsnet state in {}: {e}", dir.display()),
        )
    })?;
    Ok(Engine::new(
        store,
        crate::context::kernel(dir),
        std::process::id(),
        crate::context::boot_id(),
    ))
}

/// Runs one command; Ok(Some) is printed on stdout.
fn dispatch(env: &CniEnv, stdin: &[u8]) -> Result<Option<Value>, CniError> {
    if env.command == Command::Version {
        return Ok(Some(version::version_info()));
    }
    if matches!(env.command, Command::Add | Command::Check) {
        env::check_netns(env)?;
    }
    let json = config::parse_json(stdin)?;
    let basics = Basics::from_json(&json)?;
    let v = basics.version()?;
    let out = match env.command {
        Command::Version => unreachable!("answered above"),
        Command::Del => {
            // DEL reads the rest only to leave an overlay: a configuration gone bad since
            // ADD still removes the attachment.
            let net = NetConf::from_json(&json).and_then(|c| c.network()).ok();
            del::run(env, &basics, net.as_ref()).map(|()| None)
        }
        Command::Status => status::run(&basics, v).map(|()| None),
        Command::Add => add::run(env, &NetConf::from_json(&json)?, v).map(Some),
        Command::Check => check::run(env, &NetConf::from_json(&json)?, v).map(|()| None),
        Command::Gc => gc::run(&NetConf::from_json(&json)?, v).map(|()| None),
    };
    if matches!(env.command, Command::Del | Command::Gc) {
        // Names went away: a running responder reloads now. Not worth failing a DEL over:
        // the responder also notices the store changed within a second.
        if let Ok(dir) = basics.state_dir() {
            let _ = crate::dns::notify(&dir);
        }
    }
    out
}

/// The version to write errors in: the configuration's, when it names a supported one.
fn error_version(stdin: &[u8]) -> &'static str {
    config::parse_json(stdin)
        .and_then(|j| Basics::from_json(&j))
        .and_then(|b| b.version())
        .unwrap_or(Version::LATEST)
        .as_str()
}

fn print(v: &Value) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{v}").and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nsnet: cannot write the CNI answer to stdout: {e}");
            ExitCode::from(1)
        }
    }
}

/// The plugin's `main`.
pub fn main() -> ExitCode {
    crate::init_logging("warn", false);
    let mut stdin = Vec::new();
    let read = if std::io::stdin().is_terminal() {
        Ok(0)
    } else {
        std::io::stdin().read_to_end(&mut stdin)
    };
    let outcome = match read {
        Err(e) => Err(CniError::new(
            code::IO_FAILURE,
            format!("read the network configuration from stdin: {e}"),
        )),
        Ok(_) => CniEnv::load(|k| std::env::var(k).ok()).and_then(|env| {
            tracing::debug!(command = ?env.command, container = %env.container_id, "CNI start");
            let out = dispatch(&env, &stdin);
            tracing::debug!(ok = out.is_ok(), "CNI done");
            out
        }),
    };
    match outcome {
        Ok(Some(v)) => print(&v),
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::warn!(code = e.code, msg = %e.msg, "CNI error");
            let _ = print(&e.to_json(error_version(&stdin)));
            ExitCode::from(1)
        }
    }
}

/// `nsnet overlay cni CONF`: keeps this node listed in the etcd membership of the CNI vxlan
/// network `conf` configures, and converges its peers every `interval` (once with `once`).
/// The state directory is the configuration's, as for the plugin. Before the network's
/// first pod there is no device to program: the node only stays registered.
pub fn follow(
    path: &std::path::Path,
    interval: std::time::Duration,
    once: bool,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let cni = |e: CniError| anyhow::anyhow!(e.msg);
    let text = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let conf = config::parse_json(&text)
        .map_err(cni)
        .and_then(plugin_conf)
        .and_then(|v| NetConf::from_json(&v).map_err(cni))
        .with_context(|| format!("{}", path.display()))?;
    let network = conf
        .network()
        .map_err(cni)
        .with_context(|| format!("{}", path.display()))?;
    let Some(member) = network.overlay.as_ref().and_then(|o| o.member.as_ref()) else {
        anyhow::bail!(
            "{}: network {} has no \"etcd\": nothing to follow (give clusterCIDR and etcd)",
            path.display(),
            network.spec.name()
        );
    };
    let dir = conf.basics.state_dir().map_err(cni)?;
    let etcd =
        nsnet_engine::membership::EtcdMembership::new(member, network.spec.name().as_str(), &dir)?;
    let mut engine = open_dir(&dir).map_err(cni)?;
    loop {
        let round = etcd
            .keep(&member.host)
            .map_err(anyhow::Error::from)
            .and_then(|()| overlay::converge(&mut engine, &network, &etcd).map_err(cni));
        match round {
            Ok(changes) => {
                let mut out = std::io::stdout().lock();
                for change in &changes {
                    writeln!(out, "{change}")?;
                }
                out.flush()?;
            }
            Err(e) if once => return Err(e),
            // etcd may be away for a moment: say so and look again.
            Err(e) => eprintln!("nsnet overlay cni: {e:#}"),
        }
        if once {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

/// The nsnet plugin's configuration in a conflist (with the list's name and version, as a
/// runtime passes them), or a single configuration as it is.
fn plugin_conf(v: Value) -> anyhow::Result<Value> {
    let Some(plugins) = v.get("plugins").and_then(Value::as_array) else {
        return Ok(v);
    };
    let mut p = plugins
        .iter()
        .find(|p| p.get("type").and_then(Value::as_str) == Some("nsnet"))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the conflist has no plugin of \"type\": \"nsnet\""))?;
    for key in ["name", "cniVersion"] {
        if let Some(x) = v.get(key) {
            p[key] = x.clone();
        }
    }
    Ok(p)
}
