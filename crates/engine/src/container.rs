//! Containers: a process tree in its own PID, mount, UTS and IPC namespaces, joined to a named
//! network namespace (`/run/netns/NAME`, NAME being the container's) that is connected to
//! networks like any other. `run` records the intent, then creates the namespace, endpoints,
//! `/etc/netns/NAME/{hosts,resolv.conf}` and the process, undoing all of it on any failure.

mod hosts;
mod lifecycle;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use nsnet_core::container::{self as model, NetworkArg};
use nsnet_core::names::NsName;
use nsnet_core::ops::NsRef;
use nsnet_core::port::{PortMapping, PortSpec};
use nsnet_store::{ContainerRow, ContainerState, NewContainer, RowState, Tx};
use nsnet_sys::kernel::{FailKind, Kernel, KernelError};
use nsnet_sys::process::{ContainerSpec, LOG_FILE, ProcessError, Spawned};
use serde::Serialize;

use crate::conflict::Conflict;
use crate::{ConnectRequest, Engine, EngineError};

/// Directory (under the state directory) holding one directory per container.
const CONTAINERS_DIR: &str = "containers";

/// `nsnet run`, validated.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub name: NsName,
    /// Defaults to the name.
    pub hostname: Option<String>,
    /// Networks to connect, in order; the first one publishes the ports.
    pub networks: Vec<NetworkArg>,
    pub publish: Vec<PortSpec>,
    /// `KEY=VALUE` entries on top of PATH and HOSTNAME.
    pub env: Vec<String>,
    /// An absolute directory to pivot into; None shares the host's files.
    pub rootfs: Option<PathBuf>,
    pub detach: bool,
    pub command: Vec<String>,
    /// DNS aliases of the container on each of its networks.
    pub aliases: Vec<String>,
}

/// A container's attachment to a network.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerNet {
    pub network: String,
    pub ifname: String,
    pub addrs: Vec<IpNet>,
}

/// A container as shown by `ps` and returned by `run`, `stop`.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerView {
    pub name: String,
    pub hostname: String,
    /// `creating`, `running` or `exited`, as the live process says.
    pub state: String,
    pub exit_code: Option<i32>,
    /// The init's pid on the host (PID 1 inside), while it runs.
    pub pid: Option<u32>,
    pub command: Vec<String>,
    pub rootfs: Option<String>,
    pub detached: bool,
    pub networks: Vec<ContainerNet>,
    pub ports: Vec<PortMapping>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// How to join a running container (`nsnet exec`).
#[derive(Debug, Clone)]
pub struct ExecTarget {
    pub pid: u32,
    pub start: u64,
    pub env: Vec<String>,
}

/// What a container row means given its live process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Live {
    /// Being set up by a live nsnet process.
    Creating,
    /// Its set-up process died half-way.
    Abandoned,
    Running(u32, u64),
    /// Ended; the code when known.
    Exited(Option<i32>),
}

impl From<ProcessError> for EngineError {
    fn from(e: ProcessError) -> Self {
        match e {
            ProcessError::Sys { op, source } => {
                EngineError::Kernel(KernelError::new(op, FailKind::Other, source.to_string()))
            }
            ProcessError::CommandNotFound {
                program,
                root,
                path,
            } => Conflict::CommandNotFound {
                program,
                root,
                path,
            }
            .into(),
            other => EngineError::Refused(other.to_string()),
        }
    }
}

fn container_ref(name: &str) -> NsRef {
    NsRef::Named(name.to_string())
}

pub(crate) fn load(tx: &Tx<'_>, name: &str) -> Result<ContainerRow, EngineError> {
    tx.container(name)?
        .ok_or_else(|| EngineError::not_found("container", name))
}

impl<K: Kernel> Engine<K> {
    /// The state directory of container `name` (exit code, log).
    pub(crate) fn container_dir(&self, name: &str) -> PathBuf {
        self.store
            .path()
            .parent()
            .unwrap_or(Path::new("."))
            .join(CONTAINERS_DIR)
            .join(name)
    }

    /// What a row means now: asks the kernel whether its processes live.
    pub(crate) fn live(&mut self, row: &ContainerRow) -> Live {
        let this_boot = row.boot_id == self.boot_id;
        match row.state {
            ContainerState::Exited => Live::Exited(row.exit_code),
            ContainerState::Creating => {
                if this_boot && self.kernel.process_alive(row.pid) {
                    Live::Creating
                } else {
                    Live::Abandoned
                }
            }
            ContainerState::Running => match row.init {
                Some((pid, start)) if this_boot && self.kernel.running(pid, start) => {
                    Live::Running(pid, start)
                }
                _ => {
                    let dir = self.container_dir(&row.name);
                    Live::Exited(self.kernel.exit_code(&dir))
                }
            },
        }
    }

