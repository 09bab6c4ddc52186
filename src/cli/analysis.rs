//! Command-line arguments of the analysis features (flattened into
//! `gopeek dump` and `gopeek leaks` by main.rs) and the glue from a
//! snapshot to the chosen output, so that main.rs stays a dispatcher.

#![warn(missing_docs)]

use gopeek::analyze::filter::{Filter, GState};
use gopeek::analyze::group::{self, Similarity};
use gopeek::analyze::leaks::{self, EXIT_GROWING};
use gopeek::dump::DumpSnapshot;
use gopeek::output::{FoldedOutput, JsonOutput, Outputter, PprofOutput, SvgOutput, TextOutput};
use gopeek::snapshot::{snapshot_pid, SnapshotOptions};
use std::fmt;
use std::io::IsTerminal;
use std::io::{self, Write};
use std::time::Duration;
use std::time::Instant;

/// A bad combination of arguments found after parsing: exit code 2, like
/// clap's own usage errors.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// `gopeek dump --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DumpFormat {
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

/// Which goroutines to keep; different flags combine with AND.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FilterArgs {
    /// Keep goroutines in these scheduler states (repeat or comma-separate).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "STATE")]
    pub state: Vec<GState>,
    /// Keep goroutines whose status is this text, e.g. "chan receive",
    /// "sync.Mutex.Lock", "IO wait" (case-insensitive; repeatable).
    #[arg(long = "wait-reason", value_name = "TEXT")]
    pub wait_reason: Vec<String>,
    /// Keep goroutines with a frame whose function or file matches REGEX
    /// (runtime frames included).
    #[arg(long = "match", value_name = "REGEX")]
    pub frame_match: Option<String>,
    /// Keep goroutines blocked at least this many minutes (as Go counts
    /// them: the ", N minutes" of the header).
    #[arg(long, value_name = "MINUTES")]
    pub min_wait: Option<u64>,
    /// Keep goroutines carrying this pprof label (KEY=VALUE, or KEY for any
    /// value; repeat for several, all must match).
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Keep goroutines whose "created by" function or file:line matches REGEX.
    #[arg(long, value_name = "REGEX")]
    pub created_by: Option<String>,
}

impl FilterArgs {
    /// The compiled filter; a bad regex or label is a usage error.
    pub fn build(&self) -> Result<Filter, UsageError> {
        Filter::new(
            &self.state,
            &self.wait_reason,
            self.frame_match.as_deref(),
            self.min_wait,
            &self.label,
            self.created_by.as_deref(),
        )
        .map_err(|e| UsageError(e.0))
    }
}

/// `--group` and its knobs.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GroupArgs {
    /// Fold goroutines with the same status and stack into buckets,
    /// largest first (text or json).
    #[arg(long)]
    pub group: bool,
    /// exact: same functions at the same lines; function: same functions,
    /// any line.
    #[arg(long, value_enum, default_value_t = Similarity::Exact, requires = "group")]
    pub similarity: Similarity,
    /// Show only the N largest buckets.
    #[arg(long, value_name = "N", requires = "group")]
    pub top: Option<usize>,
}

/// Everything `gopeek dump` gained for diagnosis, flattened into it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DumpAnalysisArgs {
    /// Which goroutines to keep.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Buckets instead of goroutines.
    #[command(flatten)]
    pub group: GroupArgs,
}

impl DumpAnalysisArgs {
    /// Rejects combinations that cannot work, before the target is touched.
    pub fn check(
        &self,
        format: DumpFormat,
        stdout_is_terminal: bool,
    ) -> Result<Filter, UsageError> {
        if self.group.group && !matches!(format, DumpFormat::Text | DumpFormat::Json) {
            return Err(UsageError(
                "--group works with --format text or json (pprof, folded and svg aggregate stacks already)"
                    .into(),
            ));
        }
        if format == DumpFormat::Pprof && stdout_is_terminal {
            return Err(UsageError(
                "--format pprof writes a binary profile: redirect it to a file (gopeek dump ... > goroutines.pb.gz)"
                    .into(),
            ));
        }
        self.filter.build()
    }
}

