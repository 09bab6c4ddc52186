//! `gopeek ps`: the Go processes on this machine.

use super::error::CliError;
use super::{forbid_writes, write_report, ReportFormat};
use gopeek::ps::{list, PsOptions};
use gopeek::sudo::privilege::{drop_to, SudoContext};
use std::process::ExitCode;

/// `gopeek ps` arguments.
#[derive(clap::Args)]
pub(crate) struct PsArgs {
    /// Do not read the goroutine counts (reads no process memory at all).
    #[arg(long)]
    no_goroutines: bool,
    /// Also list the processes that are not shown, with the reason
    /// (not Go, a kernel thread, permission denied).
    #[arg(long)]
    all: bool,
    /// text: a table; json: schema gopeek.ps/1.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
}

/// Runs `gopeek ps`. Under sudo it runs as the invoking user, so it lists
/// only what that user could list anyway (the policy grants targets one by
/// one to `dump`, not a view of every process).
pub(crate) fn run(a: PsArgs, sudo: Option<&SudoContext>) -> Result<ExitCode, CliError> {
    if let Some(ctx) = sudo {
        drop_to(ctx)?;
    }
    forbid_writes()?;
    let report = list(PsOptions {
        goroutines: !a.no_goroutines,
        all: a.all,
    });
    write_report(
        a.format,
        |w| gopeek::output::ps::write_text(&report, w),
        &report,
        true,
    )?;
    Ok(ExitCode::SUCCESS)
}
