//! `gopeek leaks`: several snapshots over time, clustered and judged by
//! `analyze::leaks`.

use super::analysis::{parse_duration, SimilarityArg};
use super::error::{CliError, Doing, UsageError};
use super::{forbid_writes, forbid_writes_offline, open_target};
use gopeek::analyze::leaks;
use gopeek::exit::LEAK_FOUND;
use gopeek::output::write_json;
use gopeek::snapshot::{take_core, LiveTarget, SnapshotOptions};
use gopeek::sudo::privilege::SudoContext;
use gopeek::sudo::SudoSession;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// `gopeek leaks --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LeaksFormat {
    /// A ranked report for a person.
    Text,
    /// Schema gopeek.leaks/1.
    Json,
}

/// `gopeek leaks` arguments.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LeaksArgs {
    /// The process to watch.
    #[arg(long, required_unless_present = "core", conflicts_with = "core")]
    pub(crate) pid: Option<i32>,
    /// Instead of a live process: core files of one program taken at
    /// different times, oldest first (at least 3; --core A --core B ...).
    /// Each sample's time is its core file's modification time.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["samples", "interval", "nonblocking"])]
    pub(crate) core: Vec<PathBuf>,
    /// With --core: the executable that wrote the cores.
    #[arg(long, value_name = "BINARY", requires = "core")]
    pub(crate) exe: Option<PathBuf>,
    /// Snapshots to take (at least 3: a trend needs three points).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(3..=100_000))]
    pub(crate) samples: u32,
    /// Time between snapshots: 500ms, 10s, 1m...
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) interval: Duration,
    /// text: ranked report; json: schema gopeek.leaks/1.
    #[arg(long, value_enum, default_value_t = LeaksFormat::Text)]
    pub(crate) format: LeaksFormat,
    /// exact: same functions at the same lines; function: same functions,
    /// any line.
    #[arg(long, value_enum, default_value_t = SimilarityArg::Exact)]
    pub(crate) similarity: SimilarityArg,
    /// Report only the N highest-ranked clusters (the exit code still
    /// counts every growing one).
    #[arg(long, value_name = "N")]
    pub(crate) top: Option<usize>,
    /// Also list transient clusters in the text report.
    #[arg(long)]
    pub(crate) all: bool,
    /// Include runtime frames and system goroutines.
    #[arg(long)]
    pub(crate) system: bool,
    /// Give up, detach and fail if the target would be held longer (ms)
    /// in any one snapshot.
    #[arg(long, default_value_t = 2000)]
    pub(crate) max_pause: u64,
    /// Take each snapshot without stopping the process (see `gopeek dump
    /// --nonblocking`): goroutines that keep changing are left out of
    /// that sample.
    #[arg(long)]
    pub(crate) nonblocking: bool,
}

/// Runs `gopeek leaks`: takes the snapshots, analyses them and writes the
/// report to stdout; exits [`LEAK_FOUND`] when a growing cluster was found,
/// else 0. Progress goes to stderr only when it is a terminal.
pub(crate) fn run(args: LeaksArgs, sudo: Option<&SudoContext>) -> Result<ExitCode, CliError> {
    let opts = SnapshotOptions {
        max_pause: Duration::from_millis(args.max_pause),
        nonblocking: args.nonblocking,
        frame_registers: false,
    };
    if !args.core.is_empty() {
        if sudo.is_some() {
            return Err(UsageError(
                "`gopeek leaks --core` needs no privilege: run it without sudo, as a user who can read the cores".into(),
            )
            .into());
        }
        forbid_writes_offline()?;
        return from_cores(&args, &opts);
    }
    let Some(pid) = args.pid else {
        return Err(UsageError("give --pid PID or --core FILE (three or more)".into()).into());
    };
    // sudo: policy and audit line, then the root monitor (forked while
    // root and single-threaded), then the target opened as root, then the
    // drop; every sample is read as the invoking user.
    let session = match sudo {
        Some(ctx) => Some(SudoSession::begin(ctx, pid)?),
        None => None,
    };
    let monitor = match &session {
        Some(s) => Some(s.start_monitor()?),
        None => None,
    };
    forbid_writes()?;
    let target = open_target(pid, monitor, session.as_deref())?;
    let hide = session
        .as_ref()
        .filter(|s| !s.decision().show_memory)
        .map(|s| format!("not allowed by the sudo policy ({})", s.decision().reason));
    let result = sample(&args, &opts, &target, hide.as_deref());
    if let Some(s) = &session {
        s.finish(match &result {
            Ok(_) => Ok(format!("samples={}", args.samples)),
            Err(e) => Err(e.to_string()),
        });
    }
    let tracker = result?;
    if let Some(why) = &hide {
        eprintln!("gopeek: note: labels and argument values are not shown: {why}");
    }
    write_leaks(&args, &tracker)
}

