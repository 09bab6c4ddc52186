//! The `gopeek` command line: parse the arguments, run one command, print
//! the error once and exit with the code the error names (README, "Exit
//! status"; `gopeek::exit`).

mod cli;

use clap::Parser;
use cli::error::CliError;
use cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        // A reader that went away (`gopeek dump | head`) is not a failure.
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gopeek: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, CliError> {
    // Under sudo: who to drop to (see gopeek::sudo). Commands that need no
    // privilege drop at once; dump and info --pid drop once the target is
    // open.
    let sudo = gopeek::sudo::privilege::sudo_context()?;
    let sudo = sudo.as_ref();
    match cli.command {
        Command::Info(a) => cli::info::run_info(a, sudo),
        Command::Dump(a) => cli::dump::run(a, sudo),
        Command::Leaks(a) => cli::leaks::run(a, sudo),
        Command::Symbolize(a) => cli::info::run_symbolize(a, sudo),
        Command::Ps(a) => cli::ps::run(a, sudo),
        Command::Completions(a) => cli::completions::run(a),
        Command::Manpage(a) => cli::completions::run_manpage(a),
        Command::Print(a) => cli::print::run(a, sudo),
        Command::Record(a) => cli::record::run(a, sudo),
        Command::Top(a) => cli::top::run(a, sudo),
        Command::Sched(a) => cli::sched::run(a, sudo),
        Command::Threads(a) => cli::threads::run(a, sudo),
    }
}