    /// Starts a container: checks everything first (nothing changes on bad input), records
    /// it, then namespace, endpoints, hosts files and process, undone on any failure.
    pub fn container_run(&mut self, req: RunRequest) -> Result<ContainerView, EngineError> {
        let name = req.name.to_string();
        let hostname = req.hostname.clone().unwrap_or_else(|| name.clone());
        model::check_hostname(&hostname)?;
        for alias in &req.aliases {
            nsnet_core::dnsname::check_alias(alias)?;
        }
        if req.command.is_empty() {
            return Err(Conflict::NoCommand.into());
        }
        if !req.publish.is_empty() && req.networks.is_empty() {
            return Err(Conflict::PublishWithoutNetwork.into());
        }
        let mut seen = BTreeSet::new();
        if let Some(dup) = req.networks.iter().find(|n| !seen.insert(&n.network)) {
            return Err(Conflict::NetworkTwice {
                network: dup.network.clone(),
            }
            .into());
        }
        let env = model::environment(&hostname, &req.env);
        let root = req.rootfs.as_deref().unwrap_or(Path::new("/"));
        let exe = self
            .kernel
            .resolve(root, &req.command[0], model::path_of(&env))
            .map_err(|e| match (&e, &req.rootfs) {
                (ProcessError::CommandNotFound { .. }, _) => e.into(),
                (_, Some(dir)) => EngineError::Refused(format!("rootfs {}: {e}", dir.display())),
                _ => e.into(),
            })?;
        let new = NewContainer {
            name: name.clone(),
            hostname: hostname.clone(),
            command: req.command.clone(),
            env: env.clone(),
            rootfs: req.rootfs.as_ref().map(|p| p.display().to_string()),
            detached: req.detach,
            pid: self.pid,
            boot_id: self.boot_id.clone(),
        };
        let kernel = &mut self.kernel;
        self.store.write(|tx| {
            if tx.container(&name)?.is_some() {
                return Err(EngineError::Exists {
                    kind: "container",
                    name: name.clone(),
                });
            }
            if kernel.netns_exists(&container_ref(&name)) {
                return Err(Conflict::NetnsTaken { name: name.clone() }.into());
            }
            for n in &req.networks {
                match tx.network(&n.network)? {
                    None => return Err(EngineError::not_found("network", &n.network)),
                    Some(row) if row.state != RowState::Ready => {
                        return Err(Conflict::NetworkInFlux {
                            network: n.network.clone(),
                            removing: row.state == RowState::Removing,
                        }
                        .into());
                    }
                    Some(_) => {}
                }
            }
            tx.insert_container(&new).map_err(|e| {
                if e.is_conflict() {
                    EngineError::Exists {
                        kind: "container",
                        name: name.clone(),
                    }
                } else {
                    e.into()
                }
            })
        })?;
        let spec = ContainerSpec {
            name: name.clone(),
            hostname,
            argv: req.command.clone(),
            exe,
            env,
            rootfs: req.rootfs.clone(),
            detach: req.detach,
            dir: self.container_dir(&name),
        };
        // Created here, not in `start`: a namespace someone else made meanwhile is not ours
        // to remove.
        if let Err(err) = self.kernel.create_netns(&name) {
            self.store.write(|tx| tx.delete_container(&name))?;
            return Err(EngineError::from(err).during(format!("run container {name}")));
        }
        match self.start(&req, &spec) {
            Ok(spawned) => {
                self.store
                    .write(|tx| tx.set_container_running(&name, spawned.pid, spawned.start))?;
                let mut view = self.container_view(&name)?;
                // Even when the command is over already: a foreground `run` waits for this pid.
                view.pid = Some(spawned.pid);
                Ok(view)
            }
            Err(err) => {
                let mut cleanup = self.release(&name);
                if let Err(e) = self.kernel.remove_dir(&spec.dir) {
                    cleanup.push(e.to_string());
                }
                self.store.write(|tx| tx.delete_container(&name))?;
                for e in cleanup {
                    tracing::warn!(container = %name, error = %e, "rollback step failed");
                }
                Err(err.during(format!("run container {name}")))
            }
        }
    }

