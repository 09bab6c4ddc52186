//! `gopeek dump`: usage checks, the sudo session and the `-o` file, the
//! seccomp filters, one snapshot, then filters and the chosen output.

use super::analysis::DumpAnalysisArgs;
use super::error::{CliError, Doing, UsageError};
use super::{forbid_writes, forbid_writes_offline, open_target};
use gopeek::analyze::group;
use gopeek::dump::DumpSnapshot;
use gopeek::output::{
    write_json, FoldedOutput, JsonOutput, Outputter, PprofOutput, SvgOutput, TextOutput,
};
use gopeek::snapshot::{take, take_core, SnapshotOptions};
use gopeek::sudo::privilege::{create_output, SudoContext};
use gopeek::sudo::SudoSession;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `gopeek dump --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DumpFormat {
    /// Go's own traceback text (or buckets with --group).
    Text,
    /// Schema gopeek.dump/1 (gopeek.group/1 with --group).
    Json,
    /// Gzipped pprof goroutine profile, for `go tool pprof`.
    Pprof,
    /// Folded stacks with counts, for flamegraph.pl and speedscope.
    Folded,
    /// A goroutine flame graph.
    Svg,
}

/// `gopeek dump` arguments.
#[derive(clap::Args)]
pub(crate) struct DumpArgs {
    /// The process to inspect.
    #[arg(long, required_unless_present = "core", conflicts_with = "core")]
    pid: Option<i32>,
    /// Read a core file instead of a live process (kernel, gcore or
    /// qemu-user core); nothing is attached to.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["nonblocking", "max_pause"])]
    core: Option<PathBuf>,
    /// With --core: the executable that wrote the core (default: the one
    /// the core names); checked against the core's bytes.
    #[arg(long, value_name = "BINARY", requires = "core")]
    exe: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = DumpFormat::Text)]
    format: DumpFormat,
    /// Show runtime frames and system goroutines (GOTRACEBACK=system).
    #[arg(long)]
    system: bool,
    /// Print pprof labels on a line after each header (not in Go's text).
    #[arg(long)]
    labels: bool,
    /// Give up, detach and fail if the target would be held longer (ms).
    #[arg(long, default_value_t = 2000)]
    max_pause: u64,
    /// Never stop the whole process: stop only the threads running Go
    /// code (about a millisecond), read every other goroutine while it
    /// runs, and keep a goroutine only when two reads around its stack
    /// agree. Each goroutine is consistent; the dump is not one instant.
    #[arg(long)]
    nonblocking: bool,
    #[command(flatten)]
    analysis: DumpAnalysisArgs,
    /// Write the dump to FILE instead of stdout. Never follows a symlink;
    /// an existing file must be yours. Under sudo it is created as the
    /// invoking user, not root.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Runs `gopeek dump`.
pub(crate) fn run(a: DumpArgs, sudo: Option<&SudoContext>) -> Result<ExitCode, CliError> {
    // Usage errors (bad regex, pprof to a terminal) before anything is
    // opened or logged.
    let filter = a
        .analysis
        .check(a.format, a.output.is_none() && io::stdout().is_terminal())?;
    if sudo.is_some() && a.core.is_some() {
        // A core is a file: nothing to attach to, so no reason to parse
        // it (untrusted bytes) as root.
        return Err(UsageError(
            "`gopeek dump --core` needs no privilege: run it without sudo, as a user who can read the core".into(),
        )
        .into());
    }
    // sudo: policy check and audit line before anything is opened; the
    // session writes the outcome line however this function returns.
    let session = match (sudo, a.pid) {
        (Some(ctx), Some(pid)) => Some(SudoSession::begin(ctx, pid)?),
        _ => None,
    };
    // sudo: the root monitor that will hold the target on request, forked
    // while gopeek is root and single-threaded (process::monitor).
    let monitor = match &session {
        Some(s) => Some(s.start_monitor()?),
        None => None,
    };
    // -o: created now (as the invoking user under sudo), before the
    // no-write-open filter.
    let out_file = match &a.output {
        Some(p) => match create_output(p, sudo) {
            Ok(f) => Some(f),
            Err(e) => {
                if let Some(s) = &session {
                    s.finish(Err(e.to_string()));
                }
                return Err(e.into());
            }
        },
        None => None,
    };
    if a.core.is_some() {
        forbid_writes_offline()?;
    } else {
        forbid_writes()?;
    }
    let max_pause = Duration::from_millis(a.max_pause);
    let opts = SnapshotOptions {
        max_pause,
        nonblocking: a.nonblocking,
        frame_registers: a.system && matches!(a.format, DumpFormat::Text),
    };
    let taken = match (&a.core, a.pid, &session) {
        (Some(core), _, _) => take_core(core, a.exe.as_deref(), &opts).map_err(CliError::from),
        // sudo: open the target as root, drop for good, then read it as
        // the invoking user while the monitor holds it on request.
        (None, Some(pid), Some(s)) => {
            open_target(pid, monitor.clone(), Some(s)).and_then(|t| Ok(t.take(&opts)?))
        }
        (None, Some(pid), None) => take(pid, &opts).map_err(CliError::from),
        // clap requires one of them.
        (None, None, _) => return Err(UsageError("give --pid PID or --core FILE".into()).into()),
    };
    let result = taken.map(|s| {
        if super::timing::wanted() {
            super::timing::print(&s.timing);
        }
        s.dump
    });
    if let Some(s) = &session {
        s.finish(match &result {
            Ok(d) => Ok(format!(
                "pause_us={} goroutines={}",
                d.pause_us,
                d.goroutines.len()
            )),
            Err(e) => Err(e.to_string()),
        });
    }
    let mut dump = filter.apply(result?);
    if let Some(s) = session.as_ref().filter(|s| !s.decision().show_memory) {
        let why = format!("not allowed by the sudo policy ({})", s.decision().reason);
        dump.hide_memory_contents(&why);
        eprintln!("gopeek: note: labels and argument values are not shown: {why}");
    }
    // JSON is indented for a person at a terminal, compact for pipes (a
    // 100k-goroutine dump is several times smaller).
    let pretty = out_file.is_none() && io::stdout().is_terminal();
    let stdout = io::stdout();
    let sink: Box<dyn Write> = match out_file {
        Some(f) => Box::new(f),
        None => Box::new(stdout.lock()),
    };
    let mut w = io::BufWriter::with_capacity(1 << 16, sink);
    let t_out = std::time::Instant::now();
    write_dump(&dump, &a, pretty, &mut w).doing("writing the dump")?;
    w.flush()?;
    if super::timing::wanted() {
        eprintln!("gopeek: timing: output {} us", t_out.elapsed().as_micros());
    }
    let broken = dump
        .goroutines
        .iter()
        .filter(|g| g.error.is_some() && !g.frames.is_empty())
        .count();
    if broken > 0 && matches!(a.format, DumpFormat::Text) {
        eprintln!("gopeek: {broken} goroutine stacks are incomplete; --format json says why");
    }
    for w in &dump.warnings {
        eprintln!("gopeek: warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes an (already filtered) snapshot in the chosen format: buckets
/// with `--group`, else the per-goroutine or profile formats.
fn write_dump(
    dump: &DumpSnapshot,
    a: &DumpArgs,
    pretty: bool,
    w: &mut dyn Write,
) -> io::Result<()> {
    let g = &a.analysis.group;
    if g.group {
        let report = group::group(dump, g.similarity.into(), a.system, g.top);
        return match a.format {
            DumpFormat::Json => write_json(&report, pretty, w),
            _ => gopeek::output::group::write_text(&report, w),
        };
    }
    let (system, labels) = (a.system, a.labels);
    let out: Box<dyn Outputter> = match a.format {
        DumpFormat::Text => Box::new(TextOutput { system, labels }),
        DumpFormat::Json => Box::new(JsonOutput { pretty }),
        DumpFormat::Pprof => Box::new(PprofOutput { system }),
        DumpFormat::Folded => Box::new(FoldedOutput { system }),
        DumpFormat::Svg => Box::new(SvgOutput { system }),
    };
    out.write(dump, w)
}
