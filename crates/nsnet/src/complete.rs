//! Shell completions and manual pages, both generated from the clap definition in `cli.rs`.
//!
//! Completions use clap_complete's dynamic engine: the script a shell sources only forwards the
//! words typed so far to `nsnet` itself (with `NSNET_COMPLETE=SHELL` set), so subcommands and
//! flags always match the installed binary, and network, namespace and container names come
//! from the store and /run/netns at the moment TAB is pressed.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::{CommandFactory, ValueEnum};
use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};
use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};

use crate::cli::Cli;

/// The variable that switches `nsnet` into completion mode (clap_complete's default
/// `COMPLETE` is too generic a name for a system tool).
pub const VAR: &str = "NSNET_COMPLETE";

/// Shells with a completion script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Answers a completion request and exits when `NSNET_COMPLETE` is set; returns otherwise.
pub fn answer_if_asked() {
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(VAR)
        .complete();
}

/// Writes the script `shell` sources: it calls `nsnet` (found on PATH) for each completion.
pub fn script(shell: Shell, out: &mut dyn Write) -> Result<()> {
    let completer: &dyn EnvCompleter = match shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
    };
    completer
        .write_registration(VAR, "nsnet", "nsnet", "nsnet", out)
        .context("write the completion script")
}

/// Writes one manual page per command and subcommand (nsnet.1, nsnet-network-create.1, ...)
/// into `dir`; returns the file names.
pub fn man_pages(dir: &Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let mut written = Vec::new();
    write_pages(Cli::command(), dir, &mut written)?;
    Ok(written)
}

/// The manual page of `nsnet` itself.
pub fn man_page(out: &mut dyn Write) -> Result<()> {
    page(Cli::command()).render(out).context("render nsnet.1")
}

fn page(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd)
        .manual("nsnet manual")
        .source(format!("nsnet {}", env!("CARGO_PKG_VERSION")))
}

fn write_pages(cmd: clap::Command, dir: &Path, written: &mut Vec<String>) -> Result<()> {
    // `build` gives subcommands their parent's global flags, their full usage line
    // ("nsnet network create") and the display name the page's file is named after
    // ("nsnet-network-create").
    let mut cmd = cmd;
    cmd.build();
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        write_pages(sub.clone(), dir, written)?;
    }
    let man = page(cmd);
    let file = man.get_filename();
    let path = dir.join(&file);
    let mut buf = Vec::new();
    man.render(&mut buf)
        .with_context(|| format!("render {file}"))?;
    std::fs::write(&path, buf).with_context(|| format!("write {}", path.display()))?;
    written.push(file);
    Ok(())
}

/// The state directory a completion reads: a `--state-dir` already typed on the line being
/// completed (the shell passes the words as arguments), else the environment or the default.
fn state_dir() -> std::path::PathBuf {
    let words: Vec<String> = std::env::args().collect();
    typed_state_dir(&words)
        .map(Into::into)
        .or_else(|| std::env::var_os("NSNET_STATE_DIR").map(Into::into))
        .unwrap_or_else(|| nsnet_store::DEFAULT_STATE_DIR.into())
}

/// The value of the last complete `--state-dir DIR` or `--state-dir=DIR` among `words` (the
/// last word is the one being completed, so it is not a value yet).
fn typed_state_dir(words: &[String]) -> Option<String> {
    let done = &words[..words.len().saturating_sub(1)];
    let mut found = None;
    for (i, w) in done.iter().enumerate() {
        if let Some(v) = w.strip_prefix("--state-dir=") {
            found = Some(v.to_string());
        } else if let Some(v) = done.get(i + 1).filter(|_| w == "--state-dir") {
            found = Some(v.clone());
        }
    }
    found
}

/// Reads names from the store, or none: a completion never creates a state directory and never
/// prints an error into the user's command line.
fn from_store(
    f: impl FnOnce(&nsnet_store::Tx<'_>) -> Result<Vec<String>, nsnet_store::StoreError>,
) -> Vec<CompletionCandidate> {
    let dir = state_dir();
    if !dir.join(nsnet_store::DB_FILE).exists() {
        return Vec::new();
    }
    let Ok(mut store) = nsnet_store::Store::open(&dir) else {
        return Vec::new();
    };
    store
        .read(f)
        .unwrap_or_default()
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

/// Network names.
pub fn networks() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        from_store(|tx| {
            Ok(tx
                .networks()?
                .into_iter()
                .map(|n| n.spec.name().to_string())
                .collect())
        })
    })
}

/// Container names.
pub fn containers() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        from_store(|tx| Ok(tx.containers()?.into_iter().map(|c| c.name).collect()))
    })
}

fn netns_names(host: bool) -> Vec<CompletionCandidate> {
    let mut names = nsnet_sys::netns::list().unwrap_or_default();
    if host {
        names.insert(0, nsnet_core::names::HOST.to_string());
    }
    names.into_iter().map(CompletionCandidate::new).collect()
}

/// Namespace names under /run/netns (containers' included).
pub fn namespaces() -> ArgValueCandidates {
    ArgValueCandidates::new(|| netns_names(false))
}

/// Namespace names, and "host" for the machine's own.
pub fn namespaces_or_host() -> ArgValueCandidates {
    ArgValueCandidates::new(|| netns_names(true))
}

#[cfg(test)]
mod tests {
    use super::typed_state_dir;

    fn words(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn state_dir_typed_on_the_line() {
        let t = |l: &str| typed_state_dir(&words(l));
        assert_eq!(t("nsnet -- nsnet network inspect bl"), None);
        assert_eq!(
            t("nsnet -- nsnet --state-dir /s network inspect "),
            Some("/s".into())
        );
        assert_eq!(
            t("nsnet -- nsnet network rm --state-dir=/t b"),
            Some("/t".into())
        );
        // The word under the cursor is not a value yet.
        assert_eq!(t("nsnet -- nsnet network rm --state-dir /u"), None);
    }
}