    /// The kernel side of `run` in the new namespace, in order; the caller undoes it on failure.
    fn start(&mut self, req: &RunRequest, spec: &ContainerSpec) -> Result<Spawned, EngineError> {
        let name = &spec.name;
        for (i, n) in req.networks.iter().enumerate() {
            self.connect(ConnectRequest {
                network: n.network.clone(),
                netns: container_ref(name),
                ips: n.ip.into_iter().collect(),
                mac: None,
                ifname: None,
                container_id: Some(name.clone()),
                publish: if i == 0 {
                    req.publish.clone()
                } else {
                    Vec::new()
                },
                aliases: req.aliases.clone(),
            })?;
        }
        // With DNS on its primary network the container asks nsnet's responder on that
        // network's gateway; otherwise it gets the host's nameservers (the hosts file lists
        // its peers either way).
        let primary = match req.networks.first() {
            Some(n) => self.store.read(|tx| tx.network(&n.network))?,
            None => None,
        };
        let host = self.kernel.host_resolv_conf();
        let resolv = match primary {
            Some(net) if net.spec.dns() => {
                let gateways: Vec<_> = net.spec.subnets().iter().map(|s| s.gateway).collect();
                nsnet_core::dnsname::resolv_conf(&gateways, &host)
            }
            _ => model::resolv_conf(&host),
        };
        self.kernel.write_etc(name, "resolv.conf", &resolv)?;
        let networks: Vec<_> = req.networks.iter().map(|n| n.network.clone()).collect();
        self.refresh_hosts(&networks, Some(name))?;
        Ok(self.kernel.spawn(spec)?)
    }

    /// One container, as `ps` shows it.
    pub fn container_view(&mut self, name: &str) -> Result<ContainerView, EngineError> {
        let row = self.store.read(|tx| load(tx, name))?;
        self.view_of(row)
    }

    fn view_of(&mut self, row: ContainerRow) -> Result<ContainerView, EngineError> {
        let live = self.live(&row);
        let (networks, ports) = self.store.read(|tx| {
            let mut nets = Vec::new();
            let mut ports = Vec::new();
            for e in tx.endpoints_in_netns(&row.name)? {
                ports.extend(tx.ports(Some(e.id))?.into_iter().map(|p| p.mapping));
                nets.push(ContainerNet {
                    network: e.network.to_string(),
                    ifname: e.ifname.to_string(),
                    addrs: e.addrs,
                });
            }
            Ok::<_, EngineError>((nets, ports))
        })?;
        let (state, exit_code, pid) = match live {
            Live::Creating | Live::Abandoned => ("creating", None, None),
            Live::Running(pid, _) => ("running", None, Some(pid)),
            Live::Exited(code) => ("exited", code, None),
        };
        Ok(ContainerView {
            name: row.name,
            hostname: row.hostname,
            state: state.into(),
            exit_code,
            pid,
            command: row.command,
            rootfs: row.rootfs,
            detached: row.detached,
            networks,
            ports,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
    }

    /// Containers, oldest first: running (and being created) ones, or all with `all`.
    pub fn container_ls(&mut self, all: bool) -> Result<Vec<ContainerView>, EngineError> {
        let rows = self.store.read(|tx| tx.containers())?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let view = self.view_of(row)?;
            if all || view.state != "exited" {
                out.push(view);
            }
        }
        Ok(out)
    }

    /// Where and how to join a running container.
    pub fn container_exec_target(&mut self, name: &str) -> Result<ExecTarget, EngineError> {
        let row = self.store.read(|tx| load(tx, name))?;
        match self.live(&row) {
            Live::Running(pid, start) => Ok(ExecTarget {
                pid,
                start,
                env: row.env,
            }),
            _ => Err(Conflict::ContainerNotRunning {
                name: name.to_string(),
            }
            .into()),
        }
    }

    /// The log file of a detached container.
    pub fn container_log(&mut self, name: &str) -> Result<PathBuf, EngineError> {
        let row = self.store.read(|tx| load(tx, name))?;
        if !row.detached {
            return Err(Conflict::ContainerHasNoLog {
                name: name.to_string(),
            }
            .into());
        }
        Ok(self.container_dir(name).join(LOG_FILE))
    }

    /// Records the end of a foreground container (its exit code from the wait) and releases
    /// its network.
    pub fn container_finished(&mut self, name: &str, code: i32) -> Result<(), EngineError> {
        self.finish(name, Some(code))
    }
}
