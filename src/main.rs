//! The `pushpool` binary: parse, run, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use pushpool::cli::{Cli, Command};
use pushpool::provision;
use pushpool::ui::Console;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the tokio runtime starts");
    let result = runtime.block_on(async {
        match cli.command {
            Command::WorkPool(command) => provision::run(command.options()?, &Console::detect()).await,
        }
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
