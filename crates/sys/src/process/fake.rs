//! `Processes` on the recording fake kernel: processes are entries in a map, files are
//! strings, signals end processes at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{ContainerSpec, ProcessError, Processes, Spawned};
use crate::fake::FakeKernel;

/// Fake processes and container files.
#[derive(Debug, Default)]
pub struct FakeProcesses {
    /// Running processes: pid to spec.
    pub running: BTreeMap<u32, ContainerSpec>,
    /// Programs `resolve` does not find.
    pub missing: BTreeSet<String>,
    /// Exit codes recorded per container directory.
    pub exit_codes: BTreeMap<PathBuf, i32>,
    /// Files under /etc/netns: (netns, file) to contents.
    pub etc: BTreeMap<(String, String), String>,
    /// Signals sent: (pid, signal).
    pub signals: Vec<(u32, i32)>,
    /// Container directories that were removed.
    pub removed_dirs: Vec<PathBuf>,
    /// Make the next spawn fail.
    pub fail_spawn: bool,
    next_pid: u32,
}

impl FakeProcesses {
    /// Ends process `pid` as if its command exited with `code`.
    pub fn exit(&mut self, pid: u32, code: i32) {
        if let Some(spec) = self.running.remove(&pid) {
            self.exit_codes.insert(spec.dir, code);
        }
    }
}

impl Processes for FakeKernel {
    fn resolve(&mut self, root: &Path, program: &str, path: &str) -> Result<String, ProcessError> {
        if self.procs.missing.contains(program) {
            return Err(ProcessError::CommandNotFound {
                program: program.into(),
                root: root.display().to_string(),
                path: path.into(),
            });
        }
        Ok(format!("/bin/{program}"))
    }

    fn spawn(&mut self, spec: &ContainerSpec) -> Result<Spawned, ProcessError> {
        if std::mem::take(&mut self.procs.fail_spawn) {
            return Err(ProcessError::Invalid(format!(
                "set up container {}: fake failure",
                spec.name
            )));
        }
        self.procs.next_pid += 1;
        let pid = 1000 + self.procs.next_pid;
        self.procs.running.insert(pid, spec.clone());
        Ok(Spawned {
            pid,
            start: u64::from(pid),
        })
    }

    fn running(&mut self, pid: u32, start: u64) -> bool {
        start == u64::from(pid) && self.procs.running.contains_key(&pid)
    }

    fn signal(&mut self, pid: u32, start: u64, signal: i32) -> Result<bool, ProcessError> {
        if !Processes::running(self, pid, start) {
            return Ok(false);
        }
        self.procs.signals.push((pid, signal));
        if signal != 0 {
            self.procs.exit(pid, 128 + signal);
        }
        Ok(true)
    }

    fn exit_code(&mut self, dir: &Path) -> Option<i32> {
        self.procs.exit_codes.get(dir).copied()
    }

    fn remove_dir(&mut self, dir: &Path) -> Result<(), ProcessError> {
        self.procs.exit_codes.remove(dir);
        self.procs.removed_dirs.push(dir.to_path_buf());
        Ok(())
    }

    fn write_etc(&mut self, netns: &str, file: &str, contents: &str) -> Result<(), ProcessError> {
        self.procs
            .etc
            .insert((netns.into(), file.into()), contents.into());
        Ok(())
    }

    fn host_resolv_conf(&mut self) -> String {
        "nameserver 127.0.0.53\nnameserver 192.0.2.53\n".into()
    }

    fn process_alive(&mut self, pid: u32) -> bool {
        !self.dead_pids.contains(&pid)
    }
}
