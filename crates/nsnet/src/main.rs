//! nsnet: container networking for Linux. One binary: the CLI for humans, the CNI plugin (when
//! `CNI_COMMAND` is set), the netavark plugin (when the first argument is one of its
//! subcommands) and topology files. Exit codes: 0 ok, 1 error, 2 usage.

mod cli;
mod cli_fast;
mod cni;
mod commands;
mod complete;
mod context;
mod dns;
mod hint;
mod netavark;
mod output;
mod progress;
mod sandbox;
mod topology;

use std::process::ExitCode;

use clap::Parser;

/// Logs to stderr (stdout is the answer, for the plugin faces): what `NSNET_LOG` asks for,
/// else `default` (a level) and above.
pub(crate) fn init_logging(default: &str, ansi: bool) {
    let fmt = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    // Without NSNET_LOG, a plain level: an `EnvFilter` (directives, per-callsite interest) is
    // ~0.05 ms of every command's start for the same answer.
    let level = match std::env::var_os("NSNET_LOG") {
        None => default
            .parse::<tracing_subscriber::filter::LevelFilter>()
            .ok(),
        Some(_) => None,
    };
    match level {
        Some(level) => fmt.with_max_level(level).init(),
        None => fmt
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("NSNET_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
            )
            .init(),
    }
}

fn main() -> ExitCode {
    if cni::invoked() {
        return cni::main();
    }
    if netavark::invoked() {
        return netavark::main();
    }
    complete::answer_if_asked();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = match cli_fast::parse(&args, &cli_fast::Env::current()) {
        Some(cli) => Ok(cli),
        None => cli::Cli::try_parse_from(args),
    };
    let cli = match parsed {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    // --quiet keeps warnings out too; NSNET_LOG, when set, still says what to log.
    init_logging(
        if cli.quiet { "error" } else { "warn" },
        output::colour_stderr(),
    );
    tracing::debug!("start");
    let result = commands::run(cli);
    tracing::debug!("done");
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", hint::cli_line(&err));
            ExitCode::from(1)
        }
    }
}