/// Takes the samples, `--interval` apart.
fn sample(
    args: &LeaksArgs,
    opts: &SnapshotOptions,
    target: &LiveTarget,
    hide: Option<&str>,
) -> Result<leaks::LeakTracker, CliError> {
    let n = args.samples as usize;
    let progress = io::stderr().is_terminal();
    let start = Instant::now();
    let mut tracker = leaks::LeakTracker::new(args.similarity.into(), args.system);
    for i in 0..n {
        let due = start + args.interval * i as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let t = start.elapsed().as_secs_f64();
        let snap = target.take(opts)?;
        if super::timing::wanted() {
            super::timing::print(&snap.timing);
        }
        let mut dump = snap.dump;
        if let Some(why) = hide {
            dump.hide_memory_contents(why);
        }
        if progress {
            eprint!(
                "\rgopeek: sample {}/{n}: {} goroutines, target held {} us   ",
                i + 1,
                dump.goroutines
                    .iter()
                    .filter(|g| gopeek::gotrace::frames::listed(g, args.system))
                    .count(),
                dump.pause_us
            );
        }
        tracker.add(t, dump);
    }
    if progress {
        // Clear the progress line: the report follows on stdout.
        eprint!("\r\x1b[K");
    }
    Ok(tracker)
}

/// `gopeek leaks --core A --core B ...`: one sample per core, timed by the
/// cores' modification times.
fn from_cores(args: &LeaksArgs, opts: &SnapshotOptions) -> Result<ExitCode, CliError> {
    if args.core.len() < 3 {
        return Err(UsageError(format!(
            "--core was given {} times: a trend needs at least 3 cores, oldest first",
            args.core.len()
        ))
        .into());
    }
    let mut tracker = leaks::LeakTracker::new(args.similarity.into(), args.system);
    let mut first = None;
    let mut last = 0.0;
    for core in &args.core {
        let written = std::fs::metadata(core)
            .and_then(|m| m.modified())
            .unwrap_or(std::time::UNIX_EPOCH);
        let first = *first.get_or_insert(written);
        let t = written
            .duration_since(first)
            .map(|d| d.as_secs_f64())
            .map_err(|_| {
                UsageError(format!(
                    "{} is older than the first core: give the cores oldest first",
                    core.display()
                ))
            })?;
        if t < last {
            return Err(UsageError(format!(
                "{} is older than the core before it: give the cores oldest first",
                core.display()
            ))
            .into());
        }
        last = t;
        let snap = take_core(core, args.exe.as_deref(), opts)?;
        tracker.add(t, snap.dump);
    }
    write_leaks(args, &tracker)
}

/// The report on stdout; exit [`LEAK_FOUND`] when something grows.
fn write_leaks(args: &LeaksArgs, tracker: &leaks::LeakTracker) -> Result<ExitCode, CliError> {
    let report = tracker.report(args.top);
    let stdout = io::stdout();
    let pretty = stdout.is_terminal();
    let mut w = io::BufWriter::new(stdout.lock());
    match args.format {
        LeaksFormat::Text => {
            gopeek::output::leaks::write_text(&report, args.system, args.all, &mut w)?
        }
        LeaksFormat::Json => write_json(&report, pretty, &mut w).doing("writing JSON")?,
    }
    w.flush()?;
    Ok(ExitCode::from(if report.growing > 0 {
        LEAK_FOUND
    } else {
        0
    }))
}
