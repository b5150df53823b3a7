//! Running the `nft` binary: installing the skeleton (`nft -f -`).
//!
//! A child process inherits the network namespace of the thread that spawns it, so these run
//! against the netns of the calling thread (use [`crate::netns::run_in`] for another one).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::NftError;

/// Lines of the script quoted in errors.
const SCRIPT_HEAD_LINES: usize = 8;

/// Path of the `nft` binary: the first of the usual sbin/bin locations that exists, else plain
/// `nft` (looked up in `PATH`).
pub fn nft_binary() -> String {
    [
        "/usr/sbin/nft",
        "/sbin/nft",
        "/usr/bin/nft",
        "/usr/local/sbin/nft",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .unwrap_or("nft")
    .to_owned()
}

/// Runs `nft` with `args`, feeding `stdin` if given; C locale so messages are predictable.
pub(crate) fn run_nft(args: &[&str], stdin: Option<&str>) -> Result<Output, NftError> {
    let binary = nft_binary();
    let cmd = format!("nft {}", args.join(" "));
    let spawn_err = |source| NftError::Spawn {
        cmd: cmd.clone(),
        binary: binary.clone(),
        source,
    };
    let mut child = Command::new(&binary)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    // Feed stdin from another thread so a chatty child can never deadlock us on a full pipe.
    let writer = child.stdin.take().zip(stdin).map(|(mut pipe, text)| {
        let text = text.to_owned();
        std::thread::spawn(move || pipe.write_all(text.as_bytes()))
    });
    let out = child.wait_with_output().map_err(spawn_err)?;
    if let Some(w) = writer {
        match w.join() {
            Ok(Ok(())) => {}
            // nft exiting early (e.g. on a syntax error) closes the pipe; its status says why.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Ok(Err(e)) => return Err(spawn_err(e)),
            Err(p) => std::panic::resume_unwind(p),
        }
    }
    Ok(out)
}

fn script_head(script: &str) -> String {
    let mut lines: Vec<String> = script
        .lines()
        .take(SCRIPT_HEAD_LINES)
        .enumerate()
        .map(|(i, l)| format!("{:>3}: {l}", i + 1))
        .collect();
    if script.lines().nth(SCRIPT_HEAD_LINES).is_some() {
        lines.push("     ...".into());
    }
    lines.join("\n")
}

/// Runs `nft -f -` with `script` on stdin (one atomic transaction: all of it or nothing), in the
/// netns of the calling thread. The error carries nft's stderr and the script's first lines.
pub fn run_script(script: &str) -> Result<(), NftError> {
    let out = run_nft(&["-f", "-"], Some(script))?;
    if out.status.success() {
        if !out.stderr.is_empty() {
            tracing::debug!(
                "nft -f - warnings: {}",
                String::from_utf8_lossy(&out.stderr).trim_end()
            );
        }
        return Ok(());
    }
    Err(NftError::Nft {
        cmd: "nft -f -".into(),
        status: out.status,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        script_head: script_head(script),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_head_numbers_and_truncates() {
        assert_eq!(script_head("a\nb"), "  1: a\n  2: b");
        let long: String = (1..=10).map(|i| format!("l{i}\n")).collect();
        let head = script_head(&long);
        assert!(head.starts_with("  1: l1\n"), "{head}");
        assert!(head.contains("  8: l8\n     ..."), "{head}");
        assert!(!head.contains("l9"), "{head}");
    }
}
