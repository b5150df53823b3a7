//! `nsnet logs NAME`: what a detached container wrote to stdout and stderr.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use super::run::container_name;
use crate::context;

pub fn run(state_dir: &Path, name: &str) -> Result<()> {
    let name = container_name(name)?;
    let path = context::open(state_dir)?.container_log(name.as_str())?;
    let mut out = std::io::stdout().lock();
    match std::fs::File::open(&path) {
        Ok(mut f) => {
            std::io::copy(&mut f, &mut out).with_context(|| format!("read {}", path.display()))?;
        }
        // Nothing written yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
    }
    out.flush()?;
    Ok(())
}
