//! `nsnet exec NAME -- CMD`: a command inside a running container (all of its namespaces).

use std::path::Path;

use anyhow::{Context, Result};

use super::run::container_name;
use crate::context;

pub fn run(state_dir: &Path, name: &str, command: &[String]) -> Result<()> {
    let name = container_name(name)?;
    let target = context::open(state_dir)?.container_exec_target(name.as_str())?;
    let code = nsnet_sys::process::exec_in(target.pid, target.start, command, &target.env)
        .with_context(|| format!("exec in container {name}"))?;
    std::process::exit(code)
}
