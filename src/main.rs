//! The `pushpool` binary: parse, run, map errors to exit codes.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use pushpool::cli::Cli;
use pushpool::ui::Console;

/// What `pushpool --version` prints after the name: the version, then the commit, its date and
/// the target that build.rs found ("0.2.0 (4d4d544 2026-12-06, x86_64-unknown-linux-gnu)"), so a
/// bug report names exactly which build ran. Only this file reads the build facts, so that a new
/// commit recompiles this small crate and not the library.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("PUSHPOOL_BUILD_DETAIL"), ")");

fn main() -> ExitCode {
    let parsed = Cli::command().version(VERSION).try_get_matches().and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        // Usage errors exit 1, not clap's 2: with --detailed-exitcode, 2 means "changes pending".
        Err(error) if error.use_stderr() => {
            let _ = error.print();
            return ExitCode::from(1);
        }
        Err(help) => {
            let _ = help.print();
            return ExitCode::SUCCESS;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the tokio runtime starts");
    let console = Console::detect(cli.color);
    pushpool::parallelism::set(cli.parallelism);
    match runtime.block_on(cli.command.run(&console)) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            if error.is_reported() {
                console.error(&error);
            }
            ExitCode::from(error.exit_code())
        }
    }
}
