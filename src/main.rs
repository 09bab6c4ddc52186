//! The `gopeek` command line: parse arguments, run one command, print the
//! error chain and exit with a documented code.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use gopeek::elf::GoBinary;
use gopeek::info::InfoReport;
use gopeek::program::GoProgram;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Snapshot every goroutine of a live Go process from the outside.
#[derive(Parser)]
#[command(name = "gopeek", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// What a Go binary (or running process) is and how gopeek reads it:
    /// Go version, modules, build settings, stripped or not, where the
    /// runtime's tables and globals are.
    Info {
        /// The executable to read.
        #[arg(required_unless_present = "pid", conflicts_with = "pid")]
        binary: Option<PathBuf>,
        /// Read the executable of this running process (without attaching).
        #[arg(long)]
        pid: Option<i32>,
        #[arg(long, value_enum, default_value_t = InfoFormat::Text)]
        format: InfoFormat,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum InfoFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            let mut msg = format!("gopeek: {e}");
            for cause in e.chain().skip(1) {
                msg.push_str(&format!("\n  caused by: {cause}"));
            }
            eprintln!("{msg}");
            ExitCode::from(exit_code_for(&e))
        }
    }
}

/// Exit codes (documented in the README): 1 generic failure, 2 usage,
/// 3 not a Go program or unsupported binary.
fn exit_code_for(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.downcast_ref::<gopeek::program::ProgramError>().is_some() || cause.downcast_ref::<gopeek::elf::ElfError>().is_some() {
            return 3;
        }
    }
    1
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<io::Error>().map(|io| io.kind() == io::ErrorKind::BrokenPipe).unwrap_or(false))
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Info { binary, pid, format } => {
            let path = match (binary, pid) {
                (Some(b), _) => b,
                (None, Some(pid)) => PathBuf::from(format!("/proc/{pid}/exe")),
                (None, None) => unreachable!("clap requires one"),
            };
            let bin = GoBinary::open(&path)?;
            let program = GoProgram::load(&bin, None)?;
            let report = InfoReport::new(&program, None);
            let stdout = io::stdout();
            let mut out = stdout.lock();
            match format {
                InfoFormat::Text => report.write_text(&mut out)?,
                InfoFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &report).context("writing JSON")?;
                    writeln!(out)?;
                }
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
