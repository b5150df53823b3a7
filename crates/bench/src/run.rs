//! Running tools as child processes, the way users and container engines run them.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result};

/// Runs `cmd` with `stdin` (if any) and returns its output; fails with the tool's own words
/// when it exits non-zero.
pub fn output(cmd: &mut Command, stdin: Option<&[u8]>) -> Result<Output> {
    let shown = format!("{cmd:?}");
    let out = capture(cmd, stdin)?;
    if !out.status.success() {
        anyhow::bail!(
            "{shown} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// Runs `cmd` with `stdin` (if any) and returns its output, whatever its exit status.
pub fn capture(cmd: &mut Command, stdin: Option<&[u8]>) -> Result<Output> {
    let shown = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("start {shown}"))?;
    if let Some(data) = stdin {
        // Dropping the handle closes the pipe: the tool sees EOF.
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(data)
            .with_context(|| format!("write stdin of {shown}"))?;
    }
    child
        .wait_with_output()
        .with_context(|| format!("wait for {shown}"))
}

/// Runs `program args` and requires success; returns stdout.
pub fn ok(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<String> {
    let out = output(Command::new(program).args(args), stdin)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first of `candidates` that is an executable file.
pub fn find_executable(candidates: &[std::path::PathBuf]) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    candidates.iter().find_map(|p| {
        let meta = std::fs::metadata(p).ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then(|| p.clone())
    })
}

/// `name` on $PATH or in one of `extra` directories.
pub fn which(name: &str, extra: &[&str]) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<std::path::PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(extra.iter().map(std::path::PathBuf::from));
    find_executable(&dirs.iter().map(|d| d.join(name)).collect::<Vec<_>>())
}
