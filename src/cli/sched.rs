//! `gopeek sched`: the target's scheduler as its own `schedtrace` prints
//! it, with the stop-the-world analysis first; once, `--count` times or
//! until Ctrl-C, every `--interval`.

use super::error::{CliError, UsageError};
use super::ReportFormat;
use super::{forbid_writes, open_target};
use gopeek::analyze::stw::analyze_stw;
use gopeek::output::sched::{write_sched_text, SchedJson};
use gopeek::output::write_json;
use gopeek::snapshot::sched::{sched_core, SchedOptions};
use gopeek::sudo::privilege::SudoContext;
use gopeek::sudo::SudoSession;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `gopeek sched` arguments.
#[derive(clap::Args)]
pub(crate) struct SchedArgs {
    /// The process to inspect.
    #[arg(long, required_unless_present = "core", conflicts_with = "core")]
    pid: Option<i32>,
    /// Read a core file instead of a live process (kernel, gcore or
    /// qemu-user core): one reading, the stop-the-world analysis from the
    /// threads' registers in the core.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["interval", "count", "consistent"])]
    core: Option<PathBuf>,
    /// With --core: the executable that wrote the core (default: the one
    /// the core names); checked against the core's bytes.
    #[arg(long, value_name = "BINARY", requires = "core")]
    exe: Option<PathBuf>,
    /// Also print the P, M and G lines (as GODEBUG=scheddetail=1 does).
    #[arg(long)]
    detail: bool,
    /// Read under a brief hold of every thread (one instant) instead of
    /// while the target runs (racy, as the runtime's own trace is).
    #[arg(long)]
    consistent: bool,
    /// Repeat every DURATION (`1s`, `250ms`), as schedtrace=N does.
    #[arg(long, value_parser = parse_duration)]
    interval: Option<Duration>,
    /// Stop after N readings (with --interval; default: until Ctrl-C).
    #[arg(long)]
    count: Option<u64>,
    /// A goroutine running this long (ms) with no stop-the-world pending
    /// is reported as a CPU hog.
    #[arg(long, default_value_t = 10)]
    hog_ms: i64,
    /// Give up, detach and fail if the target would be held longer (ms).
    #[arg(long, default_value_t = 2000)]
    max_pause: u64,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
}

/// `1s`, `250ms`, `2m`, or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a duration such as 1s or 250ms"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s or m)")),
    };
    if !(secs > 0.0 && secs < 86_400.0) {
        return Err(format!("{s:?}: must be between 0 and 24h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// GODEBUG=asyncpreemptoff=1 in the target's environment.
fn asyncpreemptoff(pid: i32) -> bool {
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    env.split(|&b| b == 0).any(|var| {
        std::str::from_utf8(var)
            .ok()
            .and_then(|s| s.strip_prefix("GODEBUG="))
            .is_some_and(|v| {
                v.split(',')
                    .filter_map(|kv| kv.trim().strip_prefix("asyncpreemptoff="))
                    .next_back()
                    == Some("1")
            })
    })
}

/// Runs `gopeek sched`.
pub(crate) fn run(a: SchedArgs, sudo: Option<&SudoContext>) -> Result<ExitCode, CliError> {
    if a.count.is_some() && a.interval.is_none() {
        return Err(UsageError("--count needs --interval".into()).into());
    }
    if a.count == Some(0) {
        return Err(UsageError("--count must be at least 1".into()).into());
    }
    if sudo.is_some() && a.core.is_some() {
        return Err(UsageError(
            "`gopeek sched --core` needs no privilege: run it without sudo, as a user who can read the core".into(),
        )
        .into());
    }
    // A core's environment is not read: asyncpreemptoff is taken as off.
    let session = match (sudo, a.pid) {
        (Some(ctx), Some(pid)) => Some(SudoSession::begin(ctx, pid)?),
        _ => None,
    };
    // sudo, as `dump`: the root monitor, forked while root and
    // single-threaded, makes every hold of every reading (and re-checks
    // the policy on each); the target is opened as root, then root is
    // dropped for good before anything of it is parsed.
    let monitor = match &session {
        Some(s) => Some(s.start_monitor()?),
        None => None,
    };
    let apo = a.pid.is_some_and(asyncpreemptoff);
    forbid_writes()?;
    let max_pause = Duration::from_millis(a.max_pause);
    let opts = SchedOptions {
        consistent: a.consistent,
        max_pause,
        hog_ms: a.hog_ms,
    };
    let pause = a.interval.unwrap_or_default();
    let mut left = match a.interval {
        None => Some(1),
        Some(_) => a.count,
    };
    let stdout = io::stdout();
    let mut outcome = String::new();
    let mut each = |r: gopeek::snapshot::sched::SchedReading| -> Result<bool, CliError> {
        outcome = format!(
            "pause_us={} ps={} ms={}",
            r.pause_us.unwrap_or(0),
            r.state.ps.len(),
            r.state.ms.len()
        );
        let stw = analyze_stw(&r.state, apo, a.hog_ms);
        let mut out = io::BufWriter::new(stdout.lock());
        match a.format {
            ReportFormat::Text => write_sched_text(&mut out, &r.state, &stw, a.detail)?,
            ReportFormat::Json => {
                let doc = SchedJson::new(
                    r.pid,
                    &r.exe,
                    &r.go_version,
                    &r.taken_at,
                    r.pause_us,
                    &r.state,
                    &stw,
                );
                write_json(&doc, false, &mut out)?;
            }
        }
        out.flush()?;
        if let Some(n) = left.as_mut() {
            *n -= 1;
            return Ok(*n > 0);
        }
        Ok(true)
    };
    let watched = match (&a.core, a.pid) {
        (Some(core), _) => sched_core::<CliError>(core, a.exe.as_deref(), &opts, &mut each),
        (None, Some(pid)) => open_target(pid, monitor, session.as_deref())
            .and_then(|t| t.watch_sched::<CliError>(&opts, pause, &mut each)),
        // clap requires one of them.
        (None, None) => return Err(UsageError("give --pid PID or --core FILE".into()).into()),
    };
    if let Some(s) = &session {
        s.finish(match &watched {
            Ok(()) => Ok(outcome),
            Err(e) => Err(e.to_string()),
        });
    }
    watched?;
    Ok(ExitCode::SUCCESS)
}
