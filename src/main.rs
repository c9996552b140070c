//! The `pushpool` binary: parse, run, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use pushpool::cli::Cli;
use pushpool::ui::Console;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
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