/// Writes an (already filtered) snapshot in `format`: buckets with
/// `--group`, else the per-goroutine or profile formats.
pub fn write_dump(
    dump: &DumpSnapshot,
    format: DumpFormat,
    system: bool,
    labels: bool,
    args: &DumpAnalysisArgs,
    pretty: bool,
    w: &mut dyn Write,
) -> io::Result<()> {
    if args.group.group {
        let report = group::group(dump, args.group.similarity, system, args.group.top);
        return match format {
            DumpFormat::Json => write_json(&report, pretty, w),
            _ => group::write_text(&report, w),
        };
    }
    let out: Box<dyn Outputter> = match format {
        DumpFormat::Text => Box::new(TextOutput { system, labels }),
        DumpFormat::Json => Box::new(JsonOutput { pretty }),
        DumpFormat::Pprof => Box::new(PprofOutput { system }),
        DumpFormat::Folded => Box::new(FoldedOutput { system }),
        DumpFormat::Svg => Box::new(SvgOutput { system }),
    };
    out.write(dump, w)
}

/// One JSON document and a newline.
pub fn write_json<T: serde::Serialize>(v: &T, pretty: bool, w: &mut dyn Write) -> io::Result<()> {
    if pretty {
        serde_json::to_writer_pretty(&mut *w, v)?;
    } else {
        serde_json::to_writer(&mut *w, v)?;
    }
    writeln!(w)
}

/// `gopeek leaks --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LeaksFormat {
    /// A ranked report for a person.
    Text,
    /// Schema gopeek.leaks/1.
    Json,
}

/// `gopeek leaks` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct LeaksArgs {
    /// The process to watch.
    #[arg(long)]
    pub pid: i32,
    /// Snapshots to take (at least 3: a trend needs three points).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(3..=100_000))]
    pub samples: u32,
    /// Time between snapshots: 500ms, 10s, 1m...
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub interval: Duration,
    /// text: ranked report; json: schema gopeek.leaks/1.
    #[arg(long, value_enum, default_value_t = LeaksFormat::Text)]
    pub format: LeaksFormat,
    /// exact: same functions at the same lines; function: same functions,
    /// any line.
    #[arg(long, value_enum, default_value_t = Similarity::Exact)]
    pub similarity: Similarity,
    /// Report only the N highest-ranked clusters (the exit code still
    /// counts every growing one).
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// Also list transient clusters in the text report.
    #[arg(long)]
    pub all: bool,
    /// Include runtime frames and system goroutines.
    #[arg(long)]
    pub system: bool,
    /// Give up, detach and fail if the target would be held longer (ms)
    /// in any one snapshot.
    #[arg(long, default_value_t = 2000)]
    pub max_pause: u64,
    /// Take each snapshot without stopping the process (see `gopeek dump
    /// --nonblocking`): goroutines that keep changing are left out of
    /// that sample.
    #[arg(long)]
    pub nonblocking: bool,
}

/// Takes the snapshots, analyses them and writes the report to stdout;
/// returns the exit code: [`EXIT_GROWING`] when a growing cluster was
/// found, else 0. Progress goes to stderr only when it is a terminal.
pub fn run_leaks(args: &LeaksArgs) -> anyhow::Result<u8> {
    let opts = SnapshotOptions {
        max_pause: Duration::from_millis(args.max_pause),
        nonblocking: args.nonblocking,
        frame_registers: false,
        // main refuses `leaks` under sudo: a privilege drop after the first
        // sample would leave no way to seize the target for the next one.
        after_seize: None,
    };
    let n = args.samples as usize;
    let progress = io::stderr().is_terminal();
    let start = Instant::now();
    let mut tracker = leaks::LeakTracker::new(args.similarity, args.system);
    for i in 0..n {
        let due = start + args.interval * i as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let t = start.elapsed().as_secs_f64();
        let dump = snapshot_pid(args.pid, &opts)?;
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
    let report = tracker.report(args.top);
    let stdout = io::stdout();
    let pretty = stdout.is_terminal();
    let mut w = io::BufWriter::new(stdout.lock());
    match args.format {
        LeaksFormat::Text => leaks::write_text(&report, args.system, args.all, &mut w)?,
        LeaksFormat::Json => write_json(&report, pretty, &mut w)?,
    }
    w.flush()?;
    Ok(if report.growing > 0 { EXIT_GROWING } else { 0 })
}

/// Parses `500ms`, `2s`, `1.5s`, `3m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a duration like 500ms, 2s, 1m"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "" | "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    if !(0.0..=86_400.0 * 7.0).contains(&secs) {
        return Err(format!("{s:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("").is_err());
    }
}
