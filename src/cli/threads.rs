//! `gopeek threads`: every thread of the target, held briefly: its M, P
//! and goroutine, registers as gdb's `info registers`, a Go-aware
//! backtrace and, with `--disasm N`, the code at its PC.

use super::error::{CliError, UsageError};
use super::ReportFormat;
use super::{forbid_writes, open_target};
use gopeek::output::threads::{write_threads_text, ThreadsJson};
use gopeek::output::write_json;
use gopeek::snapshot::threads::{take_threads_core, ThreadsOptions};
use gopeek::sudo::privilege::SudoContext;
use gopeek::sudo::SudoSession;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `gopeek threads` arguments.
#[derive(clap::Args)]
pub(crate) struct ThreadsArgs {
    /// The process to inspect.
    #[arg(long, required_unless_present = "core", conflicts_with = "core")]
    pid: Option<i32>,
    /// A core file instead of a live process (threads and registers from
    /// its NT_PRSTATUS notes).
    #[arg(long, value_name = "FILE")]
    core: Option<PathBuf>,
    /// With --core: the executable, when not the one the core names.
    #[arg(long, value_name = "FILE", requires = "core")]
    exe: Option<PathBuf>,
    /// Only this thread (a TID from /proc/PID/task).
    #[arg(long)]
    tid: Option<i32>,
    /// Disassemble N instructions from each thread's PC (as gdb's x/Ni $pc).
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u16).range(0..=4096))]
    disasm: u16,
    /// Give up, detach and fail if the target would be held longer (ms).
    #[arg(long, default_value_t = 2000)]
    max_pause: u64,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
}

/// Runs `gopeek threads`. Under sudo as `dump` does: the policy decides
/// and the audit log says so before anything is opened; the target is
/// opened as root and root dropped for good before the executable is
/// parsed; the root monitor makes the hold (re-checking the policy on the
/// held target) and reports the registers; the outcome is logged.
/// Without `show_memory`, only rip, rsp and rbp of the registers are
/// shown (the others may hold the target's data).
pub(crate) fn run(a: ThreadsArgs, sudo: Option<&SudoContext>) -> Result<ExitCode, CliError> {
    if sudo.is_some() && a.core.is_some() {
        return Err(UsageError(
            "`gopeek threads --core` needs no privilege: run it without sudo, as a user who can read the core".into(),
        )
        .into());
    }
    let session = match (sudo, a.pid) {
        (Some(ctx), Some(pid)) => Some(SudoSession::begin(ctx, pid)?),
        _ => None,
    };
    // The root monitor, forked while root and single-threaded.
    let monitor = match &session {
        Some(s) => Some(s.start_monitor()?),
        None => None,
    };
    forbid_writes()?;
    let max_pause = Duration::from_millis(a.max_pause);
    let opts = ThreadsOptions {
        tid: a.tid,
        disasm: a.disasm as usize,
        max_pause,
    };
    let taken = match (&a.core, a.pid) {
        (Some(core), _) => take_threads_core(core, a.exe.as_deref(), &opts).map_err(CliError::from),
        (None, Some(pid)) => {
            open_target(pid, monitor, session.as_deref()).and_then(|t| Ok(t.threads(&opts)?))
        }
        // clap requires one of them.
        (None, None) => return Err(UsageError("give --pid PID or --core FILE".into()).into()),
    };
    if let Some(s) = &session {
        s.finish(match &taken {
            Ok(r) => Ok(format!(
                "pause_us={} threads={}",
                r.pause_us.unwrap_or(0),
                r.threads.len()
            )),
            Err(e) => Err(e.to_string()),
        });
    }
    let mut r = taken?;
    if let Some(s) = session.as_ref().filter(|s| !s.decision().show_memory) {
        let why = format!("not allowed by the sudo policy ({})", s.decision().reason);
        r.hide_register_values(&why);
        eprintln!("gopeek: note: registers other than rip, rsp and rbp are not shown: {why}");
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    match a.format {
        ReportFormat::Text => write_threads_text(&mut out, &r)?,
        ReportFormat::Json => write_json(&ThreadsJson::new(&r), false, &mut out)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
