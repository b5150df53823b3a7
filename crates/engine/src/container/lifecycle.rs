//! Ending containers: `stop`, `rm`, the end of a foreground `run`, and `gc` of the ones that
//! ended (or were abandoned half-way) with nobody watching.

use std::time::{Duration, Instant};

use nsnet_core::names::{NetName, NsName};
use nsnet_sys::kernel::Kernel;

use super::{ContainerView, Live, load};
use crate::conflict::Conflict;
use crate::{Engine, EngineError, GcReport};

/// How long to wait for a container's init to vanish after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// Pause between looks at a process that should end.
const POLL: Duration = Duration::from_millis(10);
/// Exit code of a command ended by SIGKILL (128 + 9).
const KILLED: i32 = 137;

impl<K: Kernel> Engine<K> {
    /// Releases a container's network: disconnects its endpoints (ports, addresses, veths),
    /// deletes its namespace and `/etc/netns` files, and rewrites the hosts files of the
    /// containers it shared networks with. Idempotent; returns the errors it met.
    pub(crate) fn release(&mut self, name: &str) -> Vec<String> {
        let mut errors = Vec::new();
        let networks: Vec<NetName> = match self.store.read(|tx| tx.endpoints_in_netns(name)) {
            Ok(eps) => eps.into_iter().map(|e| e.network).collect(),
            Err(e) => {
                errors.push(e.to_string());
                Vec::new()
            }
        };
        match NsName::existing(name) {
            Ok(ns) => match self.netns_rm(&ns) {
                Ok(()) | Err(EngineError::NotFound { .. }) => {}
                Err(e) => errors.push(e.to_string()),
            },
            Err(e) => errors.push(e.to_string()),
        }
        if !networks.is_empty()
            && let Err(e) = self.refresh_hosts(&networks, None)
        {
            errors.push(e.to_string());
        }
        errors
    }

    /// Records that a container ended (with `code` when known) and releases its network.
    pub(crate) fn finish(&mut self, name: &str, code: Option<i32>) -> Result<(), EngineError> {
        let errors = self.release(name);
        self.store.write(|tx| tx.set_container_exited(name, code))?;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Teardown {
                op: format!("release the network of container {name}"),
                errors,
            })
        }
    }

    /// Waits up to `limit` for the process to end; true when it did.
    fn wait_gone(&mut self, pid: u32, start: u64, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if !self.kernel.running(pid, start) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Ends a container's processes: SIGTERM (the init passes it to the command), then
    /// SIGKILL of the init after `grace`, which ends everything in its PID namespace.
    /// Returns whether it had to kill.
    fn terminate(
        &mut self,
        name: &str,
        pid: u32,
        start: u64,
        grace: Duration,
    ) -> Result<bool, EngineError> {
        if !grace.is_zero() {
            self.kernel.signal(pid, start, libc_sig::TERM)?;
            if self.wait_gone(pid, start, grace) {
                return Ok(false);
            }
        }
        self.kernel.signal(pid, start, libc_sig::KILL)?;
        if !self.wait_gone(pid, start, KILL_WAIT) {
            return Err(EngineError::Refused(format!(
                "container {name}: its init (pid {pid}) is still there {}s after SIGKILL",
                KILL_WAIT.as_secs()
            )));
        }
        Ok(true)
    }

    /// Stops a container (SIGTERM, SIGKILL after `grace`), records its exit code and
    /// releases its network; the container stays listed (`ps -a`) until `rm` or `gc`.
    pub fn container_stop(
        &mut self,
        name: &str,
        grace: Duration,
    ) -> Result<ContainerView, EngineError> {
        let row = self.store.read(|tx| load(tx, name))?;
        let code = match self.live(&row) {
            Live::Creating => return Err(being_created(name, row.pid)),
            Live::Running(pid, start) => {
                let killed = self.terminate(name, pid, start, grace)?;
                let dir = self.container_dir(name);
                self.kernel.exit_code(&dir).or(killed.then_some(KILLED))
            }
            Live::Abandoned => None,
            Live::Exited(code) => code,
        };
        self.finish(name, code)?;
        self.container_view(name)
    }

    /// Removes a container: its network, its files and its row. A running one is refused
    /// unless `force`, which kills it first.
    pub fn container_rm(&mut self, name: &str, force: bool) -> Result<(), EngineError> {
        let row = self.store.read(|tx| load(tx, name))?;
        match self.live(&row) {
            Live::Creating => return Err(being_created(name, row.pid)),
            Live::Running(pid, start) => {
                if !force {
                    return Err(Conflict::ContainerRunning {
                        name: name.to_string(),
                    }
                    .into());
                }
                self.terminate(name, pid, start, Duration::ZERO)?;
            }
            Live::Abandoned | Live::Exited(_) => {}
        }
        self.remove(name)
    }

    /// Network, files, row; the row stays when something could not be released, so a later
    /// `rm` or `gc` can finish the job.
    fn remove(&mut self, name: &str) -> Result<(), EngineError> {
        let mut errors = self.release(name);
        if errors.is_empty() {
            let dir = self.container_dir(name);
            if let Err(e) = self.kernel.remove_dir(&dir) {
                errors.push(e.to_string());
            }
            self.store.write(|tx| tx.delete_container(name))?;
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Teardown {
                op: format!("remove container {name}"),
                errors,
            })
        }
    }

    /// `gc`'s part for containers: removes the ones that ended and the ones whose `run` died
    /// half-way (their endpoints, ports, namespace, files and row).
    pub(crate) fn gc_containers(
        &mut self,
        report: &mut GcReport,
        tick: &mut dyn FnMut(&str),
    ) -> Result<(), EngineError> {
        let rows = self.store.read(|tx| tx.containers())?;
        for row in rows {
            tick(&format!("container {}", row.name));
            let what = match self.live(&row) {
                Live::Creating | Live::Running(..) => continue,
                Live::Abandoned => format!("{} (its run was interrupted)", row.name),
                Live::Exited(Some(code)) => format!("{} (exited {code})", row.name),
                Live::Exited(None) => format!("{} (exited)", row.name),
            };
            match self.remove(&row.name) {
                Ok(()) => report.containers.push(what),
                Err(e) => report.errors.push(e.to_string()),
            }
        }
        Ok(())
    }
}

fn being_created(name: &str, pid: u32) -> EngineError {
    crate::Conflict::ContainerBeingCreated {
        name: name.to_string(),
        pid,
    }
    .into()
}

/// Signal numbers (the engine has no libc dependency; these are the same on every Linux).
mod libc_sig {
    pub const TERM: i32 = 15;
    pub const KILL: i32 = 9;
}
